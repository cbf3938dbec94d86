/**
 * Workload 6, against Socket.IO: the fan-out of workload 3 (one sender on A, 20 receivers on
 * B, 200 B and 10 KB events, at most `windowFor(size)` in flight) for a fixed 20,000 events,
 * on each peer of `peerSpecs` (ours with HISTORY_SIZE=1000 and 0, Socket.IO 4.8 with the
 * community adapter of the bus and with ours), in interleaved trials whose medians are
 * reported; then a paced variant (1,000 events/s). Ratios are ours / Socket.IO.
 */
import { openPeerReceivers, openSender } from '../clients/open.js';
import { runFixedLoop, type FixedLoopOptions, type FixedLoopResult } from '../clients/peer-flow.js';
import type { Receiver, Sender } from '../clients/peer.js';
import type { BenchTargets, BusKind } from '../config.js';
import { withCpuBudget, type CpuBudget } from '../machine.js';
import { adapterErrors, peerSpecs, startPeerPair, stopPeerPair, type PeerProcess, type PeerSpec } from '../peers.js';
import { withPeakMemory, withPidCpu } from '../proc.js';
import type { Row } from '../report.js';
import { addIntegrity, median, noFaults, type Integrity } from '../stats.js';
import { freshRoom } from './cluster.js';
import { windowFor } from './fan-out.js';
import { runPacedPeer, type PacedPeerResult } from './peers-paced.js';

const env = (name: string, fallback: number) => Number(process.env[name] ?? fallback);

export const PEER_OPTIONS = {
  events: env('BENCH_PEER_EVENTS', 20_000),
  /** Untimed events each peer gets before its first trial. */
  warmupEvents: 2_000,
  receivers: 20,
  trials: env('BENCH_PEER_TRIALS', 3),
  /** A trial stops sending after this long (a slow peer at 10 KB); what it sent is still checked. */
  maxMs: env('BENCH_PEER_MAX_MS', 60_000),
  drainMs: 5_000,
  stallMs: 5_000,
  sizes: (process.env.BENCH_FANOUT_SIZES ?? '200,10240')
    .split(',')
    .map(Number)
    .filter((n) => n > 0 && n <= 60_000),
  paced: { ratePerSec: 1_000, warmupMs: 1_000, durationMs: env('BENCH_PEER_PACED_MS', 4_000), drainMs: 3_000, eventBytes: 200 },
};

export interface PeerTrial extends FixedLoopResult {
  /** Pod / node CPU µs per delivery: A (sender's), B (receivers'). */
  cpuUsPerDelivery: { a: number; b: number };
  /** Peak resident memory (MiB) of A and B during the trial. */
  peakMiB: [number, number];
  /** Resident memory (MiB) of A and B when the trial started: peak - start is what the trial added. */
  startMiB: [number, number];
  hwmReset: boolean;
  cpuBudget?: CpuBudget;
  /** Errors the Socket.IO nodes' adapters reported during the trial (ours: 0, their senders are told). */
  adapterErrors: number;
}

export interface PeerSummary {
  spec: PeerSpec;
  trials: number;
  deliveriesPerSec: number;
  spread: [number, number];
  p50: number;
  p99: number;
  p99Spread: [number, number];
  peakMiB: number;
  peakSpread: [number, number];
  /** Median of (peak - resident at start), A+B: the memory the trial itself took. */
  growthMiB: number;
  cpuUsPerDelivery: number;
  integrity: Integrity;
  cuts: number;
  recoveries: number;
  recoveredEvents: number;
  relayFailed: number;
  senderErrors: number;
  adapterErrors: number;
  capped: number;
  sent: number;
}

const range = (xs: number[]): [number, number] => [Math.min(...xs), Math.max(...xs)];

