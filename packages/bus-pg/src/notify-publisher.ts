/**
 * The publishing side: one connection, one statement in flight, and an ordered queue.
 * While a statement runs, new payloads wait; the next statement sends all of them at once
 * (up to a cap), so throughput grows with load instead of paying a round trip per message.
 * One statement at a time on one connection keeps publish order equal to delivery order.
 */
import { BusError, BusUnavailableError, PayloadTooLargeError } from '@retrotro/bus-core';
import type { Channels } from './channels.js';
import { isConnectionError, withTimeout, type PgConnection } from './connection.js';
import { LargePayloads } from './large-payloads.js';

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
 *
 * Payloads above the NOTIFY limit (when large payloads go by table) are stored by an INSERT
 * in a CTE of the same statement, hence the same transaction, and a reference is notified
 * in their place (large-payloads.ts).
 */
const SEPARATOR = '\u001e';
/** PostgreSQL refuses NOTIFY payloads of 8000 bytes or more. */
export const NOTIFY_MAX_PAYLOAD_BYTES = 7_999;
/** A string of at most this many UTF-16 units fits in one NOTIFY (3 UTF-8 bytes per unit at most). */
const NOTIFY_UNITS = Math.floor(NOTIFY_MAX_PAYLOAD_BYTES / 3);
const NOTIFY_FROM = "SELECT count(pg_notify(c, p)) FROM ROWS FROM (unnest(string_to_array($1, ',')), ";
const NOTIFY_SQL = `${NOTIFY_FROM}unnest(string_to_array($2, E'\\x1e'))) AS t(c, p)`;
const NOTIFY_JSON_SQL = `${NOTIFY_FROM}json_array_elements_text($2::json)) AS t(c, p)`;
/** Named, so each connection parses and plans them once. */
const STATEMENT_NAMES = ['retrotro_bus_notify', 'retrotro_bus_notify_json', 'retrotro_bus_notify_large', 'retrotro_bus_notify_large_json'];

export interface PublisherLimits {
  /** Largest payload accepted (above NOTIFY_MAX_PAYLOAD_BYTES only when `large` is given). */
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
  /** UTF-8 bytes of its largest payload: near the NOTIFY limit, its frames may be stored by reference. */
  readonly largest: number;
  /** Runs it; the publisher starts nothing else on the connection until this settles. */
  run(connection: PgConnection, publisher: NotifyPublisher): Promise<void>;
  /** The connection went away before it ran: fail every caller with `reason`. */
  reject(reason: Error): void;
}

/** The lists of one NOTIFY statement, as they are gathered. */
class Statement {
  readonly channels: string[] = [];
  readonly payloads: string[] = [];
  /** The parts of payloads stored by reference (large-payloads.ts): key, number, text of each. */
  readonly keys: string[] = [];
  readonly partNumbers: number[] = [];
  readonly large: string[] = [];
  /** Payloads stored by reference. */
  references = 0;
  bytes = 0;
  /** Some payload is empty or holds the separator: send the payload lists as JSON. */
  needsJson = false;

  get size(): number {
    return this.payloads.length;
  }
}

/**
 * Messages that go out in one statement, and the one promise their publishers share: no
 * promise, closure or record per message on the hot path.
 */
class Batch extends Statement {
  readonly done: Promise<void>;
  resolve!: () => void;
  reject!: (error: Error) => void;

