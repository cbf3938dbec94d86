/**
 * PgHistory: bus-core's HistoryStore in PostgreSQL tables of the bus's own database
 * (history-sql.ts has the tables, the offset design and the retention rules).
 *
 * Appends run on the transport's publishing connection, as jobs in NotifyPublisher's one
 * ordered queue, rather than on a connection of their own. Why:
 * - order: a pod's history events and its other notifications (presence, control, chunks)
 *   leave in the order they were published, exactly as without history;
 * - lifecycle: the job queue is the publisher's, so it shares its bounds (maxQueuedMessages,
 *   maxQueuedBytes), its fail-fast while disconnected and its teardown on loss and close,
 *   with nothing to duplicate;
 * - cost: one connection fewer per pod. A second publishing connection (rooms split between
 *   the two) measured no clear gain: NOTIFYing commits serialise on PostgreSQL's notification
 *   queue lock, and a pod's batches of one room would wait on each other's row lock anyway.
 * Appends queued together share one transaction: BEGIN; one call of `<prefix>_history_append`
 * with the whole batch as single text parameters (offsets, dedupe, insert, trim); one NOTIFY
 * statement carrying every frame of the batch in order; COMMIT. Four statements (named where
 * they take parameters) whatever the batch size, queued in two pairs (BEGIN + call, NOTIFY +
 * COMMIT) so pg sends the second of each as soon as the first is answered; the frames are
 * made between the pairs, once the offsets are known. Each item resolves only once COMMIT
 * succeeded.
 *
 * Reads and the age sweep run on a third connection of the session (the reader), so a
 * rejoin storm does not wait behind the publish queue, nor the queue behind it.
 *
 * Every room has a stable epoch from its first use: the first append, read or position of a
 * room creates its row (and epoch), so a client told `{offset: 0, epoch}` for an empty room
 * can recover from it once the room has events.
 */
import { BusError, type HistoryLimits, type HistoryPage, type HistoryPosition, type Logger, type StoredEvent } from '@retrotro/bus-core';
import { RateLimitedLog, type AppendItem, type AppendOutcome, type HistoryStore } from '@retrotro/bus-core/internal';
import { Client, DatabaseError, type QueryConfig, type QueryResult, type QueryResultRow } from 'pg';
import type { Channels } from './channels.js';
import { clientSettings, isConnectionError, withTimeout, type PgClientConfig, type PgConnection } from './connection.js';
import { lockedDdl } from './ddl.js';
import { historyNames, historySql, LIST_SEPARATOR, type HistorySql } from './history-sql.js';
import type { NotifyPublisher, PublisherJob } from './notify-publisher.js';

/** What the store needs from its transport. */
export interface PgHistoryHost {
  readonly channels: Channels;
  /** Connection string, and how logs show it (password masked). */
  readonly connectionString: string;
  readonly clientConfig?: PgClientConfig | undefined;
  readonly target: string;
  /** `postgres transport (<target>)`. */
  readonly what: string;
  readonly instanceId: string;
  readonly connectTimeoutMs: number;
  /** A statement unanswered this long means the connection is dead. */
  readonly statementTimeoutMs: number;
  /** Most items per transaction, and most payload bytes. */
  readonly maxBatch: number;
  readonly maxBatchBytes: number;
  readonly publisher: NotifyPublisher;
  readonly log: Logger;
  /** The reader connection while connected. */
  reader(): PgConnection | undefined;
  /** True while the transport is connected. */
  connected(): boolean;
  /** What to reject with while not connected (`stopped` once closed, else BusUnavailableError). */
  refuse(): Promise<never>;
}

export interface PgHistoryStats {
  /** History transactions committed. */
  transactions: number;
  /** Items appended (duplicates included). */
  appended: number;
  duplicates: number;
  failedTransactions: number;
  reads: number;
  /** Expired rooms swept. */
  swept: number;
}

/** Most reads waiting or running on the reader connection; beyond it read rejects at once. */
const MAX_PENDING_READS = 10_000;
/** Most rooms one sweep statement handles. */
const SWEEP_ROOMS = 500;

const APPEND_STATEMENT = 'retrotro_bus_history_append';
const READ_STATEMENT = 'retrotro_bus_history_read';
const POSITION_STATEMENT = 'retrotro_bus_history_position';
const ENSURE_STATEMENT = 'retrotro_bus_history_room';
const SWEEP_STATEMENT = 'retrotro_bus_history_sweep';

