#!/usr/bin/env node
// Next-hop tracking: `npm run bench:nexthop` (builds dist/ first). Root: it makes scratch namespaces.
//
// Kernel: a router namespace with two upstream veths (far ends in a peer namespace, which is how carrier
//   is lost: the far end goes down), two sources of N /24s (primary via 192.0.2.2, backup via
//   198.51.100.2), the kernel protocol in-process. Carrier loss, then recovery; the time until the sync
//   has sent a change for every net and has none pending, then a full dump counts the routes per gateway.
//   Baseline in the same run: tracking off.
// Table: 2 x M routes (M default 1M) inserted with and without a tracker (time, heap), and with it the
//   table's share of a failover and a recovery (reorder and journal, read by an export request).
//
// Environment: N (kernel routes, default 100000), M (table routes per source, default 1000000).
// Figures are in docs/benchmarks.md ("Next-hop tracking").
'use strict';
const W = require('node:path').join(__dirname, '..', '..', 'dist');
const { execFileSync } = require('node:child_process');
const { parseRouteLine } = require(`${W}/config/route-syntax`);
const { RouteSource } = require(`${W}/route`);
const { Table, NextHopTracker, NO_DAMPING } = require(`${W}/table`);
const { KernelProtocol } = require(`${W}/proto/kernel/kernel-protocol`);
const { NextHopWatch } = require(`${W}/proto/kernel/nexthop-watch`);
const N = Number(process.env.N || 100000);
const sh = (...a) => execFileSync(a[0], a.slice(1), { encoding: 'utf8', maxBuffer: 1 << 30 });
const ipn = (ns, ...a) => sh('ip', '-n', ns, ...a);

function countVia(ns, gw) {
  const out = sh('ip', '-n', ns, '-4', 'route', 'show', 'proto', '144');
  let n = 0;
  for (const l of out.split('\n')) if (l.includes(`via ${gw} `)) n++;
  return n;
}
async function until(cond, ms) {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > ms) return undefined;
    await new Promise((r) => setTimeout(r, 5));
  }
  return Date.now() - t0;
}

async function run(tracking) {
  const tag = `nhm${process.pid}${tracking ? 't' : 'b'}`;
  const router = `${tag}r`, peer = `${tag}p`;
  sh('ip', 'netns', 'add', router); sh('ip', 'netns', 'add', peer);
  try {
    ipn(router, 'link', 'set', 'lo', 'up');
    for (const [a, b, ra, pa] of [['up0', 'p0', '192.0.2.1/24', '192.0.2.2/24'], ['up1', 'p1', '198.51.100.1/24', '198.51.100.2/24']]) {
      ipn(router, 'link', 'add', a, 'type', 'veth', 'peer', 'name', b);
      ipn(router, 'link', 'set', b, 'netns', peer);
      ipn(router, 'addr', 'add', ra, 'dev', a); ipn(router, 'link', 'set', a, 'up');
      ipn(peer, 'addr', 'add', pa, 'dev', b); ipn(peer, 'link', 'set', b, 'up');
    }
    const tracker = tracking ? new NextHopTracker({ damping: NO_DAMPING }) : undefined;
    const watch = tracking ? await NextHopWatch.open({ tracker, netns: `/run/netns/${router}` }) : undefined;
    const table = new Table({ name: 'master4', ...(tracker ? { nexthops: tracker } : {}) });
    const a = new RouteSource('a', 100), b = new RouteSource('b', 90);
    for (let i = 0; i < N; i++) {
      const net = `${16 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}.0/24`;
      const ra = parseRouteLine(`${net} via 192.0.2.2`), rb = parseRouteLine(`${net} via 198.51.100.2`);
      table.announce(ra.net, a, ra.attrs); table.announce(rb.net, b, rb.attrs);
    }
    const k = new KernelProtocol({ name: 'k', table, netns: `/run/netns/${router}`, family: 4, scanIntervalMs: 0 });
    const cpu0 = process.cpuUsage();
    await k.start();
    const res = { tracking };
    const sync = k.sync(4);
    const settled = (n0) => () => sync.stats.sent >= n0 + N && k.counts().pending === 0;
    let n0 = sync.stats.sent;
    ipn(peer, 'link', 'set', 'p0', 'down');
    res.failoverSettledMs = (await until(settled(n0), tracking ? 60000 : 10000)) ?? 'not within 10 s';
    res.viaBackup = countVia(router, '198.51.100.2');
    res.failed = k.counts().failed;
    n0 = sync.stats.sent;
    ipn(peer, 'link', 'set', 'p0', 'up');
    res.recoverySettledMs = (await until(settled(n0), tracking ? 60000 : 10000)) ?? 'nothing sent within 10 s';
    res.viaPrimaryAfter = countVia(router, '192.0.2.2');
    const cpu = process.cpuUsage(cpu0);
    res.cpuSeconds = ((cpu.user + cpu.system) / 1e6).toFixed(1);

    await k.shutdown();
    watch?.close(); tracker?.close();
    return res;
  } finally {
    sh('ip', 'netns', 'del', router); sh('ip', 'netns', 'del', peer);
  }
}

