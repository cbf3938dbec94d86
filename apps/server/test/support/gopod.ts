/**
 * Test support: the Go retrotro pod of shared/go-peer (its README describes the protocol).
 * A test writes commands on its stdin and reads JSON lines on its stdout: one result per
 * command, in order, and "delivery" lines for every frame its hub would send to its sockets.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { waitUntil } from './pods.js';

const REPO_ROOT = fileURLToPath(new URL('../../../../', import.meta.url));

/** What build.sh may need at worst: installing Debian's Go, then a cold build. */
export const GO_BUILD_TIMEOUT_MS = 300_000;

/**
 * The gopod binary: $GOPOD (exported by scripts/test.sh), else built here by
 * shared/go-peer/build.sh (a no-op when up to date), so `vitest run` works on its own too.
 * shared/ is $RETROTRO_SHARED, default ../shared from the repo root, as in scripts/test.sh.
 */
export async function goPodBinary(): Promise<string> {
  if (process.env.GOPOD) return process.env.GOPOD;
  const shared = resolve(REPO_ROOT, process.env.RETROTRO_SHARED ?? '../shared');
  const buildSh = resolve(shared, 'go-peer/build.sh');
  if (!existsSync(buildSh)) throw new Error(`no ${buildSh}: set GOPOD to a gopod binary or RETROTRO_SHARED to the shared/ folder`);
  const { stdout } = await promisify(execFile)('bash', [buildSh], { timeout: GO_BUILD_TIMEOUT_MS, maxBuffer: 1 << 20 });
  const bin = stdout.trim().split('\n').pop();
  if (!bin) throw new Error(`${buildSh} printed no binary path`);
  process.env.GOPOD = bin; // the next GoPod.start() of this process skips build.sh
  return bin;
}

export interface GoClient {
  local: boolean;
  userId: string;
  userName: string;
}

/** A frame the Go hub would send to its sockets (a `hub` line of kind Broadcast*). */
export interface GoDelivery {
  hub: 'BroadcastRaw' | 'BroadcastToRoom' | 'BroadcastToRoomExcept';
  roomId: string;
  /** The exact bytes the Go pod's sockets would get. */
  raw: string;
  to: string[];
  except: string;
  goParsed: unknown;
  goParseErr: string;
}

type Line = Record<string, any>;
interface Pending {
  command: string;
  resolve: (line: Line) => void;
  reject: (error: Error) => void;
}

export class GoPod {
  /** Every stdout line, parsed, in arrival order. */
  readonly lines: Line[] = [];
  readonly stderr: string[] = [];
  podId = '';
  private readonly pending: Pending[] = [];
  private readonly exited: Promise<number | null>;

  private constructor(private readonly proc: ChildProcess) {
    this.exited = new Promise((res) => proc.once('exit', (code) => res(code)));
    void this.exited.then((code) => {
      for (const p of this.pending.splice(0)) p.reject(new Error(`gopod exited (${code}) before answering ${p.command}\n${this.stderr.join('\n')}`));
    });
    createInterface({ input: proc.stderr! }).on('line', (l) => this.stderr.push(l));
    createInterface({ input: proc.stdout! }).on('line', (l) => this.onLine(l));
  }

  /** Starts a Go pod on NATS and waits for its `ready` line. */
  static async start(natsUrl = 'nats://127.0.0.1:4222'): Promise<GoPod> {
    const bin = await goPodBinary();
    const proc = spawn(bin, [], {
      env: { PATH: process.env.PATH ?? '', NATS_URL: natsUrl, BUS_PREFIX: 'retrotro' },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const pod = new GoPod(proc);
    let exitCode: number | null | undefined;
    void pod.exited.then((code) => (exitCode = code));
    await waitUntil(
      'gopod ready',
      () => {
        if (exitCode !== undefined) throw new Error(`gopod exited (${exitCode}) before ready:\n${pod.stderr.join('\n')}`);
        return pod.lines.some((l) => l.ready === true);
      },
      20_000,
    ).catch((e: Error) => {
      proc.kill('SIGKILL');
      throw new Error(`${e.message}\n${pod.stderr.join('\n')}`);
    });
    pod.podId = pod.lines.find((l) => l.ready === true)!.podId as string;
    return pod;
  }

  private onLine(text: string): void {
    let line: Line;
    try {
      line = JSON.parse(text) as Line;
    } catch {
      this.stderr.push(`(stdout, not JSON) ${text}`);
      return;
    }
    this.lines.push(line);
    if ('cmd' in line) {
      const p = this.pending.shift();
      if (!p) return;
      if (line.ok === true) p.resolve(line);
      else p.reject(new Error(`gopod ${p.command}: ${String(line.error)}`));
    }
  }

  /** Sends one command line and resolves with its result line (rejects on `ok: false`). */
  command(command: string, timeoutMs = 15_000): Promise<Line> {
    if (command.includes('\n')) throw new Error('a gopod command is one line');
    return new Promise<Line>((res, rej) => {
      const timer = setTimeout(() => rej(new Error(`gopod did not answer ${command} in ${timeoutMs} ms`)), timeoutMs);
      this.pending.push({
        command,
        resolve: (l) => {
          clearTimeout(timer);
          res(l);
        },
        reject: (e) => {
          clearTimeout(timer);
          rej(e);
        },
      });
      this.proc.stdin!.write(`${command}\n`);
    });
  }

  /** A Go user joins ROOM (PublishPresenceJoin). */
  join(roomId: string, userId: string, name?: string): Promise<Line> {
    return this.command(`join ${roomId} ${userId}${name === undefined ? '' : ` ${name}`}`);
  }

  leave(roomId: string, userId: string): Promise<Line> {
    return this.command(`leave ${roomId} ${userId}`);
  }

  /** BroadcastToRoom: local delivery, then a room envelope to the other pods. */
  broadcast(roomId: string, frame: unknown): Promise<Line> {
    return this.command(`broadcast ${roomId} ${typeof frame === 'string' ? frame : JSON.stringify(frame)}`);
  }

  /** GetRoomClients: the Go pod's local and remote users of ROOM, sorted by userId. */
  async clients(roomId: string): Promise<GoClient[]> {
    return (await this.command(`clients ${roomId}`)).clients as GoClient[];
  }

  /** Frames the Go hub would send to its sockets in ROOM, in order. */
  deliveries(roomId: string): GoDelivery[] {
    return this.lines.filter((l) => typeof l.hub === 'string' && l.hub.startsWith('Broadcast') && l.roomId === roomId) as GoDelivery[];
  }

  /** Polls `clients ROOM` until `check` holds. */
  async waitForClients(what: string, roomId: string, check: (clients: GoClient[]) => boolean, timeoutMs = 15_000): Promise<GoClient[]> {
    let last: GoClient[] = [];
    await waitUntil(`the Go pod: ${what}`, async () => check((last = await this.clients(roomId))), timeoutMs).catch((e: Error) => {
      throw new Error(`${e.message}; last clients ${roomId}: ${JSON.stringify(last)}`);
    });
    return last;
  }

  /** `quit`, then SIGKILL if it is still there after 5 s. */
  async stop(): Promise<void> {
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) return;
    this.proc.stdin!.end('quit\n');
    const timer = setTimeout(() => this.proc.kill('SIGKILL'), 5_000);
    await this.exited;
    clearTimeout(timer);
  }
}