interface ReadRow {
  epoch: string;
  newest: number;
  floor: number;
  expired: boolean;
  kept: boolean;
  event_offset: number | null;
  payload: string | null;
}

export class PgHistory implements HistoryStore {
  readonly stats: PgHistoryStats = { transactions: 0, appended: 0, duplicates: 0, failedTransactions: 0, reads: 0, swept: 0 };
  readonly tables: { rooms: string; events: string };
  private readonly sql: HistorySql;
  private readonly lockName: string;
  private readonly sweepLog: RateLimitedLog;
  private limits: HistoryLimits | undefined;
  private sweepTimer: NodeJS.Timeout | undefined;
  private sweeping = false;
  private pendingReads = 0;
  private stopped = false;

  constructor(private readonly host: PgHistoryHost) {
    const names = historyNames(host.channels.prefix);
    this.tables = { rooms: names.rooms, events: names.events };
    this.sql = historySql(host.channels.prefix);
    this.lockName = names.lockKey;
    this.sweepLog = new RateLimitedLog((o, m) => host.log.warn(o, m), 3, 60_000);
  }

  /** True while a read or sweep runs on the reader connection (it has its own timeout). */
  get busy(): boolean {
    return this.pendingReads > 0 || this.sweeping;
  }

  /**
   * Creates the tables, indexes and function when missing (under a transaction-level
   * advisory lock, so pods starting together do not collide) on a short-lived connection of
   * its own: it works before or after the transport's `open()`. Starts the age sweep.
   */
  async open(limits: HistoryLimits): Promise<void> {
    if (this.stopped) throw new BusError('stopped', `${this.host.what} was closed; history not opened`);
    if (!Number.isSafeInteger(limits.size) || limits.size < 1) {
      throw new BusError('bad_argument', `history size must be a positive integer, got ${limits.size}`);
    }
    if (!Number.isFinite(limits.ttlS) || limits.ttlS <= 0) {
      throw new BusError('bad_argument', `history ttlS must be a positive number of seconds, got ${limits.ttlS}`);
    }
    const tables = `${this.tables.rooms}, ${this.tables.events}`;
    const client = new Client({
      ...clientSettings(this.host.connectionString, this.host.clientConfig),
      application_name: `retrotro-bus/setup/${this.host.instanceId}/${this.host.channels.prefix}`.slice(0, 63),
      connectionTimeoutMillis: this.host.connectTimeoutMs,
    });
    client.on('error', () => {});
    try {
      await client.connect();
    } catch (e) {
      void client.end().catch(() => {});
      throw new BusError('broker_unreachable', `cannot reach ${this.host.target} to create history tables ${tables}: ${reason(e)}`, { cause: e });
    }
    try {
      await withTimeout(
        client.query(this.ddlScript()),
        this.host.statementTimeoutMs,
        () => new Error(`no answer within ${this.host.statementTimeoutMs} ms`),
      );
    } catch (e) {
      throw new BusError('broker_unreachable', `cannot create history tables ${tables} in ${this.host.target}: ${reason(e)}`, { cause: e });
    } finally {
      const ended = client.end().catch(() => {});
      // A server that stopped answering must not hold open() up.
      await Promise.race([ended, new Promise((r) => setTimeout(r, 1_000).unref())]);
    }
    if (this.stopped) return;
    this.limits = { size: limits.size, ttlS: limits.ttlS };
    this.startSweep(limits.ttlS);
  }

  append(items: readonly AppendItem[]): Promise<AppendOutcome[]> {
    if (!this.host.connected()) return this.host.refuse();
    const limits = this.limits;
    if (!limits) return Promise.reject(notOpened(this.host.what));
    if (items.length === 0) return Promise.resolve([]);
    let bytes = 0;
    let largest = 0;
    let json = false;
    let ids = false;
    for (const item of items) {
      const bad = badItem(item);
      if (bad) return Promise.reject(new BusError('publish_failed', bad));
      const size = Buffer.byteLength(item.payload, 'utf8');
      bytes += size;
      if (size > largest) largest = size;
      if (item.id !== undefined) ids = true;
      if (!json && (needsJson(item.roomId) || needsJson(item.userId) || needsJson(item.payload) || (item.id !== undefined && needsJson(item.id)))) {
        json = true;
      }
    }
    const publisher = this.host.publisher;
    const refused = publisher.refusal(items.length, bytes);
    if (refused) return Promise.reject(refused);
    let job = publisher.tailJob;
    if (!(job instanceof AppendJob) || job.store !== this || !job.fits(items.length, bytes, this.host.maxBatch, this.host.maxBatchBytes)) {
      job = new AppendJob(this);
      const done = (job as AppendJob).add(items, bytes, json, ids, largest);
      publisher.enqueue(job);
      return done;
    }
    const done = job.add(items, bytes, json, ids, largest);
    publisher.grew(items.length, bytes);
    return done;
  }

