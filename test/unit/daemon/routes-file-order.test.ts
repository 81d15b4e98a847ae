/**
 * The daemon's choice of the order a routes file is announced in at start
 * (daemon.ts, build): with any kernel protocol on nexthop objects (not
 * `nexthop_objects: off`), the first quarter in trie-spread order and the rest
 * in address order (addressTail: the object's delete at shutdown walks the
 * trie in address order); with every kernel protocol off, or none, all of it
 * in trie-spread order (docs/kernel.md, "pruning"). The protocol is built by
 * the daemon from a config, and its start is watched where it announces into
 * the table; the sort itself is pinned in test/unit/proto/sources.test.ts.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfig } from '../../../src/config/config';
import { Daemon, type RunningProtocol } from '../../../src/daemon/daemon';
import { SystemdNotifier } from '../../../src/daemon/systemd';
import { Prefix } from '../../../src/lib/addr';
import { nullLogger } from '../../../src/proto/logger';
import { Table } from '../../../src/table';

/** 16 routes 10.0.0.0/24 .. 10.0.15.0/24, listed in address order. */
const N = 16;

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), `krt-order-${process.pid}-`));
  writeFileSync(join(dir, 'routes.txt'), Array.from({ length: N }, (_, i) => `10.0.${i}.0/24 via 192.0.2.1`).join('\n') + '\n');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The third octets of the routes file's nets, in the order the daemon's static protocol announces them at start. */
async function announceOrder(kernels: string): Promise<number[]> {
  const config = parseConfig(join(dir, 'krtsync.yaml'), `protocols:\n  - { name: static1, type: static, routes_file: ${join(dir, 'routes.txt')} }\n${kernels}`);
  const daemon = new Daemon({ configFile: join(dir, 'krtsync.yaml'), log: nullLogger, notifier: new SystemdNotifier({}, () => undefined) });
  daemon.config = config;
  for (const t of config.tables) daemon.tables.set(t.name, new Table({ name: t.name }));
  const seen: number[] = [];
  const master4 = daemon.tables.get('master4')!;
  const announceAt = master4.announceAt.bind(master4);
  master4.announceAt = (word, len, src, attrs) => {
    seen.push(Number(new Prefix(4, len, word as number).toString().split('.')[2]));
    announceAt(word, len, src, attrs);
  };
  // What start() does for each protocol, here only for the routes file's.
  const built = (daemon as unknown as { build(p: unknown): RunningProtocol }).build(config.protocols.find((p) => p.name === 'static1'));
  await built.proto.start();
  expect(seen).toHaveLength(N);
  return seen;
}

const kernel = (name: string, nexthops?: string): string => `  - { name: ${name}, type: kernel, family: ipv4${nexthops ? `, nexthop_objects: ${nexthops}` : ''} }\n`;
const addressOrder = Array.from({ length: N }, (_, i) => i);

describe('the order a routes file is announced in at start', () => {
  it('with a kernel protocol on nexthop objects (auto, the default): a quarter spread, the rest in address order', async () => {
    const order = await announceOrder(kernel('kernel1'));
    expect(order.slice(0, N / 4)).toEqual([0, 8, 4, 12]);
    expect(order.slice(N / 4)).toEqual(addressOrder.filter((i) => ![0, 8, 4, 12].includes(i)));
  });

  it('with nexthop_objects: on, and with one kernel protocol off beside one on: the same', async () => {
    const tail = [0, 8, 4, 12, ...addressOrder.filter((i) => ![0, 8, 4, 12].includes(i))];
    expect(await announceOrder(kernel('kernel1', 'on'))).toEqual(tail);
    expect(await announceOrder(kernel('kernel1', 'off') + kernel('kernel2', 'auto').replace('kernel, ', 'kernel, kernel_table: 100, '))).toEqual(tail);
  });

  it('with every kernel protocol off nexthop objects, or none: all of it in trie-spread order', async () => {
    const spread = await announceOrder(kernel('kernel1', 'off'));
    expect(spread.slice(0, 8)).toEqual([0, 8, 4, 12, 2, 10, 6, 14]);
    expect([...spread].sort((a, b) => a - b)).toEqual(addressOrder);
    expect(await announceOrder('')).toEqual(spread);
  });
});
