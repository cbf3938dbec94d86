/**
 * The publishing side: one connection, one statement in flight, and an ordered queue.
 * While a statement runs, new payloads wait; the next statement sends all of them at once
 * (up to a cap), so throughput grows with load instead of paying a round trip per message.
 * One statement at a time on one connection keeps publish order equal to delivery order.
 */
import { BusError, BusUnavailableError, PayloadTooLargeError } from '@retrotro/bus-core';
import { isConnectionError, withTimeout, type PgConnection } from './connection.js';

/**
 * One statement carries a whole batch; ROWS FROM zips channels and payloads in order, and
 * NOTIFYs of one transaction are delivered in the order sent. count() makes the answer one
 * row instead of one empty row per notification.
 *
 * The lists travel as single text parameters rather than text[] literals, which pg escapes
 * element by element in JavaScript (every quote of every JSON envelope). Payloads are joined
 * with a record separator (U+001E: JSON never carries it raw, chunk frames neither), which
 * costs nothing to build; a batch holding that character, or an empty payload, goes as a
 * JSON array instead (escaped by V8, parsed by the server in C). Channel names are
 * `[A-Za-z0-9_]`, so a comma separates them.
 */
const SEPARATOR = '\u001e';
const NOTIFY_SQL =
  "SELECT count(pg_notify(c, p)) FROM ROWS FROM (unnest(string_to_array($1, ',')), unnest(string_to_array($2, E'\\x1e'))) AS t(c, p)";
const NOTIFY_JSON_SQL =
  "SELECT count(pg_notify(c, p)) FROM ROWS FROM (unnest(string_to_array($1, ',')), json_array_elements_text($2::json)) AS t(c, p)";
/** Named, so each connection parses and plans them once. */
const STATEMENT_NAME = 'retrotro_bus_notify';
const JSON_STATEMENT_NAME = 'retrotro_bus_notify_json';

export interface PublisherLimits {
  maxPayloadBytes: number;
  /** Most notifications in one statement. */
  maxBatch: number;
  /** Most payload bytes in one statement (at least one message is always sent). */
  maxBatchBytes: number;
  /** Most messages waiting (not yet sent); beyond it publish rejects at once. */
  maxQueuedMessages: number;
  /** Most payload bytes waiting; beyond it publish rejects at once. */
  maxQueuedBytes: number;
  /** A statement without an answer for this long means the connection is dead. */
  publishTimeoutMs: number;
}

export interface PublisherStats {
  /** NOTIFY statements sent (each carries a batch). */
  statements: number;
  /** Notifications the server acknowledged. */
  notifications: number;
  failedStatements: number;
  /** Publishes refused because the queue was full. */
  queueFull: number;
}

/**
 * Work other than plain notifications that runs on the publishing connection in queue order:
 * a history transaction (pg-history.ts). It counts against the queue limits with `size`
 * messages and `bytes` bytes while it waits; it settles its own callers.
 */
export interface PublisherJob {
  readonly size: number;
  readonly bytes: number;
  /** Runs it; the publisher starts nothing else on the connection until this settles. */
  run(connection: PgConnection, publisher: NotifyPublisher): Promise<void>;
  /** The connection went away before it ran: fail every caller with `reason`. */
  reject(reason: Error): void;
}

/**
 * Messages that go out in one statement, and the one promise their publishers share: no
 * promise, closure or record per message on the hot path.
 */
class Batch {
  readonly channels: string[] = [];
  readonly payloads: string[] = [];
  bytes = 0;
  /** Some payload is empty or holds the separator: send as JSON. */
  needsJson = false;
  readonly done: Promise<void>;
  resolve!: () => void;
  reject!: (error: Error) => void;