  async read(roomId: string, after: number, limit: number): Promise<HistoryPage> {
    if (!Number.isSafeInteger(after) || after < 0) throw new BusError('bad_argument', `history read: after must be an integer >= 0, got ${after}`);
    if (!Number.isSafeInteger(limit) || limit < 1) throw new BusError('bad_argument', `history read: limit must be a positive integer, got ${limit}`);
    const limits = this.limits;
    if (!limits) throw notOpened(this.host.what);
    this.stats.reads++;
    const values = [roomId, after, limit, limits.size, limits.ttlS];
    let rows = (await this.onReader<ReadRow>({ name: READ_STATEMENT, text: this.sql.read, values })).rows;
    if (rows.length === 0) {
      await this.onReader({ name: ENSURE_STATEMENT, text: this.sql.ensureRoom, values: [roomId] });
      rows = (await this.onReader<ReadRow>({ name: READ_STATEMENT, text: this.sql.read, values })).rows;
    }
    const first = rows[0];
    if (!first) throw new BusError('publish_failed', `history of room ${JSON.stringify(roomId)} vanished while reading it`);
    const events: StoredEvent[] = [];
    for (const row of rows) if (row.event_offset !== null && row.payload !== null) events.push({ offset: row.event_offset, payload: row.payload });
    // Nothing above `after` left: not trimmed (window or sweep), none expired, and when the
    // room has events above `after` some are still stored (else its events table was lost).
    const complete = after >= first.floor && !first.expired && (first.newest <= after || first.kept);
    return { epoch: first.epoch, newest: first.newest, events, complete };
  }

  async position(roomId: string): Promise<HistoryPosition> {
    if (!this.limits) throw notOpened(this.host.what);
    const query = { name: POSITION_STATEMENT, text: this.sql.position, values: [roomId] };
    let row = (await this.onReader<{ epoch: string; newest: number }>(query)).rows[0];
    if (!row) {
      await this.onReader({ name: ENSURE_STATEMENT, text: this.sql.ensureRoom, values: [roomId] });
      row = (await this.onReader<{ epoch: string; newest: number }>(query)).rows[0];
    }
    if (!row) throw new BusError('publish_failed', `history of room ${JSON.stringify(roomId)} vanished while reading it`);
    return { offset: row.newest, epoch: row.epoch };
  }

  /** The transport closed: no more sweeps; queued appends were failed by the publisher. */
  stop(): void {
    this.stopped = true;
    clearInterval(this.sweepTimer);
    this.sweepTimer = undefined;
  }

  // ---- the transaction ----------------------------------------------------------------

