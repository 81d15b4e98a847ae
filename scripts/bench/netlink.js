#!/usr/bin/env node
// Netlink pipeline benchmark: `npm run bench:netlink -- --routes N` (default 1,000,000).
//
// In a namespace of its own (created here, deleted on exit, error or Ctrl-C; nothing in the root
// namespace is touched and no traffic is sent): a veth pair with 192.0.2.1/24, then N IPv4 /24 routes
// via 192.0.2.2 in table 100 (10.0.0.0/24, 10.0.1.0/24, ... counting up, past 10/8 when N > 65536; they
// exist only inside the namespace). Installs and deletes them with the RoutePipeline in the order
// krtsync's kernel protocol sends bulk work (trie-spread, src/netlink/order.ts) and in address order,
// dumps the table while full, then does the same with `ip -batch` in both orders, and verifies the
// route count after every step. Prints one JSON line: add_s/del_s are krtsync's order, compared with
// ip -batch fed the routes in address order (as a routes file would list them); the per-order
// figures are alongside. The C floor (scripts/bench/c-floor.c, compiled here with cc): the same
// routes in the same (trie-spread) order through one socket in 256 KiB sends with no acks asked
// for, the kernel's own speed; every
// figure of ours also as a ratio to it. Then the same with the routes on one nexthop object
// (RTA_NH_ID, issue 19), krtsync's pipeline and the C floor.
'use strict';
const { execFileSync } = require('node:child_process');
const { writeFileSync, unlinkSync } = require('node:fs');
const { tmpdir } = require('node:os');
const { join } = require('node:path');
const { RoutePipeline } = require('../../dist/netlink/pipeline');
const { NetlinkClient } = require('../../dist/netlink/client');
const { Prefix, parseAddr } = require('../../dist/lib/addr');
const { trieSpreadOrder } = require('../../dist/netlink/order');
const { encodeNexthopRequest } = require('../../dist/netlink/nexthop-codec');

const argv = process.argv.slice(2);
const argIndex = argv.indexOf('--routes');
const N = argIndex >= 0 ? Number(argv[argIndex + 1]) : 1_000_000;
if (!Number.isInteger(N) || N < 1 || N > 1 << 24) {
  console.error('usage: bench:netlink -- --routes N   (1 <= N <= 16777216)');
  process.exit(2);
}
const TABLE = 100;
const PROTO = 144; // krtsync's default protocol number
const ns = `krtbench-${process.pid}`;
const batchFile = join(tmpdir(), `${ns}.batch`);
const floorBin = join(tmpdir(), `${ns}-c-floor`);
const orderFile = join(tmpdir(), `${ns}.order`);

let cleaned = false;
function cleanup() {
  if (cleaned) return;
  cleaned = true;
  try {
    execFileSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
  } catch {
    /* not created */
  }
  for (const f of [batchFile, floorBin, orderFile]) {
    try {
      unlinkSync(f);
    } catch {
      /* not written */
    }
  }
}
process.on('exit', cleanup);
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, () => {
    cleanup();
    process.exit(130);
  });
}

const ip = (...args) => execFileSync('ip', ['-netns', ns, ...args], { stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 1 << 30 });
const dstWord = (i) => ((10 << 24) + i * 256) | 0;
const seconds = (t0) => Number(((performance.now() - t0) / 1000).toFixed(3));

