import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfig, type ApiProtocolConfig, type StaticProtocolConfig, type StreamProtocolConfig } from '../../../src/config/config';
import { parsePrefix, Prefix, type Family } from '../../../src/lib/addr';
import { ApiProtocol } from '../../../src/proto/api/api';
import { nullLogger } from '../../../src/proto/logger';
import { StaticProtocol } from '../../../src/proto/static/static';
import { parseRoutesFile, readRoutesFile } from '../../../src/proto/static/routes-file';
import { parseExabgpLine, parseKrtsyncLine, type StreamEvent } from '../../../src/proto/stream/formats';
import { StreamProtocol } from '../../../src/proto/stream/stream';
import { TableSet } from '../../../src/proto/table-set';
import { RouteSource } from '../../../src/route';
import { Table } from '../../../src/table';

function tables(): { set: TableSet; t4: Table; t6: Table } {
  const t4 = new Table({ name: 'master4' });
  const t6 = new Table({ name: 'master6' });
  return { set: new TableSet('p', new Map<Family, Table>([[4, t4], [6, t6]])), t4, t6 };
}

function best(t: Table, prefix: string): string | undefined {
  const r = t.bestRoute(parsePrefix(prefix));
  return r && `${r.attrs} (${r.src.name})`;
}

function dir(): string {
  return mkdtempSync(join(tmpdir(), 'krt-src-'));
}

describe('routes files', () => {
  it('streams routes, skipping comments and blank lines', async () => {
    const f = join(dir(), 'routes.txt');
    writeFileSync(f, '# routes\n10.1.0.0/16 via 192.0.2.2   # first\n\n  blackhole 10.2.0.0/16\n2001:db8:5::/48 via 2001:db8:1::2');
    const seen: string[] = [];
    expect(await readRoutesFile(f, (net, attrs) => seen.push(`${net} ${attrs}`))).toBe(3);
    expect(seen).toEqual(['10.1.0.0/16 via 192.0.2.2', '10.2.0.0/16 blackhole', '2001:db8:5::/48 via 2001:db8:1::2']);
  });

  it('names file, line and column of every bad line, after reading the whole file', async () => {
    const f = join(dir(), 'routes.txt');
    writeFileSync(f, `10.1.0.0/16 via 192.0.2.2\n10.2.0.1/16 via 192.0.2.2\n${'x'.repeat(5000)}\n10.3.0.0/16 via 192.0.2.2 bogus\n`);
    await expect(readRoutesFile(f)).rejects.toThrow(
      new RegExp(`${f}:2:1: 10.2.0.1/16: host bits set, did you mean 10.2.0.0/16\\?\\n${f}:3:1: line longer than 4096 bytes\\n${f}:4:27: unknown word "bogus"`),
    );
    await expect(readRoutesFile(join(dir(), 'missing.txt'))).rejects.toThrow(/missing.txt:1:1: cannot read/);
  });

  it('reads a FIFO whose writer comes later, to the writer\'s end, lines split across its writes', async () => {
    const f = join(dir(), 'routes.fifo');
    execFileSync('mkfifo', [f]);
    const seen: string[] = [];
    const read = readRoutesFile(f, (net, attrs) => seen.push(`${net} ${attrs}`));
    // Opened before any writer: the read waits for one rather than taking the FIFO as empty.
    await new Promise((r) => setTimeout(r, 50));
    const writer = spawn('sh', ['-c', `exec cat > ${f}`], { stdio: ['pipe', 'ignore', 'ignore'] });
    writer.stdin!.write('10.1.0.0/16 via 192.0.2.2\n10.2.0.');
    await new Promise((r) => setTimeout(r, 50));
    writer.stdin!.end('0/16 via 192.0.2.3\nbogus\n');
    await expect(read).rejects.toThrow(new RegExp(`${f}:3:1: "bogus"`));
    expect(seen).toEqual(['10.1.0.0/16 via 192.0.2.2', '10.2.0.0/16 via 192.0.2.3']);
  });

  it('counts lines the same through the fast path, across read chunks, and hands its routes over unchanged', async () => {
    const f = join(dir(), 'routes.txt');
    const lines: string[] = [];
    for (let i = 0; i < 60000; i++) lines.push(i % 1000 === 7 ? `blackhole 10.${i >> 8}.${i & 255}.0/24` : `10.${i >> 8}.${i & 255}.0/24 via 192.0.2.${1 + (i % 3)}`);
    lines.push('10.250.0.1/24 via 192.0.2.1'); // line 60001: host bits set
    writeFileSync(f, lines.join('\n') + '\r\n10.251.0.0/24 via 192.0.2.1\r\n'); // 1 MB read chunks split lines; CRLF ends take the slow path
    const seen: string[] = [];
    await expect(readRoutesFile(f, (net, attrs) => seen.push(`${net} ${attrs}`))).rejects.toThrow(new RegExp(`${f}:60001:1: 10.250.0.1/24: host bits set`));
    expect(seen).toHaveLength(60001);
    expect(seen[7]).toBe('10.0.7.0/24 blackhole');
    expect(seen[59999]).toBe('10.234.95.0/24 via 192.0.2.3');
    expect(seen[60000]).toBe('10.251.0.0/24 via 192.0.2.1');
  });
});

