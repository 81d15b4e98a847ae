/** Types of debian-packages.js for the TypeScript tests. */
export declare const PACKAGES: Record<'bird2' | 'exabgp', { programs: string[]; services: string[] }>;
export declare function ensurePackages(names: ReadonlyArray<'bird2' | 'exabgp'>, log?: (m: string) => void): void;
export declare function versionOf(program: string, args?: string[]): string | undefined;