  constructor() {
    this.done = new Promise<void>((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
  }

  get size(): number {
    return this.payloads.length;
  }
}

export class NotifyPublisher {
  readonly stats: PublisherStats = { statements: 0, notifications: 0, failedStatements: 0, queueFull: 0 };
  private connection: PgConnection | undefined;
  /** Batches and jobs waiting, oldest first; new messages join the last batch while it has room. */
  private batches: Array<Batch | PublisherJob> = [];
  private queuedMessages = 0;
  private queuedBytes = 0;
  private sending = false;
  private scheduled = false;

  constructor(
    private readonly limits: PublisherLimits,
    /** Names the broker in errors, e.g. `postgres transport (postgres://host:5432/db)`. */
    private readonly what: string,
  ) {}

  /** True while a statement is in flight (its own timeout then watches the connection). */
  get busy(): boolean {
    return this.sending;
  }

  get queued(): { messages: number; bytes: number } {
    return { messages: this.queuedMessages, bytes: this.queuedBytes };
  }

  attach(connection: PgConnection): void {
    this.connection = connection;
    this.schedule();
  }

  /** Connection gone: everything still waiting fails now, and new publishes fail fast. */
  detach(reason: Error): void {
    this.connection = undefined;
    const waiting = this.batches;
    this.batches = [];
    this.queuedMessages = 0;
    this.queuedBytes = 0;
    for (const b of waiting) b.reject(reason);
  }

  /**
   * Queues one notification; resolves once the server has accepted the statement carrying
   * it. Messages published together share that statement, and the same promise.
   */
  publish(channel: string, text: string): Promise<void> {
    return this.publishAll(channel, [text]);
  }

  /**
   * Queues several notifications as one unit: all are queued or all refused, and they go in
   * one statement, hence one transaction, so other pods get all of them or none (a chunked
   * message is never half sent).
   */
  publishAll(channel: string, texts: readonly string[]): Promise<void> {
    if (!this.connection) return Promise.reject(new BusUnavailableError(this.what));
    const { maxPayloadBytes, maxBatch, maxBatchBytes } = this.limits;
    const payloads: string[] = [];
    let bytes = 0;
    for (const text of texts) {
      const payload = wellFormed(text);
      const size = Buffer.byteLength(payload, 'utf8');
      if (size > maxPayloadBytes) return Promise.reject(new PayloadTooLargeError(size, maxPayloadBytes, 'PostgreSQL NOTIFY'));
      // One bad payload would fail its whole batch, so refuse what the server would refuse.
      if (payload.includes('\0')) {
        return Promise.reject(new BusError('publish_failed', 'payload contains a NUL character, which PostgreSQL text cannot hold'));
      }
      payloads.push(payload);
      bytes += size;
    }
    const count = payloads.length;
    const refused = this.refusal(count, bytes);
    if (refused) return Promise.reject(refused);
    let batch = this.batches[this.batches.length - 1];
    if (!(batch instanceof Batch) || (batch.size > 0 && (batch.size + count > maxBatch || batch.bytes + bytes > maxBatchBytes))) {
      batch = new Batch();
      this.batches.push(batch);
    }
    for (const payload of payloads) {
      batch.channels.push(channel);
      batch.payloads.push(payload);
      if (payload.length === 0 || payload.includes(SEPARATOR)) batch.needsJson = true;
    }
    batch.bytes += bytes;
    this.queuedMessages += count;
    this.queuedBytes += bytes;
    this.schedule();
    return batch.done;
  }

  /**
   * The error a publish of `count` messages and `bytes` bytes gets now (disconnected, or the
   * queue full), or undefined when it may be queued.
   */
  refusal(count: number, bytes: number): Error | undefined {
    if (!this.connection) return new BusUnavailableError(this.what);
    const { maxQueuedMessages, maxQueuedBytes } = this.limits;
    if (this.queuedMessages + count > Math.max(maxQueuedMessages, count) || (this.queuedMessages > 0 && this.queuedBytes + bytes > maxQueuedBytes)) {
      this.stats.queueFull++;
      return new BusError(
        'publish_failed',
        `publish queue of ${this.what} is full (${this.queuedMessages} messages, ${this.queuedBytes} bytes waiting); message not sent`,
      );
    }
    return undefined;
  }

  /** The newest waiting entry when it is a job (work may join it: nothing was queued after it). */
  get tailJob(): PublisherJob | undefined {
    const last = this.batches[this.batches.length - 1];
    return last === undefined || last instanceof Batch ? undefined : last;
  }

  /** Queues `job` after everything waiting. Check `refusal()` first. */
  enqueue(job: PublisherJob): void {
    this.batches.push(job);
    this.queuedMessages += job.size;
    this.queuedBytes += job.bytes;
    this.schedule();
  }

  /** A waiting job (the tail) took `count` more messages and `bytes` more bytes. */
  grew(count: number, bytes: number): void {
    this.queuedMessages += count;
    this.queuedBytes += bytes;
  }

  /**
   * Sends notifications as one statement on `connection`, inside whatever transaction it is
   * in (a job's), resolving once the server accepted them. Payloads must already be checked.
   */
  async notify(connection: PgConnection, channels: readonly string[], payloads: readonly string[]): Promise<void> {
    const needsJson = payloads.some((p) => p.length === 0 || p.includes(SEPARATOR));
    await this.run(connection, channels.join(','), payloads, needsJson);
  }

  /** The payload as NOTIFY may carry it (well-formed UTF-16), or the reason it cannot. */
  check(text: string): string | Error {
    const payload = wellFormed(text);
    const size = Buffer.byteLength(payload, 'utf8');
    if (size > this.limits.maxPayloadBytes) return new PayloadTooLargeError(size, this.limits.maxPayloadBytes, 'PostgreSQL NOTIFY');
    if (payload.includes('\0')) return new BusError('publish_failed', 'payload contains a NUL character, which PostgreSQL text cannot hold');
    return payload;
  }

  /** Starts sending after the current synchronous burst of publishes, so the burst shares a statement. */
  private schedule(): void {
    if (this.sending || this.scheduled || this.queuedMessages === 0) return;
    this.scheduled = true;
    queueMicrotask(() => {
      this.scheduled = false;
      void this.pump();
    });
  }

  private async pump(): Promise<void> {
    if (this.sending) return;
    this.sending = true;
    try {
      while (this.batches.length > 0 && this.connection) {
        const next = this.takeBatch();
        if (next instanceof Batch) await this.send(this.connection, next);
        else await next.run(this.connection, this).catch((e: unknown) => next.reject(e instanceof Error ? e : new Error(String(e))));
      }
    } finally {
      this.sending = false;
    }
  }

  private takeBatch(): Batch | PublisherJob {
    const batch = this.batches.shift()!;
    this.queuedMessages -= batch.size;
    this.queuedBytes -= batch.bytes;
    return batch;
  }

  private async run(connection: PgConnection, channels: string, payloads: readonly string[], needsJson: boolean): Promise<void> {
    const ms = this.limits.publishTimeoutMs;
    const query = connection.client.query(
      needsJson
        ? { name: JSON_STATEMENT_NAME, text: NOTIFY_JSON_SQL, values: [channels, JSON.stringify(payloads)] }
        : { name: STATEMENT_NAME, text: NOTIFY_SQL, values: [channels, payloads.join(SEPARATOR)] },
    );
    await withTimeout(query, ms, () => new Error(`NOTIFY statement got no answer within ${ms} ms`));
    this.stats.notifications += payloads.length;
  }

  private async send(connection: PgConnection, batch: Batch): Promise<void> {
    this.stats.statements++;
    try {
      await this.run(connection, batch.channels.join(','), batch.payloads, batch.needsJson);
      batch.resolve();
    } catch (e) {
      this.stats.failedStatements++;
      const cause = e instanceof Error ? e : new Error(String(e));
      batch.reject(new BusError('publish_failed', `NOTIFY failed: ${cause.message}`, { cause }));
      // A dead or stalled connection: report it so the transport reconnects.
      if (isConnectionError(e)) connection.fail(cause);
    }
  }
}

interface WellFormed {
  isWellFormed(): boolean;
  toWellFormed(): string;
}

/**
 * A lone surrogate would cross as a `\udXXX` escape in the JSON batch, which PostgreSQL
 * refuses, failing the whole statement. Replace it with U+FFFD, as UTF-8 encoding does.
 */
function wellFormed(s: string): string {
  const w = s as unknown as WellFormed;
  return w.isWellFormed() ? s : w.toWellFormed();
}
