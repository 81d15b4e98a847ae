/**
 * What bin/krtsync loads, as deployed (node's own NODE_DEBUG=module output):
 * a client command (`show`, `route`, `reload`, `feed`, `--help`) loads none of
 * the daemon's modules (YAML, winston, prom-client, the protocols, the netlink
 * codec), so an operator's command starts in a fraction of the daemon's
 * start; `check` loads the validation path but not the metrics registry.
 * The daemon's own side (prom-client only with a listener) is in
 * metrics.test.ts.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BIN } from '../helpers/daemon-fixture';

/** The files `krtsync args` loaded (paths, node_modules and dist/ alike), its exit status and stdout. */
function loads(args: string[]): { files: string[]; code: number; out: string } {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 30000, env: { ...process.env, NODE_DEBUG: 'module' } });
  const files = [...r.stderr.matchAll(/^MODULE \d+: load "([^"]+)"/gm)].map((m) => m[1]!);
  return { files, code: r.status ?? -1, out: r.stdout };
}

const DAEMON_ONLY = /node_modules\/(yaml|winston|logform|prom-client|@opentelemetry)\/|\/dist\/(daemon\/daemon|daemon\/run|config\/config|proto|netlink|table|metrics)\b/;

describe('what the CLI loads', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), `krt-climod-${process.pid}-`));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('loads none of the daemon for --help and the client commands', () => {
    const help = loads(['--help']);
    expect(help.code).toBe(0);
    expect(help.out).toMatch(/show status \| protocols/);
    expect(help.files.some((f) => f.endsWith('/dist/cli/main.js'))).toBe(true);
    expect(help.files.filter((f) => DAEMON_ONLY.test(f))).toEqual([]);
    for (const args of [['show', 'status'], ['route', 'list'], ['reload']]) {
      const r = loads([...args, '--socket', join(dir, 'none.sock')]);
      expect(r.code).toBe(1); // no daemon there: the same error as before
      expect(r.files.some((f) => f.endsWith('/dist/control/client.js'))).toBe(true);
      expect(r.files.filter((f) => DAEMON_ONLY.test(f))).toEqual([]);
    }
  });

  it('loads the validation path for check, and no metrics registry', () => {
    const file = join(dir, 'krtsync.yaml');
    writeFileSync(file, 'metrics: { listen: "127.0.0.1:9725" }\nprotocols:\n  - { name: static1, type: static, routes: [ "198.51.100.0/24 via 192.0.2.1" ] }\n');
    const r = loads(['check', '--config', file]);
    expect(r.out).toMatch(/OK \(1 protocols/);
    expect(r.code).toBe(0);
    expect(r.files.some((f) => /node_modules\/yaml\//.test(f))).toBe(true);
    expect(r.files.filter((f) => /node_modules\/(prom-client|@opentelemetry)\//.test(f))).toEqual([]);
  });
});
