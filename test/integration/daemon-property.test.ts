/**
 * The whole daemon as a property: random sequences of source events (static
 * routes reloaded, api routes added and deleted, a stream client re-feeding),
 * foreign kernel changes on the same prefixes, crashes (SIGKILL) and clean
 * restarts. After quiescence the kernel holds exactly the routes a model
 * computes independently (per prefix the best of static 300 > api 200 >
 * stream 100), and the foreign routes are exactly what the test made them.
 *
 * The model knows the documented lifecycles, not the code: api routes
 * survive restarts (state file), a stream client's routes do not (nobody
 * re-feeds after a restart), a re-feed with end-of-RIB replaces the client's
 * set. 6 sequences in `npm test`, 25 longer ones under the soak run.
 */
import fc from 'fast-check';
import { createNetns, kernelDescribe, type Netns } from '../helpers/netns';
import { KrtsyncDaemon, mapDiff, oursByDst, seed, soakScale, until } from '../helpers/daemon-fixture';

const NETS = 12;
const net = (i: number): string => `10.77.0.${i}`;
const gw = (g: number): string => `192.0.2.${2 + g}`;

type Cmd =
  | { op: 'static'; routes: Array<[number, number]> }
  | { op: 'api-add'; net: number; gw: number }
  | { op: 'api-del'; net: number }
  | { op: 'feed'; routes: Array<[number, number]> }
  | { op: 'foreign-add'; net: number }
  | { op: 'foreign-del'; net: number }
  | { op: 'kill' }
  | { op: 'restart' };

const netArb = fc.nat({ max: NETS - 1 });
const gwArb = fc.nat({ max: 1 });
const routesArb = fc.uniqueArray(fc.tuple(netArb, gwArb), { maxLength: 6, selector: ([n]) => n });
const cmdArb: fc.Arbitrary<Cmd> = fc.oneof(
  routesArb.map((routes) => ({ op: 'static' as const, routes })),
  fc.record({ op: fc.constant('api-add' as const), net: netArb, gw: gwArb }),
  fc.record({ op: fc.constant('api-del' as const), net: netArb }),
  routesArb.map((routes) => ({ op: 'feed' as const, routes })),
  fc.record({ op: fc.constant('foreign-add' as const), net: netArb }),
  fc.record({ op: fc.constant('foreign-del' as const), net: netArb }),
  fc.constant({ op: 'kill' as const }),
  fc.constant({ op: 'restart' as const }),
);

/** The model: what each source holds, and the foreign routes. */
class Model {
  static = new Map<number, number>();
  api = new Map<number, number>();
  stream = new Map<number, number>();
  foreign = new Set<number>();

  expected(): Map<string, string> {
    const out = new Map<string, string>();
    for (let i = 0; i < NETS; i++) {
      const g = this.static.get(i) ?? this.api.get(i) ?? this.stream.get(i);
      if (g !== undefined) out.set(net(i), `via ${gw(g)}`);
    }
    return out;
  }
}

kernelDescribe(`whole daemon under random events, foreign changes and restarts (seed ${seed})`, () => {
  let ns: Netns;

  beforeAll(() => {
    ns = createNetns('krt-prop');
  });
  afterAll(() => ns?.destroy());

  const foreignNow = (): string[] =>
    ns
      .ip('-4', 'route', 'show', 'proto', 'static')
      .split('\n')
      .filter((l) => l.startsWith('10.77.'))
      .map((l) => l.trim())
      .sort();

  it('ends with the kernel equal to the model after every sequence, foreign routes unchanged', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(cmdArb, { minLength: 4, maxLength: soakScale(10, 40) }), async (cmds) => {
        const d = new KrtsyncDaemon(ns, 'krt-prop');
        const m = new Model();
        const writeStatic = (): void => void d.file('static.txt', [...m.static].map(([n, g]) => `${net(n)}/32 via ${gw(g)}`).join('\n') + '\n');
        try {
          writeStatic();
          d.writeConfig(`protocols:
  - { name: static1, type: static, preference: 300, routes_file: static.txt }
  - { name: api, type: api, preference: 200, state_file: api.routes }
  - { name: bgp, type: stream, preference: 100, grace: 1h }
  - { name: kernel1, type: kernel, family: ipv4 }
`);
          await d.startReady();
          for (const c of cmds) {
            switch (c.op) {
              case 'static':
                m.static = new Map(c.routes);
                writeStatic();
                expect(d.cli(['reload'])).toMatchObject({ code: 0 });
                break;
              case 'api-add':
                m.api.set(c.net, c.gw);
                expect(d.cli(['route', 'add', `${net(c.net)}/32`, 'via', gw(c.gw)])).toMatchObject({ code: 0 });
                break;
              case 'api-del': {
                const r = d.cli(['route', 'del', `${net(c.net)}/32`]);
                expect(r.code).toBe(m.api.delete(c.net) ? 0 : 1);
                break;
              }
              case 'feed': {
                const lines = c.routes.map(([n, g]) => JSON.stringify({ announce: `${net(n)}/32 via ${gw(g)}` })).concat('{"eor":true}');
                // The previous feed's connection may not be closed on the daemon's side yet: ask again.
                let r = d.cli(['feed', '--client', 'c'], lines.join('\n') + '\n');
                for (let i = 0; i < 20 && /already connected/.test(r.err); i++) {
                  await new Promise((res) => setTimeout(res, 50));
                  r = d.cli(['feed', '--client', 'c'], lines.join('\n') + '\n');
                }
                expect(r).toMatchObject({ code: 0, err: '' });
                m.stream = new Map(c.routes);
                break;
              }
              case 'foreign-add':
                if (!m.foreign.has(c.net)) ns.ip('route', 'add', `${net(c.net)}/32`, 'via', '192.0.2.9', 'proto', 'static', 'metric', '50');
                m.foreign.add(c.net);
                break;
              case 'foreign-del':
                if (m.foreign.delete(c.net)) ns.ip('route', 'del', `${net(c.net)}/32`, 'proto', 'static', 'metric', '50');
                break;
              case 'kill':
              case 'restart':
                await d.stop(c.op === 'kill' ? 'SIGKILL' : 'SIGTERM');
                m.stream.clear(); // nobody re-feeds after a restart
                await d.startReady();
                break;
            }
          }
          const want = m.expected();
          await until(`the kernel to equal the model ${JSON.stringify(cmds)}`, () => mapDiff(want, oursByDst(ns)).length === 0, 15000, 100).catch(() => undefined);
          expect(mapDiff(want, oursByDst(ns))).toEqual([]);
          expect(foreignNow()).toEqual([...m.foreign].sort((a, b) => a - b).map((n) => `${net(n)} via 192.0.2.9 dev veth0 metric 50`).sort());
          expect(await d.stop('SIGTERM')).toBe(0);
          expect(oursByDst(ns).size).toBe(0);
        } finally {
          await d.dispose();
          for (const n of m.foreign) ns.ip('route', 'del', `${net(n)}/32`, 'proto', 'static', 'metric', '50');
        }
      }),
      { numRuns: soakScale(6, 25), seed, endOnFailure: true },
    );
  }, soakScale(150000, 1800000));
});
