/**
 * The SQL of the PostgreSQL history store: two tables and one function per bus prefix.
 *
 *   <prefix>_history_rooms   one row per room: its epoch, the last offset given, and the
 *                            highest offset trimmed away (by size or age)
 *   <prefix>_history_events  the kept events, keyed by (room_id, event_offset)
 *   <prefix>_history_append  allocates offsets, drops duplicates, inserts, trims: one call
 *                            per batch of appends
 *
 * Names: the prefix is at most 40 characters (bus-core's rule), so every suffix here stays
 * within 23 characters and each name fits PostgreSQL's 63-byte identifiers untruncated.
 *
 * Offsets. The rooms row is the room's counter, and it is locked (in room order, so two
 * batches touching the same rooms cannot deadlock) by the transaction that inserts the
 * events and NOTIFYs their frames. The lock serialises a room's transactions, and
 * PostgreSQL delivers notifications in commit order, so every listener receives a room's
 * events in offset order. The batch's items of a room take the next offsets in item order
 * (`last_offset + rank`); one found to be a duplicate keeps its first offset and leaves a
 * gap. A transaction that rolls back also rolls back its counter update, so offsets have no
 * other gaps.
 *
 * Duplicates are looked up after the lock is taken, in a statement of its own (in READ
 * COMMITTED each statement of the function sees everything committed before it began), so
 * the batch that held the lock before us is seen; the unique index on
 * (room_id, user_id, client_id) is the last guard. An id is recognised as long as its row is
 * stored: the window plus the trim slack, or until the sweep for expired rows. Recognising
 * it a little longer than `size` only ever avoids delivering an event twice.
 *
 * Retention. Size: the window is the newest `size` offsets (`event_offset > last_offset -
 * size`: at most `size` events, fewer where duplicates left gaps); rows that fall out of it
 * are deleted by primary-key range, a batch at a time once `size / 10` (1 to 1000) of them
 * have piled up, and `trimmed_through` records the highest offset deleted. Reads apply the
 * window themselves, so the slack is never visible. An event born outside the window (a
 * batch with more than `size` events for one room) is delivered but never stored.
 * Age: a periodic sweep deletes expired rows through the created_at index, room by room
 * under the room's lock (the same order as appends), raising trimmed_through; reads also
 * skip expired rows the sweep has not reached yet. created_at is taken after the lock, so
 * it grows with the offset within a room and expired rows are always the oldest ones.
 */
import { escapeIdentifier } from 'pg';
import { inlineCompressed } from './ddl.js';

export interface HistoryNames {
  rooms: string;
  events: string;
  append: string;
  /** The key of the transaction-level advisory lock taken around the DDL. */
  lockKey: string;
}

export function historyNames(prefix: string): HistoryNames {
  return {
    rooms: `${prefix}_history_rooms`,
    events: `${prefix}_history_events`,
    append: `${prefix}_history_append`,
    lockKey: `retrotro-bus history ${prefix}`,
  };
}

/** A random id naming a history, made by the server when a room row is created. */
const NEW_EPOCH = 'substr(md5(random()::text || clock_timestamp()::text), 1, 16)';

/** Separator of the text-joined lists (as in NotifyPublisher): JSON text never holds it raw. */
export const LIST_SEPARATOR = '\u001e';

export interface HistorySql {
  /** DDL: run in one transaction after `pg_advisory_xact_lock`. Idempotent. */
  ddl: string;
  /**
   * $1 the batch's distinct rooms, $2 items per room, $3 each item's room (1-based index in
   * $1), $4 each item's rank within its room (negative: born outside the window, not
   * stored), $5 users, $6 ids ('' = none), $7 payloads, $8 json?, $9 size. Number lists are
   * comma-separated; text lists are joined with LIST_SEPARATOR, or JSON arrays when $8.
   * Returns the offset of each item (negative: a duplicate of that offset) and the epoch of
   * each room of $1.
   */
  append: string;
  /** $1 room, $2 after, $3 limit, $4 size, $5 ttl s. */
  read: string;
  /** $1 room. */
  position: string;
  /** $1 room: makes the room's row (and epoch) if it has none. */
  ensureRoom: string;
  /** $1 ttl s, $2 most rooms per statement: deletes expired events; returns how many rooms it swept. */
  sweep: string;
}

