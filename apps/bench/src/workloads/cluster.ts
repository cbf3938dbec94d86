/**
 * The pods the socket workloads (2, 3, 4) share: a single memory-bus pod (the baseline: no
 * relay at all) and two pods per broker. Each group has its own BUS_PREFIX.
 */
import type { BenchTargets, BusKind } from '../config.js';
import { startPod, startPods, stopPods, type Pod } from '../pods.js';

export interface Cluster {
  memory: Pod;
  /** [A, B] per broker: senders on A, receivers on B. */
  pairs: Record<BusKind, [Pod, Pod]>;
}

export async function startCluster(prefix: string, targets: BenchTargets, buses: readonly BusKind[]): Promise<Cluster> {
  const [memory, ...pairs] = await Promise.all([
    startPod('memory', { busType: 'memory', prefix: `${prefix}_m`, targets }),
    ...buses.map((bus) => startPods(2, bus, { busType: bus, prefix: `${prefix}_${bus === 'postgres' ? 'p' : 'n'}`, targets })),
  ]);
  const byBus = {} as Record<BusKind, [Pod, Pod]>;
  buses.forEach((bus, i) => {
    byBus[bus] = pairs[i] as [Pod, Pod];
  });
  return { memory: memory as Pod, pairs: byBus };
}

export async function stopCluster(c: Cluster): Promise<void> {
  await stopPods([c.memory, ...Object.values(c.pairs).flat()]);
}

let rooms = 0;
/** A room no earlier workload used. */
export const freshRoom = (label: string) => `${label}-${rooms++}`;
