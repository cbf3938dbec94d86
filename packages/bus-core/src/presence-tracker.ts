/**
 * PresenceTracker: presence without bookkeeping. An application attaches and detaches its
 * connections; the tracker counts them per (room, user) on this pod and publishes presence
 * on the bus only at the transitions:
 *
 * - `publishPresenceJoin` for a user's first connection in a room, not for a second tab, and
 *   not for a reconnect within the grace period;
 * - `publishPresenceLeave` once the last connection is gone: at once, or after `graceMs` for
 *   a connection that dropped (a reconnect within the grace cancels it);
 * - `cancelPendingDisconnect`, the bus's LocalHub callback of that name, ends a grace early:
 *   the user is held by another pod now, so this pod's stale entry goes at once (with a leave
 *   that the cluster does not report, since the other pod still holds the user).
 *
 * The same logic serves the server's hub and a Socket.IO application; it knows nothing of
 * sockets, only connection ids (any string unique among the user's connections in the room).
 */
import { type Logger, silentLogger } from './logger.js';
import type { MessageBus } from './message-bus.js';
import type { Participant, PublishResult } from './types.js';

/** What the tracker needs of a bus: a `RelayBus`, `PgBus`, `NatsBus`, or a fake in tests. */
export type PresencePublisher = Pick<MessageBus, 'publishPresenceJoin' | 'publishPresenceLeave'>;

export interface PresenceTrackerOptions {
  bus: PresencePublisher;
  /**
   * How long a user whose last connection dropped (`detach(..., { grace: true })`) stays
   * present, waiting for a reconnect (the server's DISCONNECT_GRACE_MS). Default 0: no grace.
   */
  graceMs?: number;
  /** pino-style logger: failed publishes are logged at `warn`. Default silent. */
  logger?: Logger;
  /** Called with every publish the tracker makes, once it settled (metrics, tests). */
  onPublished?: (action: 'join' | 'leave', roomId: string, userId: string, result: PublishResult) => void;
}

/**
 * - `joined`: the user's first connection in the room on this pod; the join was published.
 * - `added`: another connection of a user already present here (a second tab); nothing published.
 * - `resumed`: a reconnect within the grace period; the pending leave is cancelled, nothing published.
 * - `closed`: `closeAll()` was called; nothing tracked.
 */
export type AttachOutcome = 'joined' | 'added' | 'resumed' | 'closed';

/**
 * - `left`: that was the user's last connection; the leave was published.
 * - `grace`: that was the last connection; the leave follows after `graceMs` unless the user comes back.
 * - `remaining`: the user still has other connections here; nothing published.
 * - `unknown`: the connection was not attached (or already detached); nothing done.
 */
export type DetachOutcome = 'left' | 'grace' | 'remaining' | 'unknown';

export interface DetachOptions {
  /** The connection dropped (rather than left on purpose): keep the user present for `graceMs`. */
  grace?: boolean;
}

interface Entry {
  participant: Participant;
  connections: Set<string>;
  /** Set while the user has no connection left and waits out the grace period. */
  timer: NodeJS.Timeout | undefined;
}

export class PresenceTracker {
  private readonly bus: PresencePublisher;
  private readonly graceMs: number;
  private readonly log: Logger;
  private readonly onPublished: PresenceTrackerOptions['onPublished'];
  /** roomId -> userId -> entry */
  private readonly rooms = new Map<string, Map<string, Entry>>();
  private closed = false;

  constructor(options: PresenceTrackerOptions) {
    const graceMs = options.graceMs ?? 0;
    if (!Number.isFinite(graceMs) || graceMs < 0) throw new RangeError(`graceMs must be 0 or more, got ${graceMs}`);
    this.bus = options.bus;
    this.graceMs = graceMs;
    this.log = options.logger ?? silentLogger;
    this.onPublished = options.onPublished;
  }

  /** A connection of `participant` is in `roomId` now. */
  attach(roomId: string, participant: Participant, connectionId: string): AttachOutcome {
    if (this.closed) return 'closed';
    let users = this.rooms.get(roomId);
    if (!users) this.rooms.set(roomId, (users = new Map()));
    const entry = users.get(participant.userId);
    if (!entry) {
      users.set(participant.userId, { participant, connections: new Set([connectionId]), timer: undefined });
      void this.publish('join', roomId, participant.userId, this.bus.publishPresenceJoin(roomId, participant));
      return 'joined';
    }
    entry.connections.add(connectionId);
    if (entry.timer) {
      clearTimeout(entry.timer);
      entry.timer = undefined;
      return 'resumed';
    }
    return 'added';
  }