  constructor() {
    super();
    this.done = new Promise<void>((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
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
    private readonly streams: Channels,
    /** Where payloads above the NOTIFY limit go; without it they are refused. */
    private readonly largePayloads?: LargePayloads,
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
    const { maxBatch, maxBatchBytes } = this.limits;
    const payloads: string[] = [];
    let bytes = 0;
    for (const text of texts) {
      // One bad payload would fail its whole batch, so refuse what the server would refuse.
      const payload = wellFormed(text);
      const size = this.sizeOf(payload);
      if (size instanceof Error) return Promise.reject(size);
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
    for (const payload of payloads) this.add(batch, channel, payload);
    batch.bytes += bytes;
    this.queuedMessages += count;
    this.queuedBytes += bytes;
    this.schedule();
    return batch.done;
  }

  /** Puts one checked payload into `statement`: itself, or a reference to it when it is too large for NOTIFY. */
  private add(statement: Statement, channel: string, payload: string): void {
    const large = this.largePayloads;
    if (large !== undefined && payload.length > NOTIFY_UNITS && Buffer.byteLength(payload, 'utf8') > NOTIFY_MAX_PAYLOAD_BYTES) {
      const key = large.keyFor(payload);
      const parts = LargePayloads.split(payload);
      statement.references++;
      statement.channels.push(this.streams.large);
      statement.payloads.push(LargePayloads.reference(this.streams.streamOf(channel) ?? 'room', key, parts.length));
      for (let i = 0; i < parts.length; i++) {
        statement.keys.push(key);
        statement.partNumbers.push(i);
        statement.large.push(parts[i]!);
      }
      if (payload.includes(SEPARATOR)) statement.needsJson = true;
      return;
    }
    statement.channels.push(channel);
    statement.payloads.push(payload);
    if (payload.length === 0 || payload.includes(SEPARATOR)) statement.needsJson = true;
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
    const statement = new Statement();
    for (let i = 0; i < payloads.length; i++) this.add(statement, channels[i]!, payloads[i]!);
    await this.run(connection, statement);
  }

  /** The payload as NOTIFY may carry it (well-formed UTF-16), or the reason it cannot. */
  check(text: string): string | Error {
    const payload = wellFormed(text);
    const size = this.sizeOf(payload);
    return size instanceof Error ? size : payload;
  }

  /** The UTF-8 size of a well-formed payload, or why it cannot be sent. */
  private sizeOf(payload: string): number | Error {
    const size = Buffer.byteLength(payload, 'utf8');
    const max = this.limits.maxPayloadBytes;
    if (size > max) return new PayloadTooLargeError(size, max, this.largePayloads ? 'PostgreSQL transport' : 'PostgreSQL NOTIFY');
    if (payload.includes('\0')) return new BusError('publish_failed', 'payload contains a NUL character, which PostgreSQL text cannot hold');
    return size;
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
        if (!(await this.readyForLarge(this.connection))) continue;
        const next = this.takeBatch();
        if (next instanceof Batch) await this.send(this.connection, next);
        else await next.run(this.connection, this).catch((e: unknown) => next.reject(e instanceof Error ? e : new Error(String(e))));
      }
    } finally {
      this.sending = false;
    }
  }

  /**
   * Creates the large-payload table before the first statement that may store a payload (and
   * again after one found it dropped). False when that failed: the entry was failed with
   * the reason, and the loop goes on with the next.
   */
  private async readyForLarge(connection: PgConnection): Promise<boolean> {
    const large = this.largePayloads;
    const next = this.batches[0]!;
    // A job's frames are its payloads plus an envelope (room, pod, offset): leave room for it.
    if (!large?.needsSetup || (next instanceof Batch ? next.keys.length === 0 : next.largest <= NOTIFY_MAX_PAYLOAD_BYTES - 2048)) return true;
    try {
      await large.setup(connection, this.limits.publishTimeoutMs);
      return true;
    } catch (e) {
      const cause = e instanceof Error ? e : new Error(String(e));
      this.takeBatch().reject(
        new BusError('publish_failed', `cannot create table ${large.name} for payloads above 8000 bytes: ${cause.message}`, { cause }),
      );
      if (isConnectionError(e)) connection.fail(cause);
      return false;
    }
  }

  private takeBatch(): Batch | PublisherJob {
    const batch = this.batches.shift()!;
    this.queuedMessages -= batch.size;
    this.queuedBytes -= batch.bytes;
    return batch;
  }

  private async run(connection: PgConnection, statement: Statement): Promise<void> {
    const ms = this.limits.publishTimeoutMs;
    const json = statement.needsJson;
    const list = (texts: readonly string[]) => (json ? JSON.stringify(texts) : texts.join(SEPARATOR));
    const values = [statement.channels.join(','), list(statement.payloads)];
    const large = this.largePayloads;
    let query: { name: string; text: string; values: string[] };
    if (statement.keys.length > 0 && large) {
      values.push(statement.keys.join(','), statement.partNumbers.join(','), list(statement.large));
      const text = `WITH stored AS (${large.insertSql(json)}) ${json ? NOTIFY_JSON_SQL : NOTIFY_SQL}`;
      query = { name: STATEMENT_NAMES[json ? 3 : 2]!, text, values };
    } else {
      query = { name: STATEMENT_NAMES[json ? 1 : 0]!, text: json ? NOTIFY_JSON_SQL : NOTIFY_SQL, values };
    }
    try {
      await withTimeout(connection.client.query(query), ms, () => new Error(`NOTIFY statement got no answer within ${ms} ms`));
    } catch (e) {
      if (large && (e as { code?: string }).code === '42P01') large.needsSetup = true;
      throw e;
    }
    this.stats.notifications += statement.payloads.length;
    if (large) large.stats.stored += statement.references;
  }

  private async send(connection: PgConnection, batch: Batch): Promise<void> {
    this.stats.statements++;
    try {
      await this.run(connection, batch);
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
