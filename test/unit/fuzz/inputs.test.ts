/**
 * Fuzzing every parser of outside input that is not fuzzed elsewhere (the
 * netlink codec: test/unit/netlink/malformed.test.ts; route words:
 * test/unit/config/route-syntax.test.ts): the config file, route lines as
 * arbitrary text, stream lines in both formats, control requests, the api
 * state file.
 *
 * The property is the same for each: bad input is an error of the parser's
 * own class that says what and where (line and column inside the text for
 * the config, a column for route lines), never another exception, never a
 * hang. KRTSYNC_FUZZ_RUNS scales the runs (`npm run fuzz` sets it high).
 */
import fc from 'fast-check';
import { ConfigError, parseConfig } from '../../../src/config/config';
import { parseRouteLine, RouteSyntaxError } from '../../../src/config/route-syntax';
import { ControlError, parseRequest } from '../../../src/control/protocol';
import { KrtError } from '../../../src/lib/errors';
import { parseStreamLine } from '../../../src/proto/stream/formats';
import { readStateFile, record, STATE_HEADER, StateFileError } from '../../../src/proto/api/state-file';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const RUNS = Number(process.env.KRTSYNC_FUZZ_RUNS ?? 500);
const SEED = process.env.KRTSYNC_FUZZ_SEED === undefined ? {} : { seed: Number(process.env.KRTSYNC_FUZZ_SEED) };
const opts = { numRuns: RUNS, ...SEED };

const CONFIG = `log: { level: info }
control: { socket: /run/krtsync/krtsync.sock, group: krtsync, mode: 0660 }
tables:
  - { name: master4, family: ipv4 }
protocols:
  - name: static1
    type: static
    preference: 200
    routes:
      - 10.10.0.0/16 via 192.0.2.2
      - blackhole 10.30.0.0/16
  - name: bgp
    type: stream
    grace: 30s
  - name: kernel1
    type: kernel
    family: ipv4
    kernel_table: main
    scan_interval: 60s
    export:
      - { match: { net: "10.0.0.0/8{16,24}" }, set: { mtu: 1400 }, action: accept }
`;

/** Mutations of a valid text: replace, insert or delete a span with YAML-significant or random characters. */
const mutated = (base: string) =>
  fc
    .array(fc.tuple(fc.nat(), fc.nat({ max: 8 }), fc.oneof(fc.constantFrom(':', '-', ' ', '\n', '{', '}', '[', ']', '"', "'", '#', '&', '*', '!', '|', '>', '\t', '0x', '1e9', 'null', '~', '%', '@', '`', ','), fc.string({ maxLength: 6 }))), { minLength: 1, maxLength: 6 })
    .map((edits) => {
      let s = base;
      for (const [at, del, ins] of edits) {
        const i = at % (s.length + 1);
        s = s.slice(0, i) + ins + s.slice(i + del);
      }
      return s;
    });

function expectOwnError(e: unknown, cls: new (...a: never[]) => KrtError): void {
  if (!(e instanceof cls)) throw new Error(`expected a ${cls.name}, got ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}`);
}

