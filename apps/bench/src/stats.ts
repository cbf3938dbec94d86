/**
 * Correctness and latency bookkeeping: which sequence numbers arrived (loss, duplicates,
 * reordering) and latency samples with percentiles.
 */

/** Per-receiver record of one sender's sequence numbers 0..capacity-1. */
export class SeqTracker {
  private seen: Uint8Array;
  unique = 0;
  duplicates = 0;
  /** Arrivals of a number lower than one already seen (an overtaken message). */
  reordered = 0;
  /** Numbers outside 0..capacity-1 (should never happen). */
  invalid = 0;
  private highest = -1;

  constructor(readonly capacity: number) {
    this.seen = new Uint8Array(capacity);
  }

  /** Returns true for the first arrival of `seq`. */
  record(seq: number): boolean {
    if (!(seq >= 0 && seq < this.capacity) || !Number.isInteger(seq)) {
      this.invalid++;
      return false;
    }
    if (this.seen[seq] === 1) {
      this.duplicates++;
      return false;
    }
    this.seen[seq] = 1;
    this.unique++;
    if (seq < this.highest) this.reordered++;
    else this.highest = seq;
    return true;
  }

  /** Events 0..sent-1 that never arrived. */
  lost(sent: number): number {
    let missing = 0;
    for (let i = 0; i < sent && i < this.capacity; i++) if (this.seen[i] === 0) missing++;
    return missing;
  }
}

export interface Integrity {
  lost: number;
  duplicated: number;
  reordered: number;
}

export const noFaults = (): Integrity => ({ lost: 0, duplicated: 0, reordered: 0 });

export function sumIntegrity(trackers: SeqTracker[], sent: number): Integrity {
  const out = noFaults();
  for (const t of trackers) {
    out.lost += t.lost(sent);
    out.duplicated += t.duplicates + t.invalid;
    out.reordered += t.reordered;
  }
  return out;
}

export function addIntegrity(a: Integrity, b: Integrity): Integrity {
  return { lost: a.lost + b.lost, duplicated: a.duplicated + b.duplicated, reordered: a.reordered + b.reordered };
}

export const isClean = (i: Integrity) => i.lost === 0 && i.duplicated === 0 && i.reordered === 0;

/**
 * Latency samples (milliseconds), at most `capacity` kept by reservoir sampling, so a long or
 * fast run costs bounded memory and the percentiles stay unbiased.
 */
export class LatencySamples {
  private readonly values: Float64Array;
  private kept = 0;
  count = 0;
  max = 0;

  constructor(capacity = 1_000_000) {
    this.values = new Float64Array(capacity);
  }

  add(ms: number): void {
    this.count++;
    if (ms > this.max) this.max = ms;
    if (this.kept < this.values.length) {
      this.values[this.kept++] = ms;
    } else {
      const j = Math.floor(Math.random() * this.count);
      if (j < this.values.length) this.values[j] = ms;
    }
  }

  summary(): LatencySummary {
    if (this.kept === 0) return { samples: 0, p50: NaN, p99: NaN, max: NaN };
    const sorted = this.values.slice(0, this.kept).sort();
    return { samples: this.count, p50: percentile(sorted, 0.5), p99: percentile(sorted, 0.99), max: this.max };
  }
}

export interface LatencySummary {
  samples: number;
  p50: number;
  p99: number;
  max: number;
}

/** Nearest-rank percentile of sorted values. */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return NaN;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1));
  return sorted[rank]!;
}

export function median(values: number[]): number {
  return percentile(
    [...values].sort((a, b) => a - b),
    0.5,
  );
}
