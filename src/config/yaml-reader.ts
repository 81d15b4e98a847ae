/**
 * Typed reading of a parsed YAML document that keeps every position.
 *
 * The config loader walks the document through a YamlReader instead of
 * converting it to plain objects first, so every error it reports can name the
 * file, line and column of the value that was wrong. Errors are collected, not
 * thrown one at a time: `krtsync check` shows all of them at once. Each
 * getter returns undefined after recording an error, and the caller goes on.
 */
import { isMap, isScalar, isSeq, LineCounter, parseDocument, type Node as YamlNode, type YAMLMap, type Pair } from 'yaml';

export interface ConfigPosition {
  line: number;
  column: number;
}

export interface ConfigIssue extends ConfigPosition {
  file: string;
  message: string;
}

export function formatIssue(i: ConfigIssue): string {
  return `${i.file}:${i.line}:${i.column}: ${i.message}`;
}

export class YamlReader {
  readonly issues: ConfigIssue[] = [];
  private readonly lines = new LineCounter();
  readonly root: YamlNode | null;
  /** Key node of each mapping value read through map(), for errors about the key itself. */
  private readonly keyOf = new WeakMap<YamlNode, YamlNode>();

  constructor(
    readonly file: string,
    text: string,
  ) {
    const doc = parseDocument(text, { lineCounter: this.lines, prettyErrors: false, uniqueKeys: true });
    for (const e of doc.errors) {
      const pos = e.linePos?.[0];
      this.issues.push({ file, line: pos?.line ?? 1, column: pos?.col ?? 1, message: e.message.split('\n')[0]! });
    }
    this.root = doc.errors.length ? null : ((doc.contents as YamlNode | null) ?? null);
  }

  /** Records an error at `node` (or at the start of the file). */
  error(node: YamlNode | Pair | null | undefined, message: string): undefined {
    const range = node && 'range' in node ? node.range : node && 'key' in node ? (node.key as YamlNode | null)?.range : undefined;
    const pos = this.lines.linePos(range?.[0] ?? 0);
    this.issues.push({ file: this.file, line: pos.line, column: pos.col, message });
    return undefined;
  }

  /** Records an error at the key of a value read through map(). */
  errorAtKey(value: YamlNode | undefined, message: string): undefined {
    return this.error((value && this.keyOf.get(value)) ?? value, message);
  }

  /** Position of a node, for values that are checked later (route lines). */
  position(node: YamlNode): ConfigPosition {
    const pos = this.lines.linePos(node.range?.[0] ?? 0);
    return { line: pos.line, column: pos.col };
  }

  /**
   * Positions of a node and of everything inside it, by path (`export`,
   * `export[0]`, `export[0].match.net`), for values another layer checks
   * later: its errors name such a path, and the file position is found here.
   */
  positionsOf(node: YamlNode, path: string, into: Map<string, ConfigPosition>): void {
    into.set(path, this.position(node));
    if (isSeq(node)) (node.items as YamlNode[]).forEach((n, i) => n && this.positionsOf(n, `${path}[${i}]`, into));
    else if (isMap(node)) {
      for (const pair of (node as YAMLMap<YamlNode, YamlNode>).items) {
        if (isScalar(pair.key) && pair.value) this.positionsOf(pair.value, `${path}.${String(pair.key.value)}`, into);
      }
    }
  }

  /**
   * A mapping's entries by key. Unknown keys are errors that list the known ones.
   * `what` names the mapping in messages ("protocol static1").
   */
  map(node: YamlNode | null | undefined, what: string, known: readonly string[]): Map<string, YamlNode> | undefined {
    if (!isMap(node)) return this.error(node, `${what}: expected a mapping`);
    const out = new Map<string, YamlNode>();
    for (const pair of (node as YAMLMap<YamlNode, YamlNode>).items) {
      const key = isScalar(pair.key) ? String(pair.key.value) : undefined;
      if (key === undefined) {
        this.error(pair.key, `${what}: keys must be plain words`);
        continue;
      }
      if (!known.includes(key)) {
        this.error(pair.key, `${what}: unknown key "${key}" (expected one of: ${known.join(', ')})`);
        continue;
      }
      const value = (pair.value as YamlNode | null) ?? (pair.key as YamlNode);
      this.keyOf.set(value, pair.key as YamlNode);
      out.set(key, value);
    }
    return out;
  }

