/**
 * HTTP from inside a test's network namespace (a listener there is not
 * reachable from the test process): one `node` per request, run by
 * `ip netns exec`, with fetch. Also a reader for the Prometheus text format
 * good enough for assertions.
 */
import { spawnSync } from 'node:child_process';
import type { Netns } from './netns';

export interface HttpAnswer {
  status?: number;
  headers?: Record<string, string>;
  body?: string;
  /** The connection failed: its error code (ECONNREFUSED, …). */
  error?: string;
}

const FETCH = `
const [url, method, timeout] = process.argv.slice(1);
// Exits once it has an answer: a connection attempt still waiting for the SYN's answer would keep it alive.
const done = (o) => process.stdout.write(JSON.stringify(o), () => process.exit(0));
fetch(url, { method, signal: AbortSignal.timeout(Number(timeout)) }).then(
  async (r) => done({ status: r.status, headers: Object.fromEntries(r.headers), body: await r.text() }),
  (e) => done({ error: String(e.cause?.code ?? e.name ?? e.message) }),
);`;

/** The command that fetches `url` and prints an HttpAnswer as JSON (to run wherever the listener is reachable). */
export function fetchCommand(url: string, method = 'GET', timeoutMs = 5000): string[] {
  return [process.execPath, '-e', FETCH, url, method, String(timeoutMs)];
}

export function httpIn(ns: Netns | string, url: string, method = 'GET', timeoutMs = 5000): HttpAnswer {
  const name = typeof ns === 'string' ? ns : ns.name;
  const r = spawnSync('ip', ['netns', 'exec', name, ...fetchCommand(url, method, timeoutMs)], { encoding: 'utf8', timeout: timeoutMs + 10_000 });
  if (r.status !== 0) throw new Error(`fetch ${url} in ${name}: ${r.stderr}`);
  return JSON.parse(r.stdout) as HttpAnswer;
}

const FETCH_MANY = `
const urls = JSON.parse(process.argv[1]);
Promise.all(urls.map((u) => fetch(u).then(async (r) => ({ status: r.status, body: await r.text() }), (e) => ({ error: String(e.cause?.code ?? e.message) })))).then((a) =>
  process.stdout.write(JSON.stringify(a)),
);`;

/** Several GETs at once from one process in the namespace (one `node` start instead of one per URL). */
export function httpManyIn(ns: Netns, urls: readonly string[]): HttpAnswer[] {
  const r = spawnSync('ip', ['netns', 'exec', ns.name, process.execPath, '-e', FETCH_MANY, JSON.stringify(urls)], { encoding: 'utf8', timeout: 30_000, maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`fetch in ${ns.name}: ${r.stderr}`);
  return JSON.parse(r.stdout) as HttpAnswer[];
}

/** Samples of a scrape by series (`name{a="b",…}` as written), value as a number. */
export function samples(text: string): Map<string, number> {
  const m = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const i = line.lastIndexOf(' ');
    m.set(line.slice(0, i), Number(line.slice(i + 1)));
  }
  return m;
}

/** The value of `name` with exactly these labels (in any order), or undefined. */
export function sample(text: string | Map<string, number>, name: string, labels: Record<string, string> = {}): number | undefined {
  const all = typeof text === 'string' ? samples(text) : text;
  const want = Object.entries(labels)
    .map(([k, v]) => `${k}="${v}"`)
    .sort()
    .join(',');
  for (const [series, v] of all) {
    const b = series.indexOf('{');
    const n = b < 0 ? series : series.slice(0, b);
    if (n !== name) continue;
    const got = b < 0 ? '' : series.slice(b + 1, -1).split(/,(?=[a-z_]+=")/).sort().join(',');
    if (got === want) return v;
  }
  return undefined;
}
