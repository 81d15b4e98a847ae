#!/usr/bin/env node
// Table benchmark: `npm run bench:table` (builds dist/ first). Runs with --expose-gc.
//
// Phase 1: insert N IPv4 routes (mostly /24, some /16-/23 and /25-/32, a few
//          thousand distinct next hops) into an empty table; heap per route.
// Phase 2: one export request reads them all (full feed, until `ready`).
// Phase 3: N updates (next-hop changes) while that request is ready and reading.
// Baseline: the same routes in a plain Map<string, object>, measured the same way.
//
// Environment: N (routes, default 1000000), SEED.
'use strict';
const { Prefix, parseAddr } = require('../../dist/lib/addr');
const { RouteAttrs, RouteSource } = require('../../dist/route');
const { Table } = require('../../dist/table');

if (typeof global.gc !== 'function') {
  console.error('run with node --expose-gc (npm run bench:table does)');
  process.exit(2);
}

const N = Number(process.env.N || 1_000_000);
const NEXTHOPS = 4000;
let seed = Number(process.env.SEED || 12345);
const rand = () => ((seed = (Math.imul(seed, 1103515245) + 12345) | 0) >>> 0) / 2 ** 32;

function heap() {
  for (let i = 0; i < 4; i++) global.gc();
  return process.memoryUsage().heapUsed;
}
const ms = (t0) => Number(process.hrtime.bigint() - t0) / 1e6;
const now = () => process.hrtime.bigint();
const turn = () => new Promise((r) => setImmediate(r));
const fmt = (n) => Math.round(n).toLocaleString('en-US');

/** Distinct nets: 80% /24 (sequential blocks from 1.0.0.0), 10% /16-/23 in 128/2, 10% /25-/32 in 192/2; shuffled. */
function makeNets(n) {
  const words = new Int32Array(n);
  const lens = new Uint8Array(n);
  const perLen = new Map();
  for (let i = 0; i < n; i++) {
    const r = i % 10;
    let len;
    let base;
    if (r < 8) {
      len = 24;
      base = 0x01000000;
    } else if (r === 8) {
      len = 16 + ((i / 10) % 8 | 0);
      base = 0x80000000;
    } else {
      len = 25 + ((i / 10) % 8 | 0);
      base = 0xc0000000;
    }
    const j = perLen.get(len) || 0;
    perLen.set(len, j + 1);
    words[i] = (base + j * 2 ** (32 - len)) | 0;
    lens[i] = len;
  }
  for (let i = n - 1; i > 0; i--) {
    const k = Math.floor(rand() * (i + 1));
    const w = words[i]; words[i] = words[k]; words[k] = w;
    const l = lens[i]; lens[i] = lens[k]; lens[k] = l;
  }
  return { words, lens };
}

function makeAttrs() {
  const out = [];
  for (let i = 0; i < NEXTHOPS; i++) {
    const gw = parseAddr(`172.${16 + (i >> 8)}.${i & 255}.1`);
    out.push(RouteAttrs.of({ nexthops: [{ gateway: gw, ifindex: 2 + (i % 8) }], metric: 100 }));
  }
  return out;
}