describe('a routes file read whole (the start)', () => {
  it('reads runs of plain IPv4 lines as the line-by-line reader does: the same routes, the same line in an error', async () => {
    const f = join(dir(), 'routes.txt');
    const lines: string[] = [];
    // Runs of plain lines broken by slow-path and IPv6 lines; 1 MB read chunks split lines; CRLF ends take the slow path.
    for (let i = 0; i < 60000; i++) lines.push(i % 997 === 5 ? `blackhole 10.${i >> 8}.${i & 255}.0/24` : i % 1499 === 3 ? `2001:db8:${i.toString(16)}::/48 via 2001:db8::1` : `10.${i >> 8}.${i & 255}.0/24 via 192.0.2.${1 + ((i >> 6) % 3)}`);
    const text = lines.join('\n') + '\r\n10.251.0.0/24 via 192.0.2.1\r\n10.252.0.0/24 via 192.0.2.1';
    writeFileSync(f, text);
    const oneByOne: string[] = [];
    await readRoutesFile(f, (net, attrs) => oneByOne.push(`${net} ${attrs}`));
    const parsed = await parseRoutesFile(f);
    const whole: string[] = [];
    await parsed.forEach(
      (word, len, attrs) => whole.push(`${new Prefix(4, len, word)} ${attrs}`),
      (net, attrs) => whole.push(`${net} ${attrs}`),
      100000,
    );
    expect(whole.length).toBe(60002);
    expect(whole.sort()).toEqual(oneByOne.sort());
    writeFileSync(f, text.replace('10.200.3.0/24 via', '10.200.3.1/24 via')); // line 51204: host bits set, deep in a run
    await expect(parseRoutesFile(f)).rejects.toThrow(new RegExp(`${f}:51204:1: 10.200.3.1/24: host bits set`));
  });

  it('sized by the file, still takes every route of a file of lines shorter than the guess (the columns grow past it)', async () => {
    const f = join(dir(), 'routes.txt');
    const n = 5000;
    // 22 bytes a line; each line is kept (a net listed again keeps its last line, below), so all count.
    writeFileSync(f, Array.from({ length: n }, (_, i) => `${1 + (i % 9)}.0.0.0/8 via 1.1.1.${1 + (i % 7)}\n`).join(''));
    expect(statSync(f).size / 24).toBeLessThan(n); // room for fewer than the file has
    const parsed = await parseRoutesFile(f);
    expect(parsed.v4Count).toBe(n);
    const seen: string[] = [];
    await parsed.forEach((word, len, attrs) => seen.push(`${new Prefix(4, len, word)} ${attrs}`), () => undefined, 1024);
    expect(seen).toHaveLength(n);
    expect(seen.filter((l) => l === '5.0.0.0/8 via 1.1.1.5')).toHaveLength(Array.from({ length: n }, (_, i) => i).filter((i) => i % 9 === 4 && i % 7 === 4).length);
  });

  it('hands IPv4 routes over in trie-spread order, then IPv6 in file order; a net listed twice keeps its last line', async () => {
    const f = join(dir(), 'routes.txt');
    writeFileSync(f, '10.0.0.0/24 via 192.0.2.1\n10.0.1.0/24 via 192.0.2.1\n2001:db8:5::/48 via 2001:db8:1::2\n10.0.2.0/24 via 192.0.2.1\n10.0.1.0/24 via 192.0.2.3 metric 5\n10.0.3.0/24 via 192.0.2.1\n2001:db8:4::/48 via 2001:db8:1::2\n');
    const parsed = await parseRoutesFile(f);
    expect([parsed.v4Count, parsed.v6Count]).toEqual([5, 2]);
    const seen: string[] = [];
    await parsed.forEach(
      (word, len, attrs) => seen.push(`${new Prefix(4, len, word)} ${attrs}`),
      (net, attrs) => seen.push(`${net} ${attrs}`),
      2,
    );
    // Bit-reversed third octet: 0, 2, 1, 1, 3 (src/netlink/order.ts); the two lines of 10.0.1.0/24 in file order.
    expect(seen).toEqual([
      '10.0.0.0/24 via 192.0.2.1',
      '10.0.2.0/24 via 192.0.2.1',
      '10.0.1.0/24 via 192.0.2.1',
      '10.0.1.0/24 via 192.0.2.3 metric 5',
      '10.0.3.0/24 via 192.0.2.1',
      '2001:db8:5::/48 via 2001:db8:1::2',
      '2001:db8:4::/48 via 2001:db8:1::2',
    ]);
  });

  it('for nexthop objects (addressTail), the first quarter in trie-spread order, the rest in address order; a net listed twice still keeps its last line', async () => {
    const f = join(dir(), 'routes.txt');
    const lines = Array.from({ length: 8 }, (_, i) => `10.0.${i}.0/24 via 192.0.2.1`);
    writeFileSync(f, [...lines, '10.0.5.0/24 via 192.0.2.3'].join('\n') + '\n');
    const parsed = await parseRoutesFile(f);
    const seen: string[] = [];
    await parsed.forEach((word, len, attrs) => seen.push(`${new Prefix(4, len, word)} ${attrs}`), () => undefined, 4, true);
    // Nine routes: the first three of the spread order (third octets 0, 4, 2), then 1, 3, 5, 5, 6, 7.
    expect(seen.map((l) => l.split('.')[2])).toEqual(['0', '4', '2', '1', '3', '5', '5', '6', '7']);
    expect(seen.filter((l) => l.startsWith('10.0.5.0/24'))).toEqual(['10.0.5.0/24 via 192.0.2.1', '10.0.5.0/24 via 192.0.2.3']);
  });

  it('shows each run of IPv4 nets to `warm` before handing them over, the same nets in the same order, whatever the yields', async () => {
    const f = join(dir(), 'routes.txt');
    // 2,500 routes: runs of 1,024, 1,024 and 452, with yields every 1,000 routes that do not line up with them.
    writeFileSync(f, Array.from({ length: 2500 }, (_, i) => `10.${i >> 8}.${i & 255}.0/24 via 192.0.2.${1 + (i % 3)}`).join('\n') + '\n');
    const plain: string[] = [];
    await (await parseRoutesFile(f)).forEach((word, len, attrs) => plain.push(`${new Prefix(4, len, word)} ${attrs}`), () => undefined, 1000, true);
    const seen: string[] = [];
    const warmed: string[] = [];
    const runs: number[] = [];
    await (await parseRoutesFile(f)).forEach(
      (word, len, attrs) => {
        const net = `${new Prefix(4, len, word)}`;
        // Every net handed over was warmed before, in the same order.
        expect(warmed[seen.length]).toBe(net);
        seen.push(`${net} ${attrs}`);
      },
      () => undefined,
      1000,
      true,
      undefined,
      (words, lens, n) => {
        expect(warmed.length).toBe(seen.length); // the previous run is all handed over
        runs.push(n);
        for (let i = 0; i < n; i++) warmed.push(`${new Prefix(4, lens[i]!, words[i]!)}`);
      },
    );
    expect(runs).toEqual([1024, 1024, 452]);
    expect(seen).toEqual(plain);
    expect(seen).toHaveLength(2500);
  });

  it('a table warmed for nets ahead of their announces holds the same as one that was not', async () => {
    const f = join(dir(), 'routes.txt');
    writeFileSync(f, Array.from({ length: 3000 }, (_, i) => `10.${i >> 8}.${i & 255}.0/24 via 192.0.2.1`).join('\n') + '\n10.0.7.0/24 via 192.0.2.9\n');
    const load = async (warm: boolean): Promise<Table> => {
      const { set, t4 } = tables();
      const src = new RouteSource('static', 200);
      const parsed = await parseRoutesFile(f);
      set.reserve({ v4: parsed.v4Count, v6: 0 });
      await parsed.forEach((word, len, attrs) => set.announce4(src, word, len, attrs), () => undefined, 512, false, undefined, warm ? (w, l, n) => set.warm4(w, l, n) : undefined);
      return t4;
    };
    const [a, b] = [await load(true), await load(false)];
    expect(a.netCount).toBe(3000);
    expect(b.netCount).toBe(3000);
    expect(best(a, '10.0.7.0/24')).toBe('via 192.0.2.9 (static)');
    for (const p of ['10.0.0.0/24', '10.11.183.0/24', '10.5.5.0/24']) expect(best(a, p)).toBe(best(b, p));
  });

  it('returns nothing from a file with a bad line', async () => {
    const f = join(dir(), 'routes.txt');
    writeFileSync(f, '10.0.0.0/24 via 192.0.2.1\nnonsense\n');
    await expect(parseRoutesFile(f)).rejects.toThrow(new RegExp(`${f}:2:1: "nonsense": not an IPv4 or IPv6 prefix`));
  });
});

