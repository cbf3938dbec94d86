/**
 * Receivers in a worker thread of their own, for the paced workload. In a real deployment the
 * sender and the receivers are different browsers; in one event loop the sender's timer and
 * twenty sockets' reads would wait on each other, and that wait would show up as latency the
 * pods never caused. The worker opens the sockets, checks every delivery and keeps latency
 * samples; the main thread only sends.
 *
 * Messages: main -> worker `{ type: 'finish', sent }`; worker -> main `ready`, `probed`, then
 * the `ReceiverReport`.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { isMainThread, parentPort, workerData } from 'node:worker_threads';
import { nowUs, sleep, waitFor } from '../clock.js';
import { WorkerHandle } from './worker-handle.js';
import type { PodEndpoint } from '../pods.js';
import { LatencySamples, SeqTracker, sumIntegrity, type Integrity, type LatencySummary } from '../stats.js';
import { openReceivers, parseEvent, parsedSentUs, PROBE } from './ws.js';

export interface ReceiverJob {
  pod: PodEndpoint;
  roomId: string;
  count: number;
  label: string;
  /** Highest number of events the sender may send (sizes the trackers). */
  capacity: number;
  /** Events numbered below this are the warm-up: checked for loss, not timed. */
  measureFromSeq: number;
  drainMs: number;
}

export interface ReceiverReport {
  receivers: number;
  delivered: number;
  latency: LatencySummary;
  integrity: Integrity;
  closedReceivers: number;
  /** The receiving thread's own event-loop delay (ms), part of every latency it measured. */
  loopDelay: { p99: number; max: number };
}

/** The main thread's handle on a receiver worker. */
export class ReceiverWorker extends WorkerHandle<ReceiverReport> {
  constructor(job: ReceiverJob) {
    super(new URL(import.meta.url), job);
  }
}

async function runWorker(job: ReceiverJob): Promise<void> {
  const port = parentPort!;
  const sockets = await openReceivers(job.pod, job.roomId, job.count, job.label);
  const trackers = sockets.map(() => new SeqTracker(job.capacity));
  const latency = new LatencySamples();
  const probed = new Set<number>();
  let delivered = 0;
  sockets.forEach((s, i) => {
    const tracker = trackers[i]!;
    s.ws.on('message', (data: Buffer) => {
      const seq = parseEvent(data);
      if (seq === PROBE) {
        if (probed.size < sockets.length && !probed.has(i)) {
          probed.add(i);
          if (probed.size === sockets.length) port.postMessage({ type: 'probed' });
        }
        return;
      }
      if (seq < 0 || !tracker.record(seq)) return;
      delivered++;
      if (seq >= job.measureFromSeq) latency.add((nowUs() - parsedSentUs) / 1000);
    });
  });
  const loop = monitorEventLoopDelay({ resolution: 1 });
  loop.enable();
  port.postMessage({ type: 'ready' });
  const sent = await new Promise<number>((resolve) => port.once('message', (m: { sent: number }) => resolve(m.sent)));
  await waitFor(() => delivered >= sent * sockets.length, job.drainMs);
  await sleep(30); // duplicates arrive after the original
  loop.disable();
  const report: ReceiverReport = {
    receivers: sockets.length,
    delivered,
    latency: latency.summary(),
    integrity: sumIntegrity(trackers, sent),
    closedReceivers: sockets.filter((s) => s.closeCode !== undefined).length,
    loopDelay: { p99: loop.percentile(99) / 1e6, max: loop.max / 1e6 },
  };
  for (const s of sockets) s.close();
  port.postMessage({ type: 'report', report });
}

if (!isMainThread && (workerData as ReceiverJob | undefined)?.roomId !== undefined) {
  runWorker(workerData as ReceiverJob).catch((e: unknown) => {
    parentPort!.postMessage({ type: 'error', message: e instanceof Error ? e.message : String(e) });
  });
}
