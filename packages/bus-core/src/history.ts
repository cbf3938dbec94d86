/**
 * Room history (CONTRACT section 8): every `event` of a room gets an offset, assigned where
 * all pods agree on one order (the store), and the newest events are kept so that a client
 * can come back with `{offset, epoch}` and receive exactly what it missed.
 *
 * A store is part of a transport (it lives on the broker the user already runs): PostgreSQL
 * tables written in the same transaction as the NOTIFY that carries the event live, a
 * JetStream stream whose consumer is the live feed, or the memory broker. Whatever the
 * store, the live delivery of a room's events reaches every pod in offset order.
 */
import type { StreamKind } from './types.js';

/** Retention (HISTORY_SIZE, HISTORY_TTL_S). */
export interface HistoryLimits {
  /** Newest events kept per room; at least 1 (0 means history off: no store at all). */
  size: number;
  /** Events older than this many seconds leave the history. */
  ttlS: number;
}

/** A room's position: its newest offset (0 when it has no event) and the epoch naming its history. */
export interface HistoryPosition {
  offset: number;
  epoch: string;
}

/** One event as history gives it back. */
export interface StoredEvent {
  offset: number;
  /** The event frame's payload as JSON object text, without `offset`: `{"event","data","from","id"?}`. */
  payload: string;
}

export interface HistoryPage {
  epoch: string;
  /** The room's newest offset (0 when it has no event). */
  newest: number;
  /** Events with an offset above `after`, in offset order, at most `limit` of them. */
  events: StoredEvent[];
  /**
   * True when no event with an offset above `after` has left the history (trimmed by size or
   * age): reading on from `after` gives every event since. A store that cannot tell says false.
   */
  complete: boolean;
}

/** One event to append. */
export interface AppendItem {
  roomId: string;
  /** The publisher; with `id`, the key of idempotent retries. */
  userId: string;
  /** Client-chosen id: appending (roomId, userId, id) again while the first is in history
   * returns the first offset with `duplicate: true` and publishes nothing. */
  id?: string;
  /** Publishing pod and the client to skip there (the sender does not get its own event). */
  podId: string;
  except?: string;
  /** The event frame's payload as JSON object text, without `offset`. */
  payload: string;
  /**
   * What to publish for live delivery once the offset is known, in order: our room envelope
   * (Go-compatible) or, when it is larger than the transport's limit, its chunk frames.
   * Called once per item that is not a duplicate, inside the store's ordering (e.g. inside
   * the PostgreSQL transaction).
   */
  frames(offset: number): Array<{ stream: StreamKind; payload: string }>;
}

export interface AppendOutcome {
  offset: number;
  epoch: string;
  duplicate: boolean;
}

/** A history event as the live feed delivers it (ordered by offset per room). */
export interface HistoryEvent {
  roomId: string;
  podId: string;
  except?: string;
  offset: number;
  /** As in StoredEvent. */
  payload: string;
}

/**
 * Implemented by transports that keep history. Every method rejects with a `BusError` whose
 * message names what failed (for operators) when the store cannot be used.
 */
export interface HistoryStore {
  /** Creates what is missing (tables, stream) with these limits; rejects with one clear reason. */
  open(limits: HistoryLimits): Promise<void>;
  /**
   * Appends the items in order and resolves once they are durably stored and handed to the
   * broker for live delivery; the outcomes are in item order. Items of one call succeed or
   * fail together.
   */
  append(items: readonly AppendItem[]): Promise<AppendOutcome[]>;
  /** Events after `after` (exclusive), at most `limit`. */
  read(roomId: string, after: number, limit: number): Promise<HistoryPage>;
  position(roomId: string): Promise<HistoryPosition>;
}
