/**
 * A TCP proxy between one pod and a shared broker (PostgreSQL or NATS), so a test can cut
 * that pod's connections from outside, as a network failure would, and keep it cut for as
 * long as it likes, without touching the shared service other test runs depend on.
 * (Adapted from packages/bus-nats/test/helpers/tcp-proxy.ts.)
 */
import { createConnection, createServer, type Server, type Socket } from 'node:net';

export class TcpProxy {
  private readonly pairs = new Set<{ client: Socket; upstream: Socket }>();
  private refusing = false;
  private refuseUntil = 0;
  /** Connections accepted and piped through (refused ones not counted). */
  accepted = 0;
  /** Connections refused while cut. */
  refused = 0;

  private constructor(
    private readonly server: Server,
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
   * Local ports of the proxy's own connections to the target: what the server sees as the
   * client port (PostgreSQL: `pg_stat_activity.client_port`), i.e. which backends are ours.
   */
  upstreamLocalPorts(): number[] {
    return [...this.pairs].map((p) => p.upstream.localPort).filter((p): p is number => typeof p === 'number');
  }

  /** While on, new connections are accepted and closed at once (the broker looks down). */
  refuse(on: boolean): void {
    this.refusing = on;
  }

  /** Destroys every proxied connection and refuses new ones for `refuseMs`. */
  sever(refuseMs = 500): void {
    this.refuseUntil = Date.now() + refuseMs;
    this.dropAll();
  }

  /** Destroys every proxied connection (without refusing new ones). */
  dropAll(): void {
    for (const { client, upstream } of this.pairs) {
      client.destroy();
      upstream.destroy();
    }
    this.pairs.clear();
  }

  async close(): Promise<void> {
    this.refusing = true;
    this.dropAll();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(client: Socket): void {
    if (this.refusing || Date.now() < this.refuseUntil) {
      this.refused++;
      client.destroy();
      return;
    }
    this.accepted++;
    const upstream = createConnection({ host: this.targetHost, port: this.targetPort });
    const pair = { client, upstream };
    this.pairs.add(pair);
    const drop = () => {
      client.destroy();
      upstream.destroy();
      this.pairs.delete(pair);
    };
    client.on('error', drop).on('close', drop);
    upstream.on('error', drop).on('close', drop);
    client.pipe(upstream);
    upstream.pipe(client);
  }
}
