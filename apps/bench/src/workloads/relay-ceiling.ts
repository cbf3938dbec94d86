/**
 * Workload 1, relay ceiling: two buses in two processes, broadcastToRoom on A, deliveries
 * counted in B's hub, 200-byte messages; baseline: the raw broker in the same run (NOTIFY
 * with many payloads per statement into a LISTEN client; plain nats.js pub/sub), in
 * alternating trials.
 */
import type { BenchTargets, BusKind } from '../config.js';
import { runCeiling, type CeilingOptions } from '../ceiling/driver.js';
import type { Row } from '../report.js';

export const CEILING_OPTIONS: CeilingOptions = {
  rounds: 3,
  window: Number(process.env.BENCH_CEILING_WINDOW ?? 5_000),
  warmupMs: 200,
  measureMs: 1_200,
  drainMs: 5_000,
  maxMessages: 2_000_000,
  rawBatch: 1_000,
};

export async function relayCeiling(bus: BusKind, prefix: string, targets: BenchTargets, o = CEILING_OPTIONS) {
  const { raw, relay } = await runCeiling(bus, `${prefix}_c${bus[0]}`, targets, o);
  const rows: Row[] = [
    {
      workload: '1 relay ceiling',
      bus,
      case: '200 B, 2 processes',
      metric: 'msgs/s A->B',
      value: relay.messagesPerSec,
      better: 'higher',
      baseline: { name: bus === 'postgres' ? `raw NOTIFY x${o.rawBatch}/stmt` : 'raw nats.js pub/sub', value: raw.messagesPerSec },
      target: { text: '>=0.50x', pass: relay.messagesPerSec >= 0.5 * raw.messagesPerSec },
      integrity: relay.integrity,
    },
    {
      workload: '1 relay ceiling',
      bus,
      case: '200 B, 2 processes',
      metric: 'CPU us/msg A+B',
      value: relay.cpuUsPerMessage.a + relay.cpuUsPerMessage.b,
      better: 'lower',
      baseline: { name: 'raw', value: raw.cpuUsPerMessage.a + raw.cpuUsPerMessage.b },
      integrity: relay.integrity,
    },
  ];
  return { rows, details: { options: o, raw, relay } };
}
