/** NetLog: each live net once, IPv4 packed and IPv6 as words, whatever the duplicates and dead nets logged. */
import { parsePrefix, prefixKey, prefixFromKey } from '../../../src/lib/addr';
import { NetLog } from '../../../src/table/net-log';

function add(log: NetLog, net: string): void {
  const k = prefixKey(parsePrefix(net));
  if (typeof k === 'number') log.add(((k - (k % 64)) / 64) | 0, k % 64);
  else log.add(k, k.charCodeAt(8));
}

function nets(log: NetLog, live: (net: string) => boolean): string[] {
  const out: string[] = [];
  const name = (word: number | string, len: number): string => prefixFromKey(typeof word === 'number' ? (word >>> 0) * 64 + len : word).toString();
  log.forEach((w, l) => live(name(w, l)), (w, l) => out.push(name(w, l)));
  return out;
}

// The default blocks and small ones, so that IPv4 logs cross blocks and compactions join them.
describe.each([undefined, 4])('NetLog (IPv4 blocks of %s entries)', (block) => {
  it('gives each live net once, both families, and keeps only those', () => {
    const log = new NetLog(block);
    const all = ['2001:db8:1::/48', '10.0.0.0/8', '2001:db8::/32', 'ffff:8000::/17', '2001:db8:1::/48', '10.0.0.0/8', '10.1.0.0/16', '2001:db8:1::/64', '::/0'];
    for (const n of all) add(log, n);
    expect(log.size).toBe(all.length);
    const dead = new Set(['10.1.0.0/16', '2001:db8::/32']);
    const got = nets(log, (n) => !dead.has(n));
    expect(got.sort()).toEqual(['10.0.0.0/8', '2001:db8:1::/48', '2001:db8:1::/64', '::/0', 'ffff:8000::/17'].sort());
    expect(log.size).toBe(5);
    add(log, '2001:db8::/32');
    expect(nets(log, () => true).sort()).toEqual(['10.0.0.0/8', '2001:db8:1::/48', '2001:db8:1::/64', '2001:db8::/32', '::/0', 'ffff:8000::/17'].sort());
  });

  it('compacts thousands of IPv6 nets logged many times down to the live ones', () => {
    const log = new NetLog(block);
    for (let round = 0; round < 3; round++) for (let i = 0; i < 5000; i++) add(log, `2001:db8:${i.toString(16)}::/48`);
    log.compact((w) => typeof w === 'string' && w.charCodeAt(2) % 2 === 0);
    expect(log.size).toBe(2500);
    expect(new Set(nets(log, () => true)).size).toBe(2500);
  });

  it('keeps thousands of IPv4 nets in order across blocks, and after compactions and more adds', () => {
    const log = new NetLog(block ?? 256);
    const v4 = (i: number) => `${10 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}.0/24`;
    for (let i = 0; i < 3000; i++) add(log, v4(i));
    expect(log.ordered).toBe(true);
    const logged: string[] = [];
    log.forEachLogged((w, l) => logged.push(prefixFromKey(((w as number) >>> 0) * 64 + l).toString()));
    expect(logged).toEqual(Array.from({ length: 3000 }, (_, i) => v4(i)));
    add(log, v4(5)); // out of order, and twice
    expect([log.ordered, log.size]).toEqual([false, 3001]);
    expect(nets(log, (n) => Number(n.split('.')[2]) % 3 === 0)).toEqual(Array.from({ length: 3000 }, (_, i) => i).filter((i) => (i & 255) % 3 === 0).map(v4));
    expect(log.ordered).toBe(true);
    for (let i = 3000; i < 4000; i++) add(log, v4(i));
    for (let i = 0; i < 3000; i += 3) add(log, v4(i + 1));
    const want = [...Array.from({ length: 3000 }, (_, i) => i).filter((i) => (i & 255) % 3 === 0 || ((i - 1) % 3 === 0 && i < 3001)), ...Array.from({ length: 1000 }, (_, i) => 3000 + i)];
    expect(nets(log, () => true)).toEqual([...new Set(want)].sort((a, b) => a - b).map(v4));
  });
});
