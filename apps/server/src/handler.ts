/**
 * The protocol on one socket (CONTRACT section 4): parses frames, enforces limits, and
 * turns commands into hub and bus calls. Nothing a client sends can throw out of here.
 */
import { BusError, type EventResult, type MessageBus, type PublishResult } from '@retrotro/bus-core';
import type { Identity } from './auth.js';
import { Client, type ClientSocket, type Hub } from './hub.js';
import { EVENT_ID, ROOM_ID, errorFrame, isObject, parseClientFrame, type ErrorCode } from './protocol.js';
import { RoomAnswer, parseSince } from './room-answer.js';
import { TokenBucket, floodThreshold } from './rate-limit.js';
import { TIMER_COMMANDS, type TimerCommandType, type TimerService } from './timer.js';
import type { Logger } from 'pino';

export interface HandlerOptions {
  rateLimit: number;
  maxRoomsPerPod: number;
  maxParticipantsPerRoom: number;
}

export class HandlerCounters {
  framesIn = 0;
  badFrames = 0;
  rateLimited = 0;
  /** Times a publishing socket was paused because the bus was overloaded. */
  paused = 0;
}

export class Handler {
  readonly counters = new HandlerCounters();
  readonly rooms: RoomAnswer;

  constructor(
    private readonly hub: Hub,
    private readonly bus: MessageBus,
    private readonly timers: TimerService,
    private readonly options: HandlerOptions,
    private readonly log: Logger,
  ) {
    this.rooms = new RoomAnswer(hub, bus, timers, log);
    bus.onPressure((overloaded) => (overloaded ? this.pauseBusy() : this.resumeAll()));
  }

  /** Sockets not read from while the bus is overloaded. */
  private readonly paused = new Set<Client>();

  /** The bus is overloaded: stop reading from the sockets whose publishes it still holds. */
  private pauseBusy(): void {
    for (const client of this.hub.allClients()) if (client.inFlight > 0) this.pause(client);
  }

  private pause(client: Client): void {
    if (client.paused || !client.socket.pause) return;
    client.paused = true;
    this.paused.add(client);
    client.socket.pause();
    this.counters.paused++;
  }

  private resumeAll(): void {
    for (const client of this.paused) {
      client.paused = false;
      client.socket.resume?.();
    }
    this.paused.clear();
  }

  /** Registers a new authenticated socket; returns the callbacks the socket layer must call. */
  connect(socket: ClientSocket, identity: Identity) {
    const client = new Client(socket, identity);
    this.hub.add(client);
    const bucket = this.options.rateLimit > 0 ? new TokenBucket(this.options.rateLimit) : undefined;
    return {
      client,
      message: (text: string, isBinary = false) => {
        this.counters.framesIn++;
        if (bucket && !bucket.take()) {
          this.counters.rateLimited++;
          if (bucket.recentRefusals() > floodThreshold(this.options.rateLimit)) {
            socket.close(1008, 'rate limit exceeded');
          } else {
            // A publish with an id hears about it with its id: its sender may retry it.
            const id = isBinary ? undefined : publishIdOf(text);
            const about = id === undefined ? undefined : { id, retryable: true };
            this.error(client, 'rate_limited', `more than ${this.options.rateLimit} frames per second; frame dropped`, about);
          }
          return;
        }
        if (isBinary) return this.error(client, 'bad_message', 'binary frames are not supported: send JSON text');
        try {
          this.handle(client, text);
        } catch (e) {
          this.log.error({ err: e, clientId: client.id }, 'frame handler failed');
        }
      },
      close: () => {
        this.paused.delete(client);
        this.hub.remove(client);
      },
    };
  }

  /**
   * Synchronous on purpose: every effect (local delivery, presence, the order of publishes
   * handed to the transport) happens in frame order; broker acknowledgements come later.
   */
  private handle(client: Client, text: string): void {
    const parsed = parseClientFrame(text);
    if (!parsed.ok) return this.error(client, 'bad_message', parsed.reason);
    const { type, payload } = parsed.frame;
    switch (type) {
      case 'heartbeat':
        return;
      case 'join_room':
        return this.join(client, payload);
      case 'leave_room':
        if (client.roomId === undefined) return this.error(client, 'not_in_room', 'not in a room');
        this.hub.leave(client, { grace: false });
        return;
      case 'publish':
        return this.publish(client, payload);
      default:
        if ((TIMER_COMMANDS as readonly string[]).includes(type)) {
          if (client.roomId === undefined) return this.error(client, 'not_in_room', 'join a room first');
          const r = this.timers.command(client.roomId, type as TimerCommandType, payload);
          if (!r.ok) return this.error(client, r.code, r.message);
          return this.reportRelay(client, r.sent, 'timer change applied on this server only');
        }
        return this.error(client, 'bad_message', `unknown frame type ${JSON.stringify(type.slice(0, 64))}`);
    }
  }

