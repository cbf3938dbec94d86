/** Result rows, the printed table and the JSON file. */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { isClean, type Integrity } from './stats.js';

export interface Row {
  workload: string;
  bus: string;
  /** What varies within a workload: event size, subject mode... */
  case: string;
  metric: string;
  value: number;
  /** Higher is better (throughput) or lower is better (latency, envelopes). */
  better: 'higher' | 'lower';
  baseline?: { name: string; value: number };
  target?: { text: string; pass: boolean };
  integrity: Integrity;
}

export function ratio(row: Row): number | undefined {
  return row.baseline && row.baseline.value > 0 ? row.value / row.baseline.value : undefined;
}

const fmt = (v: number) => {
  if (!Number.isFinite(v)) return '-';
  if (Math.abs(v) >= 1000) return Math.round(v).toLocaleString('en-US');
  if (Math.abs(v) >= 100) return v.toFixed(0);
  if (Math.abs(v) >= 10) return v.toFixed(1);
  return v.toFixed(2);
};

export function renderTable(rows: Row[]): string {
  const header = ['workload', 'bus', 'case', 'metric', 'value', 'baseline', 'baseline value', 'ratio', 'target', 'lost/dup/reord'];
  const lines = rows.map((r) => {
    const q = ratio(r);
    const i = r.integrity;
    return [
      r.workload,
      r.bus,
      r.case,
      r.metric,
      fmt(r.value),
      r.baseline?.name ?? '',
      r.baseline ? fmt(r.baseline.value) : '',
      q === undefined ? '' : `${q.toFixed(q < 10 ? 3 : 1)}x`,
      r.target ? `${r.target.text} ${r.target.pass ? 'PASS' : 'FAIL'}` : '',
      `${i.lost}/${i.duplicated}/${i.reordered}${isClean(i) ? '' : ' FAIL'}`,
    ];
  });
  const widths = header.map((h, c) => Math.max(h.length, ...lines.map((l) => l[c]!.length)));
  const numeric = new Set([4, 6, 7]);
  const line = (cells: string[]) =>
    cells
      .map((s, c) => (numeric.has(c) ? s.padStart(widths[c]!) : s.padEnd(widths[c]!)))
      .join('  ')
      .trimEnd();
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...lines.map(line)].join('\n');
}

export interface RunInfo {
  startedAt: string;
  durationSeconds: number;
  prefix: string;
  node: string;
  cpus: number;
  loadAverageAtStart: number[];
  loadAverageAtEnd: number[];
  settings: Record<string, unknown>;
}

export function runInfoBase(prefix: string, settings: Record<string, unknown>) {
  return { startedAt: new Date().toISOString(), prefix, node: process.version, cpus: cpus().length, loadAverageAtStart: loadavg(), settings };
}

export function writeJson(dir: string, info: RunInfo, rows: Row[], details: Record<string, unknown>): string {
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${info.startedAt.replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, `${JSON.stringify({ ...info, rows: rows.map((r) => ({ ...r, ratio: ratio(r) })), details }, null, 2)}\n`);
  return file;
}
