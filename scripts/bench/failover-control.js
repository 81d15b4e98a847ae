'use strict';
// bench:failover's control sockets (failover.js): krtsync's (newline-delimited JSON, docs/cli.md)
// and BIRD's (what birdc speaks), one request at a time.
const net = require('node:net');

/** Lines from a stream socket, one at a time. */
function lineReader(conn) {
  let rest = '';
  const lines = [];
  let wake;
  let ended = false;
  conn.on('data', (c) => {
    const parts = (rest + c).split('\n');
    rest = parts.pop();
    lines.push(...parts);
    wake?.();
  });
  conn.on('close', () => {
    ended = true;
    wake?.();
  });
  return async () => {
    while (!lines.length) {
      if (ended) throw new Error('connection closed');
      await new Promise((r) => (wake = r));
      wake = undefined;
    }
    return lines.shift();
  };
}

async function connectUnix(p) {
  const conn = net.createConnection(p);
  await new Promise((res, rej) => conn.once('connect', res).once('error', rej));
  return conn;
}

/** krtsync's control socket: one request at a time, answered by `{id, ok, result}`. */
async function krtsyncControl(sock) {
  const conn = await connectUnix(sock);
  const next = lineReader(conn);
  let id = 0;
  return {
    async request(command, args = {}) {
      const my = ++id;
      conn.write(JSON.stringify({ id: my, command, args }) + '\n');
      for (;;) {
        const m = JSON.parse(await next());
        if (m.id !== my || m.more) continue;
        if (!m.ok) throw new Error(`${command}: ${m.error?.code} ${m.error?.message}`);
        return m.result;
      }
    },
    close: () => conn.destroy(),
  };
}

/**
 * Whether krtsync's kernel protocols, by its `show protocols` answer, still have work: routes pending,
 * withdrawing or failed, or a sync not idle (bench:failover's "settled", and the daemon's own "done" in
 * bench:failover and in bench:e2e's churn, ask this).
 */
function krtsyncBusy(protos) {
  return protos.some((p) => p.type === 'kernel' && (p.pending > 0 || p.withdrawing > 0 || p.failed > 0 || !String(p.syncState).split(', ').every((x) => / idle$/.test(x))));
}

/** BIRD's control socket (what birdc speaks): a command, then lines up to the one with a code and a space. */
async function birdControl(sock) {
  const conn = await connectUnix(sock);
  const next = lineReader(conn);
  await next(); // 0001 BIRD x.y.z ready.
  return {
    async cmd(line) {
      conn.write(line + '\n');
      const out = [];
      for (;;) {
        const l = await next();
        out.push(l);
        if (/^\d{4} /.test(l)) return out.join('\n');
      }
    },
    close: () => conn.destroy(),
  };
}

module.exports = { lineReader, connectUnix, krtsyncControl, krtsyncBusy, birdControl };
