/**
 * Workload 8, scale curves (`--only=curves`): what a delivered event costs the pods (CPU µs
 * per socket delivery, all pods together and per pod) as the work grows, one dimension at a
 * time, on each bus with history off and on:
 *
 *   pods     2, 4, 8            at 100 rooms x 10 sockets
 *   rooms    10 ... 10,000      at 2 sockets per room (one sender, one receiver)
 *   sockets  100 ... 10,000     in 10 rooms
 *
 * In each room socket 0 sends and the others receive; socket j of room r is on pod
 * (r + j) % pods, so every room spans pods. All sockets of a room are one user (each join
 * then costs one presence entry, not a participants list that grows with the room: setup
 * stays fast, and what is measured is delivery). The bench sends at a steady rate of
 * `deliveriesPerSec` socket deliveries (events/s = that / receivers per room), never more than
 * half a second of deliveries ahead of what arrived; after a warm-up it reads the pods' CPU
 * (/proc) over `measureMs`, then drains and checks every delivery.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BenchTargets, BusKind } from '../config.js';
import { nowUs, sleep } from '../clock.js';
import type { CurveGo, CurveJob, FromCurveClient } from '../curves/client.js';
import { startPods, stopPods, stopProcess, track } from '../pods.js';
import { pidCpuSeconds } from '../proc.js';
import { raiseFdLimit } from '../fd-limit.js';
import { addIntegrity, noFaults, type Integrity } from '../stats.js';

const env = (name: string, fallback: number) => Number(process.env[name] ?? fallback);
const list = (name: string, fallback: number[]) => (process.env[name] ? process.env[name]!.split(',').map(Number) : fallback);

export const CURVES_OPTIONS = {
  deliveriesPerSec: env('BENCH_CURVES_RATE', 10_000),
  warmupMs: 500,
  measureMs: env('BENCH_CURVES_MS', 3_000),
  drainMs: 5_000,
  eventBytes: 200,
  historySizes: list('BENCH_CURVES_HISTORY', [0, 1000]),
  pods: list('BENCH_CURVES_PODS', [2, 4, 8]),
  rooms: list('BENCH_CURVES_ROOMS', [10, 100, 1_000, 10_000]),
  sockets: list('BENCH_CURVES_SOCKETS', [100, 1_000, 10_000]),
  base: { pods: 2, rooms: 100, socketsPerRoom: 10 },
  /** Rooms of the sockets sweep. */
  socketsSweepRooms: 10,
  /** Sockets opened at once. */
  openConcurrency: 200,
};

export type Dimension = 'pods' | 'rooms' | 'sockets';

export interface CurvePoint {
  bus: BusKind;
  historySize: number;
  dimension: Dimension;
  /** The value of the swept dimension. */
  x: number;
  pods: number;
  rooms: number;
  sockets: number;
  /** Deliveries per second reached in the measured window (the goal is CURVES_OPTIONS.deliveriesPerSec). */
  deliveriesPerSec: number;
  eventsPerSec: number;
  /** Pod CPU µs per socket delivery, all pods together. */
  cpuUsPerDelivery: number;
  /** The same per pod (its CPU over all deliveries), in pod order. */
  perPodCpuUsPerDelivery: number[];
  /** Mean over the pods: cpuUsPerDelivery / pods. */
  meanPodCpuUsPerDelivery: number;
  /** Seconds to open and join every socket. */
  setupSeconds: number;
  /** Client processes that held the sockets (at most 10,000 each). */
  clientProcesses: number;
  integrity: Integrity;
  closedSockets: number;
}

const CLIENT_MAIN = fileURLToPath(new URL('../curves/client.js', import.meta.url));
/** Sockets one client process holds at most (a process's open-file limit is 20,000 here). */
const SOCKETS_PER_CLIENT = 10_000;

/** A forked client process and its next message. */
class Client {
  private readonly inbox: FromCurveClient[] = [];
  private waiting: ((m: FromCurveClient) => void) | undefined;
  readonly proc: ChildProcess;

