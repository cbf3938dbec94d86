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
 * events in offset order. A transaction that rolls back also rolls back its counter update,
 * so a room's offsets are consecutive (1, 2, 3, ...) as long as its row lives.
 *
 * Duplicates are looked up after the lock is taken, in a statement of its own (in READ
 * COMMITTED each statement of the function sees everything committed before it began), so
 * the batch that held the lock before us is seen; the unique index on
 * (room_id, user_id, client_id) is the last guard.
 *
 * Retention. Size: the window is the newest `size` offsets (`event_offset > last_offset -
 * size`); rows that fall out of it are deleted by primary-key range, a batch at a time once
 * `size / 10` (1 to 1000) of them have piled up, and `trimmed_through` records the highest
 * offset deleted. Reads apply the window themselves, so the slack is never visible. An
 * event born outside the window (a batch larger than `size`) is delivered but never stored.
 * Age: a periodic sweep deletes expired rows through the created_at index, room by room
 * under the room's lock (the same order as appends), raising trimmed_through; reads also
 * skip expired rows the sweep has not reached yet. created_at is taken after the lock, so
 * it grows with the offset within a room and expired rows are always the oldest ones.
 */
import { escapeIdentifier } from 'pg';

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
const NEW_EPOCH = "substr(md5(random()::text || clock_timestamp()::text), 1, 16)";

/** Separator of the text-joined lists (as in NotifyPublisher): JSON text never holds it raw. */
export const LIST_SEPARATOR = '\u001e';

export interface HistorySql {
  /** DDL: run in one transaction after `pg_advisory_xact_lock`. Idempotent. */
  ddl: string;
  /** $1 rooms, $2 users, $3 ids ('' = none), $4 payloads (joined or JSON arrays), $5 json?, $6 size, $7 ttl s. */
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

