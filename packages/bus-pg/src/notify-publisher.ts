/**
 * The publishing side: one connection, one statement in flight, and an ordered queue.
 * While a statement runs, new payloads wait; the next statement sends all of them at once
 * (up to a cap), so throughput grows with load instead of paying a round trip per message.
 * One statement at a time on one connection keeps publish order equal to delivery order.
 */
import { BusError, BusUnavailableError, PayloadTooLargeError } from '@retrotro/bus-core';
import { isConnectionError, withTimeout, type PgConnection } from './connection.js';

/** unnest keeps array order, and NOTIFYs of one transaction are delivered in the order sent. */
const NOTIFY_SQL = 'SELECT pg_notify(c, p) FROM unnest($1::text[], $2::text[]) AS t(c, p)';
/** Named, so each connection parses and plans it once. */
const STATEMENT_NAME = 'retrotro_bus_notify';

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

interface Pending {
  channel: string;
  payload: string;
  bytes: number;
  resolve: () => void;
  reject: (error: Error) => void;
}

export class NotifyPublisher {
  readonly stats: PublisherStats = { statements: 0, notifications: 0, failedStatements: 0, queueFull: 0 };
  private connection: PgConnection | undefined;
  private queue: Pending[] = [];
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
    return { messages: this.queue.length, bytes: this.queuedBytes };
  }

  attach(connection: PgConnection): void {
    this.connection = connection;
    this.schedule();
  }

  /** Connection gone: everything still waiting fails now, and new publishes fail fast. */
  detach(reason: Error): void {
    this.connection = undefined;
    const waiting = this.queue;
    this.queue = [];
    this.queuedBytes = 0;
    for (const m of waiting) m.reject(reason);
  }

  publish(channel: string, payload: string): Promise<void> {
    if (!this.connection) return Promise.reject(new BusUnavailableError(this.what));
    const bytes = Buffer.byteLength(payload, 'utf8');
    if (bytes > this.limits.maxPayloadBytes) {
      return Promise.reject(new PayloadTooLargeError(bytes, this.limits.maxPayloadBytes, 'PostgreSQL NOTIFY'));
    }
    // One bad payload would fail its whole batch, so refuse what the server would refuse.
    if (payload.includes('\0')) {
      return Promise.reject(new BusError('publish_failed', 'payload contains a NUL character, which PostgreSQL text cannot hold'));
    }
    const { maxQueuedMessages, maxQueuedBytes } = this.limits;
    if (this.queue.length >= maxQueuedMessages || (this.queue.length > 0 && this.queuedBytes + bytes > maxQueuedBytes)) {
      this.stats.queueFull++;
      return Promise.reject(
        new BusError(
          'publish_failed',
          `publish queue of ${this.what} is full (${this.queue.length} messages, ${this.queuedBytes} bytes waiting); message not sent`,
        ),
      );
    }
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ channel, payload, bytes, resolve, reject });
      this.queuedBytes += bytes;
      this.schedule();
    });
  }

  /** Starts sending after the current synchronous burst of publishes, so the burst shares a statement. */
  private schedule(): void {
    if (this.sending || this.scheduled || this.queue.length === 0) return;
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
      while (this.queue.length > 0 && this.connection) await this.send(this.connection, this.takeBatch());
    } finally {
      this.sending = false;
    }
  }

  private takeBatch(): Pending[] {
    let count = 0;
    let bytes = 0;
    for (const m of this.queue) {
      if (count >= this.limits.maxBatch || (count > 0 && bytes + m.bytes > this.limits.maxBatchBytes)) break;
      count++;
      bytes += m.bytes;
    }
    this.queuedBytes -= bytes;
    return this.queue.splice(0, count);
  }

  private async send(connection: PgConnection, batch: Pending[]): Promise<void> {
    const ms = this.limits.publishTimeoutMs;
    this.stats.statements++;
    try {
      const query = connection.client.query({
        name: STATEMENT_NAME,
        text: NOTIFY_SQL,
        values: [batch.map((m) => m.channel), batch.map((m) => m.payload)],
      });
      await withTimeout(query, ms, () => new Error(`NOTIFY statement got no answer within ${ms} ms`));
      this.stats.notifications += batch.length;
      for (const m of batch) m.resolve();
    } catch (e) {
      this.stats.failedStatements++;
      const cause = e instanceof Error ? e : new Error(String(e));
      const error = new BusError('publish_failed', `NOTIFY failed: ${cause.message}`, { cause });
      for (const m of batch) m.reject(error);
      // A dead or stalled connection: report it so the transport reconnects.
      if (isConnectionError(e)) connection.fail(cause);
    }
  }
}
