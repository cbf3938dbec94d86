/**
 * Workload 4: 1,000 events/s for 5 s, 20 receivers on pod B: latency p50/p99/max.
 * Baseline: the same on a single memory-bus pod.
 */
import { closeAll, openReceivers, RoomSocket } from '../clients/ws.js';
import { runPaced, type PacedOptions } from '../clients/flow.js';
import type { BusKind } from '../config.js';
import { withPodCpu, type Pod } from '../pods.js';
import { perEvent, type PodFlowResult } from './pod-cpu.js';
import type { Row } from '../report.js';
import { freshRoom, type Cluster } from './cluster.js';

export const PACED_OPTIONS: PacedOptions = { eventBytes: 200, ratePerSec: 1_000, durationMs: 5_000, drainMs: 3_000 };
const RECEIVERS = 20;

async function paced(senderPod: Pod, receiverPod: Pod, label: string, o: PacedOptions): Promise<PodFlowResult> {
  const roomId = freshRoom(label);
  const sockets = await openReceivers(receiverPod, roomId, RECEIVERS, `${label}-r`);
  const sender = await RoomSocket.open(senderPod, roomId, `${label}-s`);
  try {
    const { result, cpuSeconds } = await withPodCpu([senderPod, receiverPod], () => runPaced(sender, sockets, o));
    return { ...result, cpuUsPerEvent: perEvent(cpuSeconds, result.sent, senderPod === receiverPod) };
  } finally {
    closeAll([sender, ...sockets]);
  }
}

export async function pacedLatency(c: Cluster, buses: readonly BusKind[], o = PACED_OPTIONS) {
  const baseline = await paced(c.memory, c.memory, 'p-mem', o);
  const rows: Row[] = [];
  const details: Record<string, PodFlowResult> = { memory: baseline };
  const caseName = `${o.ratePerSec}/s x ${o.durationMs / 1000} s, ${RECEIVERS} recv`;
  for (const bus of buses) {
    const [a, b] = c.pairs[bus];
    const r = await paced(a, b, `p-${bus}`, o);
    details[bus] = r;
    const common = { workload: '4 paced', bus, case: caseName, better: 'lower' as const, integrity: r.integrity };
    const base = (v: number) => ({ name: '1 pod memory', value: v });
    rows.push(
      { ...common, metric: 'p50 ms', value: r.latency.p50, baseline: base(baseline.latency.p50) },
      { ...common, metric: 'p99 ms', value: r.latency.p99, baseline: base(baseline.latency.p99), target: { text: '<=5 ms', pass: r.latency.p99 <= 5 } },
      { ...common, metric: 'max ms', value: r.latency.max, baseline: base(baseline.latency.max) },
    );
    if (r.closedReceivers > 0) rows[rows.length - 1]!.target = { text: `${r.closedReceivers} sockets closed`, pass: false };
  }
  return { rows, details: { options: o, ...details } };
}