  const ddl = `
CREATE TABLE IF NOT EXISTS ${rooms} (
  room_id text PRIMARY KEY,
  epoch text NOT NULL,
  last_offset bigint NOT NULL DEFAULT 0,
  trimmed_through bigint NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS ${events} (
  room_id text NOT NULL,
  event_offset bigint NOT NULL,
  user_id text NOT NULL,
  client_id text,
  created_at timestamptz NOT NULL,
  payload text NOT NULL,
  PRIMARY KEY (room_id, event_offset)
);
CREATE UNIQUE INDEX IF NOT EXISTS ${cidIndex} ON ${events} (room_id, user_id, client_id) WHERE client_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS ${ageIndex} ON ${events} (created_at);
CREATE OR REPLACE FUNCTION ${append}(
  p_rooms text, p_users text, p_ids text, p_payloads text, p_json boolean, p_size bigint, p_ttl_s double precision,
  OUT offsets text, OUT epochs text
) LANGUAGE plpgsql AS $fn$
DECLARE
  v_rooms text[];
  v_users text[];
  v_ids text[];
  v_payloads text[];
  v_created text[];
  v_slack bigint := greatest(1, least(p_size / 10, 1000));
  v_cutoff timestamptz;
  v_now timestamptz;
BEGIN
  IF p_json THEN
    v_rooms := ARRAY(SELECT json_array_elements_text(p_rooms::json));
    v_users := ARRAY(SELECT json_array_elements_text(p_users::json));
    v_ids := ARRAY(SELECT json_array_elements_text(p_ids::json));
    v_payloads := ARRAY(SELECT json_array_elements_text(p_payloads::json));
  ELSE
    v_rooms := string_to_array(p_rooms, E'\\x1e');
    v_users := string_to_array(p_users, E'\\x1e');
    v_ids := string_to_array(p_ids, E'\\x1e');
    v_payloads := string_to_array(p_payloads, E'\\x1e');
  END IF;

  -- 1. The rooms' counters: create the missing rows, then lock all of them, in room order.
  WITH made AS (
    INSERT INTO ${rooms} (room_id, epoch)
    SELECT r, ${NEW_EPOCH} FROM (SELECT DISTINCT r FROM unnest(v_rooms) AS u(r)) AS d ORDER BY r
    ON CONFLICT (room_id) DO NOTHING
    RETURNING room_id
  )
  SELECT array_agg(room_id) INTO v_created FROM made;
  PERFORM 1 FROM ${rooms} WHERE room_id = ANY (v_rooms) ORDER BY room_id FOR UPDATE;
  v_now := clock_timestamp();
  v_cutoff := v_now - make_interval(secs => p_ttl_s);

  -- A new row for a room that still has events: its rooms row was lost, and so is its history.
  IF v_created IS NOT NULL THEN
    DELETE FROM ${events} WHERE room_id = ANY (v_created);
  END IF;

  -- 2. An id whose first event has left the history (out of the window, or expired but not
  --    swept yet) is new again: drop that row, recording the trim.
  IF p_ids <> '' AND p_ids <> '[]' THEN
    WITH it AS (
      SELECT r, u, c FROM unnest(v_rooms, v_users, v_ids) AS x(r, u, c) WHERE c <> ''
    ), gone AS (
      DELETE FROM ${events} e USING it, ${rooms} m
      WHERE e.room_id = it.r AND e.user_id = it.u AND e.client_id = it.c AND e.client_id IS NOT NULL
        AND m.room_id = it.r AND (e.event_offset <= m.last_offset - p_size OR e.created_at <= v_cutoff)
      RETURNING e.room_id, e.event_offset, e.created_at <= v_cutoff AS expired
    )
    UPDATE ${rooms} t SET trimmed_through = g.o
    FROM (SELECT room_id, max(event_offset) AS o FROM gone WHERE expired GROUP BY room_id) AS g
    WHERE t.room_id = g.room_id AND g.o > t.trimmed_through;
  END IF;

  -- 3. Offsets, duplicates, insert, counters and size trim, in one statement (a new snapshot:
  --    it sees what the previous holders of the locks committed).
  WITH it AS (
    SELECT x.n::int AS n, x.r, x.u, NULLIF(x.c, '') AS c, x.p
    FROM unnest(v_rooms, v_users, v_ids, v_payloads) WITH ORDINALITY AS x(r, u, c, p, n)
  ), cls AS (
    SELECT it.*, h.event_offset AS hit,
      h.event_offset IS NULL AND (it.c IS NULL OR it.n = min(it.n) OVER (PARTITION BY it.r, it.u, it.c)) AS fresh
    FROM it LEFT JOIN ${events} h
      ON h.room_id = it.r AND h.user_id = it.u AND h.client_id = it.c AND h.client_id IS NOT NULL
  ), num AS (
    SELECT cls.*, m.epoch, m.last_offset + row_number() OVER (PARTITION BY cls.r, cls.fresh ORDER BY cls.n) AS o
    FROM cls JOIN ${rooms} m ON m.room_id = cls.r
  ), agg AS (
    SELECT a.r, a.last, m.trimmed_through AS old_trim,
      CASE WHEN a.last - p_size - m.trimmed_through >= v_slack THEN a.last - p_size ELSE m.trimmed_through END AS new_trim
    FROM (SELECT r, max(o) AS last FROM num WHERE fresh GROUP BY r) AS a JOIN ${rooms} m ON m.room_id = a.r
  ), upd AS (
    UPDATE ${rooms} t SET last_offset = agg.last, trimmed_through = agg.new_trim FROM agg WHERE t.room_id = agg.r
  ), del AS (
    DELETE FROM ${events} e USING agg
    WHERE agg.new_trim > agg.old_trim AND e.room_id = agg.r AND e.event_offset > agg.old_trim AND e.event_offset <= agg.new_trim
  ), ins AS (
    INSERT INTO ${events} (room_id, event_offset, user_id, client_id, created_at, payload)
    SELECT num.r, num.o, num.u, num.c, v_now, num.p FROM num JOIN agg ON agg.r = num.r
    WHERE num.fresh AND num.o > agg.last - p_size
  ), res AS (
    SELECT a.n, CASE WHEN a.fresh THEN a.o ELSE -coalesce(a.hit, f.o) END AS o, a.epoch
    FROM num a LEFT JOIN num f
      ON NOT a.fresh AND a.hit IS NULL AND f.fresh AND f.r = a.r AND f.u = a.u AND f.c = a.c
  )
  SELECT string_agg(o::text, ',' ORDER BY n), string_agg(epoch, ',' ORDER BY n) INTO offsets, epochs FROM res;
END
$fn$;`;

  const cutoff = 'now() - make_interval(secs => $5::double precision)';
  // One row per event, or one row without an event; none when the room has no row.
  const read = `
WITH r AS (
  SELECT epoch, last_offset, greatest(trimmed_through, last_offset - $4::bigint) AS floor
  FROM ${rooms} WHERE room_id = $1
)
SELECT r.epoch, r.last_offset::float8 AS newest, r.floor::float8 AS floor,
  EXISTS (SELECT 1 FROM ${events} x WHERE x.room_id = $1 AND x.event_offset > greatest($2::bigint, r.floor) AND x.created_at <= ${cutoff}) AS expired,
  EXISTS (SELECT 1 FROM ${events} x WHERE x.room_id = $1 AND x.event_offset > $2::bigint) AS kept,
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

  return { ddl, append: `SELECT offsets, epochs FROM ${append}($1, $2, $3, $4, $5, $6, $7)`, read, position, ensureRoom, sweep };
}