export function summarizePeer(spec: PeerSpec, trials: PeerTrial[]): PeerSummary {
  const m = (f: (t: PeerTrial) => number) => median(trials.map(f));
  const sum = (f: (t: PeerTrial) => number) => trials.reduce((s, t) => s + f(t), 0);
  return {
    spec,
    trials: trials.length,
    deliveriesPerSec: m((t) => t.deliveriesPerSec),
    spread: range(trials.map((t) => t.deliveriesPerSec)),
    p50: m((t) => t.latency.p50),
    p99: m((t) => t.latency.p99),
    p99Spread: range(trials.map((t) => t.latency.p99)),
    peakMiB: m((t) => t.peakMiB[0] + t.peakMiB[1]),
    peakSpread: range(trials.map((t) => t.peakMiB[0] + t.peakMiB[1])),
    growthMiB: m((t) => t.peakMiB[0] + t.peakMiB[1] - t.startMiB[0] - t.startMiB[1]),
    cpuUsPerDelivery: m((t) => t.cpuUsPerDelivery.a + t.cpuUsPerDelivery.b),
    integrity: trials.reduce((s, t) => addIntegrity(s, t.integrity), noFaults()),
    cuts: sum((t) => t.cuts),
    recoveries: sum((t) => t.recoveries),
    recoveredEvents: sum((t) => t.recoveredEvents),
    relayFailed: sum((t) => t.senderErrors.relay_failed ?? 0),
    senderErrors: sum((t) => Object.values(t.senderErrors).reduce((a, b) => a + b, 0)),
    adapterErrors: sum((t) => t.adapterErrors),
    capped: trials.filter((t) => t.capped).length,
    sent: sum((t) => t.sent),
  };
}

export async function peerTrial(pair: [PeerProcess, PeerProcess], eventBytes: number, label: string, o: FixedLoopOptions): Promise<PeerTrial> {
  const [a, b] = pair;
  const roomId = freshRoom(label);
  let receivers: Receiver[] = [];
  let sender: Sender | undefined;
  try {
    receivers = await openPeerReceivers(b.endpoint, roomId, PEER_OPTIONS.receivers, `${label}-r`);
    sender = await openSender(a.endpoint, roomId, eventBytes);
    const errorsBefore = (await adapterErrors(a)) + (await adapterErrors(b));
    const s = sender;
    const { result: inner, budget } = await withCpuBudget(
      () => withPeakMemory([a.pid, b.pid], () => withPidCpu([a.pid, b.pid], () => runFixedLoop(s, receivers, o))),
      (r) => r.result.result.deliveries,
    );
    const errorsAfter = (await adapterErrors(a)) + (await adapterErrors(b));
    const { result: cpu, peakMiB, startMiB, hwmReset } = inner;
    const r = cpu.result;
    const per = (sec: number) => (sec * 1e6) / Math.max(1, r.deliveries);
    return {
      ...r,
      cpuUsPerDelivery: { a: per(cpu.cpuSeconds[0]!), b: per(cpu.cpuSeconds[1]!) },
      peakMiB: [peakMiB[0]!, peakMiB[1]!],
      startMiB: [startMiB[0]!, startMiB[1]!],
      hwmReset,
      ...(budget && { cpuBudget: budget }),
      adapterErrors: errorsAfter - errorsBefore,
    };
  } finally {
    sender?.close();
    for (const r of receivers) r.close();
  }
}

export interface StartedPeer {
  spec: PeerSpec;
  pair: [PeerProcess, PeerProcess];
}

/** Starts every peer of the bus that can start; the others are returned with the reason. */
export async function startPeers(specs: PeerSpec[], prefix: string, targets: BenchTargets, log: (m: string) => void) {
  const started: StartedPeer[] = [];
  const unavailable: Record<string, string> = {};
  for (const [i, spec] of specs.entries()) {
    try {
      // Short: the Socket.IO adapter of ours allows 36 characters (it appends `_sio`).
      const short = `${prefix}${i}${spec.bus[0]}`;
      started.push({ spec, pair: await startPeerPair(spec, short, targets) });
    } catch (e) {
      // The message lines, not the stack: what a reader needs to know why.
      const lines = (e instanceof Error ? e.message : String(e)).split('\n').filter((l) => l.trim() !== '' && !/^\s+at /.test(l));
      const reason = lines.slice(0, 3).join(' | ').slice(0, 400);
      unavailable[spec.id] = reason;
      log(`peer ${spec.label} on ${spec.bus} unavailable: ${reason}`);
    }
  }
  return { started, unavailable };
}

/** One short untimed run per peer first: JIT, pools and connections warm, for every peer alike. */
export async function warmUp(started: StartedPeer[], bus: BusKind): Promise<void> {
  for (const p of started)
    await peerTrial(p.pair, 200, `vw-${p.spec.id}-${bus[0]}`, { ...PEER_OPTIONS, events: PEER_OPTIONS.warmupEvents, window: windowFor(200) });
}