  constructor() {
    this.proc = track(fork(CLIENT_MAIN, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }));
    this.proc.on('message', (m: FromCurveClient) => this.deliver(m));
    this.proc.on('exit', (code) => this.deliver({ type: 'error', message: `curve client exited (${code})` }));
  }

  private deliver(m: FromCurveClient): void {
    const w = this.waiting;
    this.waiting = undefined;
    if (w) w(m);
    else this.inbox.push(m);
  }

  async next<T extends FromCurveClient['type']>(type: T, timeoutMs: number): Promise<Extract<FromCurveClient, { type: T }>> {
    const m =
      this.inbox.shift() ??
      (await new Promise<FromCurveClient>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`curve client: no '${type}' within ${timeoutMs} ms`)), timeoutMs);
        this.waiting = (msg) => {
          clearTimeout(timer);
          resolve(msg);
        };
      }));
    if (m.type === 'error') throw new Error(m.message);
    if (m.type !== type) throw new Error(`curve client: expected '${type}', got '${m.type}'`);
    return m as Extract<FromCurveClient, { type: T }>;
  }

  send(m: CurveJob | CurveGo): void {
    this.proc.send(m);
  }
}

/** One point: `rooms` rooms of `perRoom` sockets over `pods` pods. */
async function runPoint(
  bus: BusKind,
  historySize: number,
  podCount: number,
  rooms: number,
  perRoom: number,
  prefix: string,
  targets: BenchTargets,
): Promise<Omit<CurvePoint, 'dimension' | 'x'>> {
  const o = CURVES_OPTIONS;
  const pods = await startPods(podCount, `curve-${bus}-h${historySize}`, {
    busType: bus,
    prefix,
    targets,
    historySize,
    env: { MAX_ROOMS_PER_POD: String(rooms + 10), MAX_PARTICIPANTS_PER_ROOM: String(perRoom + 10) },
  });
  const clientCount = Math.ceil((rooms * perRoom) / SOCKETS_PER_CLIENT);
  const clients = Array.from({ length: clientCount }, () => new Client());
  try {
    const receivers = perRoom - 1;
    const eventsPerSec = o.deliveriesPerSec / receivers;
    const label = `c${Date.now().toString(36)}`;
    clients.forEach((c, k) => {
      const mine = Array.from({ length: rooms }, (_, r) => r).filter((r) => r % clientCount === k);
      c.send({
        type: 'job',
        pods: pods.map((p) => ({ name: p.name, port: p.port })),
        label,
        rooms: mine,
        perRoom,
        eventsPerSec: (eventsPerSec * mine.length) / rooms,
        eventBytes: o.eventBytes,
        openConcurrency: o.openConcurrency,
      });
    });
    const ready = await Promise.all(clients.map((c) => c.next('ready', 180_000)));
    const setupSeconds = Math.max(...ready.map((r) => r.setupSeconds));
    await sleep(300); // presence settles

    const startUs = nowUs() + 100_000;
    const markUs = startUs + o.warmupMs * 1000;
    const endUs = markUs + o.measureMs * 1000;
    for (const c of clients) c.send({ type: 'go', startUs, markUs, endUs, drainMs: o.drainMs });
    const reports = Promise.all(clients.map((c) => c.next('report', o.warmupMs + o.measureMs + o.drainMs + 30_000)));
    const cpuAt = async (us: number) => {
      while (nowUs() < us) await sleep(Math.max(0, Math.min(50, (us - nowUs()) / 1000 - 1)));
      return pods.map((p) => pidCpuSeconds(p.proc.pid!));
    };
    const cpuMark = await cpuAt(markUs);
    const cpuEnd = await cpuAt(endUs);
    const rs = await reports;
    const deliveries = Math.max(
      1,
      rs.reduce((s, r) => s + r.deliveredAtEnd - r.deliveredAtMark, 0),
    );
    const seconds = (endUs - markUs) / 1e6;
    const perPod = pods.map((_, i) => ((cpuEnd[i]! - cpuMark[i]!) * 1e6) / deliveries);
    const total = perPod.reduce((a, b) => a + b, 0);
    return {
      bus,
      historySize,
      pods: podCount,
      rooms,
      sockets: rooms * perRoom,
      clientProcesses: clientCount,
      deliveriesPerSec: deliveries / seconds,
      eventsPerSec: deliveries / receivers / seconds,
      cpuUsPerDelivery: total,
      perPodCpuUsPerDelivery: perPod,
      meanPodCpuUsPerDelivery: total / podCount,
      setupSeconds,
      integrity: rs.reduce((s, r) => addIntegrity(s, r.integrity), noFaults()),
      closedSockets: rs.reduce((s, r) => s + r.closedSockets, 0),
    };
  } finally {
    await Promise.all(clients.map((c) => stopProcess(c.proc, 2_000)));
    await stopPods(pods);
  }
}