describe('static protocol', () => {
  const cfg = (text: string): StaticProtocolConfig => parseConfig('/x/k.yaml', text).protocols[0] as StaticProtocolConfig;
  const writers: ChildProcess[] = [];
  afterEach(() => writers.splice(0).forEach((w) => w.kill()));

  it('announces config and routes-file routes, and a reload changes only what changed', async () => {
    const { set, t4, t6 } = tables();
    const d = dir();
    const file = join(d, 'routes.txt');
    writeFileSync(file, '10.2.0.0/16 via 192.0.2.2\n10.3.0.0/16 via 192.0.2.2\n');
    const c1 = cfg(`protocols:\n  - { name: s, type: static, routes_file: ${file}, routes: ["10.1.0.0/16 via 192.0.2.2", "2001:db8:1::/48 via 2001:db8::1"] }\n`);
    const p = new StaticProtocol(c1, set, nullLogger);
    await p.start();
    expect(p.state).toBe('up');
    expect(t4.routeTotal).toBe(3);
    expect(best(t6, '2001:db8:1::/48')).toBe('via 2001:db8::1 (s)');
    const r2 = t4.bestRoute(parsePrefix('10.2.0.0/16'));

    writeFileSync(file, '10.2.0.0/16 via 192.0.2.2\n10.4.0.0/16 via 192.0.2.3\n');
    expect(p.reconfigure(c1)).toBe(true);
    await p.reload();
    expect(t4.bestRoute(parsePrefix('10.2.0.0/16'))).toBe(r2); // untouched
    expect(best(t4, '10.3.0.0/16')).toBeUndefined();
    expect(best(t4, '10.4.0.0/16')).toBe('via 192.0.2.3 (s)');
    expect(p.lastLoad).toMatchObject({ routes: 4, pruned: 1 });

    writeFileSync(file, '10.2.0.0/16 via 192.0.2.2\n10.5.0.0/16 frob\n');
    await expect(p.reload()).rejects.toThrow(/unknown word "frob"/);
    expect(best(t4, '10.4.0.0/16')).toBe('via 192.0.2.3 (s)'); // a bad file changes nothing

    await p.shutdown();
    expect(t4.routeTotal + t6.routeTotal).toBe(0);
  });

  it('stops a start\'s announcing at its next chunk once shut down: nothing more goes into the tables, and no error', async () => {
    const { set, t4 } = tables();
    const file = join(dir(), 'routes.txt');
    const n = 100_000; // several announcing chunks
    writeFileSync(file, Array.from({ length: n }, (_, i) => `10.${i >> 16}.${(i >> 8) & 255}.${i & 255}/32 via 192.0.2.2`).join('\n') + '\n');
    const p = new StaticProtocol(cfg(`protocols:\n  - { name: s, type: static, routes_file: ${file} }\n`), set, nullLogger);
    const started = p.start();
    await p.checked; // read whole; the first chunk announced, the rest to come
    const announced = t4.routeTotal;
    expect(announced).toBeGreaterThan(0);
    expect(announced).toBeLessThan(n);
    await p.shutdown();
    await started; // the daemon's start sees no error
    expect(p.state).toBe('down');
    expect(t4.routeTotal).toBe(0);
    expect(p.lastLoad).toBeUndefined();
  });

  it('stops a start reading a FIFO once shut down, its writer still there: no error, nothing announced', async () => {
    const { set, t4 } = tables();
    const f = join(dir(), 'routes.fifo');
    execFileSync('mkfifo', [f]);
    const p = new StaticProtocol(cfg(`protocols:\n  - { name: s, type: static, routes_file: ${f} }\n`), set, nullLogger);
    const started = p.start();
    const writer = spawn('sh', ['-c', `exec cat > ${f}`], { stdio: ['pipe', 'ignore', 'ignore'] });
    writers.push(writer);
    // The first lines reach the protocol's read: the writer's pipe has drained.
    await new Promise<void>((r) => writer.stdin!.write('10.1.0.0/16 via 192.0.2.2\n10.2.0.0/16 via 192.0.2.2\n', () => r()));
    await p.shutdown();
    await started; // without the stop, only the writer's end (afterEach, once the test has timed out) ends it
    await expect(p.checked).rejects.toThrow('protocol s stopped before its routes file was read');
    expect(t4.routeTotal).toBe(0);
    expect(writer.exitCode).toBeNull();
  });

  it('asks to be restarted when its preference changes', () => {
    const { set } = tables();
    const p = new StaticProtocol(cfg('protocols:\n  - { name: s, type: static }\n'), set, nullLogger);
    expect(p.reconfigure(cfg('protocols:\n  - { name: s, type: static, preference: 10 }\n'))).toBe(false);
  });
});

