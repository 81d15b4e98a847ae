#!/usr/bin/env node
// The order routes go into the kernel, and what it costs later: `npm run bench:object-order -- [--routes N]
// [--reps R] [--orders a,b,...] [--gateway] [--churn ORDER]` (root: it makes a scratch namespace).
//
// N IPv4 /24s from 11.0.0.0 (as bench:e2e numbers them) on one nexthop object, added with the C floor
// (scripts/bench/c-floor.c, compiled here) in each order, then the object deleted (the kernel deletes
// every route on it inside that one request): the add's and the object delete's times. The kernel's
// IPv4 trie keeps the layout of the order routes went in, and the object's delete walks the trie in
// address order, so it is fastest over routes added in address order, which is the slowest order to
// add them in (docs/benchmarks.md, Round 12). Orders:
//   spread      the whole set in trie-spread order (src/netlink/order.ts)
//   address     address order
//   prefixP     the first P % of the spread order, then the rest in address order (a first sync whose
//               prune sent the adds left after P % of early adds in address order: tried in Round 12)
//   blkB        blocks of B consecutive routes, the blocks in spread order, each in address order
//   skelK       every K-th route (address order) in spread order, then the rest in address order
// --gateway: plain gateway routes, deleted one by one in spread order (the shutdown without objects)
// instead of the object delete. --churn ORDER: before the delete, every route replaced onto a second
// object in ORDER (a churn), the first object deleted, then the second one timed.
// Prints one JSON line per order and repetition.
'use strict';
const { execFileSync } = require('node:child_process');
const { writeFileSync, unlinkSync } = require('node:fs');
const { tmpdir } = require('node:os');
const { join } = require('node:path');
const { trieSpreadOrder } = require('../../dist/netlink/order');

const argv = process.argv.slice(2);
const arg = (name, def) => (argv.includes(name) ? argv[argv.indexOf(name) + 1] : def);
const N = Number(arg('--routes', 1_000_000));
const REPS = Number(arg('--reps', 2));
const GATEWAY = argv.includes('--gateway');
const CHURN = arg('--churn', undefined);
const ns = `krtorder-${process.pid}`;
const bin = join(tmpdir(), `${ns}-c-floor`);
const file = (k) => join(tmpdir(), `${ns}-${k}.order`);
const written = [];

const word = (i) => ((11 << 24) + i * 256) | 0;
const idx = [...Array(N).keys()];
const spreadOf = (ids) => trieSpreadOrder(ids, word);
const orders = {
  spread: () => spreadOf(idx),
  address: () => idx,
};
const make = (k) => {
  if (orders[k]) return orders[k]();
  let m = /^prefix(\d+)$/.exec(k);
  if (m) {
    const s = spreadOf(idx);
    const cut = Math.floor((N * Number(m[1])) / 100);
    return [...s.slice(0, cut), ...s.slice(cut).sort((a, b) => a - b)];
  }
  m = /^blk(\d+)$/.exec(k);
  if (m) {
    const b = Number(m[1]);
    const out = [];
    for (const j of spreadOf([...Array(Math.ceil(N / b)).keys()].map((x) => x * b))) for (let i = j; i < Math.min(N, j + b); i++) out.push(i);
    return out;
  }
  m = /^skel(\d+)$/.exec(k);
  if (m) {
    const K = Number(m[1]);
    return [...spreadOf(idx.filter((i) => i % K === 0)), ...idx.filter((i) => i % K !== 0)];
  }
  throw new Error(`unknown order ${k}`);
};
const which = arg('--orders', 'spread,prefix50,prefix75,address').split(',');

const sh = (...a) => execFileSync(a[0], a.slice(1), { encoding: 'utf8', maxBuffer: 1 << 30 });
const ip = (...a) => sh('ip', '-n', ns, ...a);
const floor = (...a) => JSON.parse(execFileSync('ip', ['netns', 'exec', ns, bin, ...a], { encoding: 'utf8', env: { ...process.env, C_FLOOR_FIRST_OCTET: '11' } }));
const count = () => Number(sh('sh', '-c', `ip -n ${ns} -4 route show table 100 | wc -l`).trim());

function cleanup() {
  try {
    sh('ip', 'netns', 'del', ns);
  } catch {
    /* not made */
  }
  for (const f of [bin, ...written]) {
    try {
      unlinkSync(f);
    } catch {
      /* not written */
    }
  }
}
process.on('exit', cleanup);
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => process.exit(130));

execFileSync('cc', ['-O2', '-o', bin, join(__dirname, 'c-floor.c')]);
for (const k of new Set([...which, ...(CHURN ? [CHURN] : []), 'spread'])) {
  writeFileSync(file(k), Buffer.from(Uint32Array.from(make(k)).buffer));
  written.push(file(k));
}
sh('ip', 'netns', 'add', ns);
ip('link', 'set', 'lo', 'up');
ip('link', 'add', 'veth0', 'type', 'veth', 'peer', 'name', 'veth1');
ip('link', 'set', 'veth0', 'up');
ip('link', 'set', 'veth1', 'up');
ip('addr', 'add', '192.0.2.1/24', 'dev', 'veth0');
for (let r = 0; r < REPS; r++) {
  for (const k of which) {
    ip('nexthop', 'add', 'id', '1000', 'via', '192.0.2.2', 'dev', 'veth0', 'proto', '144');
    const add = floor('add', String(N), '100', '144', GATEWAY ? '192.0.2.2' : 'nhid:1000', file(k));
    let churn;
    if (CHURN) {
      ip('nexthop', 'add', 'id', '1001', 'via', '192.0.2.3', 'dev', 'veth0', 'proto', '144');
      churn = floor('replace', String(N), '100', '144', GATEWAY ? '192.0.2.3' : 'nhid:1001', file(CHURN));
      floor('nhdel', '1000');
    }
    const routes = count();
    const del = GATEWAY ? floor('del', String(N), '100', '144', '192.0.2.2', file('spread')) : floor('nhdel', CHURN ? '1001' : '1000');
    if (GATEWAY) floor('nhdel', CHURN ? '1001' : '1000');
    const left = count();
    if (routes !== N || left !== 0 || add.errors || del.errors) throw new Error(`order ${k}: ${routes} routes after the add, ${left} after the delete (errors: add ${add.errors}, delete ${del.errors})`);
    const row = { order: k, routes: N, add_s: add.seconds, ...(churn ? { churn: CHURN, replace_s: churn.seconds } : {}), [GATEWAY ? 'route_del_s' : 'object_del_s']: del.seconds };
    console.log(JSON.stringify(row));
  }
}
