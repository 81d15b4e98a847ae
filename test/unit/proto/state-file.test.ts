/**
 * The api state file under the faults of issue 22: torn writes, damaged and
 * unreadable files, symlinks at the temporary name, many changes. Every case
 * asserts what the restart holds, route by route, and that a file krtsync
 * refused is left exactly as it was.
 */
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, statSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfig, type ApiProtocolConfig } from '../../../src/config/config';
import { parsePrefix, Prefix, type Family } from '../../../src/lib/addr';
import { ApiProtocol } from '../../../src/proto/api/api';
import { readStateFile, record, STATE_HEADER, StateFile, StateFileError } from '../../../src/proto/api/state-file';
import { nullLogger, type Logger } from '../../../src/proto/logger';
import { TableSet } from '../../../src/proto/table-set';
import { Table } from '../../../src/table';

function api(stateFile: string, log: Logger = nullLogger): { p: ApiProtocol; t4: Table } {
  const cfg = parseConfig('/x/k.yaml', `protocols:\n  - { name: api, type: api, state_file: ${stateFile} }\n`).protocols[0] as ApiProtocolConfig;
  const t4 = new Table({ name: 'master4' });
  const t6 = new Table({ name: 'master6' });
  return { p: new ApiProtocol(cfg, new TableSet('api', new Map<Family, Table>([[4, t4], [6, t6]])), log), t4 };
}

/** What a table holds from the api protocol: prefix -> route text. */
function held(t: Table): Map<string, string> {
  const m = new Map<string, string>();
  const put = (net: Prefix): void => {
    const r = t.bestRoute(net);
    if (r) m.set(net.toString(), r.attrs.toString());
  };
  t.forEachNet(4, (word, len) => put(Prefix.v4(word, len)), put);
  return m;
}

function dir(): string {
  return mkdtempSync(join(tmpdir(), 'krt-state-'));
}

async function withRoutes(file: string, lines: string[]): Promise<void> {
  const { p } = api(file);
  await p.start();
  await Promise.all(lines.map((l) => p.add(l).saved));
  await p.shutdown();
}

