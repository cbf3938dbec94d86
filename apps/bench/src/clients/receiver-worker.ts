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
import { isMainThread, parentPort, workerData } from 'node:worker_threads';
import { WorkerHandle } from './worker-handle.js';
import type { PodEndpoint } from '../pods.js';
import { receivePaced, type PacedCounts, type PacedJob } from './paced-receivers.js';
import { openReceivers, parseEvent, parsedSentUs } from './ws.js';

export interface ReceiverJob extends PacedJob {
  pod: PodEndpoint;
  roomId: string;
  count: number;
  label: string;
}

export interface ReceiverReport extends PacedCounts {
  closedReceivers: number;
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
  const listening = sockets.map((s) => ({
    listen: (onEvent: (seq: number, sentUs: number) => void) =>
      s.ws.on('message', (data: Buffer) => {
        const seq = parseEvent(data);
        onEvent(seq, parsedSentUs);
      }),
  }));
  const counts = await receivePaced(listening, job, port);
  const report: ReceiverReport = { ...counts, closedReceivers: sockets.filter((s) => s.closeCode !== undefined).length };
  for (const s of sockets) s.close();
  port.postMessage({ type: 'report', report });
}

if (!isMainThread && (workerData as ReceiverJob | undefined)?.roomId !== undefined) {
  runWorker(workerData as ReceiverJob).catch((e: unknown) => {
    parentPort!.postMessage({ type: 'error', message: e instanceof Error ? e.message : String(e) });
  });
}
