/**
 * Throwaway network namespaces for kernel tests.
 *
 * Every kernel test runs inside a namespace it creates here and deletes
 * afterwards, whatever happens: nothing in the root namespace is touched.
 * Layout: `lo` up, a veth pair veth0/veth1 (both ends inside the namespace),
 * veth0 with 192.0.2.1/24 and 2001:db8:1::1/64, veth1 with 198.51.100.1/24
 * and 2001:db8:2::1/64, so gateways 192.0.2.2, 198.51.100.2, 2001:db8:1::2
 * and 2001:db8:2::2 are reachable on-link. IPv6 DAD is off so addresses are
 * usable at once, and createNetns returns only once the kernel has finished
 * configuring them (link-local addresses, local routes), so a snapshot of the
 * kernel's own routes taken right after it is final. No traffic leaves the
 * namespace.
 *
 * Set KRTSYNC_SKIP_KERNEL_TESTS=1 to skip kernel tests on a machine without
 * root; CI unsets it and fails if a namespace cannot be created.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

export const skipKernelTests = process.env.KRTSYNC_SKIP_KERNEL_TESTS === '1';

/** `describe` for suites that need the kernel: runs unless KRTSYNC_SKIP_KERNEL_TESTS=1. */
export const kernelDescribe: jest.Describe = skipKernelTests ? describe.skip : describe;

let counter = 0;

/**
 * How `ip route` prints a protocol number on this host: its name when
 * rt_protos or rt_protos.d names it (scripts/install.sh names 144 "krtsync"),
 * the number otherwise. Text oracles that filter on "proto N" use this, so the
 * suite passes on a host where krtsync is installed.
 */
export function protoShown(n: number): string {
  let name = String(n);
  for (const dir of ['/usr/share/iproute2', '/etc/iproute2']) {
    const files = [join(dir, 'rt_protos')];
    try {
      files.push(...readdirSync(join(dir, 'rt_protos.d')).filter((f) => f.endsWith('.conf')).sort().map((f) => join(dir, 'rt_protos.d', f)));
    } catch {
      /* no such directory */
    }
    for (const f of files) {
      let text = '';
      try {
        text = readFileSync(f, 'utf8');
      } catch {
        continue;
      }
      for (const line of text.split('\n')) {
        const m = /^\s*(0x[0-9a-f]+|\d+)\s+(\S+)/i.exec(line.replace(/#.*/, ''));
        if (m && Number(m[1]) === n) name = m[2]!;
      }
    }
  }
  return name;
}

/** `proto N` as `ip route` prints our protocol number (144), as a whole word. */
export const OUR_PROTO_SHOWN = new RegExp(`\\bproto ${protoShown(144)}\\b`);

export interface Netns {
  readonly name: string;
  /** /run/netns/NAME, for setns(2). */
  readonly path: string;
  /** Runs a command inside the namespace; returns stdout. Throws with stderr on failure. */
  exec(cmd: string, args: readonly string[], input?: string): string;
  /** `ip ARGS` inside the namespace. */
  ip(...args: string[]): string;
  /** `ip -j ARGS` inside the namespace, parsed. */
  ipJson<T = unknown>(...args: string[]): T;
  /** `ip -batch -` inside the namespace. */
  ipBatch(lines: readonly string[]): string;
  /** Link index of a device in the namespace. */
  ifindex(dev: string): number;
  destroy(): void;
}

/**
 * An `ip route` line without its `nhid N`: a route on a nexthop object (krtsync's default) prints the
 * object's next hops beside the id, so the rest of the line says where it goes either way; the ids
 * are allocation details, checked where they matter (test/integration/kernel-nexthops.test.ts, `ip -j nexthop`).
 */
export function dropNhid(line: string): string {
  return line.replace(/ nhid \d+/, '');
}

export interface IpRoute {
  dst: string;
  gateway?: string;
  dev?: string;
  protocol?: string;
  metric?: number;
  table?: string;
  type?: string;
  scope?: string;
  flags?: string[];
  prefsrc?: string;
  /** The nexthop object the route names. */
  nhid?: number;
  [k: string]: unknown;
}

function run(cmd: string, args: readonly string[], input?: string): string {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', input, stdio: ['pipe', 'pipe', 'pipe'], maxBuffer: 1 << 30 });
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    throw new Error(`${cmd} ${args.join(' ')}: ${err.stderr?.trim() || err.message}`);
  }
}

/** `bare`: only `lo` up, no veth pair (for topologies made with linkNetns). */
export function createNetns(tag = 'krt', opts: { bare?: boolean } = {}): Netns {
  const name = `${tag}-${process.pid}-${++counter}`;
  run('ip', ['netns', 'add', name]);
  const exec = (cmd: string, args: readonly string[], input?: string): string => run('ip', ['netns', 'exec', name, cmd, ...args], input);
  const ns: Netns = {
    name,
    path: `/run/netns/${name}`,
    exec,
    ip: (...args) => exec('ip', args),
    ipJson: <T>(...args: string[]) => {
      const out = exec('ip', ['-j', ...args]).trim();
      return (out === '' ? [] : JSON.parse(out)) as T;
    },
    ipBatch: (lines) => exec('ip', ['-batch', '-'], lines.join('\n') + '\n'),
    ifindex: (dev) => {
      const links = ns.ipJson<Array<{ ifindex: number }>>('link', 'show', 'dev', dev);
      return links[0]!.ifindex;
    },
    destroy: () => {
      try {
        run('ip', ['netns', 'del', name]);
      } catch {
        /* already gone */
      }
    },
  };
  try {
    exec('sysctl', ['-q', '-w', 'net.ipv6.conf.all.accept_dad=0', 'net.ipv6.conf.default.accept_dad=0']);
    if (opts.bare) {
      ns.ip('link', 'set', 'lo', 'up');
      return ns;
    }
    ns.ipBatch([
      'link set lo up',
      'link add veth0 type veth peer name veth1',
      'link set veth0 up',
      'link set veth1 up',
      'addr add 192.0.2.1/24 dev veth0',
      'addr add 2001:db8:1::1/64 dev veth0 nodad',
      'addr add 198.51.100.1/24 dev veth1',
      'addr add 2001:db8:2::1/64 dev veth1 nodad',
    ]);
    awaitAddrconf(ns, ['veth0', 'veth1']);
  } catch (e) {
    ns.destroy();
    throw e;
  }
  return ns;
}

/**
 * Blocks until IPv6 address configuration on `devs` is done: each link is up with its carrier
 * (operstate UP), has its link-local address, no address is still tentative, and every IPv6
 * address has its `local` route in table local. The kernel does this after `ip` returns: the
 * carrier comes through linkwatch, the link-local address on it, and the local routes from
 * addrconf's work queue even with `nodad` and DAD off. A test that snapshots the kernel's own
 * routes before then would see them appear later as changes. Waits for that state, not a time.
 */
function awaitAddrconf(ns: Netns, devs: readonly string[], timeoutMs = 30_000): void {
  const pause = new Int32Array(new SharedArrayBuffer(4));
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const missing = addrconfPending(ns, devs);
    if (missing.length === 0) return;
    if (Date.now() > deadline) throw new Error(`namespace ${ns.name}: IPv6 address configuration not done within ${timeoutMs} ms: ${missing.join('; ')}`);
    Atomics.wait(pause, 0, 0, 10); // a synchronous sleep: createNetns is synchronous
  }
}

