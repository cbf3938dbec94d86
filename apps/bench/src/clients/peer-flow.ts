/**
 * Runs of the peer comparison over the Sender / Receiver interface (peer.ts), for our pods and
 * Socket.IO nodes alike: a closed loop of a fixed number of events (at most `window` in flight,
 * the rule of the fan-out workload) and the probe that proves the route first. Every delivery
 * is checked (loss, duplicates, reordering per sender order) and timed from the send time in
 * the event.
 */
import { nowUs, sleep, waitFor } from '../clock.js';
import { LatencySamples, SeqTracker, sumIntegrity, type Integrity, type LatencySummary } from '../stats.js';
import type { Receiver, Sender } from './peer.js';
import { PROBE } from './ws.js';

const PROBE_TIMEOUT_MS = 10_000;

/** Sends probes until every receiver has seen one: the route through the broker works. */
export async function probeAll(sender: Sender, receivers: Receiver[]): Promise<void> {
  const seen = new Set<number>();
  receivers.forEach((r, i) => {
    r.listen((seq) => {
      if (seq === PROBE) seen.add(i);
    });
  });
  const deadline = Date.now() + PROBE_TIMEOUT_MS;
  try {
    while (seen.size < receivers.length) {
      if (Date.now() > deadline) throw new Error(`only ${seen.size}/${receivers.length} receivers got a probe within ${PROBE_TIMEOUT_MS} ms`);
      sender.probe();
      await waitFor(() => seen.size === receivers.length, 100);
    }
    await sleep(50); // late probes arrive before counting starts
  } finally {
    for (const r of receivers) r.listen(undefined);
  }
}

export interface FixedLoopOptions {
  events: number;
  window: number;
  /** Longest a run may send (the run stops sending then; what was sent is drained and checked). */
  maxMs: number;
  /** After sending stops: longest wait for the last deliveries. */
  drainMs: number;
  /** No delivery completed for this long: the run is stalled (lost events never complete). */
  stallMs: number;
}

export interface FixedLoopResult {
  sent: number;
  receivers: number;
  deliveries: number;
  /** Deliveries / (last delivery - first send). */
  deliveriesPerSec: number;
  seconds: number;
  latency: LatencySummary;
  integrity: Integrity;
  /** Sending stopped at maxMs before every event was sent. */
  capped: boolean;
  cuts: number;
  cutCodes: number[];
  recoveries: number;
  recoveredEvents: number;
  senderErrors: Record<string, number>;
}

export async function runFixedLoop(sender: Sender, receivers: Receiver[], o: FixedLoopOptions): Promise<FixedLoopResult> {
  await probeAll(sender, receivers);
  const n = receivers.length;
  const counts = new Uint16Array(o.events);
  const trackers = receivers.map(() => new SeqTracker(o.events));
  const latency = new LatencySamples();
  const cutsBefore = receivers.map((r) => r.cuts);
  const recBefore = receivers.map((r) => [r.recoveries, r.recoveredEvents] as const);
  const errorsBefore = { ...sender.errors };
  let sent = 0;
  let complete = 0;
  let deliveries = 0;
  let sending = true;
  let pumpScheduled = false;
  let lastProgress = Date.now();
  let lastDeliveryUs = 0;
  const start = nowUs();
  const pump = () => {
    pumpScheduled = false;
    while (sending && sent - complete < o.window && sent < o.events) sender.send(sent++);
  };
  receivers.forEach((r, i) => {
    const tracker = trackers[i]!;
    r.listen((seq, sentUs) => {
      if (seq < 0 || !tracker.record(seq)) return;
      const now = nowUs();
      deliveries++;
      lastDeliveryUs = now;
      latency.add((now - sentUs) / 1000);
      if (++counts[seq]! === n) {
        complete++;
        lastProgress = Date.now();
        if (!pumpScheduled) {
          pumpScheduled = true;
          setImmediate(pump);
        }
      }
    });
  });
  try {
    pump();
    await waitFor(() => complete === o.events || Date.now() - lastProgress > o.stallMs || nowUs() - start > o.maxMs * 1000, o.maxMs + 1_000);
    sending = false;
    await waitFor(() => complete === sent || Date.now() - lastProgress > o.drainMs, o.drainMs + 1_000);
    await sleep(50); // duplicates arrive after the original
  } finally {
    sending = false;
    for (const r of receivers) r.listen(undefined);
  }
  const seconds = Math.max(1e-6, (lastDeliveryUs - start) / 1e6);
  const senderErrors: Record<string, number> = {};
  for (const [k, v] of Object.entries(sender.errors)) if (v - (errorsBefore[k] ?? 0) > 0) senderErrors[k] = v - (errorsBefore[k] ?? 0);
  return {
    sent,
    receivers: n,
    deliveries,
    deliveriesPerSec: deliveries / seconds,
    seconds,
    latency: latency.summary(),
    integrity: sumIntegrity(trackers, sent),
    capped: sent < o.events,
    cuts: receivers.reduce((s, r, i) => s + r.cuts - cutsBefore[i]!, 0),
    cutCodes: receivers.flatMap((r, i) => r.cutCodes.slice(cutsBefore[i]!)),
    recoveries: receivers.reduce((s, r, i) => s + r.recoveries - recBefore[i]![0], 0),
    recoveredEvents: receivers.reduce((s, r, i) => s + r.recoveredEvents - recBefore[i]![1], 0),
    senderErrors,
  };
}
