/**
 * Property: whatever the table, other processes and the kernel do (random
 * announcements and withdrawals, foreign routes at our net and metric or
 * another, someone deleting, rewriting or adding routes with our protocol
 * number, lost notifications, interrupted dumps, refused changes), the
 * kernel ends holding exactly what the table wants, as far as the kernel
 * allows it, and every foreign route exactly as its owner left it. Then a
 * shutdown leaves nothing of ours. Against the fake kernel; the real one is
 * the oracle of test/integration/daemon-property.test.ts.
 */
import fc from 'fast-check';
import { constants as osConstants } from 'node:os';
import * as C from '../../../src/netlink/constants';
import { KernelProtocol } from '../../../src/proto/kernel/kernel-protocol';
import { RouteSource } from '../../../src/route';
import { Table } from '../../../src/table';
import { FakeKernel } from '../../helpers/fake-kernel';
import { announce, memoryLogger } from '../../helpers/kernel-fixture';
import { parsePrefix } from '../../../src/lib/addr';

const { ENOMEM } = osConstants.errno;
const PROTO = 144;
const NETS = 6;
const UNREACHABLE = '203.0.113.1'; // the kernel refuses it: no connected route covers it
const GATEWAYS = ['192.0.2.2', '192.0.2.3', '192.0.2.4', UNREACHABLE];
const net = (i: number): string => `10.20.${i}.0/24`;

type Action =
  | { a: 'announce'; net: number; src: 0 | 1; gw: number }
  | { a: 'withdraw'; net: number; src: 0 | 1 }
  | { a: 'foreignAdd'; net: number; metric: 0 | 50; gw: number }
  | { a: 'foreignDelete'; net: number; metric: 0 | 50 }
  | { a: 'deleteOurs'; net: number }
  | { a: 'rewriteOurs'; net: number; gw: number }
  | { a: 'strayOurs'; net: number }
  | { a: 'lostDelete'; net: number }
  | { a: 'interruptDumps'; n: number }
  | { a: 'refuseNext'; n: number }
  | { a: 'wait'; ms: number };

const netIdx = fc.integer({ min: 0, max: NETS - 1 });
const gwIdx = fc.integer({ min: 0, max: GATEWAYS.length - 1 });
const action: fc.Arbitrary<Action> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ a: fc.constant('announce' as const), net: netIdx, src: fc.constantFrom(0 as const, 1 as const), gw: gwIdx }) },
  { weight: 2, arbitrary: fc.record({ a: fc.constant('withdraw' as const), net: netIdx, src: fc.constantFrom(0 as const, 1 as const) }) },
  { weight: 1, arbitrary: fc.record({ a: fc.constant('foreignAdd' as const), net: netIdx, metric: fc.constantFrom(0 as const, 50 as const), gw: fc.integer({ min: 0, max: 2 }) }) },
  { weight: 1, arbitrary: fc.record({ a: fc.constant('foreignDelete' as const), net: netIdx, metric: fc.constantFrom(0 as const, 50 as const) }) },
  { weight: 1, arbitrary: fc.record({ a: fc.constant('deleteOurs' as const), net: netIdx }) },
  { weight: 1, arbitrary: fc.record({ a: fc.constant('rewriteOurs' as const), net: netIdx, gw: fc.integer({ min: 0, max: 2 }) }) },
  { weight: 1, arbitrary: fc.record({ a: fc.constant('strayOurs' as const), net: netIdx }) },
  { weight: 1, arbitrary: fc.record({ a: fc.constant('lostDelete' as const), net: netIdx }) },
  { weight: 1, arbitrary: fc.record({ a: fc.constant('interruptDumps' as const), n: fc.integer({ min: 1, max: 3 }) }) },
  { weight: 1, arbitrary: fc.record({ a: fc.constant('refuseNext' as const), n: fc.integer({ min: 1, max: 3 }) }) },
  { weight: 2, arbitrary: fc.record({ a: fc.constant('wait' as const), ms: fc.constantFrom(0, 2, 15) }) },
);

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** What the kernel should hold at the end: our routes and the foreign ones, as FakeKernel.lines prints them. */
function expected(best: (string | undefined)[], foreign: Map<string, string>): { ours: string[]; foreign: string[] } {
  const ours: string[] = [];
  for (let i = 0; i < NETS; i++) {
    const gw = best[i];
    if (gw === undefined || foreign.has(`${i}/0`)) continue;
    // A route the kernel refuses: a replace of ours that failed leaves the one before it (make before break).
    ours.push(gw === UNREACHABLE ? `${net(i)} ?` : `${net(i)} via ${gw} dev veth0 proto ${PROTO}`);
  }
  const f = [...foreign].map(([k, gw]) => {
    const [i, metric] = k.split('/');
    return `${net(Number(i))} via ${gw} dev veth0 proto ${C.RTPROT_STATIC}${metric === '0' ? '' : ` metric ${metric}`}`;
  });
  return { ours: ours.sort(), foreign: f.sort() };
}