describe('api state file', () => {
  it('keeps every add, replace and delete across a restart', async () => {
    const file = join(dir(), 'api.state');
    const { p } = api(file);
    await p.start();
    await p.add('192.0.2.25/32 via 198.51.100.1').saved;
    await p.add('192.0.2.2/32 via 198.51.100.1').saved;
    await p.add('192.0.2.25/32 via 198.51.100.9').saved; // replace
    await p.del('192.0.2.2/32').saved;
    await p.add('203.0.113.0/24 via 198.51.100.1').saved;
    await p.shutdown();
    const b = api(file);
    await b.p.start();
    expect(held(b.t4)).toEqual(new Map([['192.0.2.25/32', 'via 198.51.100.9'], ['203.0.113.0/24', 'via 198.51.100.1']]));
    await b.p.shutdown();
  });

  it('drops and reports a last record a crash cut short, and changes no other route', async () => {
    const file = join(dir(), 'api.state');
    await withRoutes(file, ['192.0.2.2/32 via 198.51.100.1', '192.0.2.25/32 via 198.51.100.1']);
    truncateSync(file, statSync(file).size - 2); // the last append torn: "…*xxxxxx" without its last digit and newline
    const warnings: string[] = [];
    const b = api(file, { ...nullLogger, warn: (m) => warnings.push(m) });
    await b.p.start();
    // Before: 192.0.2.25 came back as 192.0.2.2, silently. Now the torn record is not applied at all.
    expect(held(b.t4)).toEqual(new Map([['192.0.2.2/32', 'via 198.51.100.1']]));
    expect(warnings).toEqual([expect.stringMatching(/last record was cut short by a crash before it was confirmed \("\+ 192\.0\.2\.25\/32 via 198\.51\.100\.1 \*[0-9a-f]{7}"\); ignored/)]);
    await b.p.add('198.51.100.0/24 via 198.51.100.1').saved;
    await b.p.shutdown();
    const c = api(file); // the file was rewritten whole at the start: nothing torn is left in it
    await c.p.start();
    expect([...held(c.t4).keys()].sort()).toEqual(['192.0.2.2/32', '198.51.100.0/24']);
    await c.p.shutdown();
  });

  it('refuses to start on a damaged record, names the line, and leaves the file as it was', async () => {
    const file = join(dir(), 'api.state');
    await withRoutes(file, ['192.0.2.2/32 via 198.51.100.1', '192.0.2.25/32 via 198.51.100.1', '192.0.2.3/32 via 198.51.100.1']);
    const text = readFileSync(file, 'utf8').replace('192.0.2.25/32', '192.0.2.26/32'); // one changed byte
    writeFileSync(file, text);
    const b = api(file);
    await expect(b.p.start()).rejects.toThrow(/state file .*api\.state:3: checksum mismatch \(the file was damaged or edited by hand\); krtsync did not start and changed nothing/);
    expect(b.t4.routeTotal).toBe(0);
    expect(readFileSync(file, 'utf8')).toBe(text);
    for (const bad of ['# a comment\n', 'krtsync-api-state 2\n', `${STATE_HEADER}\n+ 10.0.0.0/8 via 192.0.2.1\n`, `${STATE_HEADER}\n${record('+', '10.0.0.1/8 via 192.0.2.1')}`]) {
      writeFileSync(file, bad);
      await expect(api(file).p.start()).rejects.toThrow(StateFileError);
      expect(readFileSync(file, 'utf8')).toBe(bad);
    }
  });

  it('refuses to start on a file it cannot read, and never overwrites it', async () => {
    const d = dir();
    const file = join(d, 'api.state');
    mkdirSync(file); // unreadable as a file (EISDIR; as root, a mode cannot make it unreadable)
    await expect(api(file).p.start()).rejects.toThrow(/state file .*api\.state: cannot read it: EISDIR.*krtsync did not start and changed nothing/);
    expect(statSync(file).isDirectory()).toBe(true);
    const target = join(d, 'elsewhere');
    writeFileSync(target, `${STATE_HEADER}\n`);
    const link = join(d, 'link.state');
    symlinkSync(target, link);
    await expect(api(link).p.start()).rejects.toThrow(/is a symbolic link/);
  });

  it('never writes through a symlink at a temporary name, and leaves no temporary file', async () => {
    const d = dir();
    const file = join(d, 'api.state');
    const victim = join(d, 'victim');
    writeFileSync(victim, 'precious\n');
    symlinkSync(victim, `${file}.tmp`); // the fixed name the old code wrote through
    await withRoutes(file, ['192.0.2.2/32 via 198.51.100.1']);
    expect(readFileSync(victim, 'utf8')).toBe('precious\n');
    expect(readdirSync(d).sort()).toEqual(['api.state', 'api.state.tmp', 'victim']);
    expect(readStateFile(file).lines).toEqual(['192.0.2.2/32 via 198.51.100.1']);
  });

  it('reads the older plain format, strictly, and rewrites it checksummed', async () => {
    const file = join(dir(), 'api.state');
    writeFileSync(file, '10.9.0.0/16 via 192.0.2.2\nblackhole 2001:db8:9::/48\n');
    const { p, t4 } = api(file);
    await p.start();
    expect(held(t4)).toEqual(new Map([['10.9.0.0/16', 'via 192.0.2.2']]));
    await p.shutdown();
    expect(readFileSync(file, 'utf8').split('\n')[0]).toBe(STATE_HEADER);
    expect(readStateFile(file)).toMatchObject({ legacy: false, lines: ['10.9.0.0/16 via 192.0.2.2', 'blackhole 2001:db8:9::/48'] });
    writeFileSync(file, '10.9.0.0/16 via 192.0.2.2\n10.9.0.0/16 via\n');
    await expect(api(file).p.start()).rejects.toThrow(/api\.state:2: \(older format, no checksum\) a gateway address expected/);
  });

  it('refuses a route it can no longer hold rather than dropping it', async () => {
    const file = join(dir(), 'api.state');
    writeFileSync(file, `${STATE_HEADER}\n${record('+', '2001:db8:9::/48 via 2001:db8::1')}`);
    const cfg = parseConfig('/x/k.yaml', `tables: [ { name: t4, family: ipv4 } ]\nprotocols:\n  - { name: api, type: api, state_file: ${file} }\n`).protocols[0] as ApiProtocolConfig;
    const t4 = new Table({ name: 't4' });
    const p = new ApiProtocol(cfg, new TableSet('api', new Map<Family, Table>([[4, t4]])), nullLogger);
    await expect(p.start()).rejects.toThrow(/no IPv6 table; krtsync did not start/);
    expect(t4.routeTotal).toBe(0);
  });

  it('writes changes that arrive together in one append, and a change costs an append, not a rewrite', async () => {
    const file = join(dir(), 'api.state');
    const { p } = api(file);
    await p.start();
    const sf = p.openStateFile!;
    const rewritesAtStart = sf.counts.rewrites;
    // 500 adds made at once (as from many clients): confirmed by a few appends, not 500.
    await Promise.all(Array.from({ length: 500 }, (_, i) => p.add(`10.${i >> 8}.${i & 255}.0/24 via 192.0.2.1`).saved));
    expect(sf.counts.appends).toBeLessThanOrEqual(2);
    // One at a time: one append each, and the file grows by one record each (O(n) in all, not O(n^2)).
    for (let i = 0; i < 200; i++) await p.add(`10.100.${i}.0/24 via 192.0.2.1`).saved;
    expect(sf.counts.appends).toBeLessThanOrEqual(202);
    expect(sf.counts.appends).toBeGreaterThanOrEqual(200);
    expect(sf.counts.rewrites).toBe(rewritesAtStart);
    expect(sf.recordCount).toBe(700);
    // Churn on one prefix: rewrites keep the file near the size of what it holds.
    for (let i = 0; i < 3000; i++) await p.add(`192.0.2.0/24 via 198.51.100.${1 + (i % 200)}`).saved;
    expect(sf.counts.rewrites).toBeGreaterThan(rewritesAtStart);
    expect(sf.recordCount).toBeLessThanOrEqual(1024 + 2 * p.routeCount + 1);
    await p.shutdown();
    const b = api(file);
    await b.p.start();
    expect(b.p.routeCount).toBe(701);
    expect(held(b.t4).get('192.0.2.0/24')).toBe(`via 198.51.100.${1 + (2999 % 200)}`);
    expect(b.t4.bestRoute(parsePrefix('10.1.243.0/24'))).toBeDefined();
    await b.p.shutdown();
  });

  it('saves changes made while the file is still being opened, and refuses changes before start has restored it', async () => {
    const file = join(dir(), 'api.state');
    const lines: string[] = [];
    const sf = new StateFile(file, { get size() { return lines.length; }, lines: () => [...lines] });
    const opened = sf.open(readStateFile(file)); // rewrites (the file is missing): not done yet
    const saved = ['192.0.2.1/32 via 198.51.100.1', '192.0.2.2/32 via 198.51.100.1'].map((l) => {
      lines.push(l);
      return sf.change('+', l);
    });
    await Promise.all([opened, ...saved]);
    expect(sf.counts).toEqual({ rewrites: 1, appends: 1, failures: 0 }); // one open, then one append: never two rewrites racing
    await sf.close();
    expect(readStateFile(file).lines).toEqual(lines);
    const { p } = api(file);
    const starting = p.start();
    expect(() => p.add('192.0.2.3/32 via 198.51.100.1')).toThrow(/protocol api is starting; try again once it is up/);
    await starting;
    await p.add('192.0.2.3/32 via 198.51.100.1').saved;
    await p.shutdown();
    expect(readStateFile(file).lines).toHaveLength(3);
  });

  it('creates the file at start, so a state file that cannot be written stops the start, not a later add', async () => {
    const d = dir();
    const file = join(d, 'missing-dir', 'api.state');
    await expect(api(file).p.start()).rejects.toThrow(/ENOENT/);
    const ok = join(d, 'api.state');
    const { p } = api(ok);
    await p.start();
    expect(existsSync(ok)).toBe(true);
    expect(statSync(ok).mode & 0o077).toBe(0o040 & 0o077 & ~process.umask());
    await p.shutdown();
    chmodSync(ok, 0o600);
  });
});