/** Runs `run` for every peer, `trials` rounds, interleaved (peer 1, 2, 3, then again). */
export async function interleavedPeers<T>(peers: StartedPeer[], trials: number, run: (p: StartedPeer, t: number) => Promise<T>) {
  const out: Record<string, T[]> = Object.fromEntries(peers.map((p) => [p.spec.id, []]));
  for (let t = 0; t < trials; t++) for (const p of peers) out[p.spec.id]!.push(await run(p, t));
  return out;
}

const sizeName = (b: number) => (b >= 1024 ? `${b / 1024} KB` : `${b} B`);

/** Deliveries/s targets of ours over the community Socket.IO adapter. */
function throughputTarget(bus: BusKind, eventBytes: number): number | undefined {
  if (bus === 'postgres') return 3;
  return eventBytes < 1024 ? 2 : undefined;
}

export interface PeerCase {
  bus: BusKind;
  eventBytes: number;
  summaries: PeerSummary[];
  trials: Record<string, PeerTrial[]>;
}

export async function peerComparison(buses: readonly BusKind[], prefix: string, targets: BenchTargets, log: (m: string) => void) {
  const cases: PeerCase[] = [];
  const paced: Array<{ bus: BusKind; summaries: PacedPeerSummary[]; trials: Record<string, PacedPeerResult[]> }> = [];
  const unavailable: Record<string, Record<string, string>> = {};
  for (const bus of buses) {
    const { started, unavailable: missing } = await startPeers(peerSpecs(bus), `${prefix}_v`, targets, log);
    unavailable[bus] = missing;
    try {
      await warmUp(started, bus);
      const at = (bytes: number) => started.filter((p) => bytes >= (p.spec.minEventBytes ?? 0));
      for (const eventBytes of PEER_OPTIONS.sizes) {
        const peers = at(eventBytes);
        log(`6 vs Socket.IO: ${bus}, ${sizeName(eventBytes)}, ${peers.map((p) => p.spec.id).join(' / ')}`);
        const o: FixedLoopOptions = { ...PEER_OPTIONS, window: windowFor(eventBytes) };
        const trials = await interleavedPeers(peers, PEER_OPTIONS.trials, (p, t) =>
          peerTrial(p.pair, eventBytes, `v-${p.spec.id}-${bus[0]}-${eventBytes}-${t}`, o),
        );
        cases.push({ bus, eventBytes, trials, summaries: peers.map((p) => summarizePeer(p.spec, trials[p.spec.id]!)) });
      }
      if (PEER_OPTIONS.paced.durationMs > 0) {
        const peers = at(PEER_OPTIONS.paced.eventBytes);
        log(`6 vs Socket.IO: ${bus}, paced ${PEER_OPTIONS.paced.ratePerSec}/s`);
        const trials = await interleavedPeers(peers, PEER_OPTIONS.trials, (p, t) =>
          runPacedPeer(p.pair, `vp-${p.spec.id}-${bus[0]}-${t}`, PEER_OPTIONS.paced, PEER_OPTIONS.receivers),
        );
        paced.push({ bus, trials, summaries: peers.map((p) => summarizePaced(p.spec, trials[p.spec.id]!)) });
      }
    } finally {
      await Promise.all(started.map((p) => stopPeerPair(p.pair)));
    }
  }
  return { rows: peerRows(cases, paced), text: peerText(cases, paced, unavailable), details: { options: PEER_OPTIONS, unavailable, cases, paced } };
}

export interface PacedPeerSummary {
  spec: PeerSpec;
  p50: number;
  p99: number;
  p99Spread: [number, number];
  max: number;
  integrity: Integrity;
  cuts: number;
  loopDelayP99: number;
}

function summarizePaced(spec: PeerSpec, trials: PacedPeerResult[]): PacedPeerSummary {
  const m = (f: (t: PacedPeerResult) => number) => median(trials.map(f));
  return {
    spec,
    p50: m((t) => t.latency.p50),
    p99: m((t) => t.latency.p99),
    p99Spread: range(trials.map((t) => t.latency.p99)),
    max: m((t) => t.latency.max),
    integrity: trials.reduce((s, t) => addIntegrity(s, t.integrity), noFaults()),
    cuts: trials.reduce((s, t) => s + t.cuts, 0),
    loopDelayP99: m((t) => t.loopDelay.p99),
  };
}

