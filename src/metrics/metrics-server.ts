/**
 * The HTTP listener Prometheus scrapes: GET (or HEAD) /metrics answers the
 * text format, / a pointer to it; anything else is 404, any other method
 * 405. Nothing else is served and nothing is read from a request but its
 * line and headers.
 *
 * Bounded like the control socket: at most MAX_CONNECTIONS at once, headers
 * within 5 s, a whole request within 10 s, idle keep-alive connections
 * closed after 5 s (Prometheus keeps one open between scrapes and opens a
 * new one when it is gone). A scrape failing inside is a 500 for that scrape
 * and one log line, never a crash.
 *
 * listen() turns the usual failures into errors that say what to change:
 * the port in use, an address this host does not have, or (under the
 * shipped systemd unit) a bind the unit's SocketBindAllow=/IPAddressAllow=
 * refuse.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { ListenAddress } from '../config/config';
import { KrtError } from '../lib/errors';

const MAX_CONNECTIONS = 32;

export interface MetricsServerOptions {
  listen: ListenAddress;
  scrape(): Promise<{ contentType: string; body: string }>;
  onError?(message: string): void;
}

export class MetricsServer {
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  private failing = false;

  constructor(private readonly opts: MetricsServerOptions) {}

  get listen(): ListenAddress {
    return this.opts.listen;
  }

  /** The port actually bound (the configured one; a test may ask for any). */
  get port(): number | undefined {
    const a = this.server?.address();
    return a && typeof a === 'object' ? a.port : undefined;
  }

  async start(): Promise<void> {
    const { host, port, text } = this.opts.listen;
    const server = createServer({ requestTimeout: 10_000, headersTimeout: 5_000, keepAliveTimeout: 5_000 }, (req, res) => void this.answer(req, res));
    server.maxConnections = MAX_CONNECTIONS;
    server.on('connection', (s: Socket) => {
      this.sockets.add(s);
      s.once('close', () => this.sockets.delete(s));
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host, port, exclusive: true }, () => {
        server.off('error', reject);
        resolve();
      });
    }).catch((e: NodeJS.ErrnoException) => {
      throw new KrtError('KRT_ERR_METRICS_LISTEN', `metrics.listen ${text}: ${listenHint(e)}`);
    });
    server.on('error', (e) => this.opts.onError?.(`metrics listener ${text}: ${e.message}`));
    server.on('clientError', (_e, sock: Socket) => sock.destroy());
    this.server = server;
  }

  /** Stops listening and closes every connection, scrapes in progress included. Idempotent. */
  async close(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    for (const s of this.sockets) s.destroy();
    await closed;
  }

  private async answer(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { Allow: 'GET, HEAD', 'Content-Type': 'text/plain; charset=utf-8' }).end('only GET and HEAD\n');
      return;
    }
    if (path === '/') {
      res.writeHead(200, { 'Content-Type': 'text/plain; charset=utf-8' }).end('krtsync: metrics for Prometheus at /metrics\n');
      return;
    }
    if (path !== '/metrics') {
      res.writeHead(404, { 'Content-Type': 'text/plain; charset=utf-8' }).end('not found: metrics are at /metrics\n');
      return;
    }
    try {
      const { contentType, body } = await this.opts.scrape();
      this.failing = false;
      res.writeHead(200, { 'Content-Type': contentType, 'Content-Length': Buffer.byteLength(body) });
      res.end(req.method === 'HEAD' ? undefined : body);
    } catch (e) {
      // Said once until a scrape works again: Prometheus would repeat it every scrape.
      if (!this.failing) this.opts.onError?.(`metrics scrape failed: ${(e as Error).message}`);
      this.failing = true;
      if (!res.headersSent) res.writeHead(500, { 'Content-Type': 'text/plain; charset=utf-8' });
      res.end(`scrape failed: ${(e as Error).message}\n`);
    }
  }
}

function listenHint(e: NodeJS.ErrnoException): string {
  switch (e.code) {
    case 'EADDRINUSE':
      return 'the port is in use (another krtsync, or another program, listens there)';
    case 'EADDRNOTAVAIL':
      return 'no interface of this host has that address';
    case 'EACCES':
    case 'EPERM':
      return (
        `${e.code}: not allowed to bind it. Under the shipped systemd unit, only the port in SocketBindAllow= (tcp:9725) may be bound; ` +
        'another port or address needs a drop-in (systemctl edit krtsync; docs/metrics.md)'
      );
    default:
      return `${e.code ?? ''} ${e.message}`.trim();
  }
}