  /** A connection is no longer in `roomId`; with `{ grace: true }` a last connection leaves after `graceMs`. */
  detach(roomId: string, userId: string, connectionId: string, options: DetachOptions = {}): DetachOutcome {
    const entry = this.rooms.get(roomId)?.get(userId);
    if (!entry?.connections.delete(connectionId)) return 'unknown';
    if (entry.connections.size > 0) return 'remaining';
    if (options.grace && this.graceMs > 0) {
      const timer = setTimeout(() => {
        if (entry.timer !== timer) return;
        entry.timer = undefined;
        this.leave(roomId, userId);
      }, this.graceMs);
      timer.unref?.();
      entry.timer = timer;
      return 'grace';
    }
    this.leave(roomId, userId);
    return 'left';
  }

  /**
   * The bus's `LocalHub.cancelPendingDisconnect`: another pod now holds this user in this
   * room. If the user is waiting out a grace period here (no connection left on this pod),
   * the wait ends now and the leave is published at once; the cluster keeps the user present
   * (the other pod holds them), so nobody sees them leave. Returns true if a wait was ended.
   * A user with live connections here is left alone.
   */
  cancelPendingDisconnect(roomId: string, userId: string): boolean {
    const entry = this.rooms.get(roomId)?.get(userId);
    if (!entry?.timer) return false;
    clearTimeout(entry.timer);
    entry.timer = undefined;
    this.leave(roomId, userId);
    return true;
  }

  /**
   * Shutdown: cancels every grace period and forgets everything. Publishes nothing by
   * default, as `RelayBus.stop()` then tells the cluster that all of this pod's users left;
   * with `{ publishLeaves: true }` it publishes a leave for every tracked user (for a bus that
   * keeps running) and resolves once they settled. Later calls are no-ops (`attach` returns `closed`).
   */
  async closeAll(options: { publishLeaves?: boolean } = {}): Promise<void> {
    this.closed = true;
    const leaves: Promise<PublishResult>[] = [];
    for (const [roomId, users] of this.rooms) {
      for (const [userId, entry] of users) {
        clearTimeout(entry.timer);
        if (options.publishLeaves) leaves.push(this.publish('leave', roomId, userId, this.bus.publishPresenceLeave(roomId, userId)));
      }
    }
    this.rooms.clear();
    await Promise.all(leaves);
  }

  /** This pod's live connections of the user in the room (0 while waiting out a grace). */
  connections(roomId: string, userId: string): number {
    return this.rooms.get(roomId)?.get(userId)?.connections.size ?? 0;
  }

  /** True while the user has no connection here and the leave waits for the grace period. */
  isPending(roomId: string, userId: string): boolean {
    return this.rooms.get(roomId)?.get(userId)?.timer !== undefined;
  }

  /** The users this pod holds in the room (pending ones included), as announced. */
  participants(roomId: string): Participant[] {
    return [...(this.rooms.get(roomId)?.values() ?? [])].map((e) => e.participant);
  }

  /** Rooms in which this pod holds anyone. */
  get roomCount(): number {
    return this.rooms.size;
  }

  private leave(roomId: string, userId: string): void {
    const users = this.rooms.get(roomId);
    users?.delete(userId);
    if (users?.size === 0) this.rooms.delete(roomId);
    void this.publish('leave', roomId, userId, this.bus.publishPresenceLeave(roomId, userId));
  }

  private publish(action: 'join' | 'leave', roomId: string, userId: string, sent: Promise<PublishResult>): Promise<PublishResult> {
    return sent.then(
      (result) => {
        if (!result.ok) this.log.warn({ err: result.error, roomId, userId }, `presence ${action} not published`);
        this.onPublished?.(action, roomId, userId, result);
        return result;
      },
      (err: unknown) => {
        // A MessageBus never rejects; a fake might.
        const result: PublishResult = { ok: false, error: err instanceof Error ? err : new Error(String(err)) };
        this.log.warn({ err, roomId, userId }, `presence ${action} not published`);
        this.onPublished?.(action, roomId, userId, result);
        return result;
      },
    );
  }
}
