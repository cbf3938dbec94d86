/**
 * Workload 1, relay ceiling: two buses in two processes, broadcastToRoom on A, deliveries
 * counted in B's hub; baseline: the raw broker in the same run (NOTIFY with many payloads per
 * statement into a LISTEN client; plain nats.js pub/sub), in alternating trials. 200-byte
 * messages on both buses; 10 KB on PostgreSQL, above NOTIFY's 8000 bytes, where the raw
 * broker sends each message as two NOTIFYs and PgBus has two ways (largePayloads 'table',
 * the default, and 'chunks'), both measured against that raw path.
 */
import type { BenchTargets, BusKind } from '../config.js';
import { runCeiling, type CeilingCase, type CeilingOptions } from '../ceiling/driver.js';
import { rawParts, type CeilingPath } from '../ceiling/protocol.js';
import type { Row } from '../report.js';

type RelayPath = Exclude<CeilingPath, 'raw'>;

/** A CeilingCase whose paths are raw and the relay paths of `rows`. */
interface Case extends Omit<CeilingCase, 'paths'> {
  buses: readonly BusKind[];
  /** The `case` of each relay path's rows. */
  rows: Partial<Record<RelayPath, string>>;
  /** Least msgs/s ratio to the raw broker. */
  target?: number;
}

export const CEILING_OPTIONS: CeilingOptions & { cases: Case[] } = {
  rounds: 3,
  warmupMs: 200,
  measureMs: 1_200,
  drainMs: 5_000,
  maxMessages: 2_000_000,
  rawBatch: 1_000,
  cases: [
    {
      bytes: 200,
      window: Number(process.env.BENCH_CEILING_WINDOW ?? 5_000),
      buses: ['postgres', 'nats'],
      rows: { relay: '200 B, 2 processes' },
      target: 0.5,
    },
    // 200 messages of 10 KB: at most about 2 MB in flight.
    {
      bytes: 10_240,
      window: 200,
      buses: ['postgres'],
      rows: { relay: '10 KB, 2 processes, by table', 'relay-chunks': '10 KB, 2 processes, by chunks' },
    },
  ],
};

export async function relayCeiling(bus: BusKind, prefix: string, targets: BenchTargets, o = CEILING_OPTIONS) {
  const rows: Row[] = [];
  const details: Record<string, unknown> = { options: o };
  for (const c of o.cases.filter((x) => x.buses.includes(bus))) {
    const paths: CeilingPath[] = ['raw', ...(Object.keys(c.rows) as RelayPath[])];
    // A prefix per case: no case hears another's messages.
    const results = await runCeiling(bus, `${prefix}_c${bus[0]}${c.bytes}`, targets, o, { ...c, paths });
    details[`${c.bytes} B`] = results;
    const raw = results.raw!;
    const parts = rawParts(bus, c.bytes);
    const rawName = bus === 'postgres' ? `raw NOTIFY x${o.rawBatch}/stmt${parts > 1 ? `, ${parts} per msg` : ''}` : 'raw nats.js pub/sub';
    for (const [path, caseText] of Object.entries(c.rows) as Array<[RelayPath, string]>) {
      const relay = results[path]!;
      const row = { workload: '1 relay ceiling', bus, case: caseText, integrity: relay.integrity };
      rows.push(
        {
          ...row,
          metric: 'msgs/s A->B',
          value: relay.messagesPerSec,
          better: 'higher',
          baseline: { name: rawName, value: raw.messagesPerSec },
          ...(c.target !== undefined && {
            target: { text: `>=${c.target.toFixed(2)}x`, pass: relay.messagesPerSec >= c.target * raw.messagesPerSec },
          }),
        },
        {
          ...row,
          metric: 'CPU us/msg A+B',
          value: relay.cpuUsPerMessage.a + relay.cpuUsPerMessage.b,
          better: 'lower',
          baseline: { name: 'raw', value: raw.cpuUsPerMessage.a + raw.cpuUsPerMessage.b },
        },
      );
    }
  }
  return { rows, details };
}