/** What IPv6 address configuration on `devs` still lacks (empty: done). */
function addrconfPending(ns: Netns, devs: readonly string[]): string[] {
  type Addr = { family: string; local: string; scope: string; tentative?: boolean };
  const links = ns.ipJson<Array<{ ifname: string; operstate: string; addr_info: Addr[] }>>('addr', 'show');
  const locals = new Set(ns.ipJson<Array<{ dst: string; type?: string; dev?: string }>>('-6', 'route', 'show', 'table', 'local').filter((r) => r.type === 'local').map((r) => `${r.dst} ${r.dev}`));
  const out: string[] = [];
  for (const dev of devs) {
    const link = links.find((l) => l.ifname === dev);
    if (link === undefined) {
      out.push(`${dev} missing`);
      continue;
    }
    if (link.operstate !== 'UP') out.push(`${dev} ${link.operstate}`);
    const v6 = link.addr_info.filter((a) => a.family === 'inet6');
    if (!v6.some((a) => a.scope === 'link')) out.push(`${dev} has no link-local address yet`);
    for (const a of v6) {
      if (a.tentative) out.push(`${a.local} on ${dev} tentative`);
      else if (!locals.has(`${a.local} ${dev}`)) out.push(`no local route for ${a.local} on ${dev}`);
    }
  }
  return out;
}

/**
 * A veth pair between two namespaces: `aDev` in `a` with `aAddr`, `bDev` in
 * `b` with `bAddr` (CIDR forms), both up. Deleted with their namespaces.
 */
export function linkNetns(a: Netns, aDev: string, aAddr: string, b: Netns, bDev: string, bAddr: string): void {
  a.ip('link', 'add', aDev, 'type', 'veth', 'peer', 'name', bDev);
  a.ip('link', 'set', bDev, 'netns', b.name);
  a.ipBatch([`addr add ${aAddr} dev ${aDev}`, `link set ${aDev} up`]);
  b.ipBatch([`addr add ${bAddr} dev ${bDev}`, `link set ${bDev} up`]);
}

/** Routes of `table` (default all) as iproute2 sees them: the independent oracle. */
export function kernelRoutes(ns: Netns, family: '-4' | '-6', table = 'all'): IpRoute[] {
  return ns.ipJson<IpRoute[]>(family, 'route', 'show', 'table', table);
}
