#!/usr/bin/env node
// BGP routes through the table: `npm run bench:bgp` (builds dist/ first). Runs with --expose-gc.
//
// Two neighbours announce the same N IPv4 /24s (default 1,000,000), each with a few distinct BGP
// attribute sets, so every net holds two routes ordered by the decision process. Beside it, in
// the same run, the baseline: the same two announcements from two plain sources of equal
// preference (no BGP attributes: ordered by source name, as before BGP attributes existed).
// Measured: announce time and heap per net; the startup hold staging both neighbours and
// releasing them into the table (against announcing directly); a neighbour going down with
// 10 routes while the table holds 2N, through its index and through a walk of every net.
//
// Environment: N (nets, default 1000000).
'use strict';
const { Prefix, parseAddr } = require('../../dist/lib/addr');
const { BgpAttrs, BgpNeighbor, BgpPath, RouteAttrs, RouteSource } = require('../../dist/route');
const { Table } = require('../../dist/table');
const { StartupHold } = require('../../dist/proto/stream/startup-hold');

if (typeof global.gc !== 'function') {
  console.error('run with node --expose-gc (npm run bench:bgp does)');
  process.exit(2);
}

const N = Number(process.env.N || 1_000_000);
const SETS = 16;
const heap = () => {
  for (let i = 0; i < 4; i++) global.gc();
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers; // the index logs live in ArrayBuffers
};
const now = () => process.hrtime.bigint();
const ms = (t0) => Number(process.hrtime.bigint() - t0) / 1e6;
const fmt = (n) => Math.round(n).toLocaleString('en-US');
const net = (i) => Prefix.v4((0x01000000 + i * 256) | 0, 24);

/** A neighbour's attribute sets: SETS paths of 1-4 ASes, local preference 100, MEDs 0-3. */
function bgpAttrs(addr, as) {
  const neighbor = BgpNeighbor.of({ address: parseAddr(addr), as, localAs: 65000, routerId: parseAddr(addr).w0 >>> 0 });
  return Array.from({ length: SETS }, (_, k) =>
    RouteAttrs.of({
      nexthops: [{ gateway: parseAddr(addr) }],
      bgp: BgpAttrs.of(BgpPath.of({ origin: 'igp', asPath: [as, ...Array.from({ length: k % 4 }, (_, j) => 64600 + j)], localPref: 100, med: k % 4, communities: [((as & 0xffff) << 16 | k) >>> 0] }), neighbor),
    }),
  );
}
const plainAttrs = (addr) => Array.from({ length: SETS }, (_, k) => RouteAttrs.of({ nexthops: [{ gateway: parseAddr(addr) }], metric: k }));

function announceBoth(table, a, b) {
  const t0 = now();
  for (let i = 0; i < N; i++) table.announce(net(i), a.src, a.attrs[i % SETS]);
  for (let i = 0; i < N; i++) table.announce(net(i), b.src, b.attrs[(i * 7) % SETS]);
  return ms(t0);
}

function scenario(kind, indexed) {
  const base = heap();
  const table = new Table({ name: kind });
  const a = { src: new RouteSource('bgp/exa/192.0.2.1', 100, { indexed }), attrs: kind === 'bgp' ? bgpAttrs('192.0.2.1', 65001) : plainAttrs('192.0.2.1') };
  const b = { src: new RouteSource('bgp/exa/192.0.2.2', 100, { indexed }), attrs: kind === 'bgp' ? bgpAttrs('192.0.2.2', 65002) : plainAttrs('192.0.2.2') };
  const announceMs = announceBoth(table, a, b);
  const bytes = heap() - base;
  const firstA = [...Array(N).keys()].filter((i) => table.bestRoute(net(i)).src === a.src).length;
  return { table, announceMs, bytes, firstA };
}

function holdRelease() {
  const a = bgpAttrs('192.0.2.1', 65001);
  const b = bgpAttrs('192.0.2.2', 65002);
  const table = new Table({ name: 'hold' });
  const src = { a: new RouteSource('bgp/exa/a', 100, { indexed: true }), b: new RouteSource('bgp/exa/b', 100, { indexed: true }) };
  let releaseMs = 0;
  const hold = new StartupHold([4], new Set(), 3_600_000, {
    apply: (peer, n, attrs) => table.announce(n, src[peer], attrs),
    released: () => undefined,
  });
  hold.seenPeer('a', '192.0.2.1');
  hold.seenPeer('b', '192.0.2.2');
  const base = heap();
  let t0 = now();
  for (let i = 0; i < N; i++) hold.stage('a', net(i), a[i % SETS]);
  for (let i = 0; i < N; i++) hold.stage('b', net(i), b[(i * 7) % SETS]);
  const stageMs = ms(t0);
  const stagedBytes = heap() - base;
  hold.peerDone('a', 4);
  t0 = now();
  hold.peerDone('b', 4); // the last end-of-RIB: the release, in one synchronous pass
  releaseMs = ms(t0);
  return { stageMs, stagedBytes, releaseMs, routes: table.routeTotal };
}

function peerDown(table, indexed) {
  const src = new RouteSource(`bgp/exa/192.0.2.${indexed ? 9 : 10}`, 100, { indexed });
  const attrs = bgpAttrs(`192.0.2.${indexed ? 9 : 10}`, 65009);
  for (let i = 0; i < 10; i++) table.announce(net(i * 1000), src, attrs[0]);
  const t0 = now();
  const n = table.flush(src);
  return { ms: ms(t0), n };
}

(async () => {
  console.log(`bgp bench: ${fmt(N)} nets x 2 neighbours, ${SETS} attribute sets each, node ${process.version}`);
  const plain = scenario('plain', false);
  const plainDown = peerDown(plain.table, false);
  plain.table.discard('done');
  const flat = scenario('bgp', false);
  flat.table.discard('done');
  const bgp = scenario('bgp', true);
  const bgpDown = peerDown(bgp.table, true);
  bgp.table.discard('done');
  const hold = holdRelease();
  const rate = (n, t) => `${t.toFixed(0)} ms (${fmt((n / t) * 1000)}/s)`;
  const rows = [
    ['', 'BGP, indexed sources (stream peers)', 'BGP, sources not indexed', 'baseline: plain sources, not indexed'],
    ['announce 2 x N', rate(2 * N, bgp.announceMs), rate(2 * N, flat.announceMs), rate(2 * N, plain.announceMs)],
    ['heap per net (2 routes)', `${(bgp.bytes / N).toFixed(1)} B`, `${(flat.bytes / N).toFixed(1)} B`, `${(plain.bytes / N).toFixed(1)} B`],
    ['best from neighbour 1', `${fmt(bgp.firstA)} (BGP attributes)`, `${fmt(flat.firstA)}`, `${fmt(plain.firstA)} (source name)`],
    ['neighbour down, 10 routes', `${bgpDown.ms.toFixed(3)} ms (its index)`, '-', `${plainDown.ms.toFixed(1)} ms (walk of every net)`],
    ['startup hold: stage 2 x N', `${hold.stageMs.toFixed(0)} ms, ${(hold.stagedBytes / N / 2).toFixed(1)} B a route`, '-', '-'],
    ['startup hold: release 2 x N', `${hold.releaseMs.toFixed(0)} ms, one synchronous pass`, '-', '-'],
  ];
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  for (const r of rows) console.log(r.map((x, c) => x.padEnd(widths[c])).join('  ').trimEnd());
})();
