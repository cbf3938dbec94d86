/**
 * Test cluster: Socket.IO nodes as separate processes (test/fixtures/node.mjs) and real
 * socket.io-client clients in this process.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { io as connectClient, type Socket } from 'socket.io-client';

export type BusKind = 'postgres' | 'nats';

const FIXTURE = fileURLToPath(new URL('../fixtures/node.mjs', import.meta.url));

export interface NodeOptions {
  heartbeatInterval?: number;
  heartbeatTimeout?: number;
  requestsTimeout?: number;
}

export class TestNode {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  readonly exited: Promise<void>;

  private constructor(
    readonly name: string,
    readonly child: ChildProcess,
    readonly port: number,
  ) {
    child.on('message', (msg: { id?: number; result?: unknown; error?: string }) => {
      const p = msg.id === undefined ? undefined : this.pending.get(msg.id);
      if (!p) return;
      this.pending.delete(msg.id!);
      if (msg.error !== undefined) p.reject(new Error(`${name}: ${msg.error}`));
      else p.resolve(msg.result);
    });
    this.exited = new Promise((resolve) => child.once('exit', () => resolve()));
    void this.exited.then(() => {
      for (const p of this.pending.values()) p.reject(new Error(`${name} exited`));
      this.pending.clear();
    });
  }

  static start(bus: BusKind, prefix: string, name: string, options: NodeOptions = {}): Promise<TestNode> {
    const child = fork(FIXTURE, [], {
      serialization: 'advanced',
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      env: {
        ...process.env,
        BUS: bus,
        PREFIX: prefix,
        NODE_NAME: name,
        HEARTBEAT_INTERVAL: String(options.heartbeatInterval ?? 300),
        HEARTBEAT_TIMEOUT: String(options.heartbeatTimeout ?? 1_500),
        REQUESTS_TIMEOUT: String(options.requestsTimeout ?? 3_000),
      },
    });
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error(`${name} did not start within 15 s`));
      }, 15_000);
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`${name} exited with ${code} before it was ready`));
      });
      child.on('message', (msg: { ready?: boolean; port?: number }) => {
        if (!msg.ready) return;
        clearTimeout(timer);
        child.removeAllListeners('exit');
        resolve(new TestNode(name, child, msg.port!));
      });
    });
  }

  call<T = unknown>(cmd: string, args: Record<string, unknown> = {}): Promise<T> {
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.child.send({ id, cmd, ...args });
    });
  }

  kill(): Promise<void> {
    this.child.kill('SIGKILL');
    return this.exited;
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    await Promise.race([this.call('close').catch(() => {}), new Promise((r) => setTimeout(r, 5_000))]);
    if (this.child.exitCode === null) this.child.kill('SIGKILL');
    await this.exited;
  }
}

export interface TestClient {
  name: string;
  socket: Socket;
  /** Every event received, in order: [event, ...args]. */
  events: unknown[][];
  of(event: string): unknown[][];
}

export function connect(node: TestNode, name: string, rooms: string[] = []): Promise<TestClient> {
  const socket = connectClient(`http://127.0.0.1:${node.port}`, {
    transports: ['websocket'],
    auth: { rooms, client: name },
    reconnection: false,
    forceNew: true,
  });
  const events: unknown[][] = [];
  socket.onAny((event: string, ...args: unknown[]) => {
    // Acks are answered here: `ask` replies with who answered.
    const ack = typeof args.at(-1) === 'function' ? (args.pop() as (v: unknown) => void) : undefined;
    events.push([event, ...args]);
    if (event === 'ask') ack?.(`${name}:${String(args[0])}`);
  });
  const client: TestClient = { name, socket, events, of: (event) => events.filter((e) => e[0] === event) };
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`client ${name} did not connect`)), 10_000);
    socket.once('connect', () => {
      clearTimeout(timer);
      resolve(client);
    });
    socket.once('connect_error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
  });
}

export async function waitFor(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
