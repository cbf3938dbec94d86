import { Emitter } from './emitter.js';
import { RetrotroError } from './errors.js';
import { type Payload, Room, type RoomLink } from './room.js';
import type { ClientState, EventMap, RetrotroClientOptions, WebSocketConstructor, WebSocketLike } from './types.js';

/** Listeners of a {@link RetrotroClient}. */
export type ClientEvents = {
  /** The connection's state changed; see {@link ClientState}. */
  state: (state: ClientState) => void;
  /**
   * Something went wrong that the client handles itself (it keeps reconnecting): a server
   * `error` frame not answering a publish (`rate_limited`, `no_active_timer`, ...), a
   * refused rejoin, a failing `token` function, a 4001 close (`token_expired`).
   */
  error: (err: RetrotroError) => void;
};

const ROOM_ID = /^[A-Za-z0-9._:-]{1,128}$/;
/** Server errors that answer a join_room (nothing else is sent while a join is pending). */
const JOIN_ERRORS = ['forbidden', 'room_full', 'too_many_rooms', 'bad_message'];
const OPEN = 1;
const noop = () => {};

/** Appends `token` to the URL's query, keeping its own parameters. */
export function withToken(url: string, token: string): string {
  const base = url.split('#')[0]!;
  return `${base}${base.includes('?') ? '&' : '?'}token=${encodeURIComponent(token)}`;
}

/**
 * A connection to a retrotro server, holding (at most) one room: the protocol carries one
 * room per socket. For several rooms at once, use one client per room.
 *
 * It connects right after construction (in a microtask, so listeners added at once see
 * `connecting`), and reconnects after every close until `close()`.
 */
export class RetrotroClient extends Emitter<ClientEvents> {
  #urls: readonly string[];
  #token: RetrotroClientOptions['token'];
  #WebSocket: WebSocketConstructor;
  #random: () => number;
  #baseDelay: number;
  #maxDelay: number;
  #connectTimeout: number;
  #heartbeat: number;
  #state: ClientState = 'connecting';
  #ws: WebSocketLike | undefined;
  /** The socket is open (not just created). */
  #open = false;
  #room: Room | undefined;
  #urlIndex = 0;
  /** Consecutive failed attempts: the backoff exponent. */
  #attempt = 0;
  #ids = 0;
  /** Random per client (about 52 bits), so ids of two tabs of one user do not collide. */
  #idPrefix = Math.floor(Math.random() * 36 ** 10).toString(36);
  #reconnectTimer: ReturnType<typeof setTimeout> | undefined;
  #connectTimer: ReturnType<typeof setTimeout> | undefined;
  #heartbeatTimer: ReturnType<typeof setInterval> | undefined;
  #link: RoomLink;

  constructor(options: RetrotroClientOptions) {
    super();
    const urls = options.urls ?? (options.url === undefined ? [] : [options.url]);
    if (urls.length === 0) throw new RetrotroError('socket', 'RetrotroClient needs `url` or `urls`');
    const WS = options.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
    if (!WS) {
      throw new RetrotroError('no_websocket', 'no global WebSocket: pass one, e.g. `import WebSocket from "ws"` and { WebSocket }');
    }
    this.#urls = [...urls];
    this.#token = options.token;
    this.#WebSocket = WS;
    this.#random = options.random ?? Math.random;
    this.#baseDelay = options.reconnectDelayMs ?? 1000;
    this.#maxDelay = options.maxReconnectDelayMs ?? 5000;
    this.#connectTimeout = options.connectTimeoutMs ?? 10_000;
    this.#heartbeat = options.heartbeatMs ?? 25_000;
    this.#link = {
      send: (text) => this.#send(text),
      nextId: () => `${this.#idPrefix}.${(this.#ids++).toString(36)}`,
      delay: (n) => this.#delay(n),
      leave: (room) => this.#leave(room),
      maxPending: options.maxPending ?? 1000,
      maxFrameBytes: options.maxFrameBytes ?? 65_536,
    };
    queueMicrotask(() => {
      if (this.#state !== 'connecting') return;
      this.emit('state', 'connecting');
      void this.#connect();
    });
  }

  /** The connection's current state. */
  get state(): ClientState {
    return this.#state;
  }

  /** The room joined (or being joined), if any. */
  get room(): Room | undefined {
    return this.#room;
  }