describe('api protocol', () => {
  const cfg = (extra = ''): ApiProtocolConfig => parseConfig('/x/k.yaml', `protocols:\n  - { name: api, type: api${extra} }\n`).protocols[0] as ApiProtocolConfig;

  it('adds, replaces and deletes routes; a bad line changes nothing', async () => {
    const { set, t4 } = tables();
    const p = new ApiProtocol(cfg(), set, nullLogger);
    await p.start();
    expect(p.add('10.9.0.0/16  via 192.0.2.2').line).toBe('10.9.0.0/16 via 192.0.2.2');
    p.add('10.9.0.0/16 via 192.0.2.3');
    expect(best(t4, '10.9.0.0/16')).toBe('via 192.0.2.3 (api)');
    expect(() => p.add('10.9.0.0/16 via nowhere')).toThrow(/gateway "nowhere"/);
    expect(best(t4, '10.9.0.0/16')).toBe('via 192.0.2.3 (api)');
    expect(p.del('10.9.0.0/16').found).toBe(true);
    expect(p.del('10.9.0.0/16').found).toBe(false);
    expect(() => p.del('10.9.0.1/16')).toThrow(/host bits/);
    expect(t4.routeTotal).toBe(0);
  });

  it('keeps its routes across a restart with a state file', async () => {
    const stateFile = join(dir(), 'api.state');
    const a = tables();
    const p1 = new ApiProtocol(cfg(`, state_file: ${stateFile}`), a.set, nullLogger);
    await p1.start();
    await p1.add('10.9.0.0/16 via 192.0.2.2').saved;
    await p1.add('blackhole 2001:db8:9::/48').saved;
    expect(readFileSync(stateFile, 'utf8')).toBe('krtsync-api-state 1\n+ 10.9.0.0/16 via 192.0.2.2 *ca0fe41d\n+ blackhole 2001:db8:9::/48 *01a08a2c\n');
    const b = tables();
    const p2 = new ApiProtocol(cfg(`, state_file: ${stateFile}`), b.set, nullLogger);
    await p2.start();
    expect(best(b.t4, '10.9.0.0/16')).toBe('via 192.0.2.2 (api)');
    expect(best(b.t6, '2001:db8:9::/48')).toBe('blackhole (api)');
  });
});

