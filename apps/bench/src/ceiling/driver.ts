/**
 * Process A of the relay ceiling: starts the receiver child (process B), opens every path of
 * a case (the raw broker, one RelayBus per relay path), and runs alternating trials on them.
 * In a trial A publishes as fast as B keeps up (at most `window` messages not yet confirmed
 * by B) and the delivery rate is read off B's progress reports. Alternating short trials and
 * taking the median keeps a noisy neighbour from favouring one path.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { Frame, LocalHub } from '@retrotro/bus-core';
import { PgTransport } from '@retrotro/bus-pg';
import { connect } from '@nats-io/transport-node';
import pg from 'pg';
import type { BenchTargets, BusKind } from '../config.js';
import { nowUs, sleep } from '../clock.js';
import { stopProcess, track } from '../pods.js';
import { addIntegrity, median, noFaults, type Integrity } from '../stats.js';
import { RAW_STREAM, rawPad, rawParts, rawPayload, startRelay, type CeilingPath, type FromReceiver, type ToReceiver } from './protocol.js';
import { textPadding } from '../padding.js';

const RECEIVER = fileURLToPath(new URL('./receiver.js', import.meta.url));

export interface CeilingOptions {
  /** Trials per path, alternating the paths. */
  rounds: number;
  warmupMs: number;
  measureMs: number;
  drainMs: number;
  maxMessages: number;
  /** Raw PostgreSQL: payloads per NOTIFY statement. */
  rawBatch: number;
}

/** One message size and the paths measured at it. */
export interface CeilingCase {
  /** The relay's frame once serialised; the raw message, all its parts together. */
  bytes: number;
  /** Most messages sent and not yet confirmed by B. */
  window: number;
  paths: CeilingPath[];
}

export interface TrialResult {
  path: CeilingPath;
  sent: number;
  messagesPerSec: number;
  /** CPU microseconds per message in process A and process B. */
  cpuUsPerMessage: { a: number; b: number };
  integrity: Integrity;
  publishFailures: number;
  stray: number;
  /** PostgreSQL: messages per NOTIFY statement. */
  messagesPerStatement?: number;
}

export interface PathResult {
  /** Median over the trials. */
  messagesPerSec: number;
  cpuUsPerMessage: { a: number; b: number };
  integrity: Integrity;
  trials: TrialResult[];
}

type TrialReport = Extract<FromReceiver, { type: 'trial-result' }>;

/** The child and its reports. */
class Receiver {
  readonly proc: ChildProcess;
  count = 0;
  samples: Array<[atUs: number, count: number]> = [];
  private waiters: Array<() => void> = [];
  private onReport: ((m: TrialReport) => void) | undefined;
  private onReady: (() => void) | undefined;
  private failure: Error | undefined;