export interface CurvesResult {
  options: typeof CURVES_OPTIONS;
  fdLimit: number;
  /** Socket counts left out because the file-descriptor limit could not be raised enough. */
  skipped: string[];
  points: CurvePoint[];
}

export async function curves(buses: readonly BusKind[], prefix: string, targets: BenchTargets, log: (m: string) => void): Promise<CurvesResult> {
  const o = CURVES_OPTIONS;
  // Client processes hold at most SOCKETS_PER_CLIENT sockets each; a pod holds its share.
  const most = Math.max(...o.sockets, ...o.rooms.map((r) => 2 * r), o.base.rooms * o.base.socketsPerRoom);
  const fdLimit = raiseFdLimit(Math.min(most, SOCKETS_PER_CLIENT) + 2_000);
  const fits = (sockets: number, pods: number) => !(fdLimit < Math.max(Math.min(sockets, SOCKETS_PER_CLIENT), Math.ceil(sockets / pods)) + 500);
  const skipped: string[] = [];
  const points: CurvePoint[] = [];
  let n = 0;
  for (const bus of buses) {
    for (const historySize of o.historySizes) {
      const series = `${bus} HISTORY_SIZE=${historySize}`;
      const point = async (dimension: Dimension, x: number, pods: number, rooms: number, perRoom: number) => {
        if (!fits(rooms * perRoom, pods)) {
          skipped.push(`${series} ${dimension}=${x}: ${rooms * perRoom} sockets on ${pods} pods over the open-file limit ${fdLimit}`);
          return;
        }
        log(`8 curves: ${series}, ${dimension} ${x} (${pods} pods, ${rooms} rooms, ${rooms * perRoom} sockets)`);
        const p = await runPoint(bus, historySize, pods, rooms, perRoom, `${prefix}_k${n++}`, targets);
        points.push({ ...p, dimension, x });
      };
      for (const pods of o.pods) await point('pods', pods, pods, o.base.rooms, o.base.socketsPerRoom);
      for (const rooms of o.rooms) await point('rooms', rooms, o.base.pods, rooms, 2);
      for (const sockets of o.sockets)
        await point('sockets', sockets, o.base.pods, o.socketsSweepRooms, Math.max(2, Math.round(sockets / o.socketsSweepRooms)));
    }
  }
  return { options: o, fdLimit, skipped, points };
}

const fmt = (v: number) => (v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2));

export function curvesText(r: CurvesResult): string {
  const lines = [
    `\n8 scale curves: pod CPU us per socket delivery at ${r.options.deliveriesPerSec.toLocaleString('en-US')} deliveries/s goal, ${r.options.measureMs / 1000} s per point (open-file limit ${r.fdLimit})`,
  ];
  lines.push(
    'series                       dimension      x  pods  rooms  sockets  deliv/s  us/deliv (all pods)  us/deliv per pod (mean)  setup s  lost/dup/reord',
  );
  for (const p of r.points) {
    lines.push(
      [
        `${p.bus} HISTORY_SIZE=${p.historySize}`.padEnd(28),
        p.dimension.padEnd(9),
        String(p.x).padStart(6),
        String(p.pods).padStart(5),
        String(p.rooms).padStart(6),
        String(p.sockets).padStart(8),
        Math.round(p.deliveriesPerSec).toLocaleString('en-US').padStart(8),
        fmt(p.cpuUsPerDelivery).padStart(20),
        fmt(p.meanPodCpuUsPerDelivery).padStart(24),
        p.setupSeconds.toFixed(1).padStart(8),
        `${p.integrity.lost}/${p.integrity.duplicated}/${p.integrity.reordered}${p.closedSockets ? ` (${p.closedSockets} closed)` : ''}`.padStart(15),
      ].join(' '),
    );
  }
  for (const s of r.skipped) lines.push(`skipped: ${s}`);
  return lines.join('\n');
}

export function writeCurves(dir: string, startedAt: string, r: CurvesResult): string {
  const file = join(dir, `${startedAt.replace(/[:.]/g, '-')}-curves.json`);
  writeFileSync(file, `${JSON.stringify(r, null, 2)}\n`);
  return file;
}