const isOurs = (s: { spec: PeerSpec }) => s.spec.kind === 'ours';
const community = (s: { spec: PeerSpec }) => s.spec.kind === 'sio' && !s.spec.id.includes('retrotro');

function peerRows(cases: PeerCase[], paced: Array<{ bus: BusKind; summaries: PacedPeerSummary[] }>): Row[] {
  const rows: Row[] = [];
  for (const c of cases) {
    // The table's rows: ours against the community adapter (the targets' reference); every
    // other pairing is in the printed section.
    for (const base of c.summaries.filter(community)) {
      for (const o of c.summaries.filter(isOurs)) {
        const common = {
          workload: '6 vs Socket.IO',
          bus: c.bus,
          case: `${sizeName(c.eventBytes)}, ${o.spec.id} vs ${base.spec.id}`,
          integrity: o.integrity,
        };
        const b = (value: number) => ({ name: base.spec.label, value });
        const goal = community(base) ? throughputTarget(c.bus, c.eventBytes) : undefined;
        rows.push({
          ...common,
          metric: 'deliveries/s',
          value: o.deliveriesPerSec,
          better: 'higher',
          baseline: b(base.deliveriesPerSec),
          ...(goal && { target: { text: `>=${goal}x`, pass: o.deliveriesPerSec >= goal * base.deliveriesPerSec } }),
        });
        rows.push({ ...common, metric: 'p99 ms', value: o.p99, better: 'lower', baseline: b(base.p99) });
        rows.push({
          ...common,
          metric: 'peak MiB A+B',
          value: o.peakMiB,
          better: 'lower',
          baseline: b(base.peakMiB),
          ...(c.eventBytes >= 1024 && community(base) && { target: { text: '<=0.5x', pass: o.peakMiB <= 0.5 * base.peakMiB } }),
        });
      }
    }
  }
  for (const c of cases) {
    for (const o of c.summaries.filter(isOurs)) {
      rows.push({
        workload: '6 vs Socket.IO',
        bus: c.bus,
        case: `${sizeName(c.eventBytes)}, ${o.spec.id}`,
        metric: 'sender relay_failed',
        value: o.relayFailed,
        better: 'lower',
        target: { text: '=0', pass: o.relayFailed === 0 },
        integrity: o.integrity,
      });
    }
  }
  for (const p of paced) {
    for (const base of p.summaries.filter(community)) {
      for (const o of p.summaries.filter(isOurs)) {
        rows.push({
          workload: '6 vs Socket.IO',
          bus: p.bus,
          case: `paced ${PEER_OPTIONS.paced.ratePerSec}/s, ${o.spec.id} vs ${base.spec.id}`,
          metric: 'p99 ms',
          value: o.p99,
          better: 'lower',
          baseline: { name: base.spec.label, value: base.p99 },
          ...(community(base) && { target: { text: '<=0.5x', pass: o.p99 <= 0.5 * base.p99 } }),
          integrity: o.integrity,
        });
      }
    }
  }
  return rows;
}

const fmt = (v: number) => {
  if (!Number.isFinite(v)) return '-';
  if (Math.abs(v) >= 1000) return Math.round(v).toLocaleString('en-US');
  if (Math.abs(v) >= 100) return v.toFixed(0);
  if (Math.abs(v) >= 10) return v.toFixed(1);
  return v.toFixed(2);
};
const fmtRange = ([lo, hi]: [number, number]) => `${fmt(lo)}-${fmt(hi)}`;
const ratio = (a: number, b: number) => (b > 0 ? `${(a / b).toFixed(a / b < 10 ? 2 : 1)}x` : a === 0 ? '0 vs 0' : `${fmt(a)} vs 0`);

function table(header: string[], lines: string[][]): string {
  const widths = header.map((h, c) => Math.max(h.length, ...lines.map((l) => l[c]!.length)));
  const line = (cells: string[]) => cells.map((s, c) => (c === 0 ? s.padEnd(widths[c]!) : s.padStart(widths[c]!))).join('  ');
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...lines.map(line)].join('\n');
}