async function main() {
  execFileSync('ip', ['netns', 'add', ns]);
  ip('link', 'set', 'lo', 'up');
  ip('link', 'add', 'veth0', 'type', 'veth', 'peer', 'name', 'veth1');
  ip('link', 'set', 'veth0', 'up');
  ip('link', 'set', 'veth1', 'up');
  ip('addr', 'add', '192.0.2.1/24', 'dev', 'veth0');

  const gateway = parseAddr('192.0.2.2');
  const adds = new Array(N);
  const dels = new Array(N);
  for (let i = 0; i < N; i++) {
    const route = { family: 4, dst: Prefix.v4(dstWord(i), 24), tos: 0, table: TABLE, protocol: PROTO, scope: 0, type: 1, flags: 0, gateway };
    adds[i] = { cmd: 'add', route };
    dels[i] = { cmd: 'delete', route };
  }
  const pipe = RoutePipeline.open({ netns: ns });
  const client = NetlinkClient.open({ netns: ns });
  const count = async () => (await client.dumpRoutes({ family: 4, table: TABLE })).items.length;
  const check = (what, got, want) => {
    if (got !== want) throw new Error(`${what}: ${got} routes in table ${TABLE}, expected ${want}`);
  };
  const failures = (r) => (r.failed.length ? ` (${r.failed.length} failed, first: ${r.failed[0].error.message})` : '');

  // Each round: add all N, dump, delete all N, checking the count after every step. krtsync's
  // kernel protocol sends a first sync and a shutdown in trie-spread order (src/netlink/order.ts);
  // the address-order round shows what that order is worth. ip -batch gets both orders too.
  const spread = trieSpreadOrder([...Array(N).keys()], (i) => dstWord(i));
  const round = async (order) => {
    let t0 = performance.now();
    const added = await pipe.submit(order.map((i) => adds[i]));
    const add = seconds(t0);
    if (added.ok !== N) throw new Error(`add: ${added.ok} of ${N} ok${failures(added)}`);
    t0 = performance.now();
    const dumped = await count();
    const dump = seconds(t0);
    check('after add', dumped, N);
    t0 = performance.now();
    const deleted = await pipe.submit(order.map((i) => dels[i]));
    const del = seconds(t0);
    if (deleted.ok !== N) throw new Error(`delete: ${deleted.ok} of ${N} ok${failures(deleted)}`);
    check('after delete', await count(), 0);
    return { add, del, dump };
  };
  const fmt = (i) => `${new Prefix(4, 24, dstWord(i))} via 192.0.2.2 table ${TABLE} proto ${PROTO}`;
  const ipBatch = (order) => {
    writeFileSync(batchFile, order.map((i) => `route add ${fmt(i)}`).join('\n') + '\n');
    let t0 = performance.now();
    ip('-batch', batchFile);
    const add = seconds(t0);
    check('after ip -batch add', countSync(), N);
    writeFileSync(batchFile, order.map((i) => `route del ${fmt(i)}`).join('\n') + '\n');
    t0 = performance.now();
    ip('-batch', batchFile);
    const del = seconds(t0);
    check('after ip -batch delete', countSync(), 0);
    return { add, del };
  };
  const countSync = () => Number(ip('-4', 'route', 'show', 'table', String(TABLE)).toString().split('\n').filter(Boolean).length);

  execFileSync('cc', ['-O2', '-o', floorBin, join(__dirname, 'c-floor.c')]);
  const floor = (op, via) => {
    const r = JSON.parse(execFileSync('ip', ['netns', 'exec', ns, floorBin, op, String(N), String(TABLE), String(PROTO), via, orderFile]).toString());
    if (r.errors) throw new Error(`C floor ${op}: ${r.errors} errors`);
    check(`after C floor ${op}`, countSync(), op === 'add' ? N : 0);
    return r.seconds;
  };
  const floorRound = (via) => ({ add: floor('add', via), del: floor('del', via) });
  writeFileSync(orderFile, Buffer.from(Uint32Array.from(spread).buffer)); // the C floor sends in krtsync's order too

  const ours = await round(spread);
  const oursSeq = await round([...Array(N).keys()]);
  const ipSeq = ipBatch([...Array(N).keys()]);
  const ipSpread = ipBatch(spread);
  const cGw = floorRound('192.0.2.2');
  // One nexthop object for every route, made as krtsync makes it (its codec, our protocol number).
  const NHID = 0x90000001;
  await client.request((b, o, s) => encodeNexthopRequest(b, o, s, 'add', { id: NHID, family: 4, protocol: PROTO, scope: 0, flags: 0, oif: Number(JSON.parse(ip('-j', 'link', 'show', 'veth0').toString())[0].ifindex), gateway }), 'add nexthop');
  for (let i = 0; i < N; i++) {
    const route = { family: 4, dst: Prefix.v4(dstWord(i), 24), tos: 0, table: TABLE, protocol: PROTO, scope: 0, type: 1, flags: 0, nhId: NHID };
    adds[i] = { cmd: 'add', route };
    // A delete naming a gateway does not match a route on an object: by net, table and protocol, as krtsync deletes.
    dels[i] = { cmd: 'delete', route: { family: 4, dst: route.dst, tos: 0, table: TABLE, protocol: PROTO, scope: 255, type: 0, flags: 0 } };
  }
  const oursNh = await round(spread);
  const cNh = floorRound(`nhid:${NHID}`);
  // Shutdown's other way: the routes go with their object, in one message.
  const nhAdded = await pipe.submit(spread.map((i) => adds[i]));
  if (nhAdded.ok !== N) throw new Error(`add on the object: ${nhAdded.ok} of ${N} ok${failures(nhAdded)}`);
  let t0 = performance.now();
  await client.request((b, o, s) => encodeNexthopRequest(b, o, s, 'delete', { id: NHID, family: 4, protocol: PROTO, scope: 0, flags: 0 }), 'delete nexthop');
  const objectDel = seconds(t0);
  check('after deleting the object', await count(), 0);
  const stats = pipe.stats;
  await pipe.close();
  client.close();
  const ratio = (a, b) => Number((a / b).toFixed(2));
  console.log(
    JSON.stringify({
      routes: N,
      add_s: ours.add,
      del_s: ours.del,
      dump_s: ours.dump,
      ip_batch_add_s: ipSeq.add,
      ip_batch_del_s: ipSeq.del,
      add_speedup: ratio(ipSeq.add, ours.add),
      del_speedup: ratio(ipSeq.del, ours.del),
      address_order: { add_s: oursSeq.add, del_s: oursSeq.del, ip_batch_add_s: ipSeq.add, ip_batch_del_s: ipSeq.del },
      spread_order: { add_s: ours.add, del_s: ours.del, ip_batch_add_s: ipSpread.add, ip_batch_del_s: ipSpread.del },
      c_floor: { add_s: cGw.add, del_s: cGw.del, add_ratio: ratio(ours.add, cGw.add), del_ratio: ratio(ours.del, cGw.del) },
      nexthop_object: { add_s: oursNh.add, del_s: oursNh.del, c_floor_add_s: cNh.add, c_floor_del_s: cNh.del, add_ratio: ratio(oursNh.add, cNh.add), del_ratio: ratio(oursNh.del, cNh.del), add_vs_gateway_c_floor: ratio(oursNh.add, cGw.add), object_del_s: objectDel },
      verified: true,
      overflows: stats.overflows,
      resent: stats.resent,
    }),
  );
}

main().then(
  () => cleanup(),
  (e) => {
    console.error(`bench:netlink: ${e && e.stack ? e.stack : e}`);
    cleanup();
    process.exit(1);
  },
);
