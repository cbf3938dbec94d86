/**
 * Payloads larger than one NOTIFY can carry (8000 bytes) travel by reference: the statement
 * that NOTIFYs stores the payload in the UNLOGGED table `<prefix>_large` and notifies
 * `<stream> <key> <parts>` on the channel `<prefix>_large` in its place, in the same
 * transaction. The payload is stored in parts of at most 7800 bytes, one row each, so that
 * every row fits in a page: PostgreSQL then never moves it to TOAST (out-of-line chunks and
 * their index, in the relay ceiling 2.4k against 8.4k msg/s for incompressible 10 KB payloads) nor spends time
 * compressing it.
 * Every listener reads the payloads of the references it holds with one SELECT per batch
 * (large-payload-reader.ts) and delivers them in notification order.
 *
 * Why not chunk frames: PostgreSQL's notification queue is a small SLRU every listener
 * reads through a global lock, so 10 KB events sent as two 8 KB frames each cost far more
 * in the queue than a 40-byte reference plus a batched primary-key read. UNLOGGED: the rows
 * live seconds and skip the WAL; a server crash that empties the table loses only what
 * was in flight, as it loses the notifications themselves.
 *
 * A pod reads its own references from memory, not the table: it keeps each payload it
 * stored until its own listener sees the reference (they come back in the order stored,
 * so anything older still kept never will, and goes too).
 *
 * Rows are swept once older than the retention (default 60 s): a listener that falls
 * further behind than that finds the row gone, counts it in `missing` and logs it.
 * Go pods do not LISTEN on `<prefix>_large`; they never got our large messages (chunk
 * frames) either.
 */
import { randomBytes } from 'node:crypto';
import { STREAMS, type StreamKind } from '@retrotro/bus-core';
import { escapeIdentifier } from 'pg';
import { withTimeout, type PgConnection } from './connection.js';
import { inlineCompressed, lockedDdl } from './ddl.js';

export interface LargePayloadStats {
  /** Payloads this transport stored (sent by reference). */
  stored: number;
  /** Payloads read back for references received. */
  read: number;
  /** SELECTs that read them (a burst shares one). */
  selects: number;
  /** References whose rows were gone (swept: this listener was more than the retention behind). */
  missing: number;
  /** References that were not `<stream> <key> <parts>`. */
  malformed: number;
  /** Rows (parts of payloads) deleted by this transport's sweeps. */
  swept: number;
}

/** Most UTF-8 bytes of one stored part: with the row's other columns, under a page. */
const PART_BYTES = 7_800;
/** Most parts of one payload (16 MiB / PART_BYTES, rounded up generously). */
const MAX_PARTS = 4_096;
/** Most payload characters kept for the own listener; beyond it, it reads them from the table. */
const MAX_OWN_UNITS = 16 * 1024 * 1024;
/** Most rows one sweep statement deletes (it repeats while it finds that many). */
const SWEEP_ROWS = 5_000;
const FETCH_STATEMENT = 'retrotro_bus_large_read';
const SWEEP_STATEMENT = 'retrotro_bus_large_sweep';
const STREAM_NAMES: ReadonlySet<string> = new Set(STREAMS);

export class LargePayloads {
  readonly stats: LargePayloadStats = { stored: 0, read: 0, selects: 0, missing: 0, malformed: 0, swept: 0 };
  /** Table and channel share the name `<prefix>_large`. */
  readonly name: string;
  /** Creates the table and its index when missing; run on any connection. */
  readonly setupScript: string;
  /** $1: keys joined with commas. Returns (key, part, payload) of those still stored. */
  readonly fetchSql: string;
  /**
   * The INSERT of a batch's parts, used as a CTE by the NOTIFY statement: $3 each part's key,
   * $4 its number (from 0), both joined with commas, $5 the parts.
   */
  readonly insertSql: (json: boolean) => string;
  /**
   * True until the table is known to exist, and again when a statement found it missing:
   * the publisher creates it before its next statement that stores a payload. Lazily, so a
   * deployment that never sends one needs no table (nor the right to create it).
   */
  needsSetup = true;
  private readonly sweepSql: string;
  /** Keys are `<16 hex of this transport><counter in base 36>`: unique without a round trip. */
  private readonly keyPrefix = randomBytes(8).toString('hex');
  private counter = 0;
  /** Payloads this transport stored whose reference its own listener has not seen yet, oldest first. */
  private readonly own = new Map<string, string>();
  private ownUnits = 0;

  constructor(
    prefix: string,
    readonly retentionMs: number,
  ) {
    this.name = `${prefix}_large`;
    const table = escapeIdentifier(this.name);
    this.setupScript = lockedDdl(
      `retrotro-bus large ${prefix}`,
      // A part's row stays under the table's toast_tuple_target (a page): never compressed, never moved.
      `CREATE UNLOGGED TABLE IF NOT EXISTS ${table} (
         key text NOT NULL, part integer NOT NULL, payload text NOT NULL, at timestamptz NOT NULL DEFAULT now(),
         PRIMARY KEY (key, part)
       );
       ${inlineCompressed(table, 'payload')}
       CREATE INDEX IF NOT EXISTS ${escapeIdentifier(`${this.name}_at`)} ON ${table} (at);`,
    );
    this.fetchSql = `SELECT key, part, payload FROM ${table} WHERE key = ANY(string_to_array($1, ','))`;
    this.insertSql = (json) =>
      `INSERT INTO ${table} (key, part, payload) SELECT k, n, v FROM ROWS FROM (unnest(string_to_array($3, ',')), unnest(string_to_array($4, ',')::int[]), ${
        json ? 'json_array_elements_text($5::json)' : "unnest(string_to_array($5, E'\\x1e'))"
      }) AS s(k, n, v)`;
    // SKIP LOCKED: pods sweeping at the same moment split the rows instead of waiting on each other.
    this.sweepSql = `DELETE FROM ${table} WHERE (key, part) IN (SELECT key, part FROM ${table} WHERE at < now() - make_interval(secs => $1) ORDER BY at LIMIT $2 FOR UPDATE SKIP LOCKED)`;
  }