/** An event in one line: kind, nets, attributes. */
function show(e: StreamEvent): string {
  if (e.kind === 'announce') return `announce ${e.nets.join(',')} ${e.attrs}`;
  if (e.kind === 'withdraw') return `withdraw ${e.nets.join(',')}`;
  return e.kind === 'eor' && e.family !== undefined ? `eor ${e.family}` : e.kind;
}

describe('stream formats', () => {
  it('reads krtsync lines', () => {
    expect(parseKrtsyncLine('{"announce":["10.1.0.0/24 via 192.0.2.2","blackhole 10.2.0.0/24","10.4.0.0/24 via 192.0.2.2"],"withdraw":"10.3.0.0/24","eor":true}').map(show)).toEqual([
      'announce 10.1.0.0/24,10.4.0.0/24 via 192.0.2.2',
      'announce 10.2.0.0/24 blackhole',
      'withdraw 10.3.0.0/24',
      'eor',
    ]);
    expect(() => parseKrtsyncLine('{"annouce":"x"}')).toThrow(/unknown key "annouce"/);
    expect(() => parseKrtsyncLine('{"announce":"10.1.0.1/24 via 192.0.2.2"}')).toThrow(/host bits set/);
    expect(() => parseKrtsyncLine('{"announce":5}')).toThrow(/string or a list of strings/);
    expect(() => parseKrtsyncLine('nope')).toThrow(/not JSON/);
  });

  it('reads every line of a real ExaBGP 4.2 capture', () => {
    const lines = readFileSync(join(__dirname, '../../fixtures/exabgp-4.2.21-receive.jsonl'), 'utf8').trim().split('\n');
    const events = lines.map((l) => parseExabgpLine(l).map(show));
    expect(events.slice(0, 6)).toEqual([
      ['peer-up'],
      ['announce 10.3.0.0/24,10.1.0.0/24,10.2.0.0/24 via 198.51.100.1'],
      ['eor 4'],
      ['announce 2001:db8:100::/48 via 2001:db8:1::1'],
      ['eor 6'],
      ['peer-down'],
    ]);
    expect(events[12]).toEqual(['withdraw 10.3.0.0/24,10.1.0.0/24,10.2.0.0/24']);
  });

  it('rejects what is not ExaBGP', () => {
    expect(() => parseExabgpLine('{"type":"update"}')).toThrow(/not an ExaBGP JSON message/);
    expect(parseExabgpLine('{"exabgp":"4.0.1","type":"notification","neighbor":{}}')).toEqual([]);
  });
});

