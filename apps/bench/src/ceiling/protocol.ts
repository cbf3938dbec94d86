/**
 * What the relay-ceiling driver (process A) and its receiver child (process B) share: their
 * IPC messages, the paths and how each one is opened, the raw payloads.
 */
import type { LocalHub, RelayBus } from '@retrotro/bus-core';
import { NatsBus } from '@retrotro/bus-nats';
import { PgBus } from '@retrotro/bus-pg';
import type { BenchTargets, BusKind } from '../config.js';
import type { Integrity } from '../stats.js';
import { textPadding } from '../padding.js';

/**
 * raw: the broker alone; relay: a RelayBus (PgBus / NatsBus) on each side, default options
 * (PostgreSQL: `largePayloads: 'table'`); relay-chunks: PgBus with `largePayloads: 'chunks'`.
 */
export type CeilingPath = 'raw' | 'relay' | 'relay-chunks';

export type ToReceiver =
  /** Opens every path of the case at once (a raw listener, buses), so trials can alternate. */
  | { cmd: 'open'; bus: BusKind; prefix: string; roomId: string; targets: BenchTargets; bytes: number; paths: CeilingPath[] }
  /** progressEvery: messages between two progress reports (besides one every few ms). */
  | { cmd: 'trial'; path: CeilingPath; capacity: number; progressEvery: number }
  | { cmd: 'end-trial'; sent: number }
  | { cmd: 'close' };

export type FromReceiver =
  | { type: 'ready' }
  | { type: 'progress'; count: number; atUs: number }
  /** cpuUs: CPU time process B used during the trial. stray: arrivals on the path not under trial. */
  | { type: 'trial-result'; count: number; integrity: Integrity; cpuUs: number; stray: number }
  | { type: 'error'; message: string };

export const RAW_STREAM = 'raw';

/** A NOTIFY payload must be shorter than 8000 bytes. */
const NOTIFY_MAX_BYTES = 7_999;

/** Payloads per raw message: bare NOTIFY carries a larger message only cut into parts. */
export function rawParts(bus: BusKind, bytes: number): number {
  return bus === 'postgres' ? Math.ceil(bytes / NOTIFY_MAX_BYTES) : 1;
}

/** Padding of each raw payload, so that the parts of a message add up to `bytes` (the number takes up to 8). */
export function rawPad(bytes: number, parts: number): string {
  return textPadding(Math.floor(bytes / parts) - 8);
}

/**
 * Raw payloads: `<n>.` then padding. n is `seq * parts + part`: one number says both, and a
 * message in one part reads as its seq.
 */
export function rawPayload(n: number, pad: string): string {
  return `${n}.${pad}`;
}

/**
 * Starts the bus of a relay path. Each relay path has its own prefix, so that an idle path's
 * bus never hears the one under trial (a table bus would also take the chunk frames).
 */
export async function startRelay(
  bus: BusKind,
  path: Exclude<CeilingPath, 'raw'>,
  prefix: string,
  podId: string,
  targets: BenchTargets,
  hub: LocalHub,
): Promise<RelayBus> {
  const common = { podId, prefix: path === 'relay-chunks' ? `${prefix}k` : prefix };
  const relay =
    bus === 'nats'
      ? new NatsBus({ ...common, servers: targets.natsUrl })
      : new PgBus({ ...common, connectionString: targets.databaseUrl, ...(path === 'relay-chunks' && { largePayloads: 'chunks' as const }) });
  await relay.start(hub);
  await relay.whenReady();
  return relay;
}