describe.each([true, false])('kernel sync property (own notifications filtered: %s)', (filterOwnEchoes) => {
  it('ends with the kernel holding what the table wants, foreign routes untouched, and nothing of ours after shutdown', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(action, { minLength: 1, maxLength: 30 }), fc.array(action, { maxLength: 10 }), async (before, during) => {
        const kernel = new FakeKernel();
        const table = new Table({ name: 'master4' });
        const srcs = [new RouteSource('a', 200), new RouteSource('b', 100)] as const;
        const routes: (string | undefined)[][] = [new Array(NETS).fill(undefined), new Array(NETS).fill(undefined)];
        const foreign = new Map<string, string>();
        let refuse = 0;
        kernel.reject = (_r, cmd) => (cmd !== 'delete' && refuse > 0 ? (refuse--, { errno: ENOMEM }) : undefined);
        const p = new KernelProtocol({
          name: 'kernel1',
          table,
          family: 4,
          scanIntervalMs: 0,
          kernelIo: kernel.provider,
          filterOwnEchoes,
          backoff: { baseMs: 2, maxMs: 10, jitter: 0 },
          log: memoryLogger(),
        });
        const ourAt = (i: number): boolean => kernel.all().some((r) => r.protocol === PROTO && r.dst.toString() === net(i));
        const run = async (x: Action): Promise<void> => {
          switch (x.a) {
            case 'announce':
              announce(table, srcs[x.src], [`${net(x.net)} via ${GATEWAYS[x.gw]}`]);
              routes[x.src]![x.net] = GATEWAYS[x.gw];
              break;
            case 'withdraw':
              table.withdraw(parsePrefix(net(x.net)), srcs[x.src]);
              routes[x.src]![x.net] = undefined;
              break;
            case 'foreignAdd':
              try {
                kernel.foreignAdd({ dst: net(x.net), gateway: GATEWAYS[x.gw], ...(x.metric ? { metric: x.metric } : {}) });
                foreign.set(`${x.net}/${x.metric}`, GATEWAYS[x.gw]!);
              } catch {
                // EEXIST: something (ours, or another foreign route) is at that net and metric
              }
              break;
            case 'foreignDelete':
              if (!foreign.has(`${x.net}/${x.metric}`)) break;
              kernel.foreignDelete({ dst: net(x.net), protocol: C.RTPROT_STATIC, metric: x.metric });
              foreign.delete(`${x.net}/${x.metric}`);
              break;
            case 'deleteOurs':
              if (ourAt(x.net)) kernel.foreignDelete({ dst: net(x.net), protocol: PROTO });
              break;
            case 'rewriteOurs':
              if (kernel.all().some((r) => r.protocol === PROTO && r.dst.toString() === net(x.net) && r.priority === undefined))
                kernel.foreignReplace({ dst: net(x.net), gateway: GATEWAYS[x.gw], protocol: PROTO });
              break;
            case 'strayOurs':
              try {
                kernel.foreignAdd({ dst: net(x.net), gateway: '192.0.2.2', protocol: PROTO, metric: 7 });
              } catch {
                // already there
              }
              break;
            case 'lostDelete':
              kernel.overflow(() => {
                if (ourAt(x.net)) kernel.foreignDelete({ dst: net(x.net), protocol: PROTO });
              });
              break;
            case 'interruptDumps':
              kernel.interruptDumps += x.n;
              break;
            case 'refuseNext':
              refuse += x.n;
              break;
            case 'wait':
              await sleep(x.ms);
              break;
          }
        };
        for (const x of before) if (x.a === 'announce' || x.a === 'withdraw' || x.a === 'foreignAdd') await run(x);
        const started = p.start();
        for (const x of during) await run(x);
        await started;
        for (const x of before) await run(x);
        refuse = 0;
        const best = (): (string | undefined)[] => routes[0]!.map((a, i) => a ?? routes[1]![i]);
        const want = expected(best(), foreign);
        // A net whose wanted route the kernel refuses may hold nothing of ours or the route it had before.
        const refused = new Set(want.ours.filter((l) => l.endsWith(' ?')).map((l) => l.split(' ')[0]!));
        const oursNow = (): string[] => {
          const lines = kernel.lines({ protocol: PROTO }).filter((l) => !refused.has(l.split(' ')[0]!));
          return [...lines, ...refused].map((l) => (refused.has(l) ? `${l} ?` : l)).sort();
        };
        want.ours = want.ours.sort();
        const now = (): { ours: string[]; foreign: string[] } => ({ ours: oursNow(), foreign: kernel.lines({ protocol: C.RTPROT_STATIC }) });
        const t0 = Date.now();
        while (JSON.stringify(now()) !== JSON.stringify(want) && Date.now() - t0 < 5000) await sleep(10);
        expect(now()).toEqual(want);
        // The per-state tally kept as states change equals a walk of every route.
        expect(p.sync(4)!.counts()).toEqual(p.sync(4)!.walkCounts());
        await p.shutdown();
        expect({ ours: kernel.lines({ protocol: PROTO }), foreign: kernel.lines({ protocol: C.RTPROT_STATIC }) }).toEqual({ ours: [], foreign: want.foreign });
      }),
      {
        numRuns: Number(process.env.KRTSYNC_PROPERTY_RUNS ?? 25),
        // Replaying a failure: KRTSYNC_PROPERTY_SEED and KRTSYNC_PROPERTY_PATH from its report.
        ...(process.env.KRTSYNC_PROPERTY_SEED ? { seed: Number(process.env.KRTSYNC_PROPERTY_SEED), path: process.env.KRTSYNC_PROPERTY_PATH } : {}),
      },
    );
  }, 120_000);
});