async function benchTable(nets) {
  const { words, lens } = nets;
  const base = heap();
  const attrs = makeAttrs();
  const src = new RouteSource('static', 200);
  const table = new Table({ name: 'bench' });

  let t0 = now();
  for (let i = 0; i < N; i++) table.announce(Prefix.v4(words[i], lens[i]), src, attrs[(i * 7919) % NEXTHOPS]);
  const insertMs = ms(t0);
  const bytes = heap() - base;

  // Full feed to one export request.
  const req = table.best.subscribe({ name: 'bench', batchSize: 16384 });
  t0 = now();
  let fed = 0;
  const reader = (async () => {
    let updates = 0;
    for await (const batch of req) {
      for (let i = 0; i < batch.length; i++) {
        const item = batch[i];
        if (item.kind === 'feed') fed += item.routes.length;
        else if (item.kind === 'update') updates++;
        else if (item.kind === 'ready') reader.feedMs = ms(t0);
      }
      if (reader.wantSeq !== undefined && req.pos >= reader.wantSeq) reader.caughtUp();
    }
    return updates;
  })();
  while (reader.feedMs === undefined) await turn();
  const feedMs = reader.feedMs;

  // Updates while the request is ready: writes in bursts, the event loop turning between them.
  t0 = now();
  const BURST = 4096;
  for (let i = 0; i < N; i += BURST) {
    const end = Math.min(N, i + BURST);
    for (let k = i; k < end; k++) {
      const idx = (k * 48271) % N; // spread over the table
      table.announce(Prefix.v4(words[idx], lens[idx]), src, attrs[(idx * 7919 + 1 + (k % 97)) % NEXTHOPS]);
    }
    await turn();
  }
  const writeMs = ms(t0);
  await new Promise((resolve) => {
    reader.wantSeq = table.best.journal.end;
    reader.caughtUp = resolve;
    if (req.pos >= reader.wantSeq) resolve();
  });
  const updateMs = ms(t0);
  req.close();
  const updates = await reader;
  return { insertMs, feedMs, fed, writeMs, updateMs, updates, bytes, refeeds: req.refeeds, journal: table.best.journal.length };
}

function benchBaseline(nets) {
  const { words, lens } = nets;
  const base = heap();
  const attrs = makeAttrs();
  const src = new RouteSource('static', 200);
  const map = new Map();
  const t0 = now();
  for (let i = 0; i < N; i++) {
    const net = Prefix.v4(words[i], lens[i]);
    map.set(net.toString(), { net, src, attrs: attrs[(i * 7919) % NEXTHOPS] });
  }
  const insertMs = ms(t0);
  const t1 = now();
  let fed = 0;
  for (const v of map.values()) if (v.attrs) fed++;
  const feedMs = ms(t1);
  const bytes = heap() - base;
  return { insertMs, feedMs, fed, bytes, keep: map.size };
}

(async () => {
  console.log(`table bench: ${fmt(N)} IPv4 routes, ${NEXTHOPS} next hops, node ${process.version}`);
  const nets = makeNets(N);
  const t = await benchTable(nets);
  const b = benchBaseline(nets);
  const rate = (n, msec) => `${fmt((n / msec) * 1000)}/s`;
  const rows = [
    ['', 'krtsync Table', 'Map<string, object>'],
    ['insert', `${t.insertMs.toFixed(0)} ms (${rate(N, t.insertMs)})`, `${b.insertMs.toFixed(0)} ms (${rate(N, b.insertMs)})`],
    ['full feed to one reader', `${t.feedMs.toFixed(0)} ms (${rate(t.fed, t.feedMs)})`, `${b.feedMs.toFixed(0)} ms (iterate values)`],
    ['insert + full feed', `${(t.insertMs + t.feedMs).toFixed(0)} ms`, `${(b.insertMs + b.feedMs).toFixed(0)} ms`],
    ['heap per stored route', `${(t.bytes / N).toFixed(1)} B`, `${(b.bytes / N).toFixed(1)} B`],
    [`${fmt(N)} updates, reader ready`, `${t.updateMs.toFixed(0)} ms (${rate(N, t.updateMs)})`, '-'],
    ['  reader lag after the last write', `${(t.updateMs - t.writeMs).toFixed(0)} ms`, '-'],
  ];
  const w0 = Math.max(...rows.map((r) => r[0].length));
  const w1 = Math.max(...rows.map((r) => r[1].length));
  for (const r of rows) console.log(`${r[0].padEnd(w0)}  ${r[1].padEnd(w1)}  ${r[2]}`);
  console.log(
    `reader: fed ${fmt(t.fed)} routes, got ${fmt(t.updates)} updates (squashed from ${fmt(N)} writes), ` +
      `refeeds ${t.refeeds}, journal left ${t.journal}`,
  );
  console.log(`targets: insert + full feed < 2000 ms, heap < 150 B/route`);
})();
