import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError } from '../../../src/config/config';
import { ControlError } from '../../../src/control/protocol';
import { RoutesFileError } from '../../../src/proto/static/routes-file';
import { EXIT_CONFIG, EXIT_FAIL, exitStatusOf, validateConfig } from '../../../src/daemon/validate';

const dir = mkdtempSync(join(tmpdir(), 'krt-validate-'));
function file(name: string, text: string): string {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
}

async function problems(path: string, opts?: { routesFiles: boolean }): Promise<string[]> {
  try {
    await validateConfig(path, opts);
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    return e.message.split('\n');
  }
  throw new Error('expected the config to be rejected');
}

describe('validateConfig: the one validation path of check, start and reload', () => {
  it('reports every problem of every stage in one run, each at file:line:column, in file order', async () => {
    const routes = file('routes.txt', '10.1.0.0/16 via 192.0.2.2\n10.2.0.1/16 via 192.0.2.2\n');
    const config = file(
      'all.yaml',
      `protocols:
  - { name: s, type: static, routes_file: ${routes} }
  - { name: s, type: statik }
  - name: k
    type: kernel
    kernel_table: no-such-table-name
    protocol: 12
    export:
      - { match: { net: "10.0.0.1/8" }, action: accept }
      - { action: maybe }
`,
    );
    expect(await problems(config)).toEqual([
      `${config}:3:5: protocol s: the name is already used by a table or another protocol`,
      `${config}:3:22: protocol s: type: expected one of static, kernel, api, stream`,
      `${config}:6:19: protocol k: kernel table "no-such-table-name": no such name in rt_tables or rt_tables.d (use a number, or add the name there)`,
      `${config}:7:15: protocol k: protocol 12 belongs to the kernel, iproute2, BIRD or FRR; pick another (default 144)`,
      `${config}:9:25: protocol k: export[0].match.net: 10.0.0.1/8: host bits set, did you mean 10.0.0.0/8?`,
      `${config}:10:19: protocol k: export[1].action: expected accept, reject or continue, got "maybe"`,
      `${routes}:2:1: 10.2.0.1/16: host bits set, did you mean 10.2.0.0/16?`,
    ]);
  });

  it('checks a stream protocol\'s import filter and its BGP conditions the same way', async () => {
    const config = file(
      'stream.yaml',
      'protocols:\n  - name: bgp\n    type: stream\n    neighbors: [ { address: 192.0.2.1 } ]\n    import:\n      - { match: { as_path: "(" }, action: reject }\n      - { match: { net: 10.0.0.0/8 }, set: { metric: 5 }, action: accept }\n',
    );
    expect(await problems(config)).toEqual([
      `${config}:6:29: protocol bgp: import[0].match.as_path: not a regular expression: Invalid regular expression: /(/: Unterminated group`,
      `${config}:7:44: protocol bgp: import[1].set: an import rule sets nothing: it accepts or rejects`,
    ]);
  });

  it('names each bad part of a {rules, default} filter, and a filter of the wrong shape', async () => {
    const config = file(
      'filter.yaml',
      'protocols:\n  - name: k\n    type: kernel\n    export:\n      default: maybe\n      rules:\n        - { match: { net: "10.0.0.0/8" }, action: accept }\n        - { match: { family: 5 } }\n  - { name: k2, type: kernel, kernel_table: 100, export: 7 }\n',
    );
    expect(await problems(config)).toEqual([
      `${config}:5:16: protocol k: export.default: expected accept or reject, got "maybe"`,
      `${config}:8:30: protocol k: export.rules[1].match.family: expected 4 or 6, got 5`,
      `${config}:9:58: protocol k2: export: expected "accept", "reject", a list of rules or {rules, default}`,
    ]);
  });

  it('leaves routes files to the start, which reads each once', async () => {
    const routes = file('bad-routes.txt', 'nonsense\n');
    const config = file('start.yaml', `protocols:\n  - { name: s, type: static, routes_file: ${routes} }\n`);
    await expect(validateConfig(config, { routesFiles: false })).resolves.toMatchObject({ protocols: [{ name: 's' }] });
    expect(await problems(config)).toEqual([`${routes}:1:1: "nonsense": not an IPv4 or IPv6 prefix`]);
  });

  it('checks api state files with the routes files: named once, readable, intact; and kernel tables managed once', async () => {
    const good = file('good.state', 'krtsync-api-state 1\n');
    const damaged = file('damaged.state', 'krtsync-api-state 1\n+ 10.0.0.0/8 via 192.0.2.1 *00000000\n');
    const config = file(
      'state.yaml',
      `protocols:
  - { name: a1, type: api, state_file: ${good} }
  - { name: a2, type: api, state_file: ${good} }
  - { name: a3, type: api, state_file: ${damaged} }
  - { name: k1, type: kernel, family: ipv4 }
  - { name: k2, type: kernel, kernel_table: 254, family: ipv4 }
`,
    );
    expect(await problems(config)).toEqual([
      `${config}:3:40: protocols a1 and a2 both name state file ${good}; each would overwrite the other's routes`,
      `${config}:6:5: protocols k1 and k2 both manage kernel table 254, protocol number 144, IPv4; each would delete the other's routes (give one another protocol number or kernel table)`,
      `${damaged}:2:1: state file: checksum mismatch (the file was damaged or edited by hand); krtsync did not start and changed nothing; fix the file, or move it aside to start without the routes it holds`,
    ]);
    await expect(validateConfig(config, { routesFiles: false })).rejects.toThrow(/both manage/); // start: the state files are the api protocols' to read
  });

  it('says how many problems a long routes file has beyond those it lists', async () => {
    const routes = file('many.txt', 'x\n'.repeat(25));
    const config = file('many.yaml', `protocols:\n  - { name: s, type: static, routes_file: ${routes} }\n`);
    const lines = await problems(config);
    expect(lines).toHaveLength(21);
    expect(lines[20]).toBe('… and 5 more problems');
  });

  it('maps every outcome to one exit status: 2 for a bad config or routes file, whoever reports it, 1 otherwise', () => {
    expect(exitStatusOf(new ConfigError([]))).toBe(EXIT_CONFIG);
    expect(exitStatusOf(new RoutesFileError([], 1))).toBe(EXIT_CONFIG);
    expect(exitStatusOf(new ControlError('KRT_ERR_CONFIG', 'reload refused'))).toBe(EXIT_CONFIG); // `krtsync reload`
    expect(exitStatusOf(new ControlError('KRT_ERR_NO_ROUTE', 'no route'))).toBe(EXIT_FAIL);
    expect(exitStatusOf(new Error('EPERM'))).toBe(EXIT_FAIL);
    expect(exitStatusOf(undefined)).toBe(EXIT_FAIL);
  });
});
