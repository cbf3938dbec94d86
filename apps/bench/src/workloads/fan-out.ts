/**
 * Workloads 2 and 3: one sender socket on pod A, N receiver sockets on pod B, events as
 * fast as they are delivered (at most `window` in flight). Baseline: the same sockets on a
 * single pod with BUS_TYPE=memory. Workload 2 is N = 1; workload 3 is N = 20. Three
 * interleaved trials per case; the median is reported.
 */
import { closeAll, openReceivers, RoomSocket } from '../clients/ws.js';
import { runClosedLoop, type ClosedLoopOptions } from '../clients/flow.js';
import type { BusKind } from '../config.js';
import { withCpuBudget } from '../machine.js';
import { withPodCpu, type Pod } from '../pods.js';
import type { Row } from '../report.js';
import { freshRoom, type Cluster } from './cluster.js';
import { perEvent, type PodFlowResult } from './pod-cpu.js';
import { interleaved, pathsOf, summarize } from './trials.js';

export const FLOW_DEFAULTS = { warmupMs: 500, measureMs: 2_000, drainMs: 4_000, maxEvents: 1_000_000 };
/** Interleaved trials per case (see trials.ts). */
export const FLOW_TRIALS = 3;

/** In flight at most ~512 KiB per receiving socket: well under the server's 1 MiB slow-consumer limit. */
export function windowFor(eventBytes: number): number {
  return Math.max(16, Math.min(1_000, Math.floor((512 * 1024) / eventBytes)));
}

export async function closedLoop(senderPod: Pod, receiverPod: Pod, receivers: number, o: ClosedLoopOptions, label: string): Promise<PodFlowResult> {
  const roomId = freshRoom(label);
  const sockets = await openReceivers(receiverPod, roomId, receivers, `${label}-r`);
  const sender = await RoomSocket.open(senderPod, roomId, `${label}-s`);
  try {
    const { result: measured, budget } = await withCpuBudget(
      () => withPodCpu([senderPod, receiverPod], () => runClosedLoop(sender, sockets, o)),
      (m) => m.result.sent,
    );
    const { result, cpuSeconds } = measured;
    return { ...result, cpuUsPerEvent: perEvent(cpuSeconds, result.sent, senderPod === receiverPod), ...(budget && { cpuBudget: budget }) };
  } finally {
    closeAll([sender, ...sockets]);
  }
}

export interface FanOutCase {
  workload: string;
  receivers: number;
  eventBytes: number;
}

/** Runs the memory baseline and each broker for one case, in interleaved trials (see trials.ts). */
export async function fanOut(c: Cluster, buses: readonly BusKind[], k: FanOutCase) {
  const o: ClosedLoopOptions = { ...FLOW_DEFAULTS, eventBytes: k.eventBytes, window: windowFor(k.eventBytes) };
  const size = k.eventBytes >= 1024 ? `${k.eventBytes / 1024} KB` : `${k.eventBytes} B`;
  const caseName = `${k.receivers} recv, ${size}`;
  const trials = await interleaved(pathsOf(c, buses), FLOW_TRIALS, (p, t) =>
    closedLoop(p.sender, p.receiver, k.receivers, o, `w-${p.name}-${k.receivers}-${k.eventBytes}-${t}`),
  );
  const baseline = summarize(trials.memory!);
  const base = (value: number) => ({ name: '1 pod memory', value });
  const rows: Row[] = [];
  const perSec = k.receivers === 1 ? 'events/s' : 'deliveries/s';
  for (const bus of buses) {
    const r = summarize(trials[bus]!);
    const common = { workload: k.workload, bus, case: caseName, integrity: r.integrity };
    const throughput: Row = { ...common, metric: perSec, value: r.deliveriesPerSec, better: 'higher', baseline: base(baseline.deliveriesPerSec) };
    if (k.receivers > 1) throughput.target = { text: '>=0.80x', pass: r.deliveriesPerSec >= 0.8 * baseline.deliveriesPerSec };
    if (r.closedReceivers > 0) throughput.target = { text: `${r.closedReceivers} sockets closed`, pass: false };
    rows.push(
      throughput,
      { ...common, metric: 'p50 ms', value: r.latency.p50, better: 'lower', baseline: base(baseline.latency.p50) },
      { ...common, metric: 'p99 ms', value: r.latency.p99, better: 'lower', baseline: base(baseline.latency.p99) },
      { ...common, metric: 'pod CPU us/event', value: r.podCpuUsPerEvent, better: 'lower', baseline: base(baseline.podCpuUsPerEvent) },
    );
    if (r.cpuBudget && baseline.cpuBudget) {
      rows.push(
        { ...common, metric: 'broker CPU us/event', value: r.cpuBudget.broker, better: 'lower' },
        { ...common, metric: 'machine CPU us/event', value: r.cpuBudget.machine, better: 'lower', baseline: base(baseline.cpuBudget.machine) },
      );
    }
  }
  return { rows, details: { [`${k.workload} ${caseName}`]: { options: o, trials } } };
}