  /**
   * Joins a room; resolves once its `room_state` arrived (waiting for the connection if
   * needed). `E` maps event names to data types, e.g. `join<{ card: { text: string } }>('a')`.
   * Joining the room already joined returns the same Room. Rejects with the server's code
   * (`forbidden`, `room_full`, ...) if refused, `one_room` while in another room (leave it
   * first), `bad_room_id`, or `closed`.
   */
  join<E extends EventMap = EventMap>(roomId: string): Promise<Room<E>> {
    if (this.#state === 'closed') return Promise.reject(new RetrotroError('closed', 'the client is closed'));
    if (typeof roomId !== 'string' || !ROOM_ID.test(roomId)) {
      return Promise.reject(new RetrotroError('bad_room_id', 'a room id is 1-128 characters of [A-Za-z0-9._:-]'));
    }
    const current = this.#room;
    if (current) {
      if (current.id === roomId) return current._joined as Promise<Room<E>>;
      return Promise.reject(new RetrotroError('one_room', `already in room ${current.id}: leave it first (one room per client)`));
    }
    const room = new Room<E>(roomId, this.#link);
    this.#room = room;
    if (this.#open) this.#send(room._joinFrame());
    return room._joined;
  }

  /**
   * Closes the connection for good: no more reconnection; waiting joins and publishes
   * reject with code `closed`. Others see this user leave after the server's grace period
   * (call `room.leave()` first for an immediate leave).
   */
  close(): void {
    if (this.#state === 'closed') return;
    this.#setState('closed');
    clearTimeout(this.#reconnectTimer);
    this.#drop();
    this.#room?._close(new RetrotroError('closed', 'the client is closed'));
    this.#room = undefined;
  }

  #setState(state: ClientState): void {
    if (this.#state === state) return;
    this.#state = state;
    this.emit('state', state);
  }

  #delay(n: number): number {
    return Math.floor(this.#random() * Math.min(this.#maxDelay, this.#baseDelay * 2 ** n));
  }

  #send(text: string): boolean {
    const ws = this.#ws;
    if (!ws || !this.#open || ws.readyState !== OPEN) return false;
    try {
      ws.send(text);
      return true;
    } catch {
      return false;
    }
  }

  async #connect(): Promise<void> {
    const url = this.#urls[this.#urlIndex++ % this.#urls.length]!;
    let token: string;
    try {
      token = typeof this.#token === 'function' ? await this.#token() : this.#token;
    } catch (err) {
      if (this.#state === 'closed') return;
      this.emit('error', new RetrotroError('token', 'the token function failed', undefined, err));
      return this.#retry();
    }
    if (this.#state === 'closed') return;
    let ws: WebSocketLike;
    try {
      ws = new this.#WebSocket(withToken(url, token));
    } catch (err) {
      this.emit('error', new RetrotroError('socket', `cannot open a WebSocket to ${url}`, undefined, err));
      return this.#retry();
    }
    this.#ws = ws;
    this.#connectTimer = setTimeout(() => this.#lost(ws), this.#connectTimeout);
    ws.onopen = () => ws === this.#ws && this.#opened();
    ws.onmessage = (ev: { data: unknown }) => ws === this.#ws && this.#message(ev.data);
    ws.onclose = (ev: { code?: number }) => this.#lost(ws, ev?.code);
    ws.onerror = noop; // a close follows
  }

  #opened(): void {
    this.#open = true;
    if (this.#heartbeat > 0) {
      this.#heartbeatTimer = setInterval(() => this.#send('{"type":"heartbeat"}'), this.#heartbeat);
    }
    if (this.#room) this.#send(this.#room._joinFrame());
    else this.#ready();
  }

  /** The socket is open and the room (if any) joined. */
  #ready(): void {
    clearTimeout(this.#connectTimer);
    this.#attempt = 0;
    this.#setState('open');
  }

  /** Detaches and closes the current socket, stopping its timers. */
  #drop(): void {
    const ws = this.#ws;
    this.#ws = undefined;
    this.#open = false;
    clearTimeout(this.#connectTimer);
    clearInterval(this.#heartbeatTimer);
    if (!ws) return;
    ws.onopen = ws.onmessage = ws.onclose = noop;
    try {
      if (ws.readyState <= OPEN) ws.close(1000);
    } catch {
      // already closing
    }
  }

  /** The socket closed, failed or timed out: reconnect after a backoff. */
  #lost(ws: WebSocketLike, code?: number): void {
    if (ws !== this.#ws) return;
    this.#drop();
    this.#room?._socketLost();
    if (code === 4001) this.emit('error', new RetrotroError('token_expired', 'the server closed the socket: token expired (4001)'));
    if (this.#state === 'open') this.#setState('reconnecting');
    this.#retry();
  }

  #retry(): void {
    if (this.#state === 'closed') return;
    this.#reconnectTimer = setTimeout(() => void this.#connect(), this.#delay(this.#attempt++));
  }

  #leave(room: Room): void {
    if (this.#room !== room) return;
    this.#room = undefined;
    this.#send('{"type":"leave_room"}');
    room._close(new RetrotroError('left', `room ${room.id} was left`));
    if (this.#open && this.#state !== 'open') this.#ready();
  }

  #message(data: unknown): void {
    let frame: { type?: unknown; payload?: unknown };
    try {
      frame = JSON.parse(String(data));
    } catch {
      return;
    }
    if (typeof frame !== 'object' || frame === null) return;
    const type = String(frame.type);
    const p: Payload = typeof frame.payload === 'object' && frame.payload !== null ? (frame.payload as Payload) : {};
    const room = this.#room;
    if (type === 'room_state') {
      if (room?._onRoomState(p) && this.#state !== 'open') this.#ready();
    } else if (type === 'ack') {
      room?._onAck(p);
    } else if (type === 'error') {
      this.#onError(p, room);
    } else {
      room?._onFrame(type, p);
    }
  }

  #onError(p: Payload, room: Room | undefined): void {
    if (p.id !== undefined && room?._onPublishError(p)) return;
    const err = new RetrotroError(String(p.code), String(p.message ?? p.code), typeof p.id === 'string' ? p.id : undefined);
    if (room && !room._isJoined && this.#open && JOIN_ERRORS.includes(err.code)) {
      if (room._isFirstJoin) {
        // The first join: its promise rejects, the client holds no room.
        this.#room = undefined;
        room._joinRefused(err);
        if (this.#state !== 'open') this.#ready();
        return;
      }
      // A rejoin refused (capacity, or a new token without this room): report, then retry
      // on a new connection after a backoff (maybe another pod).
      this.emit('error', err);
      const ws = this.#ws;
      if (ws) this.#lost(ws);
      return;
    }
    this.emit('error', err);
  }
}
