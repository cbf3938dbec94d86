/** Messages between the relay-ceiling driver (process A) and its receiver child (process B). */
import type { BenchTargets, BusKind } from '../config.js';
import type { Integrity } from '../stats.js';

/** raw: the broker alone; relay: a RelayBus (PgBus / NatsBus) on each side. */
export type CeilingPath = 'raw' | 'relay';

export type ToReceiver =
  /** Opens both paths at once (a raw listener and a bus), so trials can alternate. */
  | { cmd: 'open'; bus: BusKind; prefix: string; roomId: string; targets: BenchTargets }
  | { cmd: 'trial'; path: CeilingPath; capacity: number }
  | { cmd: 'end-trial'; sent: number }
  | { cmd: 'close' };

export type FromReceiver =
  | { type: 'ready' }
  | { type: 'progress'; count: number; atUs: number }
  /** cpuUs: CPU time process B used during the trial. stray: arrivals on the path not under trial. */
  | { type: 'trial-result'; count: number; integrity: Integrity; cpuUs: number; stray: number }
  | { type: 'error'; message: string };

/** Raw payloads: `<seq>.` then padding, 200 bytes in all. */
export function rawPayload(seq: number, pad: string): string {
  return `${seq}.${pad}`;
}

export const RAW_STREAM = 'raw';
export const CEILING_MESSAGE_BYTES = 200;
