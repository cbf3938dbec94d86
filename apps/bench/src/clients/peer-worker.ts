/**
 * The paced peer comparison's receivers (ours or Socket.IO), in a worker thread of their own
 * for the reason given in receiver-worker.ts: in one event loop with the sender, the sender's
 * timer and twenty sockets' reads would wait on each other and count as latency.
 *
 * Messages: main -> worker `{ type: 'finish', sent }`; worker -> main `ready`, `probed`, then
 * the report.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { nowUs, sleep, waitFor } from '../clock.js';
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

type FromWorker = { type: 'ready' } | { type: 'probed' } | { type: 'report'; report: PeerReceiverReport } | { type: 'error'; message: string };

export class PeerReceiverWorker {
  private readonly worker: Worker;
  private readonly inbox: FromWorker[] = [];
  private waiting: ((m: FromWorker) => void) | undefined;
  private failure: Error | undefined;

  constructor(job: Omit<PeerReceiverJob, 'peerWorker'>) {
    this.worker = new Worker(new URL(import.meta.url), { workerData: { ...job, peerWorker: true } });
    this.worker.on('message', (m: FromWorker) => this.deliver(m));
    this.worker.on('error', (e) => this.deliver({ type: 'error', message: e.message }));
    this.worker.on('exit', (code) => this.deliver({ type: 'error', message: `receiver worker exited (${code})` }));
  }

  private deliver(m: FromWorker): void {
    if (m.type === 'error') this.failure ??= new Error(m.message);
    const w = this.waiting;
    this.waiting = undefined;
    if (w) w(m);
    else this.inbox.push(m);
  }

  async next<T extends FromWorker['type']>(type: T, timeoutMs: number): Promise<Extract<FromWorker, { type: T }>> {
    const m =
      this.inbox.shift() ??
      (await new Promise<FromWorker>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`receiver worker: no '${type}' within ${timeoutMs} ms`)), timeoutMs);
        this.waiting = (msg) => {
          clearTimeout(timer);
          resolve(msg);
        };
      }));
    if (m.type !== type) throw this.failure ?? new Error(`receiver worker: expected '${type}', got '${m.type}'`);
    return m as Extract<FromWorker, { type: T }>;
  }

  finish(sent: number): void {
    this.worker.postMessage({ type: 'finish', sent });
  }

  async close(): Promise<void> {
    await this.worker.terminate();
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
