/**
 * The paced variant of workload 6: 1,000 events/s (after a 1 s warm-up at the same rate, not
 * timed) from one sender on A to 20 receivers on B that run in a worker thread of their own.
 */
import { openSender } from '../clients/open.js';
import { PeerReceiverWorker, type PeerReceiverReport } from '../clients/peer-worker.js';
import { nowUs, sleep } from '../clock.js';
import type { PeerProcess } from '../peers.js';
import { freshRoom } from './cluster.js';

export interface PacedPeerOptions {
  ratePerSec: number;
  warmupMs: number;
  durationMs: number;
  drainMs: number;
  eventBytes: number;
}

export interface PacedPeerResult extends PeerReceiverReport {
  sent: number;
}

const PROBE_TIMEOUT_MS = 10_000;

export async function runPacedPeer(
  pair: [PeerProcess, PeerProcess],
  label: string,
  o: PacedPeerOptions,
  receivers: number,
): Promise<PacedPeerResult> {
  const [a, b] = pair;
  const roomId = freshRoom(label);
  const total = Math.ceil((o.ratePerSec * (o.warmupMs + o.durationMs)) / 1000);
  const worker = new PeerReceiverWorker({
    endpoint: b.endpoint,
    roomId,
    count: receivers,
    label: `${label}-r`,
    capacity: total,
    measureFromSeq: Math.ceil((o.ratePerSec * o.warmupMs) / 1000),
    drainMs: o.drainMs,
  });
  try {
    await worker.next('ready', 30_000);
    const sender = await openSender(a.endpoint, roomId, o.eventBytes);
    try {
      const probing = worker.next('probed', PROBE_TIMEOUT_MS);
      let probed = false;
      void probing.then(
        () => (probed = true),
        () => undefined,
      );
      while (!probed) {
        sender.probe();
        await Promise.race([probing, sleep(100)]);
      }
      await sleep(50);
      let sent = 0;
      const start = nowUs();
      while (sent < total) {
        const due = Math.min(total, Math.floor(((nowUs() - start) / 1e6) * o.ratePerSec));
        while (sent < due) sender.send(sent++);
        await sleep(1);
      }
      worker.finish(sent);
      const { report } = await worker.next('report', o.drainMs + 10_000);
      return { ...report, sent };
    } finally {
      sender.close();
    }
  } finally {
    await worker.close();
  }
}
