/**
 * The pod's local sockets and rooms. It implements the bus's LocalHub: the bus calls it to
 * deliver frames and to report cluster-wide joins and leaves. Presence bookkeeping (counting
 * a user's connections, the grace period of a dropped socket, publishing the join and the
 * leave) is bus-core's PresenceTracker: the hub only attaches and detaches its sockets.
 */
import { randomUUID } from 'node:crypto';
import type { DeliverOptions, Frame, LocalHub, Participant, PresenceTracker } from '@retrotro/bus-core';
import type { Identity } from './auth.js';

/** What the hub needs of a socket (`ws` WebSocket fits); lets tests use fakes. */
export interface ClientSocket {
  /** Sends one text frame (a Buffer holds UTF-8 text, encoded once for a whole room). */
  send(data: string | Buffer): void;
  close(code?: number, reason?: string): void;
  readonly bufferedAmount: number;
  /** Optional: hold writes until `uncork()`, so a tick's frames leave in one write. */
  cork?(): void;
  uncork?(): void;
  /** Optional: stop and restart reading frames from the peer (backpressure on a publisher). */
  pause?(): void;
  resume?(): void;
}

/** A frame held back while a client's join is being answered (room_state and replay first). */
interface Held {
  data: string | Buffer;
  offset: number | undefined;
}

export class Client {
  readonly id = randomUUID();
  roomId: string | undefined;
  /** Closed by the hub as a slow consumer: nothing more is sent to it. */
  dropped = false;
  /** Highest event offset sent to it in its room: an event at or below it is not sent again. */
  lastOffset = 0;
  /** While its join is answered: the room's frames that arrive meanwhile, in order. */
  held: Held[] | undefined;
  heldBytes = 0;
  /** Bumped by every join: an answer for an older join is dropped. */
  joinSeq = 0;
  /** Its publishes the bus has not acknowledged yet. */
  inFlight = 0;
  /** Not read from while the bus is overloaded. */
  paused = false;
  constructor(
    readonly socket: ClientSocket,
    readonly identity: Identity,
  ) {}
  get userId(): string {
    return this.identity.userId;
  }
  get participant(): Participant {
    return { userId: this.identity.userId, userName: this.identity.userName };
  }
}

export interface HubOptions {
  /** Counts connections per (room, user) and publishes presence; its grace is DISCONNECT_GRACE_MS. */
  presence: PresenceTracker;
  /** A socket whose unsent bytes exceed this is closed with 1013 (slow consumer). */
  maxBufferedBytes: number;
  /** Frames held for a client whose join is being answered; beyond, the client is closed with 1013 (it can recover). Default 4 MiB. */
  maxHeldBytes?: number;
}

export class HubCounters {
  framesOut = 0;
  slowConsumers = 0;
}

export class Hub implements LocalHub {
  readonly counters = new HubCounters();
  private readonly clients = new Set<Client>();
  /** roomId -> userId -> that user's local clients in the room */
  private readonly rooms = new Map<string, Map<string, Set<Client>>>();
  /** Sockets corked during this tick; uncorked together right after it. */
  private readonly corked = new Set<ClientSocket>();
  private uncorkScheduled = false;

  constructor(private readonly options: HubOptions) {}

  allClients(): Iterable<Client> {
    return this.clients;
  }

  get clientCount(): number {
    return this.clients.size;
  }

  get roomCount(): number {
    return this.rooms.size;
  }

  hasRoom(roomId: string): boolean {
    return this.rooms.has(roomId);
  }

  /** True when the client is the only connection left in its room (leaving empties it). */
  isSoleMember(client: Client): boolean {
    const users = client.roomId === undefined ? undefined : this.rooms.get(client.roomId);
    if (!users) return false;
    let connections = 0;
    for (const conns of users.values()) connections += conns.size;
    return connections === 1 && users.size === 1;
  }

  add(client: Client): void {
    this.clients.add(client);
  }

  /** The socket is gone (clean close or drop): leave its room after the grace period. */
  remove(client: Client): void {
    if (!this.clients.delete(client)) return;
    this.leave(client, { grace: true });
  }

  /**
   * Puts the client in a room. Returns true when this is the user's first local connection
   * there (the tracker announced the user to the cluster); false for another tab or a
   * reconnect within the grace period.
   */
  join(client: Client, roomId: string): boolean {
    let users = this.rooms.get(roomId);
    if (!users) this.rooms.set(roomId, (users = new Map()));
    let conns = users.get(client.userId);
    if (!conns) users.set(client.userId, (conns = new Set()));
    conns.add(client);
    client.roomId = roomId;
    client.lastOffset = 0;
    client.held = undefined;
    client.heldBytes = 0;
    return this.options.presence.attach(roomId, client.participant, client.id) === 'joined';
  }

  /**
   * Takes the client out of its room. With `grace`, a user whose last connection this was
   * stays present for `graceMs` (a reconnect cancels it); without, they leave at once.
   */
  leave(client: Client, { grace }: { grace: boolean }): void {
    const roomId = client.roomId;
    if (roomId === undefined) return;
    client.roomId = undefined;
    client.held = undefined;
    client.heldBytes = 0;
    client.joinSeq++;
    const users = this.rooms.get(roomId);
    const conns = users?.get(client.userId);
    if (!users || !conns?.delete(client)) return;
    if (conns.size === 0) users.delete(client.userId);
    if (users.size === 0) this.rooms.delete(roomId);
    // After closeAll the tracker is closed: the bus's stop() speaks for our users.
    this.options.presence.detach(roomId, client.userId, client.id, { grace });
  }

