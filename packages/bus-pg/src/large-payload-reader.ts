/**
 * The receiving side of large payloads (large-payloads.ts): turns references back into
 * payloads without changing the order of anything this listener delivers.
 *
 * While no reference is pending, a notification is delivered at once (the common path costs
 * nothing). Once one is pending, everything after it waits in `held` behind it, on every
 * stream, until its payload is read. The references that arrive in one turn of the event
 * loop share one SELECT; while a SELECT runs, new ones gather for the next, so a burst
 * costs a few statements, not one per event. The reads run on the LISTEN connection itself:
 * a pod that listens is the one that reads, and it needs no connection of its own. Its own
 * references it resolves from memory (LargePayloads.takeOwn), without a SELECT.
 */
import type { StreamKind } from '@retrotro/bus-core';
import { isConnectionError, type PgConnection } from './connection.js';
import { LargePayloads } from './large-payloads.js';

/** Most keys one SELECT asks for. */
const MAX_KEYS = 1_000;

interface Held {
  stream: StreamKind;
  /** Undefined until read; `null` once known to be gone. */
  payload: string | undefined | null;
  key: string;
  /** Rows it is stored in. */
  parts: number;
}

export interface ReaderOptions {
  connection: PgConnection;
  large: LargePayloads;
  deliver: (stream: StreamKind, payload: string) => void;
  /** A read unanswered this long means the connection is dead. */
  timeoutMs: number;
  /** Something went wrong that the logs should hear about (rate-limited by the caller). */
  warn: (detail: Record<string, unknown>, message: string) => void;
}

export class LargePayloadReader {
  private held: Held[] = [];
  private head = 0;
  /** Held references not asked for yet, oldest first. */
  private unasked: Held[] = [];
  private reading = false;
  private scheduled = false;
  private closed = false;

  constructor(private readonly o: ReaderOptions) {}

  /** A notification that carries its payload. */
  plain(stream: StreamKind, payload: string): void {
    if (this.head === this.held.length) this.o.deliver(stream, payload);
    else this.held.push({ stream, payload, key: '', parts: 0 });
  }

  /** A notification on the large channel. */
  reference(text: string): void {
    const ref = LargePayloads.parse(text);
    if (!ref) {
      this.o.large.stats.malformed++;
      this.o.warn({ channel: this.o.large.name, sample: text.slice(0, 80) }, 'malformed large-payload reference dropped');
      return;
    }
    const own = this.o.large.takeOwn(ref.key);
    if (own !== undefined) {
      this.o.large.stats.read++;
      return this.plain(ref.stream, own);
    }
    const entry: Held = { stream: ref.stream, payload: undefined, key: ref.key, parts: ref.parts };
    this.held.push(entry);
    this.unasked.push(entry);
    if (!this.reading && !this.scheduled) {
      // After the current socket read: every reference it parsed joins this SELECT.
      this.scheduled = true;
      queueMicrotask(() => {
        this.scheduled = false;
        void this.read();
      });
    }
  }

  /** The connection is gone: what is held dies with it, as its notifications would have. */
  close(): void {
    this.closed = true;
    this.held = [];
    this.unasked = [];
    this.head = 0;
  }

  private async read(): Promise<void> {
    if (this.reading) return;
    this.reading = true;
    try {
      while (this.unasked.length > 0 && !this.closed) {
        const batch = this.unasked.length <= MAX_KEYS ? this.unasked : this.unasked.slice(0, MAX_KEYS);
        this.unasked = batch === this.unasked ? [] : this.unasked.slice(MAX_KEYS);
        const found = await this.fetch(batch);
        if (this.closed) return;
        for (const entry of batch) {
          const payload = found?.get(entry.key);
          if (payload === undefined) {
            entry.payload = null;
            this.o.large.stats.missing++;
          } else {
            entry.payload = payload;
            this.o.large.stats.read++;
          }
        }
        const missing = found === undefined ? 0 : batch.length - found.size;
        if (missing > 0) {
          this.o.warn(
            { table: this.o.large.name, missing, retentionMs: this.o.large.retentionMs },
            'large payloads were swept before this pod read them (it fell behind by more than the retention); those messages are lost here',
          );
        }
        this.drain();
      }
    } finally {
      this.reading = false;
    }
  }

  /** One SELECT; undefined (and every key counted missing) when it failed. */
  private async fetch(batch: Held[]): Promise<Map<string, string> | undefined> {
    try {
      return await this.o.large.fetch(this.o.connection, batch, this.o.timeoutMs);
    } catch (e) {
      const cause = e instanceof Error ? e : new Error(String(e));
      if (isConnectionError(e)) {
        // The session is rebuilt; what was held is lost with the connection.
        this.o.connection.fail(cause);
        this.close();
        return undefined;
      }
      if ((e as { code?: string }).code === '42P01') this.o.large.needsSetup = true;
      this.o.warn({ err: cause, table: this.o.large.name, count: batch.length }, 'reading large payloads failed; those messages are lost here');
      return undefined;
    }
  }

  /** Delivers from the head while the head is known. */
  private drain(): void {
    const held = this.held;
    let i = this.head;
    while (i < held.length) {
      const entry = held[i]!;
      if (entry.payload === undefined) break;
      i++;
      if (entry.payload !== null) this.o.deliver(entry.stream, entry.payload);
      // Delivered: the array must not keep the payload alive until it is compacted.
      entry.payload = null;
    }
    if (i === held.length) {
      this.held = [];
      this.head = 0;
    } else if (i > 1024 && i * 2 > held.length) {
      this.held = held.slice(i);
      this.head = 0;
    } else {
      this.head = i;
    }
  }
}
