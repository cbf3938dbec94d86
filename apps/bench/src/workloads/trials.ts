/**
 * Repeated, interleaved trials for the socket workloads. The machine is shared and noisy: a
 * burst of someone else's work during one run can halve its throughput. Running memory, then
 * each broker, then again, puts such a burst on every path alike; the median trial of each
 * path is reported, and every trial's figure is kept in the JSON.
 */
import type { BusKind } from '../config.js';
import type { CpuBudget } from '../machine.js';
import type { Pod } from '../pods.js';
import { addIntegrity, median, noFaults, type Integrity } from '../stats.js';
import type { Cluster } from './cluster.js';
import { totalCpu, type PodFlowResult } from './pod-cpu.js';

export interface Path {
  /** 'memory' (the baseline) or a broker. */
  name: string;
  sender: Pod;
  receiver: Pod;
}

/** The baseline path first, then one per broker. */
export function pathsOf(c: Cluster, buses: readonly BusKind[]): Path[] {
  return [
    { name: 'memory', sender: c.memory, receiver: c.memory },
    ...buses.map((bus) => ({ name: bus, sender: c.pairs[bus][0], receiver: c.pairs[bus][1] })),
  ];
}

export async function interleaved(paths: Path[], trials: number, run: (p: Path, trial: number) => Promise<PodFlowResult>) {
  const byPath: Record<string, PodFlowResult[]> = Object.fromEntries(paths.map((p) => [p.name, []]));
  for (let t = 0; t < trials; t++) {
    for (const p of paths) byPath[p.name]!.push(await run(p, t));
  }
  return byPath;
}

export interface TrialSummary {
  deliveriesPerSec: number;
  latency: { p50: number; p99: number; max: number };
  podCpuUsPerEvent: number;
  cpuBudget: CpuBudget | undefined;
  /** Summed over every trial: all must be zero. */
  integrity: Integrity;
  closedReceivers: number;
}

/** Median of each figure over the trials; integrity and closed sockets add up. */
export function summarize(trials: PodFlowResult[]): TrialSummary {
  const m = (f: (r: PodFlowResult) => number) => median(trials.map(f));
  const budgets = trials.map((r) => r.cpuBudget).filter((b): b is CpuBudget => b !== undefined);
  const mb = (f: (b: CpuBudget) => number) => median(budgets.map(f));
  return {
    deliveriesPerSec: m((r) => r.deliveriesPerSec),
    latency: { p50: m((r) => r.latency.p50), p99: m((r) => r.latency.p99), max: m((r) => r.latency.max) },
    podCpuUsPerEvent: m(totalCpu),
    cpuBudget: budgets.length > 0 ? { machine: mb((b) => b.machine), broker: mb((b) => b.broker), bench: mb((b) => b.bench) } : undefined,
    integrity: trials.reduce((sum, r) => addIntegrity(sum, r.integrity), noFaults()),
    closedReceivers: trials.reduce((sum, r) => sum + r.closedReceivers, 0),
  };
}