  /** Sends one frame to one client. */
  send(client: Client, frame: Frame): void {
    this.sendRaw(client, JSON.stringify(frame));
  }

  /** Sends an event frame already serialised, remembering its offset (replay). */
  sendEvent(client: Client, json: string, offset: number): void {
    if (offset <= client.lastOffset) return;
    client.lastOffset = offset;
    this.sendRaw(client, json);
  }

  /**
   * Holds the room's frames for this client until `release` (its join is being answered);
   * events above `after` may be sent to it again (a replay it asked for).
   */
  hold(client: Client, after: number): void {
    client.held ??= [];
    client.lastOffset = after;
  }

  /**
   * Sends what was held, in order, skipping events at or below `floor` (already replayed, or
   * older than the position the client was given); from now on frames go out directly.
   */
  release(client: Client, floor: number): void {
    const held = client.held ?? [];
    client.held = undefined;
    client.heldBytes = 0;
    // The join's answer decides where live events start (a new epoch starts over from its
    // position, whatever the client had seen before).
    client.lastOffset = floor;
    for (const h of held) {
      if (h.offset !== undefined) {
        if (h.offset <= client.lastOffset) continue;
        client.lastOffset = h.offset;
      }
      this.sendRaw(client, h.data);
    }
  }

  // ---- LocalHub (called by the bus) -----------------------------------------------------

  deliverLocal(roomId: string, frame: Frame, options: DeliverOptions = {}): void {
    const { except: exceptClientId, json, offset } = options;
    const users = this.rooms.get(roomId);
    if (!users) return;
    // Serialised and UTF-8 encoded once per room, not per socket, and only if someone gets it.
    let data: Buffer | undefined;
    for (const conns of users.values()) {
      for (const c of conns) {
        if (c.id === exceptClientId) continue;
        data ??= Buffer.from(json ?? JSON.stringify(frame), 'utf8');
        if (c.held) {
          this.holdFor(c, data, offset);
          continue;
        }
        if (offset !== undefined) {
          // Already replayed to it (a live event that overlaps its recovery): not twice.
          if (offset <= c.lastOffset) continue;
          c.lastOffset = offset;
        }
        this.sendRaw(c, data);
      }
    }
  }

  private holdFor(client: Client, data: string | Buffer, offset: number | undefined): void {
    client.heldBytes += typeof data === 'string' ? data.length * 3 : data.length;
    if (client.heldBytes > (this.options.maxHeldBytes ?? 4 * 1024 * 1024)) {
      // Its join is taking too long for the traffic: cut it; it rejoins with its position.
      client.held = undefined;
      client.dropped = true;
      this.counters.slowConsumers++;
      client.socket.close(1013, 'too slow: send buffer full');
      return;
    }
    client.held!.push({ data, offset });
  }

  participantJoined(roomId: string, participant: Participant): void {
    this.sendToOthers(roomId, participant.userId, { type: 'participant_joined', payload: participant });
  }

  participantLeft(roomId: string, userId: string): void {
    this.sendToOthers(roomId, userId, { type: 'participant_left', payload: { userId } });
  }

  cancelPendingDisconnect(roomId: string, userId: string): void {
    // The user reconnected on another pod: our stale entry can go now, nobody sees a leave.
    this.options.presence.cancelPendingDisconnect(roomId, userId);
  }

  // ---- shutdown -------------------------------------------------------------------------

  /** Closes every socket (1001 going away). The bus's stop() then tells the cluster. */
  closeAll(code = 1001, reason = 'server shutting down'): void {
    void this.options.presence.closeAll();
    for (const c of this.clients) {
      try {
        c.socket.close(code, reason);
      } catch {
        // already closed
      }
    }
  }

  private sendToOthers(roomId: string, userId: string, frame: Frame): void {
    const users = this.rooms.get(roomId);
    if (!users) return;
    const data = JSON.stringify(frame);
    for (const [uid, conns] of users) {
      if (uid === userId) continue;
      for (const c of conns) {
        if (c.held) this.holdFor(c, data, undefined);
        else this.sendRaw(c, data);
      }
    }
  }

  /** Corks a socket until the end of this tick: one write for all its frames of the tick. */
  private cork(socket: ClientSocket): void {
    socket.cork!();
    this.corked.add(socket);
    if (this.uncorkScheduled) return;
    this.uncorkScheduled = true;
    process.nextTick(() => {
      this.uncorkScheduled = false;
      for (const s of this.corked) s.uncork!();
      this.corked.clear();
    });
  }

  private sendRaw(client: Client, data: string | Buffer): void {
    if (client.dropped) return;
    const socket = client.socket;
    if (!this.corked.has(socket)) {
      // First frame for this socket in this tick: judge it by what earlier ticks left unsent.
      if (socket.bufferedAmount > this.options.maxBufferedBytes) {
        // A slow consumer must never hold memory for everyone else: drop it, it can reconnect.
        client.dropped = true;
        this.counters.slowConsumers++;
        socket.close(1013, 'too slow: send buffer full');
        return;
      }
      if (socket.cork) this.cork(socket);
    }
    this.counters.framesOut++;
    try {
      socket.send(data);
    } catch {
      // socket closing under us; its close handler cleans up
    }
  }
}