export function historySql(prefix: string): HistorySql {
  const n = historyNames(prefix);
  const rooms = escapeIdentifier(n.rooms);
  const events = escapeIdentifier(n.events);
  const append = escapeIdentifier(n.append);
  const cidIndex = escapeIdentifier(`${n.events}_cid`);
  const ageIndex = escapeIdentifier(`${n.events}_age`);

  /** Step 2 of the function; `lookup`: find ids already stored (else the unique index must not fire). */
  const mainStatement = (lookup: boolean) => `WITH it AS (
    SELECT x.n, v_list[x.ri] AS r, x.u, NULLIF(x.c, '') AS c, x.p, x.k, r_last[x.ri] + abs(x.k) AS o
    FROM unnest(v_index, v_ranks, v_users, v_ids, v_payloads) WITH ORDINALITY AS x(ri, k, u, c, p, n)
  ), num AS (${
    lookup
      ? `
    SELECT it.n, it.r, it.u, it.c, it.p, it.k, it.o, h.o AS hit
    FROM it LEFT JOIN LATERAL (
      SELECT e.event_offset AS o FROM ${events} e
      WHERE it.c IS NOT NULL AND e.room_id = it.r AND e.user_id = it.u AND e.client_id = it.c AND e.client_id IS NOT NULL
      LIMIT 1
    ) AS h ON true`
      : `
    SELECT it.n, it.r, it.u, it.c, it.p, it.k, it.o, NULL::bigint AS hit FROM it`
  }
  ), rs AS (
    SELECT q.r, r_last[q.i] + v_counts[q.i] AS last, r_trim[q.i] AS old_trim,
      CASE WHEN r_last[q.i] + v_counts[q.i] - p_size - r_trim[q.i] >= v_slack THEN r_last[q.i] + v_counts[q.i] - p_size ELSE r_trim[q.i] END AS new_trim
    FROM unnest(v_list) WITH ORDINALITY AS q(r, i)
  ), upd AS (
    UPDATE ${rooms} t SET last_offset = rs.last, trimmed_through = rs.new_trim FROM rs WHERE t.room_id = rs.r
  ), del AS (
    DELETE FROM ${events} e USING rs
    WHERE rs.new_trim > rs.old_trim AND e.room_id = rs.r AND e.event_offset > rs.old_trim AND e.event_offset <= rs.new_trim
  ), ins AS (
    INSERT INTO ${events} (room_id, event_offset, user_id, client_id, created_at, payload)
    SELECT r, o, u, c, v_now, p FROM num WHERE hit IS NULL AND k > 0
  )
  SELECT string_agg(CASE WHEN hit IS NULL THEN o ELSE -hit END::text, ',' ORDER BY n) INTO offsets FROM num;`;

  const ddl = `
CREATE TABLE IF NOT EXISTS ${rooms} (
  room_id text COLLATE "C" PRIMARY KEY,
  epoch text NOT NULL,
  last_offset bigint NOT NULL DEFAULT 0,
  trimmed_through bigint NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS ${events} (
  room_id text COLLATE "C" NOT NULL,
  event_offset bigint NOT NULL,
  user_id text COLLATE "C" NOT NULL,
  client_id text COLLATE "C",
  created_at timestamptz NOT NULL,
  payload text NOT NULL,
  PRIMARY KEY (room_id, event_offset)
);
${inlineCompressed(events, 'payload')}
CREATE UNIQUE INDEX IF NOT EXISTS ${cidIndex} ON ${events} (room_id, user_id, client_id) WHERE client_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS ${ageIndex} ON ${events} (created_at);
CREATE OR REPLACE FUNCTION ${append}(
  p_room_list text, p_counts text, p_room_index text, p_ranks text, p_users text, p_ids text, p_payloads text,
  p_json boolean, p_size bigint,
  OUT offsets text, OUT epochs text
) LANGUAGE plpgsql AS $fn$
DECLARE
  v_index int[] := string_to_array(p_room_index, ',')::int[];
  v_users text[];
  v_ids text[];
  v_payloads text[];
  v_ranks int[] := string_to_array(p_ranks, ',')::int[];
  v_list text[];
  v_counts int[] := string_to_array(p_counts, ',')::int[];
  v_created text[];
  r_epochs text[];
  r_last bigint[];
  r_trim bigint[];
  v_slack bigint := greatest(1, least(p_size / 10, 1000));
  v_now timestamptz;
BEGIN
  IF p_json THEN
    v_users := ARRAY(SELECT json_array_elements_text(p_users::json));
    v_ids := ARRAY(SELECT json_array_elements_text(p_ids::json));
    v_payloads := ARRAY(SELECT json_array_elements_text(p_payloads::json));
    v_list := ARRAY(SELECT json_array_elements_text(p_room_list::json));
  ELSE
    v_users := string_to_array(p_users, E'\\x1e');
    v_ids := string_to_array(p_ids, E'\\x1e');
    v_payloads := string_to_array(p_payloads, E'\\x1e');
    v_list := string_to_array(p_room_list, E'\\x1e');
  END IF;

  -- 1. The rooms' counters: create the missing rows, then lock all of them, both in room
  --    order (the same order in every transaction: no deadlock between batches).
  WITH made AS (
    INSERT INTO ${rooms} (room_id, epoch)
    SELECT r, ${NEW_EPOCH} FROM unnest(v_list) AS u(r) ORDER BY r
    ON CONFLICT (room_id) DO NOTHING
    RETURNING room_id
  )
  SELECT array_agg(room_id) INTO v_created FROM made;
  PERFORM 1 FROM ${rooms} WHERE room_id = ANY (v_list) ORDER BY room_id FOR UPDATE;
  -- Their state, in the caller's room order (items refer to rooms by index).
  SELECT array_agg(m.epoch ORDER BY q.i), array_agg(m.last_offset ORDER BY q.i), array_agg(m.trimmed_through ORDER BY q.i)
  INTO r_epochs, r_last, r_trim
  FROM unnest(v_list) WITH ORDINALITY AS q(r, i) JOIN ${rooms} m ON m.room_id = q.r;
  v_now := clock_timestamp();

  -- A new row for a room that still has events: its rooms row was lost, and so is its history.
  IF v_created IS NOT NULL THEN
    DELETE FROM ${events} WHERE room_id = ANY (v_created);
  END IF;

  -- 2. Insert, counters and size trim, in one statement (a new snapshot: it sees what the
  --    previous holders of the locks committed). The caller numbered the items within their
  --    room (rank; negative: born outside the window, not stored) and resolved ids repeated
  --    within the batch. Most batches hold no id already stored: insert them all and let
  --    the unique index say otherwise; then (rarely) roll that back and look every id up.
  --    Items that are not stored (born outside the window) are never checked by the index:
  --    a batch with such an item and an id looks ids up at once. An item found already
  --    stored keeps its first offset and leaves a gap in the offsets; an id is known while
  --    its row is stored.
  IF p_ids <> '' AND EXISTS (SELECT 1 FROM unnest(v_ranks, v_ids) AS z(k, c) WHERE z.k < 0 AND z.c <> '') THEN
    ${mainStatement(true)}
  ELSE
    BEGIN
      ${mainStatement(false)}
    EXCEPTION WHEN unique_violation THEN
      ${mainStatement(true)}
    END;
  END IF;
  epochs := array_to_string(r_epochs, ',');
END
$fn$;`;

  const cutoff = 'now() - make_interval(secs => $5::double precision)';
  // One row per event, or one row without an event; none when the room has no row.
  const read = `
WITH r AS MATERIALIZED (
  -- Computed once per read: in the select list below, these would run for every event row.
  SELECT epoch, last_offset, floor,
    EXISTS (SELECT 1 FROM ${events} x WHERE x.room_id = $1 AND x.event_offset > greatest($2::bigint, floor) AND x.created_at <= ${cutoff}) AS expired,
    EXISTS (SELECT 1 FROM ${events} x WHERE x.room_id = $1 AND x.event_offset > $2::bigint) AS kept
  FROM (SELECT epoch, last_offset, greatest(trimmed_through, last_offset - $4::bigint) AS floor FROM ${rooms} WHERE room_id = $1) AS room
)
SELECT r.epoch, r.last_offset::float8 AS newest, r.floor::float8 AS floor, r.expired, r.kept,
  e.event_offset::float8 AS event_offset, e.payload
FROM r LEFT JOIN LATERAL (
  SELECT event_offset, payload FROM ${events}
  WHERE room_id = $1 AND event_offset > greatest($2::bigint, r.floor) AND created_at > ${cutoff}
  ORDER BY event_offset LIMIT $3
) e ON true
ORDER BY e.event_offset`;

  const position = `SELECT epoch, last_offset::float8 AS newest FROM ${rooms} WHERE room_id = $1`;
  const ensureRoom = `INSERT INTO ${rooms} (room_id, epoch) VALUES ($1, ${NEW_EPOCH}) ON CONFLICT (room_id) DO NOTHING`;

  // Rooms with expired events, locked in room order like appends (no deadlock with them),
  // then their expired rows deleted and trimmed_through raised. The statement's snapshot
  // predates the locks: rows an append deleted meanwhile are skipped, rows it inserted are new.
  const sweep = `
WITH due AS (
  SELECT room_id FROM ${rooms}
  WHERE room_id IN (SELECT DISTINCT room_id FROM ${events} WHERE created_at <= now() - make_interval(secs => $1::double precision) LIMIT $2)
  ORDER BY room_id FOR UPDATE
), gone AS (
  DELETE FROM ${events} e USING due
  WHERE e.room_id = due.room_id AND e.created_at <= now() - make_interval(secs => $1::double precision)
  RETURNING e.room_id, e.event_offset
), upd AS (
  UPDATE ${rooms} t SET trimmed_through = g.o
  FROM (SELECT room_id, max(event_offset) AS o FROM gone GROUP BY room_id) AS g
  WHERE t.room_id = g.room_id AND g.o > t.trimmed_through
)
SELECT count(*)::int AS rooms FROM due`;

  return { ddl, append: `SELECT offsets, epochs FROM ${append}($1, $2, $3, $4, $5, $6, $7, $8, $9)`, read, position, ensureRoom, sweep };
}
