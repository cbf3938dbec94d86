/**
 * The paced peer comparison's receivers (ours or Socket.IO), in a worker thread of their own
 * for the reason given in receiver-worker.ts: in one event loop with the sender, the sender's
 * timer and twenty sockets' reads would wait on each other and count as latency.
 *
 * Messages: main -> worker `{ type: 'finish', sent }`; worker -> main `ready`, `probed`, then
 * the report.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { isMainThread, parentPort, workerData } from 'node:worker_threads';
import { nowUs, sleep, waitFor } from '../clock.js';
import { WorkerHandle } from './worker-handle.js';
import { LatencySamples, SeqTracker, sumIntegrity, type Integrity, type LatencySummary } from '../stats.js';
import { openPeerReceivers } from './open.js';
import type { PeerEndpoint } from './peer.js';
import { PROBE } from './ws.js';

export interface PeerReceiverJob {
  peerWorker: true;
  endpoint: PeerEndpoint;
  roomId: string;
  count: number;
  label: string;
  capacity: number;
  measureFromSeq: number;
  drainMs: number;
}

export interface PeerReceiverReport {
  receivers: number;
  delivered: number;
  latency: LatencySummary;
  integrity: Integrity;
  cuts: number;
  recoveries: number;
  loopDelay: { p99: number; max: number };
}

export class PeerReceiverWorker extends WorkerHandle<PeerReceiverReport> {
  constructor(job: Omit<PeerReceiverJob, 'peerWorker'>) {
    super(new URL(import.meta.url), { ...job, peerWorker: true });
  }
}

async function runWorker(job: PeerReceiverJob): Promise<void> {
  const port = parentPort!;
  const receivers = await openPeerReceivers(job.endpoint, job.roomId, job.count, job.label);
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
  await sleep(30);
  loop.disable();
  const report: PeerReceiverReport = {
    receivers: receivers.length,
    delivered,
    latency: latency.summary(),
    integrity: sumIntegrity(trackers, sent),
    cuts: receivers.reduce((s, r) => s + r.cuts, 0),
    recoveries: receivers.reduce((s, r) => s + r.recoveries, 0),
    loopDelay: { p99: loop.percentile(99) / 1e6, max: loop.max / 1e6 },
  };
  for (const r of receivers) r.close();
  port.postMessage({ type: 'report', report });
}

if (!isMainThread && (workerData as PeerReceiverJob | undefined)?.peerWorker === true) {
  runWorker(workerData as PeerReceiverJob).catch((e: unknown) => {
    parentPort!.postMessage({ type: 'error', message: e instanceof Error ? e.message : String(e) });
  });
}
