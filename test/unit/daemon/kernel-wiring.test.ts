import { parseConfig, type KernelProtocolConfig } from '../../../src/config/config';
import { formatIssue } from '../../../src/config/yaml-reader';
import { createKernelProtocol, kernelOptionIssues } from '../../../src/daemon/kernel-wiring';
import type { Family } from '../../../src/lib/addr';
import { nullLogger } from '../../../src/proto/logger';
import { Table } from '../../../src/table';

/** Throws the problems found, one a line, like the validation path reports them. */
function check(text: string): void {
  const issues = kernelOptionIssues(parseConfig('/etc/krtsync/k.yaml', text));
  if (issues.length) throw new Error(issues.map(formatIssue).join('\n'));
}

describe('kernel options the config loader cannot check', () => {
  it('accepts a sane kernel protocol', () => {
    expect(() => check('protocols:\n  - { name: k, type: kernel, kernel_table: 1000, protocol: 201, export: [ { match: { net: "10.0.0.0/8{16,24}" }, action: accept } ] }\n')).not.toThrow();
  });

  it('refuses protocol numbers of the kernel, BIRD and FRR', () => {
    expect(() => check('protocols:\n  - { name: k, type: kernel, protocol: 12 }\n')).toThrow(/^\/etc\/krtsync\/k.yaml:2:40: protocol k: .*12/);
    expect(() => check('protocols:\n  - { name: k, type: kernel, protocol: 188 }\n')).toThrow(/protocol k: .*188/);
  });

  it('refuses the local table and unknown table names', () => {
    expect(() => check('protocols:\n  - { name: k, type: kernel, kernel_table: local }\n')).toThrow(/protocol k: kernel table local belongs to the kernel/);
    expect(() => check('protocols:\n  - { name: k, type: kernel, kernel_table: no-such-table-name }\n')).toThrow(/^\/etc\/krtsync\/k.yaml:2:44: protocol k: .*no-such-table-name/);
  });

  it('refuses two protocols that would manage the same kernel table, number and family', () => {
    expect(() => check('protocols:\n  - { name: a, type: kernel, kernel_table: main }\n  - { name: b, type: kernel, kernel_table: 254, family: ipv6 }\n')).toThrow(
      /protocols a and b both manage kernel table 254, protocol number 144, IPv6/,
    );
    expect(() => check('protocols:\n  - { name: a, type: kernel, family: ipv4 }\n  - { name: b, type: kernel, family: ipv6 }\n')).not.toThrow();
    expect(() => check('protocols:\n  - { name: a, type: kernel }\n  - { name: b, type: kernel, protocol: 201 }\n')).not.toThrow();
  });

  it('refuses two protocols whose nexthop object ids would share a range (same number and family, tables equal modulo 128)', () => {
    expect(() => check('protocols:\n  - { name: a, type: kernel, kernel_table: 100 }\n  - { name: b, type: kernel, kernel_table: 228, family: ipv4 }\n')).toThrow(
      /^\/etc\/krtsync\/k.yaml:3:5: protocols a and b would share nexthop object ids \(protocol number 144, kernel tables 100 and 228 are equal modulo 128\)/,
    );
    expect(() => check('protocols:\n  - { name: a, type: kernel, kernel_table: 100 }\n  - { name: b, type: kernel, kernel_table: 228, nexthop_objects: off }\n')).not.toThrow();
    expect(() => check('protocols:\n  - { name: a, type: kernel, kernel_table: 100 }\n  - { name: b, type: kernel, kernel_table: 228, protocol: 201 }\n')).not.toThrow();
    expect(() => check('protocols:\n  - { name: a, type: kernel, kernel_table: 100 }\n  - { name: b, type: kernel, kernel_table: 101 }\n')).not.toThrow();
  });

  it('refuses a nexthop_objects value it does not know, at its position', () => {
    expect(() => parseConfig('/etc/krtsync/k.yaml', 'protocols:\n  - { name: a, type: kernel, nexthop_objects: maybe }\n')).toThrow(/k.yaml:2:47: protocol a: nexthop_objects: expected one of auto, on, off/);
  });

  it('names the position of a bad export filter', () => {
    expect(() => check('protocols:\n  - name: k\n    type: kernel\n    export:\n      - { match: { net: "10.0.0.1/8" }, action: accept }\n')).toThrow(
      /^\/etc\/krtsync\/k.yaml:5:25: protocol k: export\[0\]\.match\.net: .*host bits/,
    );
    expect(() => check('protocols:\n  - { name: k, type: kernel, export: [ { action: maybe } ] }\n')).toThrow(/export\[0\]\.action: expected accept, reject or continue/);
  });
});

describe('kernel protocol reconfiguration on reload', () => {
  const text = (extra: string, scan = '60s'): string =>
    `protocols:\n  - { name: k, type: kernel, kernel_table: 1000, merge_paths: 4, learn: true, scan_interval: ${scan}${extra} }\n`;
  const build = (t: string) => {
    const cfg = parseConfig('/etc/krtsync/k.yaml', t).protocols[0] as KernelProtocolConfig;
    const tables = new Map<Family, Table>([
      [4, new Table({ name: 'master4' })],
      [6, new Table({ name: 'master6' })],
    ]);
    return { cfg, handle: createKernelProtocol(cfg, tables, nullLogger, undefined) };
  };
  const again = (t: string): KernelProtocolConfig => parseConfig('/etc/krtsync/k.yaml', t).protocols[0] as KernelProtocolConfig;

  it('keeps running when nothing changed, even with merge_paths, learn and a filter (no restart, no withdrawal)', () => {
    const withFilter = text(', export: [ { match: { net: "10.0.0.0/8+" }, action: accept } ]');
    const { handle } = build(withFilter);
    expect(handle.reconfigure(again(withFilter))).toBe(true);
    expect(handle.reconfigure(again(`\n${withFilter}`))).toBe(true); // moved in the file: same settings
  });

  it('changes the export filter, the scan interval and nexthop_objects in place', () => {
    const { handle } = build(text(''));
    expect(handle.reconfigure(again(text('', '30s')))).toBe(true);
    expect(handle.reconfigure(again(text(', nexthop_objects: off')))).toBe(true);
    expect(handle.reconfigure(again(text(', export: reject')))).toBe(true);
  });

  it('asks for a restart when the kernel table, protocol number or persist changes', () => {
    const { handle } = build(text(''));
    expect(handle.reconfigure(again(text('').replace('kernel_table: 1000', 'kernel_table: 1001')))).toBe(false);
    expect(handle.reconfigure(again(text(', protocol: 201')))).toBe(false);
    expect(handle.reconfigure(again(text(', persist: true')))).toBe(false);
  });
});
