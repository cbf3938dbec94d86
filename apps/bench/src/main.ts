/**
 * pnpm bench: every workload of issue 5 on PostgreSQL and NATS, each next to its baseline
 * measured in the same run. Prints a table and writes bench-results/<timestamp>.json.
 *
 * Options: --only=ceiling,e2e,fanout,paced,scale   --bus=postgres,nats
 */
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { BUSES, loadTargets, runPrefix, type BusKind } from './config.js';
import type { FlowResult } from './clients/flow.js';
import { nowUs } from './clock.js';
import { ensureServerBuilt, killAllNow, REPO_ROOT, stopAll } from './pods.js';
import { renderTable, runInfoBase, writeJson, type Row } from './report.js';
import { relayCeiling, CEILING_OPTIONS } from './workloads/relay-ceiling.js';
import { startCluster, stopCluster, type Cluster } from './workloads/cluster.js';
import { fanOut, FLOW_DEFAULTS, FLOW_TRIALS } from './workloads/fan-out.js';
import { pacedLatency, PACED_OPTIONS } from './workloads/paced.js';
import { scale, SCALE_OPTIONS } from './workloads/scale.js';

const WORKLOADS = ['ceiling', 'e2e', 'fanout', 'paced', 'scale'] as const;
type Workload = (typeof WORKLOADS)[number];
/** The whole run must end well inside 5 minutes; this is the hard stop. */
const RUN_LIMIT_MS = 280_000;

function arg(name: string): string[] | undefined {
  const a = process.argv.find((x) => x.startsWith(`--${name}=`));
  return a
    ?.slice(name.length + 3)
    .split(',')
    .filter(Boolean);
}

function choose<T extends string>(name: string, all: readonly T[]): T[] {
  const picked = arg(name);
  if (!picked) return [...all];
  const bad = picked.filter((p) => !(all as readonly string[]).includes(p));
  if (bad.length > 0) throw new Error(`--${name}: unknown ${bad.join(', ')} (use ${all.join(', ')})`);
  return picked as T[];
}

/** Event sizes of workload 3 (BENCH_FANOUT_SIZES=200,10240 to pick). */
function fanOutSizes(): number[] {
  const env = process.env.BENCH_FANOUT_SIZES;
  return env
    ? env
        .split(',')
        .map(Number)
        .filter((n) => n > 0 && n <= 60_000)
    : [200, 10 * 1024];
}

const fmtTrial = (v: number) => (v >= 100 ? Math.round(v).toLocaleString('en-US') : v.toFixed(1));

function log(message: string): void {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${message}\n`);
}

async function main(): Promise<void> {
  const workloads = choose<Workload>('only', WORKLOADS);
  const buses = choose<BusKind>('bus', BUSES);
  const targets = loadTargets();
  const prefix = runPrefix();
  const t0 = nowUs();
  const info = runInfoBase(prefix, {
    ceiling: CEILING_OPTIONS,
    flow: { ...FLOW_DEFAULTS, trials: FLOW_TRIALS },
    paced: PACED_OPTIONS,
    scale: SCALE_OPTIONS,
    workloads,
    buses,
  });
  const hardStop = setTimeout(() => {
    process.stderr.write(`bench: over ${RUN_LIMIT_MS / 1000} s, giving up\n`);
    killAllNow();
    process.exit(2);
  }, RUN_LIMIT_MS);
  hardStop.unref();

  log('building apps/server (turbo, cached)');
  ensureServerBuilt();

  const rows: Row[] = [];
  const details: Record<string, unknown> = {};
  const take = (name: string, r: { rows: Row[]; details: unknown }) => {
    rows.push(...r.rows);
    details[name] = r.details;
  };

  if (workloads.includes('ceiling')) {
    for (const bus of buses) {
      log(`1 relay ceiling: ${bus} (raw, then relay)`);
      take(`ceiling ${bus}`, await relayCeiling(bus, prefix, targets));
    }
  }

  if (workloads.some((w) => w === 'e2e' || w === 'fanout' || w === 'paced')) {
    log('starting pods: 1 memory, 2 per broker');
    let cluster: Cluster | undefined;
    try {
      cluster = await startCluster(prefix, targets, buses);
      if (workloads.includes('e2e')) {
        log('2 relay end to end');
        take('e2e', await fanOut(cluster, buses, { workload: '2 end to end', receivers: 1, eventBytes: 200 }));
      }
      if (workloads.includes('fanout')) {
        for (const eventBytes of fanOutSizes()) {
          log(`3 fan-out, ${eventBytes} B`);
          take(`fanout ${eventBytes}`, await fanOut(cluster, buses, { workload: '3 fan-out', receivers: 20, eventBytes }));
        }
      }
      if (workloads.includes('paced')) {
        log('4 paced');
        take('paced', await pacedLatency(cluster, buses));
      }
    } finally {
      if (cluster) await stopCluster(cluster);
    }
  }

  if (workloads.includes('scale')) {
    log('5 scale');
    take('scale', await scale(buses, prefix, targets));
  }

  const durationSeconds = (nowUs() - t0) / 1e6;
  const file = writeJson(join(REPO_ROOT, 'bench-results'), { ...info, durationSeconds, loadAverageAtEnd: loadavg() }, rows, details);
  process.stdout.write(`\n${renderTable(rows)}\n\n`);
  process.stdout.write(
    `ratio = value / baseline, both measured in this run. ${rows.length} rows in ${durationSeconds.toFixed(0)} s; ` +
      `load average at start ${info.loadAverageAtStart.map((x) => x.toFixed(1)).join(' ')}. JSON: ${file}\n`,
  );
  const trialLine = (label: string, trials: Record<string, FlowResult[]> | undefined, f: (r: FlowResult) => number) => {
    if (!trials) return;
    const list = Object.entries(trials).map(([path, rs]) => `${path} ${rs.map((r) => fmtTrial(f(r))).join('/')}`);
    process.stdout.write(`${label}, each trial: ${list.join(', ')}\n`);
  };
  for (const [name, d] of Object.entries(details)) {
    if (name.startsWith('fanout') || name === 'e2e') {
      for (const [k, v] of Object.entries(d as Record<string, { trials?: Record<string, FlowResult[]> }>)) {
        trialLine(`${k}: deliveries/s`, v.trials, (r) => r.deliveriesPerSec);
      }
    }
  }
  const paced = details.paced as { trials: Record<string, FlowResult[]> } | undefined;
  trialLine('4 paced: p99 ms', paced?.trials, (r) => r.latency.p99);
  trialLine("4 paced: receiving thread's own event-loop delay p99 ms (part of every latency)", paced?.trials, (r) => r.clientLoopDelay?.p99 ?? NaN);
  const failed = rows.filter((r) => r.target && !r.target.pass).length;
  if (failed > 0) process.stdout.write(`${failed} target(s) missed.\n`);
}

let exiting = false;
async function shutdown(code: number): Promise<never> {
  if (!exiting) {
    exiting = true;
    await stopAll(2_000).catch(() => killAllNow());
  }
  process.exit(code);
}

process.on('SIGINT', () => void shutdown(130));
process.on('SIGTERM', () => void shutdown(143));
main().then(
  () => shutdown(0),
  (e: unknown) => {
    process.stderr.write(`bench failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    void shutdown(1);
  },
);
