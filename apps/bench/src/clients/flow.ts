/**
 * Driving events through pods: a closed-loop run (as fast as the pods deliver, with a bounded
 * number of events in flight) and a paced run (a fixed rate, receivers in a worker thread).
 * Both check every delivery for loss, duplication and reordering, and sample latency from
 * the send time in the event.
 */
import { nowUs, sleep, waitFor } from '../clock.js';
import { LatencySamples, SeqTracker, sumIntegrity, type Integrity, type LatencySummary } from '../stats.js';
import type { ReceiverWorker } from './receiver-worker.js';
import { EventWriter, parseEvent, parsedSentUs, PROBE, type RoomSocket } from './ws.js';

const PROBE_TIMEOUT_MS = 8_000;

/** Sends probe events until every receiver has seen one: the route through the broker works. */
export async function probeRoute(sender: RoomSocket, receivers: RoomSocket[]): Promise<void> {
  const seen = new Set<RoomSocket>();
  const handlers = receivers.map((r) => {
    const h = (data: Buffer) => {
      if (parseEvent(data) === PROBE) seen.add(r);
    };
    r.ws.on('message', h);
    return h;
  });
  const writer = new EventWriter(sender, 64);
  const deadline = Date.now() + PROBE_TIMEOUT_MS;
  try {
    while (seen.size < receivers.length) {
      if (Date.now() > deadline) throw new Error(`only ${seen.size}/${receivers.length} receivers got a probe within ${PROBE_TIMEOUT_MS} ms`);
      writer.probe();
      await waitFor(() => seen.size === receivers.length, 100);
    }
    await sleep(50); // let late probes arrive before counting starts
  } finally {
    receivers.forEach((r, i) => {
      r.ws.off('message', handlers[i]!);
    });
  }
}

export interface ClosedLoopOptions {
  eventBytes: number;
  /** Most events sent but not yet delivered to every receiver. */
  window: number;
  warmupMs: number;
  measureMs: number;
  /** After sending stops: longest wait for the last deliveries. */
  drainMs: number;
  /** Hard cap on events sent. */
  maxEvents: number;
}

export interface FlowResult {
  sent: number;
  receivers: number;
  /** Socket deliveries per second during the measured window. */
  deliveriesPerSec: number;
  /** Events per second fully delivered (deliveries / receivers). */
  eventsPerSec: number;
  latency: LatencySummary;
  integrity: Integrity;
  /** Receivers the server closed during the run (e.g. 1013 slow consumer). */
  closedReceivers: number;
  /** The receiving thread's own event-loop delay during the run (ms): part of every latency it measured. */
  clientLoopDelay?: { p99: number; max: number };
}

/** Attaches counting handlers to receivers; returns what the run needs to read and detach. */
function attach(receivers: RoomSocket[], capacity: number, onDelivery: (seq: number, sentUs: number, nowUs: number, fresh: boolean) => void) {
  const trackers = receivers.map(() => new SeqTracker(capacity));
  const handlers = receivers.map((r, i) => {
    const tracker = trackers[i]!;
    const h = (data: Buffer) => {
      const seq = parseEvent(data);
      if (seq < 0) return;
      onDelivery(seq, parsedSentUs, nowUs(), tracker.record(seq));
    };
    r.ws.on('message', h);
    return h;
  });
  return {
    trackers,
    detach: () => {
      receivers.forEach((r, i) => {
        r.ws.off('message', handlers[i]!);
      });
    },
  };
}

