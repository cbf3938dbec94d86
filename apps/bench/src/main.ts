/**
 * pnpm bench: every workload on PostgreSQL and NATS, each next to its baseline measured in the
 * same run (the raw broker, a memory pod, Socket.IO, history off). Prints a table and writes
 * bench-results/<timestamp>.json.
 *
 * Options: --only=ceiling,e2e,fanout,paced,scale,peers,history,curves (default: all but
 * curves)   --bus=postgres,nats   --max-seconds=N (hard stop; default: the workloads' budgets)
 *   --charts-from=<bench-results/...-curves.json> (draw docs/bench/*.png again, run nothing)
 */
import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { BUSES, loadTargets, runPrefix, type BenchTargets, type BusKind } from './config.js';
import type { FlowResult } from './clients/flow.js';
import { nowUs, sleep } from './clock.js';
import { ensureServerBuilt, killAllNow, REPO_ROOT, stopAll } from './pods.js';
import { renderTable, runInfoBase, writeJson, type Row } from './report.js';
import { relayCeiling, CEILING_OPTIONS } from './workloads/relay-ceiling.js';
import { startCluster, stopCluster, type Cluster } from './workloads/cluster.js';
import { fanOut, FLOW_DEFAULTS, FLOW_TRIALS } from './workloads/fan-out.js';
import { pacedLatency, PACED_OPTIONS } from './workloads/paced.js';
import { scale, SCALE_OPTIONS } from './workloads/scale.js';
import { peerComparison, PEER_OPTIONS, type PeerCase } from './workloads/peers.js';
import { historyWorkload, HISTORY_OPTIONS } from './workloads/history.js';
import { cleanUp } from './cleanup.js';
import { curves, curvesText, writeCurves, CURVES_OPTIONS, type CurvesResult } from './workloads/curves.js';
import { writeCurveCharts } from './charts.js';

const chartSubtitle = (startedAt: string, rate: number) =>
  `pnpm bench -- --only=curves, ${startedAt.slice(0, 10)}, 2-core machine, ${rate.toLocaleString('en-US')} deliveries/s, 200 B events`;

const WORKLOADS = ['ceiling', 'e2e', 'fanout', 'paced', 'scale', 'peers', 'history', 'curves'] as const;
type Workload = (typeof WORKLOADS)[number];
/** What runs without --only. */
const DEFAULT_WORKLOADS: readonly Workload[] = ['ceiling', 'e2e', 'fanout', 'paced', 'scale', 'peers', 'history'];
/**
 * Generous time each workload may take (seconds): the run's hard stop, unless --max-seconds
 * says otherwise, is their sum plus a minute.
 */
const BUDGET_SECONDS: Record<Workload, number> = { ceiling: 70, e2e: 30, fanout: 90, paced: 60, scale: 40, peers: 900, history: 180, curves: 720 };

function arg(name: string): string[] | undefined {
  const a = process.argv.find((x) => x.startsWith(`--${name}=`));
  return a
    ?.slice(name.length + 3)
    .split(',')
    .filter(Boolean);
}