  private join(client: Client, payload: unknown): void {
    const roomId = isObject(payload) ? payload.roomId : undefined;
    if (typeof roomId !== 'string' || !ROOM_ID.test(roomId)) {
      return this.error(client, 'bad_message', 'join_room needs payload.roomId: 1-128 characters of [A-Za-z0-9._:-]');
    }
    const since = parseSince(isObject(payload) ? payload.since : undefined);
    if (!since.ok) return this.error(client, 'bad_message', since.reason);
    const allowed = client.identity.rooms;
    if (allowed && !allowed.includes(roomId)) return this.error(client, 'forbidden', `your token does not allow room ${roomId}`);
    if (client.roomId === roomId) return this.rooms.answer(client, roomId, since.since);
    // Switching rooms as the last member of the old one frees its slot first.
    const freed = this.hub.isSoleMember(client) ? 1 : 0;
    if (!this.hub.hasRoom(roomId) && this.hub.roomCount - freed >= this.options.maxRoomsPerPod) {
      return this.error(client, 'too_many_rooms', `this server hosts its maximum of ${this.options.maxRoomsPerPod} rooms`);
    }
    if (!this.bus.isUserInRoom(roomId, client.userId) && this.bus.getRoomClients(roomId).length >= this.options.maxParticipantsPerRoom) {
      return this.error(client, 'room_full', `room ${roomId} has its maximum of ${this.options.maxParticipantsPerRoom} participants`);
    }
    if (client.roomId !== undefined) this.hub.leave(client, { grace: false });
    // The first connection of the user here registers them cluster-wide at once (the tracker
    // publishes the join; others get participant_joined), then room_state is answered.
    this.hub.join(client, roomId);
    this.rooms.answer(client, roomId, since.since);
  }

  private publish(client: Client, payload: unknown): void {
    const rawId = isObject(payload) ? payload.id : undefined;
    if (rawId !== undefined && (typeof rawId !== 'string' || !EVENT_ID.test(rawId))) {
      const about = typeof rawId === 'string' ? { id: rawId, retryable: false } : undefined;
      return this.error(client, 'bad_message', 'publish payload.id must be 1-64 characters of [A-Za-z0-9._:-]', about);
    }
    const id = rawId as string | undefined;
    const about = (retryable: boolean) => (id === undefined ? undefined : { id, retryable });
    if (!isObject(payload) || typeof payload.event !== 'string' || payload.event === '') {
      return this.error(client, 'bad_message', 'publish needs payload.event (a non-empty string) and payload.data', about(false));
    }
    // Retryable: once it has joined (again), the same publish succeeds.
    if (client.roomId === undefined) return this.error(client, 'not_in_room', 'join a room before publishing', about(true));
    const sent = this.bus.publishEvent(client.roomId, { event: payload.event, data: payload.data ?? null, from: client.participant, id }, client.id);
    client.inFlight++;
    // A publisher while the bus is overloaded waits (its socket is not read) instead of losing events.
    if (this.bus.overloaded) this.pause(client);
    void sent.then((r) => {
      client.inFlight--;
      this.reportEvent(client, r, id);
    });
  }

  /** One `ack` or one `error` for a publish with an id; without an id, only failures are told. */
  private reportEvent(client: Client, r: EventResult, id: string | undefined): void {
    if (r.ok) {
      if (id !== undefined) this.hub.send(client, { type: 'ack', payload: { id, offset: r.offset } });
      return;
    }
    const code = r.error instanceof BusError && r.error.code === 'payload_too_large' ? 'too_large' : r.retryable ? 'relay_failed' : 'bad_message';
    // The reason names the broker: it stays in the logs (the bus writes it there, at a bounded rate).
    const message = !r.retryable
      ? 'the event was refused'
      : this.bus.historyEnabled
        ? 'the event could not be stored and relayed; send it again'
        : 'event delivered on this server only: the other servers could not be reached';
    this.error(client, code, message, id === undefined ? undefined : { id, retryable: r.retryable });
  }

  /**
   * Tells the client when the other pods could not be reached (local delivery already
   * happened). The reason names the broker, so it stays in the logs (the bus writes it there,
   * at a bounded rate); the client gets a stable code and a neutral message.
   */
  private reportRelay(client: Client, sent: Promise<PublishResult>, what: string): void {
    void sent.then((r) => {
      if (!r.ok) this.error(client, 'relay_failed', `${what}: the other servers could not be reached`);
    });
  }

  private error(client: Client, code: ErrorCode, message: string, about?: { id: string; retryable: boolean }): void {
    if (code === 'bad_message') this.counters.badFrames++;
    this.hub.send(client, errorFrame(code, message, about));
  }
}

/** The id of a publish frame, read only to tell its sender that it was dropped. */
function publishIdOf(text: string): string | undefined {
  if (!text.includes('"id"')) return undefined;
  const parsed = parseClientFrame(text);
  if (!parsed.ok || parsed.frame.type !== 'publish' || !isObject(parsed.frame.payload)) return undefined;
  const id = parsed.frame.payload.id;
  return typeof id === 'string' && EVENT_ID.test(id) ? id : undefined;
}
