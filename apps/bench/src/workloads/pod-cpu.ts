/** What the pods spent per event: read from their process_cpu_seconds_total around a run. */
import type { FlowResult } from '../clients/flow.js';
import type { CpuBudget } from '../machine.js';

/** FlowResult plus the CPU the pods spent per event sent (one figure when sender and receivers share a pod). */
export interface PodFlowResult extends FlowResult {
  cpuUsPerEvent: { senderPod: number; receiverPod?: number };
  /** What the run cost the machine per event sent: all of it, the broker, the bench (see machine.ts). */
  cpuBudget?: CpuBudget;
}

/** CPU the pods spent per event, all pods together (broker not included). */
export const totalCpu = (r: PodFlowResult) => r.cpuUsPerEvent.senderPod + (r.cpuUsPerEvent.receiverPod ?? 0);

export function perEvent([a, b]: number[], sent: number, samePod: boolean): PodFlowResult['cpuUsPerEvent'] {
  const us = (s: number) => (s * 1e6) / Math.max(1, sent);
  return samePod ? { senderPod: us(a!) } : { senderPod: us(a!), receiverPod: us(b!) };
}