  /** Runs one batch on the publishing connection; see the file comment. Settles every call of the job. */
  async runJob(job: AppendJob, connection: PgConnection, publisher: NotifyPublisher, again = false): Promise<void> {
    const limits = this.limits!;
    const ms = this.host.statementTimeoutMs;
    // Whether the error came from the server or the socket (else from our own code: frames, checks).
    let fromQuery = false;
    const q = <R extends QueryResultRow>(query: string | QueryConfig): Promise<QueryResult<R>> =>
      withTimeout(connection.client.query<R>(query), ms, () => new Error(`history statement got no answer within ${ms} ms`)).catch((e: unknown) => {
        fromQuery = true;
        throw e;
      });
    type Stage = 'begin' | 'append' | 'frames' | 'notify' | 'commit';
    // Widened: the BEGIN callback moves it on.
    let stage = 'begin' as Stage;
    try {
      // Queued together: pg sends the call as soon as BEGIN is answered, without a turn of our event loop.
      const values = job.parameters(limits);
      const [, { rows }] = await Promise.all([
        q('BEGIN').then(() => void (stage = 'append')),
        q<{ offsets: string; epochs: string }>({ name: APPEND_STATEMENT, text: this.sql.append, values }),
      ]);
      const row = rows[0];
      const offsets = row?.offsets.split(',') ?? [];
      const epochs = row?.epochs.split(',') ?? [];
      const sent = job.sent;
      if (offsets.length !== sent.length) throw new Error(`history function returned ${offsets.length} offsets for ${sent.length} items`);
      stage = 'frames';
      const items = job.items;
      const outcomes: AppendOutcome[] = new Array(items.length);
      const channels: string[] = [];
      const payloads: string[] = [];
      const byStream = this.host.channels.byStream;
      let duplicates = 0;
      let k = 0;
      for (let i = 0; i < items.length; i++) {
        const first = job.firstOf[i]!;
        if (first >= 0) {
          // The same (room, user, id) earlier in this batch.
          outcomes[i] = { offset: outcomes[first]!.offset, epoch: outcomes[first]!.epoch, duplicate: true };
          duplicates++;
          continue;
        }
        const value = Number(offsets[k]);
        const epoch = epochs[job.roomOf[k++]!]!;
        if (value < 0) {
          outcomes[i] = { offset: -value, epoch, duplicate: true };
          duplicates++;
          continue;
        }
        outcomes[i] = { offset: value, epoch, duplicate: false };
        for (const frame of items[i]!.frames(value)) {
          const payload = publisher.check(frame.payload);
          if (payload instanceof Error) throw payload;
          channels.push(byStream[frame.stream]);
          payloads.push(payload);
        }
      }
      stage = 'notify';
      // NOTIFY and COMMIT queued together too. A NOTIFY refused by the server aborts the
      // transaction, and the COMMIT behind it then answers ROLLBACK.
      let notified: Promise<void> | undefined;
      if (payloads.length > 0) {
        publisher.stats.statements++;
        notified = publisher.notify(connection, channels, payloads).catch((e: unknown) => {
          fromQuery = true;
          throw e;
        });
      }
      const committed = q('COMMIT');
      if (notified !== undefined) await Promise.all([notified, committed]);
      stage = 'commit';
      const commit = await committed;
      // COMMIT of a transaction the server had already aborted answers ROLLBACK.
      if (commit.command !== 'COMMIT') throw new Error(`COMMIT answered ${commit.command}`);
      this.stats.transactions++;
      this.stats.appended += job.items.length;
      this.stats.duplicates += duplicates;
      job.resolve(outcomes);
    } catch (e) {
      const cause = e instanceof Error ? e : new Error(String(e));
      this.stats.failedTransactions++;
      if (fromQuery && isConnectionError(e)) {
        // Lost (or stalled) mid-way: the server rolls back, unless COMMIT had reached it
        // (it is queued right behind the NOTIFY, so from then on the outcome is unknown).
        connection.fail(cause);
        const what = stage === 'notify' || stage === 'commit' ? 'its outcome is unknown (retry with the same id)' : 'nothing was stored';
        job.reject(new BusError('publish_failed', `history append failed at ${stage}: ${cause.message}; ${what}`, { cause }));
        return;
      }
      const rolledBack = await q('ROLLBACK').then(
        () => true,
        (r: unknown) => {
          connection.fail(r instanceof Error ? r : new Error(String(r)));
          return false;
        },
      );
      // Tables or function dropped under us (history lost): create them again and retry once.
      // Nothing was notified and no frames were made yet, so the retry is invisible.
      if (rolledBack && !again && stage === 'append' && isMissing(e)) {
        this.host.log.warn({ err: e, tables: this.tables }, 'history tables missing; creating them again (their history is lost)');
        const remade = await q(this.ddlScript()).then(
          () => true,
          // Leave no failed transaction block behind on the publishing connection.
          () =>
            q('ROLLBACK').then(
              () => false,
              () => false,
            ),
        );
        if (remade) return this.runJob(job, connection, publisher, true);
      }
      const error =
        cause instanceof BusError
          ? cause
          : new BusError('publish_failed', `history append failed at ${stage}: ${cause.message}; nothing was stored`, { cause });
      job.reject(error);
    }
  }

  // ---- internals ----------------------------------------------------------------------

  private ddlScript(): string {
    return lockedDdl(this.lockName, this.sql.ddl);
  }