export async function runClosedLoop(sender: RoomSocket, receivers: RoomSocket[], o: ClosedLoopOptions): Promise<FlowResult> {
  await probeRoute(sender, receivers);
  const writer = new EventWriter(sender, o.eventBytes);
  const n = receivers.length;
  const counts = new Uint16Array(o.maxEvents);
  const latency = new LatencySamples();
  let sent = 0;
  let complete = 0;
  let sending = true;
  let pumpScheduled = false;
  let windowDeliveries = 0;
  let lastProgress = Date.now();
  const start = nowUs();
  const tStart = start + o.warmupMs * 1000;
  const tEnd = tStart + o.measureMs * 1000;

  const pump = () => {
    pumpScheduled = false;
    while (sending && sent - complete < o.window && sent < o.maxEvents) writer.send(sent++);
  };
  const { trackers, detach } = attach(receivers, o.maxEvents, (seq, sentUs, now, fresh) => {
    if (!fresh) return;
    if (now >= tStart && now < tEnd) windowDeliveries++;
    if (sentUs >= tStart && sentUs < tEnd) latency.add((now - sentUs) / 1000);
    if (++counts[seq]! === n) {
      complete++;
      lastProgress = Date.now();
      if (!pumpScheduled) {
        pumpScheduled = true;
        setImmediate(pump);
      }
    }
  });
  try {
    pump();
    // Send until the measured window ends (or the run stalls: lost events never complete).
    await waitFor(() => nowUs() >= tEnd || Date.now() - lastProgress > 3_000, o.warmupMs + o.measureMs + 1_000);
    sending = false;
    await waitFor(() => complete === sent || Date.now() - lastProgress > o.drainMs, o.drainMs + 1_000);
    await sleep(30); // duplicates arrive after the original
  } finally {
    sending = false;
    detach();
  }
  const seconds = o.measureMs / 1000;
  return {
    sent,
    receivers: n,
    deliveriesPerSec: windowDeliveries / seconds,
    eventsPerSec: windowDeliveries / n / seconds,
    latency: latency.summary(),
    integrity: sumIntegrity(trackers, sent),
    closedReceivers: receivers.filter((r) => r.closeCode !== undefined).length,
  };
}

export interface PacedOptions {
  eventBytes: number;
  ratePerSec: number;
  /** Sent at the same rate before the measured part, not timed: JIT and first GCs happen here. */
  warmupMs: number;
  /** The measured part. */
  durationMs: number;
  drainMs: number;
}

/**
 * Sends at a fixed rate (catching up after a late timer, never bursting ahead) to receivers
 * that run in their own thread (see receiver-worker.ts), which check and time every delivery.
 */
export async function runPaced(sender: RoomSocket, receivers: ReceiverWorker, o: PacedOptions): Promise<FlowResult> {
  const probing = receivers.next('probed', PROBE_TIMEOUT_MS);
  const writer = new EventWriter(sender, o.eventBytes);
  let probed = false;
  void probing.then(
    () => (probed = true),
    () => undefined,
  );
  while (!probed) {
    writer.probe();
    await Promise.race([probing, sleep(100)]); // rejects (and ends the run) after PROBE_TIMEOUT_MS
  }
  await sleep(50); // let late probes arrive before counting starts
  const total = pacedEventCount(o);
  let sent = 0;
  const start = nowUs();
  while (sent < total) {
    const due = Math.min(total, Math.floor(((nowUs() - start) / 1e6) * o.ratePerSec));
    while (sent < due) writer.send(sent++);
    await sleep(1);
  }
  receivers.finish(sent);
  const report = (await receivers.next('report', o.drainMs + 10_000)).report;
  const seconds = (o.warmupMs + o.durationMs) / 1000;
  return {
    sent,
    receivers: report.receivers,
    deliveriesPerSec: report.delivered / seconds,
    eventsPerSec: sent / seconds,
    latency: report.latency,
    integrity: report.integrity,
    closedReceivers: report.closedReceivers,
    clientLoopDelay: report.loopDelay,
  };
}

/** Events a paced run sends, warm-up included; those numbered below `pacedWarmupCount` are not timed. */
export const pacedEventCount = (o: PacedOptions) => Math.ceil((o.ratePerSec * (o.warmupMs + o.durationMs)) / 1000);
export const pacedWarmupCount = (o: PacedOptions) => Math.ceil((o.ratePerSec * o.warmupMs) / 1000);
