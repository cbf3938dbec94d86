/**
 * Test-owned nats-server processes on free ports (never the shared one on 4222), and a
 * port nobody listens on.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

export const NATS_SERVER_BIN = process.env.NATS_SERVER_BIN ?? '/usr/sbin/nats-server';
export const SHARED_NATS_URL = process.env.NATS_URL ?? 'nats://127.0.0.1:4222';

/** A port that was free a moment ago (nothing listens on it when this resolves). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const address = srv.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createConnection({ host: '127.0.0.1', port });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

export class TestNatsServer {
  private proc: ChildProcess | undefined;
  private output = '';

  private constructor(
    readonly port: number,
    private readonly configFile: string | undefined,
  ) {}

  /** Starts a server on a free port; `config` is nats-server configuration text (listen is added). */
  static async start(config?: string): Promise<TestNatsServer> {
    const port = await freePort();
    let configFile: string | undefined;
    if (config !== undefined) {
      configFile = join(mkdtempSync(join(tmpdir(), 'bus-nats-test-')), 'nats.conf');
      writeFileSync(configFile, `listen: "127.0.0.1:${port}"\n${config}\n`);
    }
    const server = new TestNatsServer(port, configFile);
    await server.restart();
    return server;
  }

  get url(): string {
    return `nats://127.0.0.1:${this.port}`;
  }

  get running(): boolean {
    return this.proc !== undefined;
  }

  /** (Re)starts the process on the same port and waits until it accepts connections. */
  async restart(): Promise<void> {
    if (this.proc) return;
    const args = this.configFile ? ['-c', this.configFile] : ['-a', '127.0.0.1', '-p', String(this.port)];
    const proc = spawn(NATS_SERVER_BIN, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.proc = proc;
    this.output = '';
    const collect = (b: Buffer) => (this.output = (this.output + b.toString()).slice(-4000));
    proc.stdout?.on('data', collect);
    proc.stderr?.on('data', collect);
    proc.once('exit', () => {
      if (this.proc === proc) this.proc = undefined;
    });
    const deadline = Date.now() + 10_000;
    while (!(await canConnect(this.port))) {
      if (!this.proc) throw new Error(`nats-server on port ${this.port} exited at start:\n${this.output}`);
      if (Date.now() > deadline) throw new Error(`nats-server on port ${this.port} did not start:\n${this.output}`);
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  /** Kills the process (SIGKILL: a crash, no goodbye to clients) and waits for it to exit. */
  async kill(): Promise<void> {
    const proc = this.proc;
    if (!proc) return;
    const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
    proc.kill('SIGKILL');
    await exited;
    this.proc = undefined;
  }

  /** Kills the process for good and removes its configuration. */
  async dispose(): Promise<void> {
    await this.kill();
    if (this.configFile) rmSync(dirname(this.configFile), { recursive: true, force: true });
  }
}
