/** Shared test tools: the real database, a sink that records, and a TCP proxy we can cut. */
import net from 'node:net';
import type { StreamKind, TransportSink, TransportState } from '@retrotro/bus-core';
import { Client } from 'pg';

export const DATABASE_URL = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

/** A plain client for what a test does from outside the transport (inject, terminate, inspect). */
export async function adminClient(): Promise<Client> {
  const client = new Client({ connectionString: DATABASE_URL, application_name: 'retrotro-bus-test-admin' });
  await client.connect();
  return client;
}

export async function terminate(admin: Client, pid: number | undefined): Promise<void> {
  if (pid === undefined) throw new Error('no backend pid to terminate');
  await admin.query('SELECT pg_terminate_backend($1)', [pid]);
}

/** Backends of one transport instance still known to the server. */
export async function backendsOf(admin: Client, instanceId: string): Promise<string[]> {
  const { rows } = await admin.query<{ application_name: string }>(
    `SELECT application_name FROM pg_stat_activity WHERE application_name LIKE $1`,
    [`retrotro-bus/%/${instanceId}/%`],
  );
  return rows.map((r) => r.application_name);
}

export class RecordingSink implements TransportSink {
  readonly received: Array<{ stream: StreamKind; payload: string }> = [];
  readonly states: Array<{ state: TransportState; error?: Error }> = [];

  receive(stream: StreamKind, payload: string): void {
    this.received.push({ stream, payload });
  }
  stateChanged(state: TransportState, error?: Error): void {
    this.states.push(error === undefined ? { state } : { state, error });
  }
  payloads(stream?: StreamKind): string[] {
    return this.received.filter((r) => stream === undefined || r.stream === stream).map((r) => r.payload);
  }
  count(state: TransportState): number {
    return this.states.filter((s) => s.state === state).length;
  }
}

/**
 * A TCP proxy in front of PostgreSQL that a test can break in the two ways networks break:
 * `sever()` resets every connection and refuses new ones; `blackhole()` keeps sockets open
 * but silently drops all traffic (a dead peer, a partition), which only a probe can notice.
 */
export class TcpProxy {
  private server = net.createServer((socket) => this.accept(socket));
  private readonly pairs = new Set<{ client: net.Socket; upstream: net.Socket }>();
  private mode: 'open' | 'refuse' | 'blackhole' = 'open';
  /** Connections accepted so far (refused ones included). */
  accepted = 0;

  private constructor(
    private readonly upstreamHost: string,
    private readonly upstreamPort: number,
  ) {}

  static async start(upstream = DATABASE_URL): Promise<TcpProxy> {
    const u = new URL(upstream);
    const proxy = new TcpProxy(u.hostname, Number(u.port || 5432));
    await new Promise<void>((resolve) => proxy.server.listen(0, '127.0.0.1', resolve));
    return proxy;
  }

  get port(): number {
    return (this.server.address() as net.AddressInfo).port;
  }

  /** DATABASE_URL with host and port replaced by this proxy. */
  url(base = DATABASE_URL): string {
    const u = new URL(base);
    u.hostname = '127.0.0.1';
    u.port = String(this.port);
    return u.toString();
  }

  sever(): void {
    this.mode = 'refuse';
    this.dropAll();
  }

  blackhole(): void {
    this.mode = 'blackhole';
    for (const { client, upstream } of this.pairs) {
      client.unpipe(upstream);
      upstream.unpipe(client);
      client.removeAllListeners('data');
      upstream.removeAllListeners('data');
      client.on('data', () => {}); // swallow: bytes go nowhere, nothing comes back
      upstream.on('data', () => {});
    }
  }

  restore(): void {
    this.mode = 'open';
  }

  async stop(): Promise<void> {
    this.dropAll();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private dropAll(): void {
    for (const { client, upstream } of this.pairs) {
      client.destroy();
      upstream.destroy();
    }
    this.pairs.clear();
  }

  private accept(client: net.Socket): void {
    this.accepted++;
    client.on('error', () => {});
    if (this.mode === 'refuse') {
      client.destroy();
      return;
    }
    const upstream = net.connect(this.upstreamPort, this.upstreamHost);
    upstream.on('error', () => {});
    const pair = { client, upstream };
    this.pairs.add(pair);
    const close = () => {
      client.destroy();
      upstream.destroy();
      this.pairs.delete(pair);
    };
    client.on('close', close);
    upstream.on('close', close);
    if (this.mode === 'blackhole') {
      client.on('data', () => {});
      return;
    }
    client.pipe(upstream);
    upstream.pipe(client);
  }
}

/** A TCP server that accepts connections and never answers (a firewall that drops, a hung host). */
export async function silentServer(): Promise<{ port: number; sockets: () => number; stop: () => Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on('error', () => {});
    s.resume(); // read and drop: a socket never read never sees the peer's FIN
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    sockets: () => sockets.size,
    stop: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
