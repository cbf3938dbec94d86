/**
 * Process B of the relay ceiling: receives on the raw broker and through one RelayBus per
 * relay path, checks every sequence number of the trial under way, and reports progress to
 * process A over IPC.
 */
import type { Frame, LocalHub } from '@retrotro/bus-core';
import { connect } from '@nats-io/transport-node';
import pg from 'pg';
import { nowUs } from '../clock.js';
import { SeqTracker, sumIntegrity } from '../stats.js';
import { RAW_STREAM, rawParts, startRelay, type CeilingPath, type FromReceiver, type ToReceiver } from './protocol.js';

const PROGRESS_MS = 5;

function tell(message: FromReceiver): void {
  process.send?.(message);
}

let trial: { path: CeilingPath; tracker: SeqTracker; cpu: NodeJS.CpuUsage; progressEvery: number } | undefined;
let reported = 0;
let stray = 0;
const closers: Array<() => Promise<unknown>> = [];

function arrived(path: CeilingPath, seq: number): void {
  if (trial?.path !== path) {
    stray++;
    return;
  }
  trial.tracker.record(seq);
  if (trial.tracker.unique - reported >= trial.progressEvery) report();
}

function report(): void {
  if (!trial || trial.tracker.unique === reported) return;
  reported = trial.tracker.unique;
  tell({ type: 'progress', count: reported, atUs: nowUs() });
}

const hub = (path: CeilingPath): LocalHub => ({
  deliverLocal(_roomId: string, frame: Frame) {
    arrived(path, (frame.payload as { seq: number }).seq);
  },
  participantJoined() {},
  participantLeft() {},
  cancelPendingDisconnect() {},
});

/** A raw message in `parts` payloads, numbered seq * parts + part (rawPayload). */
function rawReceiver(parts: number): (n: number) => void {
  let next = -1; // the part that continues the message under way
  return (n) => {
    // A part not following the one before: its message is incomplete, hence lost.
    if (n % parts !== 0 && n !== next) return;
    next = n + 1;
    if (next % parts === 0) arrived('raw', next / parts - 1);
  };
}

async function open(m: Extract<ToReceiver, { cmd: 'open' }>): Promise<void> {
  if (m.paths.includes('raw')) {
    const raw = rawReceiver(rawParts(m.bus, m.bytes));
    if (m.bus === 'postgres') {
      const client = new pg.Client({ connectionString: m.targets.databaseUrl, application_name: 'retrotro-bench/raw-listen' });
      await client.connect();
      client.on('notification', (n) => raw(parseInt(n.payload ?? '', 10)));
      await client.query(`LISTEN ${pg.escapeIdentifier(`${m.prefix}_${RAW_STREAM}`)}`);
      closers.push(() => client.end());
    } else {
      const nc = await connect({ servers: m.targets.natsUrl });
      nc.subscribe(`${m.prefix}.${RAW_STREAM}`, { callback: (_err, msg) => raw(parseInt(msg.string(), 10)) });
      await nc.flush();
      closers.push(() => nc.close());
    }
  }
  for (const path of m.paths) {
    if (path === 'raw') continue;
    const bus = await startRelay(m.bus, path, m.prefix, 'bench-ceiling-b', m.targets, hub(path));
    closers.push(() => bus.stop());
  }
  setInterval(report, PROGRESS_MS).unref();
  tell({ type: 'ready' });
}

process.on('message', (m: ToReceiver) => {
  switch (m.cmd) {
    case 'open':
      open(m).catch((e: unknown) => tell({ type: 'error', message: e instanceof Error ? e.message : String(e) }));
      return;
    case 'trial':
      reported = 0;
      stray = 0;
      trial = { path: m.path, tracker: new SeqTracker(m.capacity), cpu: process.cpuUsage(), progressEvery: m.progressEvery };
      return;
    case 'end-trial': {
      if (!trial) return;
      report();
      const cpu = process.cpuUsage(trial.cpu);
      tell({
        type: 'trial-result',
        count: trial.tracker.unique,
        integrity: sumIntegrity([trial.tracker], m.sent),
        cpuUs: cpu.user + cpu.system,
        stray,
      });
      trial = undefined;
      return;
    }
    case 'close':
      void Promise.allSettled(closers.map((c) => c())).finally(() => process.disconnect());
      return;
  }
});
process.on('disconnect', () => setTimeout(() => process.exit(0), 100).unref());
