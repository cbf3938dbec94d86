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
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import WebSocket from 'ws';
import { parseEvent } from '../clients/ws.js';
import type { BenchTargets, BusKind } from '../config.js';
import { nowUs, sleep, waitFor } from '../clock.js';
import { raiseFdLimit } from '../fd-limit.js';
import { podWsUrl, startPods, stopPods, type Pod } from '../pods.js';
import { pidCpuSeconds } from '../proc.js';
import { SeqTracker, sumIntegrity, addIntegrity, noFaults, type Integrity } from '../stats.js';
import { issueToken } from '../token.js';
import { randomUUID } from 'node:crypto';

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
  integrity: Integrity;
  closedSockets: number;
}

interface Socket {
  ws: WebSocket;
  closed: boolean;
}

async function openSocket(pod: Pod, roomId: string, token: string): Promise<Socket> {
  const ws = new WebSocket(podWsUrl(pod, token), { perMessageDeflate: false });
  const s: Socket = { ws, closed: false };
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no room_state from ${pod.name} within 20 s`)), 20_000);
    ws.once('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    ws.once('open', () => ws.send(JSON.stringify({ type: 'join_room', payload: { roomId } })));
    const onMessage = (data: Buffer) => {
      if (data.toString('latin1', 0, 20) === '{"type":"room_state"') {
        clearTimeout(timer);
        ws.off('message', onMessage);
        resolve();
      }
    };
    ws.on('message', onMessage);
  });
  ws.on('error', () => {});
  ws.on('close', () => (s.closed = true));
  return s;
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
  const sockets: Socket[][] = Array.from({ length: rooms }, () => []);
  try {
    const t0 = nowUs();
    const label = `c${Date.now().toString(36)}`;
    const tokens = Array.from({ length: rooms }, (_, r) => issueToken(`room${r}`, randomUUID()));
    const jobs: Array<[number, number]> = [];
    for (let r = 0; r < rooms; r++) for (let j = 0; j < perRoom; j++) jobs.push([r, j]);
    for (let i = 0; i < jobs.length; i += o.openConcurrency) {
      const batch = jobs.slice(i, i + o.openConcurrency);
      const opened = await Promise.all(batch.map(([r, j]) => openSocket(pods[(r + j) % podCount]!, `${label}-${r}`, tokens[r]!)));
      batch.forEach(([r, j], k) => {
        sockets[r]![j] = opened[k]!;
      });
    }
    const setupSeconds = (nowUs() - t0) / 1e6;
    await sleep(300); // presence settles

    const receiversPerRoom = perRoom - 1;
    const eventsPerSec = o.deliveriesPerSec / receiversPerRoom;
    const totalMs = o.warmupMs + o.measureMs;
    const maxEvents = Math.ceil((eventsPerSec * (totalMs + 1_000)) / 1000);
    const perRoomCapacity = Math.ceil(maxEvents / rooms) + 1;
    const trackers = sockets.map((room) => room.slice(1).map(() => new SeqTracker(perRoomCapacity)));
    let delivered = 0;
    sockets.forEach((room, r) => {
      room.slice(1).forEach((s, j) => {
        const tracker = trackers[r]![j]!;
        s.ws.on('message', (data: Buffer) => {
          const seq = parseEvent(data);
          if (seq >= 0 && tracker.record(seq)) delivered++;
        });
      });
    });
    const pad = 'x'.repeat(Math.max(1, o.eventBytes - 150));
    let sent = 0;
    const send = () => {
      const r = sent % rooms;
      const seq = Math.floor(sent / rooms);
      sockets[r]![0]!.ws.send(`{"type":"publish","payload":{"event":"b","data":"${seq}.${nowUs()}.${pad}"}}`);
      sent++;
    };
    const start = nowUs();
    let mark: { t: number; delivered: number; cpu: number[] } | undefined;
    let end: { t: number; delivered: number; cpu: number[] } | undefined;
    const snapshot = () => ({ t: nowUs(), delivered, cpu: pods.map((p) => pidCpuSeconds(p.proc.pid!)) });
    const aheadLimit = o.deliveriesPerSec / 2;
    while (!end) {
      const elapsedMs = (nowUs() - start) / 1000;
      if (!mark && elapsedMs >= o.warmupMs) mark = snapshot();
      if (elapsedMs >= totalMs) {
        end = snapshot();
        break;
      }
      const due = Math.min(maxEvents, Math.floor((elapsedMs / 1000) * eventsPerSec));
      while (sent < due && sent * receiversPerRoom - delivered < aheadLimit) send();
      await sleep(1);
    }
    const expected = sent * receiversPerRoom;
    await waitFor(() => delivered >= expected, o.drainMs);
    await sleep(50);
    const m = mark!;
    const deliveries = Math.max(1, end.delivered - m.delivered);
    const seconds = (end.t - m.t) / 1e6;
    const perPod = pods.map((_, i) => ((end!.cpu[i]! - m.cpu[i]!) * 1e6) / deliveries);
    const total = perPod.reduce((a, b) => a + b, 0);
    let integrity = noFaults();
    sockets.forEach((_, r) => {
      const sentHere = Math.floor(sent / rooms) + (r < sent % rooms ? 1 : 0);
      integrity = addIntegrity(integrity, sumIntegrity(trackers[r]!, sentHere));
    });
    return {
      bus,
      historySize,
      pods: podCount,
      rooms,
      sockets: rooms * perRoom,
      deliveriesPerSec: deliveries / seconds,
      eventsPerSec: deliveries / receiversPerRoom / seconds,
      cpuUsPerDelivery: total,
      perPodCpuUsPerDelivery: perPod,
      meanPodCpuUsPerDelivery: total / podCount,
      setupSeconds,
      integrity,
      closedSockets: sockets.flat().filter((s) => s.closed).length,
    };
  } finally {
    for (const s of sockets.flat()) s?.ws.terminate();
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
  const most = Math.max(...o.sockets, ...o.rooms.map((r) => 2 * r), o.base.rooms * o.base.socketsPerRoom);
  const fdLimit = raiseFdLimit(most + 2_000);
  const fits = (sockets: number) => !(fdLimit < sockets + 500);
  const skipped: string[] = [];
  const points: CurvePoint[] = [];
  let n = 0;
  for (const bus of buses) {
    for (const historySize of o.historySizes) {
      const series = `${bus} HISTORY_SIZE=${historySize}`;
      const point = async (dimension: Dimension, x: number, pods: number, rooms: number, perRoom: number) => {
        if (!fits(rooms * perRoom)) {
          skipped.push(`${series} ${dimension}=${x}: ${rooms * perRoom} sockets over the open-file limit ${fdLimit}`);
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