/** The printed section: each peer's figures (median, spread), then ours / Socket.IO ratios. */
function peerText(
  cases: PeerCase[],
  paced: Array<{ bus: BusKind; summaries: PacedPeerSummary[] }>,
  unavailable: Record<string, Record<string, string>>,
): string {
  const out: string[] = [];
  for (const c of cases) {
    out.push(
      `\n6 vs Socket.IO, ${c.bus}, ${sizeName(c.eventBytes)}: 1 sender on A, ${PEER_OPTIONS.receivers} receivers on B, ${PEER_OPTIONS.events.toLocaleString('en-US')} events, median of ${PEER_OPTIONS.trials} (spread min-max)`,
    );
    out.push(
      table(
        [
          'peer',
          'deliveries/s',
          'spread',
          'p50 ms',
          'p99 ms',
          'p99 spread',
          'lost',
          'dup',
          'reord',
          'cuts/recov (events)',
          'peak MiB A+B',
          'peak-start MiB',
          'pod CPU us/deliv',
          'relay_failed',
          'adapter err',
          'capped',
        ],
        c.summaries.map((s) => [
          s.spec.label,
          fmt(s.deliveriesPerSec),
          fmtRange(s.spread),
          fmt(s.p50),
          fmt(s.p99),
          fmtRange(s.p99Spread),
          String(s.integrity.lost),
          String(s.integrity.duplicated),
          String(s.integrity.reordered),
          `${s.cuts}/${s.recoveries} (${s.recoveredEvents})`,
          fmt(s.peakMiB),
          fmt(s.growthMiB),
          fmt(s.cpuUsPerDelivery),
          s.spec.kind === 'ours' ? String(s.relayFailed) : 'n/a',
          s.spec.kind === 'sio' ? String(s.adapterErrors) : 'n/a',
          s.capped > 0 ? `${s.capped}/${s.trials}` : '',
        ]),
      ),
    );
    for (const base of c.summaries.filter((s) => s.spec.kind === 'sio')) {
      const subjects = [...c.summaries.filter(isOurs), ...(community(base) ? c.summaries.filter((s) => s.spec.kind === 'sio' && !community(s)) : [])];
      for (const o of subjects) {
        out.push(
          `  ${o.spec.id} / ${base.spec.id}: deliveries/s ${ratio(o.deliveriesPerSec, base.deliveriesPerSec)}, p99 ${ratio(o.p99, base.p99)}, ` +
            `lost ${o.integrity.lost} vs ${base.integrity.lost}, reordered ${o.integrity.reordered} vs ${base.integrity.reordered}, peak memory ${ratio(o.peakMiB, base.peakMiB)} (peak-start ${ratio(o.growthMiB, base.growthMiB)})`,
        );
      }
    }
  }
  for (const p of paced) {
    out.push(
      `\n6 vs Socket.IO, ${p.bus}, paced ${PEER_OPTIONS.paced.ratePerSec} events/s x ${PEER_OPTIONS.paced.durationMs / 1000} s, ${PEER_OPTIONS.receivers} receivers (own thread), median of ${PEER_OPTIONS.trials}`,
    );
    out.push(
      table(
        ['peer', 'p50 ms', 'p99 ms', 'p99 spread', 'max ms', 'lost', 'dup', 'reord', 'cuts', 'recv loop p99 ms'],
        p.summaries.map((s) => [
          s.spec.label,
          fmt(s.p50),
          fmt(s.p99),
          fmtRange(s.p99Spread),
          fmt(s.max),
          String(s.integrity.lost),
          String(s.integrity.duplicated),
          String(s.integrity.reordered),
          String(s.cuts),
          fmt(s.loopDelayP99),
        ]),
      ),
    );
    for (const base of p.summaries.filter((s) => s.spec.kind === 'sio')) {
      for (const o of p.summaries.filter(isOurs)) out.push(`  ${o.spec.id} / ${base.spec.id}: p99 ${ratio(o.p99, base.p99)}`);
    }
  }
  for (const [bus, missing] of Object.entries(unavailable)) {
    for (const [id, reason] of Object.entries(missing)) out.push(`unavailable on ${bus}: ${id}: ${reason}`);
  }
  return out.join('\n');
}
