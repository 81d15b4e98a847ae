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

describe('NetLog', () => {
  it('gives each live net once, both families, and keeps only those', () => {
    const log = new NetLog();
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
    const log = new NetLog();
    for (let round = 0; round < 3; round++) for (let i = 0; i < 5000; i++) add(log, `2001:db8:${i.toString(16)}::/48`);
    log.compact((w) => typeof w === 'string' && w.charCodeAt(2) % 2 === 0);
    expect(log.size).toBe(2500);
    expect(new Set(nets(log, () => true)).size).toBe(2500);
  });
});