  /** A key for `payload`, which this transport is about to store (and keeps for its own listener). */
  keyFor(payload: string): string {
    const key = `${this.keyPrefix}${(this.counter++).toString(36)}`;
    if (this.ownUnits + payload.length <= MAX_OWN_UNITS) {
      this.own.set(key, payload);
      this.ownUnits += payload.length;
    }
    return key;
  }

  /**
   * The payload of one of this transport's own references, from memory (undefined: read it
   * from the table). Entries older than it are dropped: their statements never committed.
   */
  takeOwn(key: string): string | undefined {
    const payload = this.own.get(key);
    if (payload === undefined) return undefined;
    for (const [k, p] of this.own) {
      this.own.delete(k);
      this.ownUnits -= p.length;
      if (k === key) break;
    }
    return payload;
  }

  /** The session was lost: references of what is kept may never come back. */
  forgetOwn(): void {
    this.own.clear();
    this.ownUnits = 0;
  }

  /** `payload` cut into parts of at most PART_BYTES UTF-8 bytes, never inside a surrogate pair. */
  static split(payload: string): string[] {
    const parts: string[] = [];
    let start = 0;
    while (start < payload.length) {
      let end = Math.min(payload.length, start + PART_BYTES);
      for (;;) {
        // A UTF-16 unit takes 1 to 3 UTF-8 bytes: shrink in proportion until the slice fits.
        const bytes = Buffer.byteLength(payload.slice(start, end), 'utf8');
        if (bytes <= PART_BYTES) break;
        end = start + Math.floor(((end - start) * PART_BYTES) / bytes);
      }
      const last = payload.charCodeAt(end - 1);
      if (end < payload.length && last >= 0xd800 && last <= 0xdbff) end--;
      parts.push(payload.slice(start, end));
      start = end;
    }
    return parts;
  }

  /** The notification standing for a payload of `stream` stored under `key` in `parts` rows. */
  static reference(stream: StreamKind, key: string, parts: number): string {
    return `${stream} ${key} ${parts}`;
  }

  /** The stream, key and part count of a reference, or undefined when it is not one. */
  static parse(text: string): { stream: StreamKind; key: string; parts: number } | undefined {
    const [stream = '', key = '', count = '', extra] = text.split(' ', 4);
    const parts = Number(count);
    if (extra !== undefined || !STREAM_NAMES.has(stream) || !/^[0-9a-z]{17,40}$/.test(key)) return undefined;
    if (!Number.isSafeInteger(parts) || parts < 1 || parts > MAX_PARTS) return undefined;
    return { stream: stream as StreamKind, key, parts };
  }

  /** Creates the table when missing (on the publishing connection, before the first statement that needs it). */
  async setup(connection: PgConnection, timeoutMs: number): Promise<void> {
    try {
      await withTimeout(
        connection.client.query(this.setupScript),
        timeoutMs,
        () => new Error(`creating ${this.name} got no answer within ${timeoutMs} ms`),
      );
    } catch (e) {
      // The script's own BEGIN left a failed transaction open: end it, or every later statement fails.
      await connection.client.query('ROLLBACK').catch(() => {});
      throw e;
    }
    this.needsSetup = false;
  }

  /** Deletes rows older than the retention, a few thousand per statement, until none is left. */
  async sweep(connection: PgConnection, timeoutMs: number): Promise<void> {
    for (;;) {
      const query = connection.client.query({ name: SWEEP_STATEMENT, text: this.sweepSql, values: [this.retentionMs / 1000, SWEEP_ROWS] });
      const { rowCount } = await withTimeout(query, timeoutMs, () => new Error(`sweep of ${this.name} got no answer within ${timeoutMs} ms`));
      this.stats.swept += rowCount ?? 0;
      if ((rowCount ?? 0) < SWEEP_ROWS) return;
    }
  }

  /** Reads the payloads of `refs`; one with a part gone (swept) is absent from the map. */
  async fetch(connection: PgConnection, refs: ReadonlyArray<{ key: string; parts: number }>, timeoutMs: number): Promise<Map<string, string>> {
    this.stats.selects++;
    const keys = refs.map((r) => r.key).join(',');
    const query = connection.client.query<{ key: string; part: number; payload: string }>({
      name: FETCH_STATEMENT,
      text: this.fetchSql,
      values: [keys],
    });
    const { rows } = await withTimeout(query, timeoutMs, () => new Error(`read of ${this.name} got no answer within ${timeoutMs} ms`));
    const byKey = new Map<string, string[]>();
    for (const row of rows) {
      let parts = byKey.get(row.key);
      if (parts === undefined) byKey.set(row.key, (parts = []));
      parts[row.part] = row.payload;
    }
    const found = new Map<string, string>();
    for (const { key, parts: count } of refs) {
      const parts = byKey.get(key);
      if (parts === undefined || parts.length !== count) continue;
      let whole = true;
      for (let i = 0; i < count; i++) if (parts[i] === undefined) whole = false;
      if (whole) found.set(key, count === 1 ? parts[0]! : parts.join(''));
    }
    return found;
  }
}