function choose<T extends string>(name: string, all: readonly T[], byDefault: readonly T[] = all): T[] {
  const picked = arg(name);
  if (!picked) return [...byDefault];
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
  // --charts-from=<curves JSON>: draws docs/bench/*.png again from a finished run, and stops.
  const chartsFrom = arg('charts-from')?.[0];
  if (chartsFrom) {
    const r = JSON.parse(readFileSync(chartsFrom, 'utf8')) as CurvesResult;
    const startedAt = /(\d{4}-\d\d-\d\d)/.exec(chartsFrom)?.[1] ?? '';
    const files = await writeCurveCharts(join(REPO_ROOT, 'docs/bench'), r, chartSubtitle(startedAt, r.options.deliveriesPerSec));
    process.stdout.write(`${files.join('\n')}\n`);
    return;
  }
  const workloads = choose<Workload>('only', WORKLOADS, DEFAULT_WORKLOADS);
  const buses = choose<BusKind>('bus', BUSES);
  const targets = loadTargets();
  const prefix = runPrefix();
  leftovers = { prefix, targets };
  const t0 = nowUs();
  const info = runInfoBase(prefix, {
    ceiling: CEILING_OPTIONS,
    flow: { ...FLOW_DEFAULTS, trials: FLOW_TRIALS },
    paced: PACED_OPTIONS,
    scale: SCALE_OPTIONS,
    peers: PEER_OPTIONS,
    history: HISTORY_OPTIONS,
    curves: CURVES_OPTIONS,
    workloads,
    buses,
  });
  const maxSeconds = Number(arg('max-seconds')?.[0] ?? 60 + workloads.reduce((sum, w) => sum + BUDGET_SECONDS[w], 0));
  if (!(maxSeconds > 0)) throw new Error('--max-seconds must be a positive number of seconds');
  const hardStop = setTimeout(() => {
    process.stderr.write(`bench: over ${maxSeconds} s (--max-seconds), giving up\n`);
    killAllNow();
    void shutdown(2);
  }, maxSeconds * 1000);
  hardStop.unref();

  log('building apps/server (turbo, cached)');
  ensureServerBuilt();

  const rows: Row[] = [];
  const texts: string[] = [];
  const details: Record<string, unknown> = {};
  const take = (name: string, r: { rows: Row[]; details: unknown }) => {
    rows.push(...r.rows);
    details[name] = r.details;
  };

  if (workloads.includes('ceiling')) {
    for (const bus of buses) {
      log(`1 relay ceiling: ${bus} (raw and relay trials, alternating)`);
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

  let peerCases: PeerCase[] = [];
  if (workloads.includes('peers')) {
    log('6 against Socket.IO');
    const r = await peerComparison(buses, prefix, targets, log);
    take('peers', r);
    texts.push(r.text);
    peerCases = r.details.cases;
  }

  if (workloads.includes('history')) {
    log('7 history');
    const r = await historyWorkload(buses, prefix, targets, log, peerCases);
    take('history', r);
    texts.push(`\n${r.text}`);
  }

  if (workloads.includes('curves')) {
    log('8 scale curves');
    const r = await curves(buses, prefix, targets, log);
    details.curves = r;
    texts.push(curvesText(r));
    const file = writeCurves(join(REPO_ROOT, 'bench-results'), info.startedAt, r);
    const charts = await writeCurveCharts(join(REPO_ROOT, 'docs/bench'), r, chartSubtitle(info.startedAt, r.options.deliveriesPerSec));
    texts.push(`curves: ${file}; charts: ${charts.map((c) => c.slice(REPO_ROOT.length)).join(', ')}`);
  }

  await stopAll(3_000);
  const left = await cleanUp(prefix, targets);
  leftovers = undefined;
  if (left.tables + left.streams > 0) log(`removed this run's ${left.tables} PostgreSQL tables and ${left.streams} JetStream streams`);

  const durationSeconds = (nowUs() - t0) / 1e6;
  const file = writeJson(join(REPO_ROOT, 'bench-results'), { ...info, durationSeconds, loadAverageAtEnd: loadavg() }, rows, details);
  process.stdout.write(`\n${renderTable(rows)}\n${texts.join('\n')}\n\n`);
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
/** What the run left in the brokers, until the normal path removed it (see cleanup.ts). */
let leftovers: { prefix: string; targets: BenchTargets } | undefined;

async function shutdown(code: number): Promise<never> {
  if (!exiting) {
    exiting = true;
    await stopAll(2_000).catch(() => killAllNow());
    // A failed or interrupted run removes its tables and streams too (bounded: brokers may be down).
    if (leftovers) await Promise.race([cleanUp(leftovers.prefix, leftovers.targets).catch(() => undefined), sleep(10_000)]);
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
