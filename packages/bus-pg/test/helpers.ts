/** Shared test tools: the real database, a sink that records, and a TCP proxy we can cut. */
import net from 'node:net';
import type { StreamKind, TransportSink, TransportState } from '@retrotro/bus-core';
import { TcpProxy } from '@retrotro/bus-core/testing';
import { Client, escapeIdentifier } from 'pg';

export const DATABASE_URL = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

/** A plain client for what a test does from outside the transport (inject, terminate, inspect). */
export async function adminClient(): Promise<Client> {
  const client = new Client({ connectionString: DATABASE_URL, application_name: 'retrotro-bus-test-admin' });
  await client.connect();
  return client;
}

/** Drops the large-payload tables (`<prefix>_large`) that tests of these prefixes created. */
export async function dropLargeTables(prefixes: Iterable<string>): Promise<void> {
  const names = [...prefixes].map((p) => escapeIdentifier(`${p}_large`));
  if (names.length === 0) return;
  const client = await adminClient();
  try {
    await client.query(`DROP TABLE IF EXISTS ${names.join(', ')}`);
  } finally {
    await client.end();
  }
}

export async function terminate(admin: Client, pid: number | undefined): Promise<void> {
  if (pid === undefined) throw new Error('no backend pid to terminate');
  await admin.query('SELECT pg_terminate_backend($1)', [pid]);
}

/** Backends of one transport instance still known to the server. */
export async function backendsOf(admin: Client, instanceId: string): Promise<string[]> {
  const { rows } = await admin.query<{ application_name: string }>(`SELECT application_name FROM pg_stat_activity WHERE application_name LIKE $1`, [
    `retrotro-bus/%/${instanceId}/%`,
  ]);
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

/** A TcpProxy (bus-core's test kit) in front of the test PostgreSQL. */
export function startPgProxy(upstream = DATABASE_URL): Promise<TcpProxy> {
  const u = new URL(upstream);
  return TcpProxy.start(Number(u.port || 5432), u.hostname);
}

/** `base` with host and port replaced by the proxy's. */
export function viaProxy(proxy: TcpProxy, base = DATABASE_URL): string {
  const u = new URL(base);
  u.hostname = '127.0.0.1';
  u.port = String(proxy.port);
  return u.toString();
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
