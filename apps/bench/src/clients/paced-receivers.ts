/**
 * The receiving side both paced workers run (receiver-worker.ts for our pods' sockets,
 * peer-worker.ts for any peer's clients): check every delivery, time those after the
 * warm-up, answer the probe, then wait for the sender's count and drain.
 *
 * Messages on `port`: to main `ready` (listening), `probed` (every receiver saw the probe);
 * from main `{ sent }` once the sender is done.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { MessagePort } from 'node:worker_threads';
import { nowUs, sleep, waitFor } from '../clock.js';
import { LatencySamples, SeqTracker, sumIntegrity, type Integrity, type LatencySummary } from '../stats.js';
import { PROBE } from './ws.js';

/** A receiver as the loop needs it: events as (seq, send time µs). */
export interface Listening {
  listen(onEvent: (seq: number, sentUs: number) => void): void;
}

export interface PacedJob {
  /** Highest number of events the sender may send (sizes the trackers). */
  capacity: number;
  /** Events numbered below this are the warm-up: checked for loss, not timed. */
  measureFromSeq: number;
  drainMs: number;
}

export interface PacedCounts {
  receivers: number;
  delivered: number;
  latency: LatencySummary;
  integrity: Integrity;
  /** The receiving thread's own event-loop delay (ms), part of every latency it measured. */
  loopDelay: { p99: number; max: number };
}

export async function receivePaced(receivers: readonly Listening[], job: PacedJob, port: MessagePort): Promise<PacedCounts> {
  const trackers = receivers.map(() => new SeqTracker(job.capacity));
  const latency = new LatencySamples();
  const probed = new Set<number>();
  let delivered = 0;
  receivers.forEach((r, i) => {
    const tracker = trackers[i]!;
    r.listen((seq, sentUs) => {
      if (seq === PROBE) {
        if (!probed.has(i)) {
          probed.add(i);
          if (probed.size === receivers.length) port.postMessage({ type: 'probed' });
        }
        return;
      }
      if (seq < 0 || !tracker.record(seq)) return;
      delivered++;
      if (seq >= job.measureFromSeq) latency.add((nowUs() - sentUs) / 1000);
    });
  });
  const loop = monitorEventLoopDelay({ resolution: 1 });
  loop.enable();
  port.postMessage({ type: 'ready' });
  const sent = await new Promise<number>((resolve) => port.once('message', (m: { sent: number }) => resolve(m.sent)));
  await waitFor(() => delivered >= sent * receivers.length, job.drainMs);
  await sleep(30); // duplicates arrive after the original
  loop.disable();
  return {
    receivers: receivers.length,
    delivered,
    latency: latency.summary(),
    integrity: sumIntegrity(trackers, sent),
    loopDelay: { p99: loop.percentile(99) / 1e6, max: loop.max / 1e6 },
  };
}
