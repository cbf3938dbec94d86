/**
 * Workload 5, scale: 4 pods, 200 rooms. Room r has its sender on pod r%4 and its receiver on
 * pod (r+1)%4, so each pod hosts 100 rooms and needs the traffic of the 50 whose sender is
 * elsewhere. Measured: room envelopes each pod receives per second (its
 * retrotro_bus_envelopes_received_total{stream="room"}), against what it needs.
 */
import { EventWriter, parseEvent, parsedSentUs, RoomSocket, closeAll } from '../clients/ws.js';
import { probeRoute } from '../clients/flow.js';
import type { BenchTargets, BusKind } from '../config.js';
import { nowUs, sleep, waitFor } from '../clock.js';
import { readCounter, startPods, stopPods, type Pod } from '../pods.js';
import type { Row } from '../report.js';
import { LatencySamples, SeqTracker, sumIntegrity, type Integrity, type LatencySummary } from '../stats.js';

export const SCALE_OPTIONS = { pods: 4, rooms: 200, ratePerSec: 2_000, durationMs: 3_000, eventBytes: 200, drainMs: 3_000 };

export interface ScaleResult {
  bus: BusKind;
  subjects: 'flat' | 'per-room';
  /** Room envelopes received per pod per second, averaged over the pods. */
  receivedPerPodPerSec: number;
  /** Room envelopes each pod needs (from rooms it hosts, sent on another pod) per second. */
  neededPerPodPerSec: number;
  perPod: Array<{ received: number; needed: number }>;
  latency: LatencySummary;
  integrity: Integrity;
  sent: number;
}

async function openAll(pods: Pod[], rooms: number, label: string) {
  const senders: RoomSocket[] = [];
  const receivers: RoomSocket[] = [];
  for (let r = 0; r < rooms; r += 20) {
    const batch = [];
    for (let q = r; q < Math.min(rooms, r + 20); q++) {
      const roomId = `${label}-room-${q}`;
      batch.push(
        Promise.all([
          RoomSocket.open(pods[q % pods.length]!, roomId, `${label}-s${q}`),
          RoomSocket.open(pods[(q + 1) % pods.length]!, roomId, `${label}-r${q}`),
        ]),
      );
    }
    for (const [s, rcv] of await Promise.all(batch)) {
      senders.push(s);
      receivers.push(rcv);
    }
  }
  return { senders, receivers };
}

export async function scaleRun(
  bus: BusKind,
  subjects: 'flat' | 'per-room',
  prefix: string,
  targets: BenchTargets,
  o = SCALE_OPTIONS,
): Promise<ScaleResult> {
  const pods = await startPods(o.pods, `scale-${bus}-${subjects}`, { busType: bus, prefix, targets, roomSubjects: subjects });
  let sockets: RoomSocket[] = [];
  try {
    const { senders, receivers } = await openAll(pods, o.rooms, 'scale');
    sockets = [...senders, ...receivers];
    await Promise.all(senders.map((s, r) => probeRoute(s, [receivers[r]!])));
    await sleep(200);

    const perRoom = Math.ceil((o.ratePerSec * o.durationMs) / 1000 / o.rooms);
    const trackers = receivers.map(() => new SeqTracker(perRoom));
    const latency = new LatencySamples();
    let delivered = 0;
    const handlers = receivers.map((r, i) => {
      const h = (data: Buffer) => {
        const seq = parseEvent(data);
        if (seq < 0) return;
        if (trackers[i]!.record(seq)) {
          delivered++;
          latency.add((nowUs() - parsedSentUs) / 1000);
        }
      };
      r.ws.on('message', h);
      return h;
    });
    const writers = senders.map((s) => new EventWriter(s, o.eventBytes));
    const total = perRoom * o.rooms;

    const before = await Promise.all(pods.map((p) => readCounter(p, 'retrotro_bus_envelopes_received_total', { stream: 'room' })));
    const t0 = nowUs();
    let sent = 0;
    while (sent < total) {
      const due = Math.min(total, Math.floor(((nowUs() - t0) / 1e6) * o.ratePerSec));
      for (; sent < due; sent++) writers[sent % o.rooms]!.send(Math.floor(sent / o.rooms));
      await sleep(1);
    }
    await waitFor(() => delivered === total, o.drainMs);
    const after = await Promise.all(pods.map((p) => readCounter(p, 'retrotro_bus_envelopes_received_total', { stream: 'room' })));
    const seconds = (nowUs() - t0) / 1e6;
    receivers.forEach((r, i) => {
      r.ws.off('message', handlers[i]!);
    });

    // Pod p hosts receivers of rooms r with (r+1)%n == p, whose senders sit elsewhere.
    const perPod = pods.map((_, p) => {
      let needed = 0;
      for (let r = 0; r < o.rooms; r++) if ((r + 1) % o.pods === p) needed += perRoom;
      return { received: (after[p]! - before[p]!) / seconds, needed: needed / seconds };
    });
    const avg = (f: (x: { received: number; needed: number }) => number) => perPod.reduce((s, x) => s + f(x), 0) / perPod.length;
    return {
      bus,
      subjects,
      receivedPerPodPerSec: avg((x) => x.received),
      neededPerPodPerSec: avg((x) => x.needed),
      perPod,
      latency: latency.summary(),
      integrity: sumIntegrity(trackers, perRoom),
      sent,
    };
  } finally {
    closeAll(sockets);
    await stopPods(pods);
  }
}

export async function scale(buses: readonly BusKind[], prefix: string, targets: BenchTargets) {
  const results: ScaleResult[] = [];
  const rows: Row[] = [];
  for (const bus of buses) {
    const modes: Array<'flat' | 'per-room'> = bus === 'nats' ? ['flat', 'per-room'] : ['flat'];
    let flat: ScaleResult | undefined;
    for (const subjects of modes) {
      const r = await scaleRun(bus, subjects, `${prefix}_s${bus[0]}${subjects === 'flat' ? 'f' : 'r'}`, targets);
      results.push(r);
      const caseName = `4 pods, 200 rooms, ${subjects}`;
      const common = { workload: '5 scale', bus, case: caseName, integrity: r.integrity, better: 'lower' as const };
      rows.push({
        ...common,
        metric: 'room env/pod/s',
        value: r.receivedPerPodPerSec,
        baseline: { name: 'needed (hosted rooms)', value: r.neededPerPodPerSec },
        ...(subjects === 'per-room' && {
          target: { text: '=needed', pass: r.receivedPerPodPerSec <= r.neededPerPodPerSec * 1.05 },
        }),
      });
      if (subjects === 'flat') flat = r;
      else if (flat) {
        rows.push({
          ...common,
          metric: 'room env/pod/s',
          value: r.receivedPerPodPerSec,
          baseline: { name: 'flat subjects', value: flat.receivedPerPodPerSec },
        });
      }
    }
  }
  return { rows, details: { options: SCALE_OPTIONS, results } };
}
