/**
 * Workloads 2 and 3: one sender socket on pod A, N receiver sockets on pod B, events as
 * fast as they are delivered (at most `window` in flight). Baseline: the same sockets on a
 * single pod with BUS_TYPE=memory. Workload 2 is N = 1; workload 3 is N = 20.
 */
import { closeAll, openReceivers, RoomSocket } from '../clients/ws.js';
import { runClosedLoop, type ClosedLoopOptions } from '../clients/flow.js';
import type { BusKind } from '../config.js';
import { machineBusySeconds } from '../machine.js';
import { withPodCpu, type Pod } from '../pods.js';
import type { Row } from '../report.js';
import { freshRoom, type Cluster } from './cluster.js';
import { perEvent, totalCpu, type PodFlowResult } from './pod-cpu.js';

export const FLOW_DEFAULTS = { warmupMs: 500, measureMs: 2_000, drainMs: 4_000, maxEvents: 1_000_000 };

/** In flight at most ~512 KiB per receiving socket: well under the server's 1 MiB slow-consumer limit. */
export function windowFor(eventBytes: number): number {
  return Math.max(16, Math.min(1_000, Math.floor((512 * 1024) / eventBytes)));
}

export async function closedLoop(senderPod: Pod, receiverPod: Pod, receivers: number, o: ClosedLoopOptions, label: string): Promise<PodFlowResult> {
  const roomId = freshRoom(label);
  const sockets = await openReceivers(receiverPod, roomId, receivers, `${label}-r`);
  const sender = await RoomSocket.open(senderPod, roomId, `${label}-s`);
  try {
    const busyBefore = machineBusySeconds();
    const { result, cpuSeconds } = await withPodCpu([senderPod, receiverPod], () => runClosedLoop(sender, sockets, o));
    const busyAfter = machineBusySeconds();
    return {
      ...result,
      cpuUsPerEvent: perEvent(cpuSeconds, result.sent, senderPod === receiverPod),
      ...(busyBefore !== undefined && busyAfter !== undefined && { machineCpuUsPerEvent: ((busyAfter - busyBefore) * 1e6) / Math.max(1, result.sent) }),
    };
  } finally {
    closeAll([sender, ...sockets]);
  }
}

export interface FanOutCase {
  workload: string;
  receivers: number;
  eventBytes: number;
}

/** Runs the memory baseline, then each broker, for one case; returns rows and raw results. */
export async function fanOut(c: Cluster, buses: readonly BusKind[], k: FanOutCase) {
  const o: ClosedLoopOptions = { ...FLOW_DEFAULTS, eventBytes: k.eventBytes, window: windowFor(k.eventBytes) };
  const size = k.eventBytes >= 1024 ? `${k.eventBytes / 1024} KB` : `${k.eventBytes} B`;
  const caseName = `${k.receivers} recv, ${size}`;
  const baseline = await closedLoop(c.memory, c.memory, k.receivers, o, `w-mem-${k.receivers}-${k.eventBytes}`);
  const rows: Row[] = [];
  const details: Record<string, PodFlowResult> = { memory: baseline };
  const perSec = k.receivers === 1 ? 'events/s' : 'deliveries/s';
  for (const bus of buses) {
    const [a, b] = c.pairs[bus];
    const r = await closedLoop(a, b, k.receivers, o, `w-${bus}-${k.receivers}-${k.eventBytes}`);
    details[bus] = r;
    const common = { workload: k.workload, bus, case: caseName, integrity: r.integrity };
    const throughputTarget = k.receivers > 1 ? { text: '>=0.80x', pass: r.deliveriesPerSec >= 0.8 * baseline.deliveriesPerSec } : undefined;
    rows.push(
      {
        ...common,
        metric: perSec,
        value: r.deliveriesPerSec,
        better: 'higher',
        baseline: { name: '1 pod memory', value: baseline.deliveriesPerSec },
        ...(throughputTarget && { target: throughputTarget }),
      },
      { ...common, metric: 'p50 ms', value: r.latency.p50, better: 'lower', baseline: { name: '1 pod memory', value: baseline.latency.p50 } },
      { ...common, metric: 'p99 ms', value: r.latency.p99, better: 'lower', baseline: { name: '1 pod memory', value: baseline.latency.p99 } },
      {
        ...common,
        metric: 'pod CPU us/event',
        value: totalCpu(r),
        better: 'lower',
        baseline: { name: '1 pod memory', value: totalCpu(baseline) },
      },
    );
    if (r.machineCpuUsPerEvent !== undefined && baseline.machineCpuUsPerEvent !== undefined) {
      rows.push({
        ...common,
        metric: 'machine CPU us/event',
        value: r.machineCpuUsPerEvent,
        better: 'lower',
        baseline: { name: '1 pod memory', value: baseline.machineCpuUsPerEvent },
      });
    }
    if (r.closedReceivers > 0) rows.find((x) => x.bus === bus && x.metric === perSec)!.target = { text: `${r.closedReceivers} sockets closed`, pass: false };
  }
  return { rows, details: { [`${k.workload} ${caseName}`]: { options: o, ...details } } };
}