  /**
   * One statement on the reader connection, bounded in count and time. Tables dropped under
   * us (history lost) are created again, once, before the statement is retried.
   */
  private async onReader<R extends QueryResultRow>(query: QueryConfig | string, again = false): Promise<QueryResult<R>> {
    const connection = this.host.connected() ? this.host.reader() : undefined;
    if (!connection) return this.host.refuse();
    if (this.pendingReads >= MAX_PENDING_READS) {
      throw new BusError('publish_failed', `history reads of ${this.host.what} are backed up (${this.pendingReads} waiting); try again`);
    }
    const ms = this.host.statementTimeoutMs;
    const run = <T extends QueryResultRow>(q: QueryConfig | string) =>
      withTimeout(connection.client.query<T>(q), ms, () => new Error(`history statement got no answer within ${ms} ms`));
    this.pendingReads++;
    try {
      return await run<R>(query);
    } catch (e) {
      const cause = e instanceof Error ? e : new Error(String(e));
      if (isConnectionError(e)) {
        connection.fail(cause);
      } else if (!again && isMissing(e)) {
        this.host.log.warn({ err: e, tables: this.tables }, 'history tables missing; creating them again (their history is lost)');
        const remade = await run(this.ddlScript()).then(
          () => true,
          () =>
            run('ROLLBACK').then(
              () => false,
              () => false,
            ),
        );
        if (remade) return this.onReader<R>(query, true);
      }
      throw new BusError('publish_failed', `history read failed: ${cause.message}`, { cause });
    } finally {
      this.pendingReads--;
    }
  }

  private startSweep(ttlS: number): void {
    clearInterval(this.sweepTimer);
    const every = Math.max(100, Math.min(60_000, (ttlS * 1000) / 10));
    this.sweepTimer = setInterval(() => void this.sweep(), every);
    this.sweepTimer.unref();
  }

  /** Deletes expired events, a few hundred rooms per statement, until none is left. */
  private async sweep(): Promise<void> {
    const limits = this.limits;
    if (this.sweeping || !limits || !this.host.connected()) return;
    this.sweeping = true;
    try {
      for (;;) {
        const { rows } = await this.onReader<{ rooms: number }>({ name: SWEEP_STATEMENT, text: this.sql.sweep, values: [limits.ttlS, SWEEP_ROOMS] });
        const rooms = rows[0]?.rooms ?? 0;
        this.stats.swept += rooms;
        if (rooms < SWEEP_ROOMS || this.stopped) break;
      }
    } catch (e) {
      this.sweepLog.write({ err: e, tables: this.tables }, 'history sweep of expired events failed; retrying later');
    } finally {
      this.sweeping = false;
    }
  }
}

/** One append call: its items' slice of the job, and the promise its caller holds. */
interface Call {
  count: number;
  resolve: (outcomes: AppendOutcome[]) => void;
  reject: (error: Error) => void;
}

/** Appends that share one transaction; open to more while it is the publisher's last entry. */
export class AppendJob implements PublisherJob {
  size = 0;
  bytes = 0;
  largest = 0;
  readonly items: AppendItem[] = [];
  private readonly calls: Call[] = [];
  private json = false;
  private ids = false;

  constructor(readonly store: PgHistory) {}

  fits(count: number, bytes: number, maxBatch: number, maxBatchBytes: number): boolean {
    return this.size === 0 || (this.size + count <= maxBatch && this.bytes + bytes <= maxBatchBytes);
  }

  add(items: readonly AppendItem[], bytes: number, json: boolean, ids: boolean, largest: number): Promise<AppendOutcome[]> {
    for (const item of items) this.items.push(item);
    if (largest > this.largest) this.largest = largest;
    this.size += items.length;
    this.bytes += bytes;
    if (json) this.json = true;
    if (ids) this.ids = true;
    return new Promise<AppendOutcome[]>((resolve, reject) => this.calls.push({ count: items.length, resolve, reject }));
  }

  /** Per item: the index of the same (room, user, id) earlier in the batch, or -1. Set by parameters(). */
  firstOf: number[] = [];
  /** The items sent to the function (first occurrences), in order. Set by parameters(). */
  sent: number[] = [];
  /** Per sent item: its room's index in the room list (0-based). Set by parameters(). */
  roomOf: number[] = [];