// ---------------------------------------------------------------- the table's share

const { Prefix, parseAddr, parsePrefix } = require(`${W}/lib/addr`);
const { RouteAttrs } = require(`${W}/route`);
const M = Number(process.env.M || 1_000_000);
const gc = () => { for (let i = 0; i < 4; i++) global.gc(); return process.memoryUsage(); };
async function tableRun(tracking) {
  const tracker = tracking ? new NextHopTracker({ damping: NO_DAMPING }) : undefined;
  const links = [{ index: 2, name: 'up0', up: true, carrier: true }, { index: 3, name: 'up1', up: true, carrier: true }];
  tracker?.resync(links, [{ prefix: parsePrefix('192.0.2.0/24'), ifindex: 2 }, { prefix: parsePrefix('198.51.100.0/24'), ifindex: 3 }]);
  tracker?.flush();
  const before = gc();
  const t = new Table({ name: 'm', ...(tracker ? { nexthops: tracker } : {}) });
  const sub = t.best.subscribe({ name: 'k', batchSize: 4096 });
  const it = sub[Symbol.asyncIterator]();
  let items = 0;
  let pending;
  const drain = async () => { for (;;) { pending ??= it.next(); const r = await Promise.race([pending, new Promise((res) => setTimeout(() => res('idle'), 50))]); if (r === 'idle') return; pending = undefined; if (r.done) return; items += r.value.length; } };
  const A = RouteAttrs.of({ nexthops: [{ gateway: parseAddr('192.0.2.2') }] });
  const B = RouteAttrs.of({ nexthops: [{ gateway: parseAddr('198.51.100.2') }] });
  const a = new RouteSource('a', 100), b = new RouteSource('b', 90);
  let t0 = process.hrtime.bigint();
  for (let i = 0; i < M; i++) { const p = Prefix.v4(((16 << 24) + (i << 8)) | 0, 24); t.announce(p, a, A); t.announce(p, b, B); }
  const insertMs = Number(process.hrtime.bigint() - t0) / 1e6;
  await drain();
  const after = gc();
  const out = { tracking, insertMs: Math.round(insertMs), heapMB: Math.round((after.heapUsed + after.external + after.arrayBuffers - before.heapUsed - before.external - before.arrayBuffers) / 1e6) };
  if (tracker) {
    items = 0;
    t0 = process.hrtime.bigint();
    tracker.setLink({ ...links[0], carrier: false }); tracker.flush();
    out.failoverTableMs = Math.round(Number(process.hrtime.bigint() - t0) / 1e6);
    await drain();
    out.failoverItems = items;
    items = 0;
    t0 = process.hrtime.bigint();
    tracker.setLink({ ...links[0], carrier: true }); tracker.flush();
    out.recoveryTableMs = Math.round(Number(process.hrtime.bigint() - t0) / 1e6);
    await drain();
    out.recoveryItems = items;
  }
  sub.close?.();
  return out;
}
(async () => {
  if (typeof global.gc !== 'function') throw new Error('run with node --expose-gc (npm run bench:nexthop does)');
  console.log(`kernel, N=${N} nets, carrier loss on the primary then recovery (ms until settled; baseline: tracking off)`);
  console.log(JSON.stringify(await run(false)));
  console.log(JSON.stringify(await run(true)));
  console.log(`table, M=${M} nets x 2 sources (insert ms, heap MB; failover and recovery: reorder + journal ms)`);
  console.log(JSON.stringify(await tableRun(false)));
  console.log(JSON.stringify(await tableRun(true)));
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