  seq(node: YamlNode | undefined, what: string): YamlNode[] | undefined {
    if (node === undefined) return undefined;
    if (!isSeq(node)) return this.error(node, `${what}: expected a list`);
    return node.items as YamlNode[];
  }

  string(node: YamlNode | undefined, what: string): string | undefined {
    if (node === undefined) return undefined;
    if (!isScalar(node) || typeof node.value !== 'string' || node.value === '') return this.error(node, `${what}: expected a non-empty string`);
    return node.value;
  }

  bool(node: YamlNode | undefined, what: string): boolean | undefined {
    if (node === undefined) return undefined;
    if (!isScalar(node) || typeof node.value !== 'boolean') return this.error(node, `${what}: expected true or false`);
    return node.value;
  }

  int(node: YamlNode | undefined, what: string, min: number, max: number): number | undefined {
    if (node === undefined) return undefined;
    if (!isScalar(node) || typeof node.value !== 'number' || !Number.isInteger(node.value) || node.value < min || node.value > max) {
      return this.error(node, `${what}: expected an integer ${min}..${max}`);
    }
    return node.value;
  }

  /**
   * A file mode as chmod takes it: octal digits, with or without a leading 0 or 0o
   * (`0660`, `0o660`, `660`, or quoted). Read from the source text: YAML 1.2 makes
   * `0660` the decimal 660, which is not what anyone writing it means.
   */
  fileMode(node: YamlNode | undefined, what: string): number | undefined {
    if (node === undefined) return undefined;
    const text = isScalar(node) ? String((node as { source?: unknown }).source ?? node.value).trim() : '';
    const m = /^(?:0o?)?([0-7]{1,3})$/.exec(text);
    if (!m) return this.error(node, `${what}: expected an octal file mode like 0660`);
    return parseInt(m[1]!, 8);
  }

  /** An integer, or a word from `names`, or a string accepted by `resolve`. */
  intOrName(node: YamlNode | undefined, what: string, min: number, max: number, resolve: (s: string) => number | undefined, hint: string): number | undefined {
    if (node === undefined) return undefined;
    if (isScalar(node) && typeof node.value === 'string') {
      const v = resolve(node.value);
      if (v === undefined) return this.error(node, `${what}: unknown name "${node.value}" (${hint})`);
      return v;
    }
    return this.int(node, what, min, max);
  }

  /** "250ms", "10s", "5m", "1h", or a number of seconds; returns milliseconds. */
  duration(node: YamlNode | undefined, what: string, minMs = 0, maxMs = 7 * 24 * 3600 * 1000): number | undefined {
    if (node === undefined) return undefined;
    let ms: number | undefined;
    if (isScalar(node) && typeof node.value === 'number' && node.value >= 0) ms = node.value * 1000;
    else if (isScalar(node) && typeof node.value === 'string') {
      const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/.exec(node.value.trim());
      if (m) ms = Number(m[1]) * { ms: 1, s: 1000, m: 60000, h: 3600000 }[m[2] as 'ms' | 's' | 'm' | 'h'];
    }
    if (ms === undefined) return this.error(node, `${what}: expected a duration like 500ms, 10s, 5m or 1h`);
    if (ms < minMs || ms > maxMs) return this.error(node, `${what}: must be between ${minMs} ms and ${maxMs} ms`);
    return Math.round(ms);
  }

  oneOf<T extends string>(node: YamlNode | undefined, what: string, options: readonly T[]): T | undefined {
    if (node === undefined) return undefined;
    if (!isScalar(node) || !options.includes(node.value as T)) return this.error(node, `${what}: expected one of ${options.join(', ')}`);
    return node.value as T;
  }
}