describe('stream protocol', () => {
  const cfg = (grace = '200ms'): StreamProtocolConfig => parseConfig('/x/k.yaml', `protocols:\n  - { name: feed, type: stream, grace: ${grace} }\n`).protocols[0] as StreamProtocolConfig;
  const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

  it('follows an ExaBGP session through the capture: announce, neighbor down, up, withdraw, announce, down', async () => {
    const { set, t4, t6 } = tables();
    const p = new StreamProtocol(cfg('10s'), set, nullLogger);
    await p.start();
    const replies: unknown[] = [];
    const s = p.connect('exabgp', 'exabgp', (m) => replies.push(m));
    const lines = readFileSync(join(__dirname, '../../fixtures/exabgp-4.2.21-receive.jsonl'), 'utf8').trim().split('\n');
    const feed = (from: number, to: number): void => lines.slice(from, to).forEach((l, i) => s.onLine(l, from + i + 1));
    feed(0, 5);
    expect(best(t4, '10.1.0.0/24')).toBe('via 198.51.100.1 (feed/exabgp/198.51.100.1)');
    expect(best(t6, '2001:db8:100::/48')).toBe('via 2001:db8:1::1 (feed/exabgp/198.51.100.1)');
    feed(5, 6); // neighbor down
    expect(t4.routeTotal + t6.routeTotal).toBe(0);
    feed(6, 12); // down again, up, announce both families with end-of-RIB
    expect(t4.routeTotal).toBe(3);
    feed(12, 13); // withdraw the IPv4 routes
    expect(t4.routeTotal).toBe(0);
    feed(13, 14);
    expect(t4.routeTotal).toBe(3);
    feed(14, 15); // down at the end
    expect(t4.routeTotal + t6.routeTotal).toBe(0);
    expect(replies).toEqual([]);
    await p.shutdown();
  });

  it('reports a bad line by number and keeps the client\'s other routes', async () => {
    const { set, t4 } = tables();
    const p = new StreamProtocol(cfg(), set, nullLogger);
    await p.start();
    const replies: unknown[] = [];
    const s = p.connect('c1', 'krtsync', (m) => replies.push(m));
    s.onLine('{"announce":"10.1.0.0/24 via 192.0.2.2"}', 1);
    s.onLine('{"announce":"10.2.0.0/24 via"}', 2);
    s.onLine('garbage', 3);
    s.onLine('{"announce":"10.3.0.0/24 via 192.0.2.2"}', 4);
    expect(t4.routeTotal).toBe(2);
    expect(replies).toEqual([
      { ok: false, line: 2, error: { code: 'KRT_ERR_STREAM_LINE', message: expect.stringMatching(/gateway address expected/) } },
      { ok: false, line: 3, error: { code: 'KRT_ERR_STREAM_LINE', message: expect.stringMatching(/not JSON/) } },
    ]);
    expect(p.stats()[0]).toMatchObject({ client: 'c1', lines: 4, announces: 2, errors: 2, routes: 2, connected: true });
    await p.shutdown();
  });

  it('logs a storm of connecting and leaving clients at a bounded rate, with a count', async () => {
    const { set } = tables();
    const lines: string[] = [];
    const log = { ...nullLogger, info: (m: string) => lines.push(m) };
    const p = new StreamProtocol(cfg('10s'), set, log);
    await p.start();
    for (let i = 0; i < 4000; i++) p.connect(`c${i}`, 'krtsync', () => {}).onClose();
    // 5 connect lines and 5 disconnect lines an interval, not 8,000.
    expect(lines.filter((l) => / connected /.test(l))).toHaveLength(5);
    expect(lines.filter((l) => / disconnected;/.test(l))).toHaveLength(5);
    await p.shutdown();
  });

  it('keeps a disconnected client\'s routes for the grace period, then withdraws them', async () => {
    const { set, t4 } = tables();
    const p = new StreamProtocol(cfg('100ms'), set, nullLogger);
    await p.start();
    const s = p.connect('c1', 'krtsync', () => {});
    s.onLine('{"announce":"10.1.0.0/24 via 192.0.2.2"}', 1);
    s.onClose();
    await sleep(30);
    expect(t4.routeTotal).toBe(1);
    await sleep(150);
    expect(t4.routeTotal).toBe(0);
    await p.shutdown();
  });

  it('lets a client that reconnects in time re-announce without a flap; end-of-RIB prunes the rest', async () => {
    const { set, t4 } = tables();
    const p = new StreamProtocol(cfg('300ms'), set, nullLogger);
    await p.start();
    const a1 = p.connect('c1', 'krtsync', () => {});
    a1.onLine('{"announce":["10.1.0.0/24 via 192.0.2.2","10.2.0.0/24 via 192.0.2.2"]}', 1);
    const r1 = t4.bestRoute(parsePrefix('10.1.0.0/24'));
    a1.onClose();
    const a2 = p.connect('c1', 'krtsync', () => {});
    expect(() => p.connect('c1', 'krtsync', () => {})).toThrow(/already connected/);
    a2.onLine('{"announce":"10.1.0.0/24 via 192.0.2.2"}', 1);
    expect(t4.bestRoute(parsePrefix('10.1.0.0/24'))).toBe(r1); // identical re-announce: the same route object
    expect(t4.routeTotal).toBe(2);
    a2.onLine('{"eor":true}', 2);
    expect(t4.routeTotal).toBe(1);
    await p.shutdown();
    expect(t4.routeTotal).toBe(0);
  });
});
