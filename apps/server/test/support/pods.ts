/**
 * Test support: real server processes ("pods") and real WebSocket clients.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import { Authenticator } from '../../src/auth.js';

export const MAIN = fileURLToPath(new URL('../../dist/main.js', import.meta.url));
export const TEST_SECRET = 'multipod-test-secret';
export const auth = new Authenticator(TEST_SECRET);

let prefixes = 0;
/** A bus prefix no other run shares (channels and subjects are named after it). */
export const uniqueBusPrefix = (label: string) => `mp_${label}_${process.pid}_${Date.now().toString(36)}_${prefixes++}`;

export interface Pod {
  port: number;
  proc: ChildProcess;
  logs: string[];
  url(path?: string): string;
  /** SIGTERM and wait for exit; returns the exit code. */
  stop(): Promise<number | null>;
  /** SIGKILL: a crash, no goodbye. */
  kill(): Promise<void>;
  exited: Promise<number | null>;
}

export async function startPod(env: Record<string, string>, { waitReady = true } = {}): Promise<Pod> {
  const proc = spawn(process.execPath, [MAIN], {
    env: {
      PATH: process.env.PATH ?? '',
      PORT: '0',
      HOST: '127.0.0.1',
      JWT_SECRET: TEST_SECRET,
      LOG_LEVEL: 'info',
      PRESENCE_HEARTBEAT_MS: '500',
      PRESENCE_TTL_MS: '2000',
      DISCONNECT_GRACE_MS: '1000',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: string[] = [];
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  createInterface({ input: proc.stderr! }).on('line', (l) => logs.push(l));
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`pod did not start in 20 s:\n${logs.join('\n')}`)), 20_000);
    createInterface({ input: proc.stdout! }).on('line', (line) => {
      logs.push(line);
      try {
        const entry = JSON.parse(line) as { msg?: string; port?: number };
        if (entry.msg === 'listening' && entry.port) {
          clearTimeout(timer);
          resolve(entry.port);
        }
      } catch {
        // not a log line
      }
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`pod exited with ${code} before listening:\n${logs.join('\n')}`));
    });
  });
  const pod: Pod = {
    port,
    proc,
    logs,
    exited,
    url: (path = '') => `http://127.0.0.1:${port}${path}`,
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
      return exited;
    },
    async kill() {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
      await exited;
    },
  };
  if (waitReady) await waitUntil('pod ready', async () => (await fetch(pod.url('/readyz'))).status === 200, 20_000);
  return pod;
}

export async function waitUntil(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      if (await check()) return;
    } catch {
      // not yet
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

export interface Frame {
  type: string;
  payload?: any;
}

/** A WebSocket client that records every frame and can wait for one. */
export class Client {
  readonly frames: Frame[] = [];
  closeCode: number | undefined;
  private readonly ws: WebSocket;
  readonly opened: Promise<void>;
  readonly closed: Promise<number>;

  constructor(url: string, options?: WebSocket.ClientOptions) {
    this.ws = new WebSocket(url, options);
    this.ws.on('message', (data) => this.frames.push(JSON.parse(data.toString()) as Frame));
    this.opened = new Promise((resolve, reject) => {
      this.ws.once('open', () => resolve());
      this.ws.once('error', reject);
      this.ws.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
    });
    this.closed = new Promise((resolve) =>
      this.ws.once('close', (code) => {
        this.closeCode = code;
        resolve(code);
      }),
    );
  }

  static async connect(pod: Pod, name: string, options: { userId?: string; rooms?: string[] } = {}): Promise<Client> {
    const token = await auth.issue(name, options);
    const c = new Client(`ws://127.0.0.1:${pod.port}/ws?token=${encodeURIComponent(token)}`);
    await c.opened;
    return c;
  }

  send(type: string, payload?: unknown): void {
    this.ws.send(JSON.stringify(payload === undefined ? { type } : { type, payload }));
  }

  sendRaw(data: string | Buffer): void {
    this.ws.send(data);
  }

  of(type: string): Frame[] {
    return this.frames.filter((f) => f.type === type);
  }

  /** Waits for a frame of `type` (matching `where`) that arrived after frame index `from`. */
  async next(type: string, where: (f: Frame) => boolean = () => true, timeoutMs = 15_000, from = 0): Promise<Frame> {
    let found: Frame | undefined;
    await waitUntil(
      `a ${type} frame`,
      () => {
        found = this.frames.slice(from).find((f) => f.type === type && where(f));
        return found !== undefined;
      },
      timeoutMs,
    );
    return found!;
  }

  async join(roomId: string): Promise<Frame> {
    const from = this.frames.length;
    this.send('join_room', { roomId });
    return this.next('room_state', (f) => f.payload.roomId === roomId, 15_000, from);
  }

  close(): Promise<number> {
    this.ws.close();
    return this.closed;
  }

  /** Drops the TCP connection without a close frame (a lost network). */
  terminate(): void {
    this.ws.terminate();
  }
}

/** Opens clients and remembers them, so a suite can drop them all at the end. */
export class ClientPool {
  private readonly clients: Client[] = [];

  readonly connect = async (pod: Pod, name: string, options?: { userId?: string; rooms?: string[] }): Promise<Client> =>
    this.track(await Client.connect(pod, name, options));

  track(client: Client): Client {
    this.clients.push(client);
    return client;
  }

  /** Drops every connection without a close frame. */
  dropAll(): void {
    for (const c of this.clients.splice(0)) c.terminate();
  }
}

export const names = (participants: Array<{ userName: string }>) => participants.map((p) => p.userName).sort();

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** The pod's `/metrics` text. */
export async function scrapeMetrics(pod: Pod): Promise<string> {
  const res = await fetch(pod.url('/metrics'));
  if (res.status !== 200) throw new Error(`/metrics answered ${res.status}`);
  return res.text();
}

/**
 * The value of a Prometheus sample `name` whose labels include all of `labels` (summed when
 * several series match; 0 when none does).
 */
export function metricValue(text: string, name: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    const m = /^([A-Za-z_:][A-Za-z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line.trim());
    if (!m || m[1] !== name) continue;
    const have = new Map([...(m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((l) => [l[1]!, l[2]!]));
    if (Object.entries(labels).every(([k, v]) => have.get(k) === v)) sum += Number(m[3]);
  }
  return sum;
}