  constructor() {
    // BENCH_RECEIVER_NODE_ARGS (e.g. --cpu-prof) is for profiling process B.
    const execArgv = process.env.BENCH_RECEIVER_NODE_ARGS?.split(' ').filter(Boolean) ?? [];
    this.proc = track(fork(RECEIVER, [], { execArgv, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }));
    this.proc.on('message', (m: FromReceiver) => {
      if (m.type === 'progress') {
        this.count = m.count;
        this.samples.push([m.atUs, m.count]);
        this.wake();
      } else if (m.type === 'ready') {
        this.onReady?.();
      } else if (m.type === 'trial-result') {
        this.onReport?.(m);
      } else {
        this.failure = new Error(`ceiling receiver: ${m.message}`);
        this.wake();
      }
    });
    this.proc.once('exit', () => {
      this.failure ??= new Error('ceiling receiver exited');
      this.wake();
    });
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  private send(m: ToReceiver): void {
    this.proc.send(m);
  }

  async open(m: Extract<ToReceiver, { cmd: 'open' }>): Promise<void> {
    const ready = new Promise<void>((resolve) => (this.onReady = resolve));
    this.send(m);
    await Promise.race([ready, sleep(15_000).then(() => Promise.reject(this.failure ?? new Error('ceiling receiver not ready in 15 s')))]);
  }

  beginTrial(path: CeilingPath, capacity: number, window: number): void {
    this.count = 0;
    this.samples = [];
    // Reports a few times per window at least, or A would wait for B's 5 ms tick to send more.
    this.send({ cmd: 'trial', path, capacity, progressEvery: Math.min(1_000, Math.ceil(window / 4)) });
  }

  async endTrial(sent: number): Promise<TrialReport> {
    const report = new Promise<TrialReport>((resolve) => (this.onReport = resolve));
    this.send({ cmd: 'end-trial', sent });
    return Promise.race([report, sleep(10_000).then(() => Promise.reject(new Error('no trial report from the ceiling receiver')))]);
  }

  /** Resolves at the next progress report, or after `ms`. */
  async progress(ms: number): Promise<void> {
    if (this.failure) throw this.failure;
    let timer: NodeJS.Timeout | undefined;
    await new Promise<void>((resolve) => {
      this.waiters.push(resolve);
      timer = setTimeout(resolve, ms);
    });
    clearTimeout(timer);
  }

  async close(): Promise<void> {
    if (this.proc.connected) this.proc.send({ cmd: 'close' } satisfies ToReceiver);
    await Promise.race([new Promise((r) => this.proc.once('exit', r)), sleep(3_000)]);
    await stopProcess(this.proc, 1_000);
  }

  /** Delivery rate between two instants, from the progress samples inside them. */
  rate(fromUs: number, toUs: number): number {
    const inside = this.samples.filter(([at]) => at >= fromUs && at <= toUs);
    if (inside.length < 2) return 0;
    const [a, ca] = inside[0]!;
    const [b, cb] = inside[inside.length - 1]!;
    return b > a ? ((cb - ca) * 1e6) / (b - a) : 0;
  }
}

/** One way of publishing: `publish(first, n)` sends messages first..first+n-1, in order. */
interface Publisher {
  publish(first: number, n: number): Promise<void> | void;
  failures(): number;
  /** Statements sent so far (PostgreSQL), for the average batch size. */
  statements(): number | undefined;
  close(): Promise<void>;
}

const silentHub: LocalHub = {
  deliverLocal() {},
  participantJoined() {},
  participantLeft() {},
  cancelPendingDisconnect() {},
};

async function openRaw(bus: BusKind, prefix: string, targets: BenchTargets, o: CeilingOptions, bytes: number): Promise<Publisher> {
  const parts = rawParts(bus, bytes);
  const pad = rawPad(bytes, parts);
  if (bus === 'postgres') {
    // rawBatch counts payloads, the parts of a message staying in one statement.
    const perStatement = Math.max(1, Math.floor(o.rawBatch / parts));
    const client = new pg.Client({ connectionString: targets.databaseUrl, application_name: 'retrotro-bench/raw-notify' });
    await client.connect();
    const channel = `${prefix}_${RAW_STREAM}`;
    let statements = 0;
    return {
      async publish(first, n) {
        for (let i = 0; i < n; i += perStatement) {
          const batch: string[] = [];
          for (let j = i; j < Math.min(n, i + perStatement); j++) {
            for (let part = 0; part < parts; part++) batch.push(rawPayload((first + j) * parts + part, pad));
          }
          statements++;
          await client.query({ name: 'bench_raw_notify', text: 'SELECT pg_notify($1, x) FROM unnest($2::text[]) x', values: [channel, batch] });
        }
      },
      failures: () => 0,
      statements: () => statements,
      close: () => client.end(),
    };
  }
  const nc = await connect({ servers: targets.natsUrl });
  const subject = `${prefix}.${RAW_STREAM}`;
  return {
    publish(first, n) {
      for (let i = 0; i < n; i++) nc.publish(subject, rawPayload(first + i, pad));
    },
    failures: () => 0,
    statements: () => undefined,
    close: () => nc.close(),
  };
}

async function openRelay(
  bus: BusKind,
  path: Exclude<CeilingPath, 'raw'>,
  prefix: string,
  roomId: string,
  targets: BenchTargets,
  bytes: number,
): Promise<Publisher> {
  const relay = await startRelay(bus, path, prefix, 'bench-ceiling-a', targets, silentHub);
  // A frame of `bytes` once serialised (the envelope adds pod, room and seq).
  const framePad = textPadding(bytes - JSON.stringify({ type: 'event', payload: { seq: 1000000, pad: '' } }).length);
  let failed = 0;
  const count = (r: { ok: boolean }) => {
    if (!r.ok) failed++;
  };
  return {
    publish(first, n) {
      for (let i = 0; i < n; i++) {
        const frame: Frame = { type: 'event', payload: { seq: first + i, pad: framePad } };
        void relay.broadcastToRoom(roomId, frame).then(count);
      }
    },
    failures: () => failed,
    statements: () => (relay.transport instanceof PgTransport ? relay.transport.stats.statements : undefined),
    close: () => relay.stop(),
  };
}

async function trial(path: CeilingPath, publisher: Publisher, receiver: Receiver, o: CeilingOptions, window: number): Promise<TrialResult> {
  receiver.beginTrial(path, o.maxMessages, window);
  const failedBefore = publisher.failures();
  const statementsBefore = publisher.statements();
  const cpuBefore = process.cpuUsage();
  let sent = 0;
  const start = nowUs();
  const tStart = start + o.warmupMs * 1000;
  const tEnd = tStart + o.measureMs * 1000;
  let lastCount = 0;
  let lastMove = Date.now();
  while (nowUs() < tEnd && sent < o.maxMessages) {
    const room = Math.min(window - (sent - receiver.count), o.maxMessages - sent);
    if (room > 0) {
      const first = sent;
      sent += room;
      await publisher.publish(first, room);
    }
    await receiver.progress(5);
    if (receiver.count !== lastCount) {
      lastCount = receiver.count;
      lastMove = Date.now();
    } else if (Date.now() - lastMove > 3_000) {
      break; // stalled: what is missing is reported as lost
    }
  }
  const rate = receiver.rate(tStart, tEnd);
  const drainUntil = Date.now() + o.drainMs;
  while (receiver.count < sent && Date.now() < drainUntil) await receiver.progress(20);
  await sleep(30);
  const cpuA = process.cpuUsage(cpuBefore);
  const report = await receiver.endTrial(sent);
  return {
    path,
    sent,
    messagesPerSec: rate,
    cpuUsPerMessage: { a: (cpuA.user + cpuA.system) / Math.max(1, sent), b: report.cpuUs / Math.max(1, report.count) },
    integrity: report.integrity,
    publishFailures: publisher.failures() - failedBefore,
    stray: report.stray,
    ...(statementsBefore !== undefined && { messagesPerStatement: sent / Math.max(1, publisher.statements()! - statementsBefore) }),
  };
}

function summarise(trials: TrialResult[]): PathResult {
  return {
    messagesPerSec: median(trials.map((t) => t.messagesPerSec)),
    cpuUsPerMessage: { a: median(trials.map((t) => t.cpuUsPerMessage.a)), b: median(trials.map((t) => t.cpuUsPerMessage.b)) },
    integrity: trials.reduce((acc, t) => addIntegrity(acc, t.integrity), noFaults()),
    trials,
  };
}

export async function runCeiling(
  bus: BusKind,
  prefix: string,
  targets: BenchTargets,
  o: CeilingOptions,
  c: CeilingCase,
): Promise<Partial<Record<CeilingPath, PathResult>>> {
  const roomId = 'ceiling';
  const receiver = new Receiver();
  const publishers: Partial<Record<CeilingPath, Publisher>> = {};
  try {
    await receiver.open({ cmd: 'open', bus, prefix, roomId, targets, bytes: c.bytes, paths: c.paths });
    for (const path of c.paths) {
      publishers[path] =
        path === 'raw' ? await openRaw(bus, prefix, targets, o, c.bytes) : await openRelay(bus, path, prefix, roomId, targets, c.bytes);
    }
    const trials = new Map(c.paths.map((path) => [path, [] as TrialResult[]]));
    for (let round = 0; round < o.rounds; round++) {
      // Each round starts one path further on (raw, relay; relay, raw; ...), so no path always goes first.
      const order = c.paths.map((_, i) => c.paths[(round + i) % c.paths.length]!);
      for (const path of order) trials.get(path)!.push(await trial(path, publishers[path]!, receiver, o, c.window));
    }
    return Object.fromEntries([...trials].map(([path, t]) => [path, summarise(t)]));
  } finally {
    await Promise.allSettled(Object.values(publishers).map((p) => p.close()));
    await receiver.close();
  }
}