describe('fuzzing the parsers of outside input', () => {
  it('config: any mutation of a valid file loads, or fails with every issue at a line and column inside the text', () => {
    fc.assert(
      fc.property(mutated(CONFIG), (text) => {
        try {
          parseConfig('/etc/krtsync/krtsync.yaml', text);
        } catch (e) {
          expectOwnError(e, ConfigError);
          const lines = text.split('\n').length;
          for (const i of (e as ConfigError).issues) {
            expect(i.line).toBeGreaterThanOrEqual(1);
            expect(i.line).toBeLessThanOrEqual(lines + 1);
            expect(i.column).toBeGreaterThanOrEqual(1);
            expect(i.message.length).toBeGreaterThan(0);
          }
          expect((e as ConfigError).message).toMatch(/^\/etc\/krtsync\/krtsync\.yaml:\d+:\d+: /);
        }
      }),
      opts,
    );
  });

  it('config: arbitrary text never throws anything but a ConfigError', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 300 }), (text) => {
        try {
          parseConfig('/k.yaml', text);
        } catch (e) {
          expectOwnError(e, ConfigError);
        }
      }),
      opts,
    );
  });

  it('route lines: arbitrary text is a route or a RouteSyntaxError with a column inside the line', () => {
    const chars = fc.string({ unit: fc.constantFrom(...'0123456789abcdefv./: -x'.split('')), maxLength: 60 });
    fc.assert(
      fc.property(fc.oneof(chars, fc.string({ maxLength: 60 }), mutated('10.40.0.0/16 nexthop via 192.0.2.2 weight 1 nexthop via 192.0.2.3 weight 2 mtu lock 1400')), (line) => {
        try {
          parseRouteLine(line);
        } catch (e) {
          expectOwnError(e, RouteSyntaxError);
          expect((e as RouteSyntaxError).column).toBeGreaterThanOrEqual(1);
          expect((e as RouteSyntaxError).column).toBeLessThanOrEqual(line.length + 1);
        }
      }),
      opts,
    );
  });

  it('stream lines: any JSON or text, in both formats, is events or a KrtError', () => {
    const route = fc.oneof(fc.constantFrom('10.1.0.0/24 via 192.0.2.2', 'blackhole 10.3.0.0/24', '2001:db8:7::/48 via 2001:db8::1', '10.0.0.1/8', ''), fc.string({ maxLength: 20 }));
    const num = fc.oneof(fc.integer({ min: -1, max: 2 ** 32 }), fc.jsonValue());
    const addr = fc.oneof(fc.constantFrom('198.51.100.1', '2001:db8::1', '10.0.0.1'), fc.string({ maxLength: 8 }), fc.jsonValue());
    const community = fc.oneof(fc.constantFrom('65001:1', '65536:1', '1:2:3'), fc.string({ maxLength: 8 }), fc.jsonValue());
    const bgp = fc.record(
      {
        origin: fc.oneof(fc.constantFrom('igp', 'egp', 'incomplete', 'x'), fc.jsonValue()),
        as_path: fc.oneof(fc.constantFrom('65001 65002 {7 8}', '(1 2) 3', '[4] 5', '1 x', '{'), fc.array(num, { maxLength: 3 }), fc.jsonValue()),
        local_pref: num,
        med: num,
        communities: fc.oneof(fc.array(community, { maxLength: 3 }), fc.jsonValue()),
        large_communities: fc.oneof(fc.array(community, { maxLength: 3 }), fc.jsonValue()),
        originator_id: addr,
        cluster_list: fc.oneof(fc.array(addr, { maxLength: 2 }), fc.jsonValue()),
      },
      { requiredKeys: [] },
    );
    const neighbor = fc.oneof(fc.record({ address: addr, as: num, local_as: num, router_id: addr }, { requiredKeys: [] }), fc.jsonValue());
    const krtsyncLine = fc.record(
      {
        announce: fc.oneof(route, fc.array(route, { maxLength: 3 }), fc.jsonValue()),
        withdraw: fc.oneof(route, fc.array(route, { maxLength: 3 }), fc.jsonValue()),
        eor: fc.jsonValue(),
        neighbor,
        bgp: fc.oneof(bgp, fc.jsonValue()),
        state: fc.oneof(fc.constantFrom('up', 'down'), fc.jsonValue()),
      },
      { requiredKeys: [] },
    );
    const exaAttrs = fc.record(
      {
        origin: fc.oneof(fc.constantFrom('igp', 'egp', 'incomplete'), fc.jsonValue()),
        'as-path': fc.oneof(fc.array(num, { maxLength: 3 }), fc.jsonValue()),
        'as-set': fc.oneof(fc.array(num, { maxLength: 3 }), fc.jsonValue()),
        'confederation-path': fc.oneof(fc.array(num, { maxLength: 3 }), fc.jsonValue()),
        'local-preference': num,
        med: num,
        community: fc.oneof(fc.array(fc.oneof(fc.array(num, { maxLength: 3 }), fc.jsonValue()), { maxLength: 3 }), fc.jsonValue()),
        'large-community': fc.oneof(fc.array(fc.oneof(fc.array(num, { maxLength: 4 }), fc.jsonValue()), { maxLength: 3 }), fc.jsonValue()),
        'originator-id': addr,
        'cluster-list': fc.oneof(fc.array(addr, { maxLength: 2 }), fc.jsonValue()),
      },
      { requiredKeys: [] },
    );
    const nlris = fc.array(fc.oneof(fc.record({ nlri: fc.oneof(fc.constantFrom('10.1.0.0/24', '2001:db8::/32', '10.0.0.1/8'), fc.jsonValue()) }), fc.jsonValue()), { maxLength: 3 });
    const update = fc.record(
      {
        attribute: fc.oneof(exaAttrs, fc.jsonValue()),
        announce: fc.oneof(fc.record({ 'ipv4 unicast': fc.dictionary(fc.oneof(fc.constantFrom('192.0.2.1', '2001:db8::1'), fc.string({ maxLength: 6 })), nlris, { maxKeys: 2 }) }), fc.jsonValue()),
        withdraw: fc.oneof(fc.record({ 'ipv6 unicast': nlris }), fc.jsonValue()),
      },
      { requiredKeys: [] },
    );
    const exabgpLine = fc.record(
      {
        exabgp: fc.constantFrom('4.0.1', '5.0.0'),
        type: fc.constantFrom('update', 'state', 'keepalive', 'open', 'notification'),
        neighbor: fc.record(
          {
            address: fc.record({ peer: addr }),
            asn: fc.oneof(fc.record({ local: num, peer: num }, { requiredKeys: [] }), fc.jsonValue()),
            direction: fc.constantFrom('receive', 'send'),
            state: fc.constantFrom('up', 'down', 'connected'),
            open: fc.oneof(fc.record({ router_id: addr, capabilities: fc.oneof(fc.constant({ 1: { name: 'multiprotocol', families: ['ipv4/unicast', 'ipv6/unicast'] } }), fc.jsonValue()) }, { requiredKeys: [] }), fc.jsonValue()),
            message: fc.oneof(fc.jsonValue({ maxDepth: 5 }), fc.record({ update }), fc.record({ eor: fc.record({ afi: fc.constantFrom('ipv4', 'ipv6', 'x'), safi: fc.constantFrom('unicast', 'x') }) })),
          },
          { requiredKeys: [] },
        ),
      },
      { requiredKeys: [] },
    );
    const line = fc.oneof(fc.string({ maxLength: 200 }), fc.jsonValue().map((v) => JSON.stringify(v)), krtsyncLine.map((v) => JSON.stringify(v)), exabgpLine.map((v) => JSON.stringify(v)));
    fc.assert(
      fc.property(fc.constantFrom('krtsync' as const, 'exabgp' as const), line, (format, text) => {
        try {
          const events = parseStreamLine(format, text);
          expect(Array.isArray(events)).toBe(true);
        } catch (e) {
          expectOwnError(e, KrtError);
          expect((e as KrtError).code).toMatch(/^KRT_ERR_/);
        }
      }),
      opts,
    );
  });

  it('control requests: any line is a request or a ControlError that says what is wrong', () => {
    const req = fc.record({ id: fc.jsonValue(), command: fc.oneof(fc.constantFrom('show-status', 'route-add', 'feed'), fc.jsonValue()), args: fc.jsonValue() }, { requiredKeys: [] });
    fc.assert(
      fc.property(fc.oneof(fc.string({ maxLength: 200 }), fc.jsonValue().map((v) => JSON.stringify(v)), req.map((v) => JSON.stringify(v))), (line) => {
        try {
          const r = parseRequest(line);
          expect(typeof r.command).toBe('string');
          expect(r.args !== null && typeof r.args === 'object' && !Array.isArray(r.args)).toBe(true);
        } catch (e) {
          expectOwnError(e, ControlError);
          expect((e as ControlError).code).toBe('KRT_ERR_BAD_REQUEST');
        }
      }),
      opts,
    );
  });

  it('state file: a damaged file is a StateFileError, or reads back a state the routes were really in (never a changed route)', () => {
    const ops: Array<['+' | '-', string]> = [
      ['+', '192.0.2.2/32 via 198.51.100.1'],
      ['+', '192.0.2.25/32 via 198.51.100.1'],
      ['+', '10.0.0.0/8 via 198.51.100.2 metric 20'],
      ['+', '192.0.2.25/32 via 198.51.100.9'],
      ['-', '192.0.2.2/32'],
      ['+', 'blackhole 2001:db8::/32'],
    ];
    const replay = (n: number): string[] => {
      const m = new Map<string, string>();
      for (const [op, text] of ops.slice(0, n)) {
        const key = op === '+' ? (text.startsWith('blackhole') ? text.split(' ')[1]! : text.split(' ')[0]!) : text;
        if (op === '+') m.set(key, text);
        else m.delete(key);
      }
      return [...m.values()];
    };
    const base = STATE_HEADER + '\n' + ops.map(([op, t]) => record(op, t)).join('');
    const file = join(mkdtempSync(join(tmpdir(), 'krt-fuzz-state-')), 'api.state');
    fc.assert(
      fc.property(mutated(base), (text) => {
        writeFileSync(file, text);
        try {
          const r = readStateFile(file);
          if (r.legacy) return; // no header left: read as plain route lines, every one of them valid
          // Edits anywhere may make the file look like one whose last appends were cut short by a crash;
          // what is read is then an earlier state, never one that did not exist.
          expect(Array.from({ length: ops.length + 1 }, (_, k) => replay(k))).toContainEqual(r.lines);
        } catch (e) {
          expectOwnError(e, StateFileError);
        }
      }),
      opts,
    );
  });
});
