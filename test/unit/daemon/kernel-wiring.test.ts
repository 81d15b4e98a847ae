import { parseConfig } from '../../../src/config/config';
import { checkKernelOptions } from '../../../src/daemon/kernel-wiring';

function check(text: string): void {
  checkKernelOptions(parseConfig('/etc/krtsync/k.yaml', text));
}

describe('kernel options the config loader cannot check', () => {
  it('accepts a sane kernel protocol', () => {
    expect(() => check('protocols:\n  - { name: k, type: kernel, kernel_table: 1000, protocol: 201, export: [ { match: { net: "10.0.0.0/8{16,24}" }, action: accept } ] }\n')).not.toThrow();
  });

  it('refuses protocol numbers of the kernel, BIRD and FRR', () => {
    expect(() => check('protocols:\n  - { name: k, type: kernel, protocol: 12 }\n')).toThrow(/\/etc\/krtsync\/k.yaml: protocol k: .*12/);
    expect(() => check('protocols:\n  - { name: k, type: kernel, protocol: 188 }\n')).toThrow(/protocol k: .*188/);
  });

  it('refuses the local table and unknown table names', () => {
    expect(() => check('protocols:\n  - { name: k, type: kernel, kernel_table: local }\n')).toThrow(/protocol k: kernel table local belongs to the kernel/);
    expect(() => check('protocols:\n  - { name: k, type: kernel, kernel_table: no-such-table-name }\n')).toThrow(/protocol k: .*no-such-table-name/);
  });

  it('names the position of a bad export filter', () => {
    expect(() => check('protocols:\n  - name: k\n    type: kernel\n    export:\n      - { match: { net: "10.0.0.1/8" }, action: accept }\n')).toThrow(
      /^\/etc\/krtsync\/k.yaml:5:7: protocol k: export\[0\]\.match\.net: .*host bits/,
    );
    expect(() => check('protocols:\n  - { name: k, type: kernel, export: [ { action: maybe } ] }\n')).toThrow(/export\[0\]\.action: expected accept, reject or continue/);
  });
});
