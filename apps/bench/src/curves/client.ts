/**
 * A client process of the scale curves (workload 8): holds the sockets of some rooms (at most
 * ~10,000, under a process's open-file limit), sends their events at its share of the rate,
 * and checks every delivery. Several run side by side for the largest points. Started with
 * `fork` by workloads/curves.ts; all times are on the shared monotonic clock (clock.ts), so
 * the driver and every client agree on when the measured window starts and ends.
 *
 * IPC: driver -> client `job`, then `go`; client -> driver `ready`, then `report`.
 */
import { randomUUID } from 'node:crypto';
import WebSocket from 'ws';
import { parseEvent } from '../clients/ws.js';
import { nowUs, sleep, waitFor } from '../clock.js';
import { podWsUrl, type PodEndpoint } from '../pods.js';
import { addIntegrity, noFaults, SeqTracker, sumIntegrity, type Integrity } from '../stats.js';
import { issueToken } from '../token.js';
import { textPadding } from '../padding.js';

export interface CurveJob {
  type: 'job';
  pods: PodEndpoint[];
  label: string;
  /** Global room numbers this client holds (sender and receivers of each). */
  rooms: number[];
  perRoom: number;
  /** This client's events per second (over its rooms). */
  eventsPerSec: number;
  eventBytes: number;
  openConcurrency: number;
}

export interface CurveGo {
  type: 'go';
  startUs: number;
  markUs: number;
  endUs: number;
  drainMs: number;
}

export interface CurveReport {
  type: 'report';
  sent: number;
  deliveredAtMark: number;
  deliveredAtEnd: number;
  delivered: number;
  expected: number;
  integrity: Integrity;
  closedSockets: number;
}

export type FromCurveClient = { type: 'ready'; setupSeconds: number; sockets: number } | CurveReport | { type: 'error'; message: string };

interface Socket {
  ws: WebSocket;
  closed: boolean;
}

async function openSocket(pod: PodEndpoint, roomId: string, token: string): Promise<Socket> {
  const ws = new WebSocket(podWsUrl(pod, token), { perMessageDeflate: false });
  const s: Socket = { ws, closed: false };
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no room_state from ${pod.name} within 30 s`)), 30_000);
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
  ws.on('close', () => {
    s.closed = true;
  });
  return s;
}

function send(m: FromCurveClient): Promise<void> {
  return new Promise<void>((resolve) => process.send!(m, undefined, {}, () => resolve()));
}

async function run(job: CurveJob): Promise<void> {
  const t0 = nowUs();
  const n = job.rooms.length;
  const podCount = job.pods.length;
  // One user per room: a join costs one presence entry, not a participants list that grows.
  const tokens = job.rooms.map((r) => issueToken(`room${r}`, randomUUID()));
  const sockets: Socket[][] = job.rooms.map(() => []);
  const work: Array<[number, number]> = [];
  for (let i = 0; i < n; i++) for (let j = 0; j < job.perRoom; j++) work.push([i, j]);
  for (let k = 0; k < work.length; k += job.openConcurrency) {
    const batch = work.slice(k, k + job.openConcurrency);
    const opened = await Promise.all(
      batch.map(([i, j]) => openSocket(job.pods[(job.rooms[i]! + j) % podCount]!, `${job.label}-${job.rooms[i]}`, tokens[i]!)),
    );
    batch.forEach(([i, j], q) => {
      sockets[i]![j] = opened[q]!;
    });
  }
  await send({ type: 'ready', setupSeconds: (nowUs() - t0) / 1e6, sockets: work.length });
  const go = await new Promise<CurveGo>((resolve) => process.once('message', (m: CurveGo) => resolve(m)));

  const receivers = job.perRoom - 1;
  const totalEvents = Math.ceil((job.eventsPerSec * (go.endUs - go.startUs)) / 1e6) + 1;
  const capacity = Math.ceil(totalEvents / n) + 1;
  const trackers = sockets.map((room) => room.slice(1).map(() => new SeqTracker(capacity)));
  let delivered = 0;
  sockets.forEach((room, i) => {
    room.slice(1).forEach((s, j) => {
      const tracker = trackers[i]![j]!;
      s.ws.on('message', (data: Buffer) => {
        const seq = parseEvent(data);
        if (seq >= 0 && tracker.record(seq)) delivered++;
      });
    });
  });
  const pad = textPadding(Math.max(1, job.eventBytes - 150));
  let sent = 0;
  let deliveredAtMark = -1;
  let deliveredAtEnd = -1;
  // Never more than half a second of deliveries ahead of what arrived: an overloaded point
  // shows a lower rate, not a backlog that the next point inherits.
  const aheadLimit = Math.max(receivers, (job.eventsPerSec * receivers) / 2);
  while (nowUs() < go.startUs) await sleep(1);
  for (;;) {
    const now = nowUs();
    if (deliveredAtMark < 0 && now >= go.markUs) deliveredAtMark = delivered;
    if (now >= go.endUs) {
      deliveredAtEnd = delivered;
      break;
    }
    const due = Math.min(totalEvents, Math.floor(((now - go.startUs) / 1e6) * job.eventsPerSec));
    while (sent < due && sent * receivers - delivered < aheadLimit) {
      const i = sent % n;
      sockets[i]![0]!.ws.send(`{"type":"publish","payload":{"event":"b","data":"${Math.floor(sent / n)}.${nowUs()}.${pad}"}}`);
      sent++;
    }
    await sleep(1);
  }
  const expected = sent * receivers;
  await waitFor(() => delivered >= expected, go.drainMs);
  await sleep(50);
  let integrity = noFaults();
  sockets.forEach((_, i) => {
    const sentHere = Math.floor(sent / n) + (i < sent % n ? 1 : 0);
    integrity = addIntegrity(integrity, sumIntegrity(trackers[i]!, sentHere));
  });
  await send({
    type: 'report',
    sent,
    deliveredAtMark,
    deliveredAtEnd,
    delivered,
    expected,
    integrity,
    closedSockets: sockets.flat().filter((s) => s.closed).length,
  });
  for (const s of sockets.flat()) s.ws.terminate();
}

process.once('message', (job: CurveJob) => {
  run(job).then(
    () => process.exit(0),
    (e: unknown) => {
      void send({ type: 'error', message: e instanceof Error ? e.message : String(e) }).finally(() => process.exit(1));
    },
  );
});
