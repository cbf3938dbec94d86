/**
 * A TCP proxy between one client (a transport, a pod) and a real broker, so a test can break
 * that client's connections from outside, the ways networks break, without touching the
 * shared broker other tests depend on:
 *
 * - `sever()`: every connection is reset, new ones are refused (for a while, or until
 *   `restore()`): the broker is down or unreachable;
 * - `refuse()`: live connections stay, new ones are refused until `restore()`;
 * - `blackhole()`: sockets stay open but traffic silently goes nowhere (a dead peer, a
 *   partition), which only a liveness probe can notice.
 */
import { createConnection, createServer, type Server, type Socket } from 'node:net';

interface Pair {
  client: Socket;
  upstream: Socket;
}

export class TcpProxy {
  private readonly pairs = new Set<Pair>();
  private mode: 'open' | 'refuse' | 'blackhole' = 'open';
  private refuseUntil = 0;
  /** Connection attempts seen, refused ones included. */
  attempts = 0;
  /** Connection attempts refused. */
  refused = 0;

  private constructor(
    private readonly server: Server,
    /** The proxy's own port on 127.0.0.1: point the client here. */
    readonly port: number,
    readonly targetHost: string,
    readonly targetPort: number,
  ) {}

  static async start(targetPort: number, targetHost = '127.0.0.1'): Promise<TcpProxy> {
    let proxy: TcpProxy | undefined;
    const server = createServer((client) => proxy?.accept(client));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    const address = server.address();
    proxy = new TcpProxy(server, typeof address === 'object' && address ? address.port : 0, targetHost, targetPort);
    return proxy;
  }

  /** Live proxied connections. */
  get connections(): number {
    return this.pairs.size;
  }

  /**
   * Local ports of the proxy's connections to the broker: what the broker sees as the client
   * port (PostgreSQL: `pg_stat_activity.client_port`), i.e. which sessions go through here.
   */
  upstreamLocalPorts(): number[] {
    return [...this.pairs].map((p) => p.upstream.localPort).filter((p): p is number => typeof p === 'number');
  }

  /** Resets every connection and refuses new ones for `refuseMs`, or until `restore()` if omitted. */
  sever(refuseMs?: number): void {
    if (refuseMs === undefined) this.mode = 'refuse';
    else this.refuseUntil = Date.now() + refuseMs;
    this.dropAll();
  }

  /** Refuses new connections until `restore()`; live ones carry on. */
  refuse(): void {
    this.mode = 'refuse';
  }

  /** Live and new connections stay open but carry nothing, either way, until `restore()` (for new ones). */
  blackhole(): void {
    this.mode = 'blackhole';
    for (const { client, upstream } of this.pairs) {
      client.unpipe(upstream);
      upstream.unpipe(client);
      client.removeAllListeners('data').on('data', () => {}); // swallow: bytes go nowhere
      upstream.removeAllListeners('data').on('data', () => {});
    }
  }

  /** New connections go through again. */
  restore(): void {
    this.mode = 'open';
    this.refuseUntil = 0;
  }

  /** Resets every live connection (new ones are still accepted). */
  dropAll(): void {
    for (const { client, upstream } of this.pairs) {
      client.destroy();
      upstream.destroy();
    }
    this.pairs.clear();
  }

  async close(): Promise<void> {
    this.mode = 'refuse';
    this.dropAll();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(client: Socket): void {
    this.attempts++;
    client.on('error', () => {});
    if (this.mode === 'refuse' || Date.now() < this.refuseUntil) {
      this.refused++;
      client.destroy();
      return;
    }
    const upstream = createConnection({ host: this.targetHost, port: this.targetPort });
    upstream.on('error', () => {});
    const pair = { client, upstream };
    this.pairs.add(pair);
    const drop = () => {
      client.destroy();
      upstream.destroy();
      this.pairs.delete(pair);
    };
    client.on('close', drop);
    upstream.on('close', drop);
    if (this.mode === 'blackhole') {
      client.on('data', () => {});
      upstream.on('data', () => {});
      return;
    }
    client.pipe(upstream);
    upstream.pipe(client);
  }
}
