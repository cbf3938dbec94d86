/**
 * The paced peer comparison's receivers (ours or Socket.IO), in a worker thread of their own
 * for the reason given in receiver-worker.ts: in one event loop with the sender, the sender's
 * timer and twenty sockets' reads would wait on each other and count as latency.
 *
 * Messages: main -> worker `{ type: 'finish', sent }`; worker -> main `ready`, `probed`, then
 * the report.
 */
import { isMainThread, parentPort, workerData } from 'node:worker_threads';
import { WorkerHandle } from './worker-handle.js';
import { openPeerReceivers } from './open.js';
import { receivePaced, type PacedCounts, type PacedJob } from './paced-receivers.js';
import type { PeerEndpoint } from './peer.js';

export interface PeerReceiverJob extends PacedJob {
  peerWorker: true;
  endpoint: PeerEndpoint;
  roomId: string;
  count: number;
  label: string;
}

export interface PeerReceiverReport extends PacedCounts {
  cuts: number;
  recoveries: number;
}

export class PeerReceiverWorker extends WorkerHandle<PeerReceiverReport> {
  constructor(job: Omit<PeerReceiverJob, 'peerWorker'>) {
    super(new URL(import.meta.url), { ...job, peerWorker: true });
  }
}

async function runWorker(job: PeerReceiverJob): Promise<void> {
  const port = parentPort!;
  const receivers = await openPeerReceivers(job.endpoint, job.roomId, job.count, job.label);
  const counts = await receivePaced(receivers, job, port);
  const report: PeerReceiverReport = {
    ...counts,
    cuts: receivers.reduce((s, r) => s + r.cuts, 0),
    recoveries: receivers.reduce((s, r) => s + r.recoveries, 0),
  };
  for (const r of receivers) r.close();
  port.postMessage({ type: 'report', report });
}

if (!isMainThread && (workerData as PeerReceiverJob | undefined)?.peerWorker === true) {
  runWorker(workerData as PeerReceiverJob).catch((e: unknown) => {
    parentPort!.postMessage({ type: 'error', message: e instanceof Error ? e.message : String(e) });
  });
}
