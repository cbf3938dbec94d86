/**
 * Workload 4: 1,000 events/s for 5 s, 20 receivers on pod B: latency p50/p99/max. A 1 s
 * warm-up at the same rate comes first and is not timed; the receivers run in a worker thread
 * of their own (see receiver-worker.ts). Baseline: the same on a single memory-bus pod.
 * Three interleaved trials (see trials.ts); the median is reported.
 */
import { RoomSocket } from '../clients/ws.js';
import { pacedEventCount, pacedWarmupCount, runPaced, type PacedOptions } from '../clients/flow.js';
import { ReceiverWorker } from '../clients/receiver-worker.js';
import type { BusKind } from '../config.js';
import { withPodCpu, type Pod } from '../pods.js';
import { perEvent, type PodFlowResult } from './pod-cpu.js';
import type { Row } from '../report.js';
import { freshRoom, type Cluster } from './cluster.js';
import { interleaved, pathsOf, summarize } from './trials.js';

export const PACED_OPTIONS: PacedOptions & { trials: number } = {
  eventBytes: 200,
  ratePerSec: 1_000,
  warmupMs: 1_000,
  durationMs: 5_000,
  drainMs: 3_000,
  trials: 3,
};
const RECEIVERS = 20;

async function paced(senderPod: Pod, receiverPod: Pod, label: string, o: PacedOptions): Promise<PodFlowResult> {
  const roomId = freshRoom(label);
  const receivers = new ReceiverWorker({
    pod: { name: receiverPod.name, port: receiverPod.port },
    roomId,
    count: RECEIVERS,
    label: `${label}-r`,
    capacity: pacedEventCount(o),
    measureFromSeq: pacedWarmupCount(o),
    drainMs: o.drainMs,
  });
  try {
    await receivers.next('ready', 30_000);
    const sender = await RoomSocket.open(senderPod, roomId, `${label}-s`);
    try {
      const { result, cpuSeconds } = await withPodCpu([senderPod, receiverPod], () => runPaced(sender, receivers, o));
      return { ...result, cpuUsPerEvent: perEvent(cpuSeconds, result.sent, senderPod === receiverPod) };
    } finally {
      sender.close();
    }
  } finally {
    await receivers.close();
  }
}

/**
 * `o.trials` interleaved rounds (see trials.ts); the median trial is reported.
 */
export async function pacedLatency(c: Cluster, buses: readonly BusKind[], o = PACED_OPTIONS) {
  const trials = await interleaved(pathsOf(c, buses), o.trials, (p, t) => paced(p.sender, p.receiver, `p-${p.name}-${t}`, o));
  const baseline = summarize(trials.memory!);
  const rows: Row[] = [];
  const caseName = `${o.ratePerSec}/s x ${o.durationMs / 1000} s, ${RECEIVERS} recv`;
  for (const bus of buses) {
    const r = summarize(trials[bus]!);
    const common = { workload: '4 paced', bus, case: caseName, better: 'lower' as const, integrity: r.integrity };
    const base = (v: number) => ({ name: '1 pod memory', value: v });
    rows.push(
      { ...common, metric: 'p50 ms', value: r.latency.p50, baseline: base(baseline.latency.p50) },
      {
        ...common,
        metric: 'p99 ms',
        value: r.latency.p99,
        baseline: base(baseline.latency.p99),
        target: { text: '<=5 ms', pass: r.latency.p99 <= 5 },
      },
      { ...common, metric: 'max ms', value: r.latency.max, baseline: base(baseline.latency.max) },
    );
    if (r.closedReceivers > 0) rows[rows.length - 1]!.target = { text: `${r.closedReceivers} sockets closed`, pass: false };
  }
  return { rows, details: { options: o, trials } };
}