  /**
   * The function's parameters (see HistorySql.append): the batch's rooms once each, every
   * item numbered within its room, each text list as one text (joined, or JSON when some
   * element needs it). An id repeated within the batch is sent once; its repeats share its
   * outcome.
   */
  parameters(limits: HistoryLimits): unknown[] {
    const n = this.items.length;
    const roomIndex = new Map<string, number>();
    const roomList: string[] = [];
    const counts: number[] = [];
    const ranks: number[] = [];
    const users: string[] = [];
    const ids: string[] = [];
    const payloads: string[] = [];
    const seen = this.ids ? new Map<string, number>() : undefined;
    this.firstOf = new Array<number>(n);
    this.sent = [];
    this.roomOf = [];
    for (let i = 0; i < n; i++) {
      const item = this.items[i]!;
      this.firstOf[i] = -1;
      if (seen && item.id !== undefined) {
        const key = `${item.roomId}\u0000${item.userId}\u0000${item.id}`; // NUL is refused in all three
        const first = seen.get(key);
        if (first !== undefined) {
          this.firstOf[i] = first;
          continue;
        }
        seen.set(key, i);
      }
      let r = roomIndex.get(item.roomId);
      if (r === undefined) {
        r = roomList.length;
        roomIndex.set(item.roomId, r);
        roomList.push(item.roomId);
        counts.push(0);
      }
      this.sent.push(i);
      this.roomOf.push(r);
      ranks.push(++counts[r]!);
      users.push(item.userId);
      ids.push(item.id ?? '');
      payloads.push(item.payload);
    }
    // Only the newest `size` of a room's items in this batch can stay in its history.
    const size = limits.size;
    for (let k = 0; k < ranks.length; k++) if (ranks[k]! <= counts[this.roomOf[k]!]! - size) ranks[k] = -ranks[k]!;
    const index = this.roomOf.map((r) => r + 1).join(',');
    const numbers = [counts.join(','), index, ranks.join(',')];
    // No ids at all: an empty list (unnest pads it with NULLs).
    if (this.json) {
      return [
        JSON.stringify(roomList),
        ...numbers,
        JSON.stringify(users),
        this.ids ? JSON.stringify(ids) : '[]',
        JSON.stringify(payloads),
        true,
        size,
      ];
    }
    const j = (list: string[]) => list.join(LIST_SEPARATOR);
    return [j(roomList), ...numbers, j(users), this.ids ? j(ids) : '', j(payloads), false, size];
  }

  run(connection: PgConnection, publisher: NotifyPublisher): Promise<void> {
    return this.store.runJob(this, connection, publisher);
  }

  resolve(outcomes: AppendOutcome[]): void {
    let start = 0;
    for (const call of this.calls) {
      call.resolve(outcomes.slice(start, start + call.count));
      start += call.count;
    }
  }

  reject(reason: Error): void {
    for (const call of this.calls) call.reject(reason);
  }
}

/** A list element the separator-joined form cannot carry: empty, or holding the separator. */
function needsJson(s: string): boolean {
  return s.length === 0 || s.includes(LIST_SEPARATOR);
}

function badItem(item: AppendItem): string | undefined {
  if (typeof item.roomId !== 'string' || item.roomId.length === 0) return 'history append: roomId must be a non-empty string';
  if (typeof item.userId !== 'string') return 'history append: userId must be a string';
  if (item.id !== undefined && (typeof item.id !== 'string' || item.id.length === 0))
    return 'history append: id must be a non-empty string when given';
  if (typeof item.payload !== 'string' || !item.payload.startsWith('{')) return 'history append: payload must be JSON object text';
  for (const s of [item.roomId, item.userId, item.id ?? '', item.payload]) {
    if (s.includes('\0')) return 'history append: text contains a NUL character, which PostgreSQL text cannot hold';
    if (!(s as unknown as { isWellFormed(): boolean }).isWellFormed()) return 'history append: text contains a lone surrogate (not valid UTF-16)';
  }
  return undefined;
}

/** A table or the function does not exist (dropped: that history is lost). */
function isMissing(e: unknown): boolean {
  return e instanceof DatabaseError && (e.code === '42P01' || e.code === '42883');
}

function notOpened(what: string): BusError {
  return new BusError('not_started', `history of ${what} is not open: call history.open(limits) first`);
}

function reason(e: unknown): string {
  if (e instanceof AggregateError && e.errors.length > 0) return e.errors.map(reason).join('; ');
  if (e instanceof Error) return e.message || (e as { code?: string }).code || e.name;
  return String(e);
}
