/** A user present in a room (CONTRACT section 4, `room_state.participants`). */
export interface Participant {
  userId: string;
  userName: string;
}

/** A room's timer, the shape of `room_state.timer`; `end_at` is null while paused. */
export interface RoomTimer {
  phase: string;
  running: boolean;
  remaining_seconds: number;
  /** ISO-8601 UTC instant the timer ends at while running; null while paused. */
  end_at: string | null;
}

/** A position in a room's history: the newest offset seen, and the history's epoch. */
export interface Position {
  offset: number;
  epoch: string;
}

/**
 * Event names to their data types, e.g. `{ card: { text: string }; vote: number }`.
 * The default accepts any event name with `unknown` data.
 */
export type EventMap = Record<string, unknown>;

/** One `event` of a room, as emitted by `room.on('event')`. Discriminated on `event`. */
export type RoomEvent<E extends EventMap = EventMap> = {
  [K in keyof E & string]: {
    event: K;
    data: E[K];
    /** Who published it; `{userId: 'server', userName: 'server'}` for the HTTP API. */
    from: Participant;
    /** Its position in the room's history; null when the server keeps no history. */
    offset: number | null;
    /** The id its publisher gave it, if any. */
    id?: string;
  };
}[keyof E & string];

/** What `room.publish()` resolves with. */
export interface PublishResult {
  /** The event's offset; null when the server keeps no history (or predates acks). */
  offset: number | null;
}

/**
 * The connection's state:
 * - `connecting`: before the first successful connection (also while its attempts fail);
 * - `open`: the socket is open and the client's room (if any) is joined;
 * - `reconnecting`: the connection was lost; emitted once per outage, however many attempts;
 * - `closed`: `client.close()` was called. Final.
 */
export type ClientState = 'connecting' | 'open' | 'reconnecting' | 'closed';

/** What the client reads from a WebSocket `message` event (a `MessageEvent` has it). */
export interface WebSocketMessageEventLike {
  readonly data: unknown;
}

/** What the client reads from a WebSocket `close` event (a `CloseEvent` has it). */
export interface WebSocketCloseEventLike {
  readonly code?: number;
}

/**
 * A WebSocket event handler taking `Ev`. Checked bivariantly in its parameter (as a
 * method would be), so the handler properties of browsers' `WebSocket` (typed with the
 * DOM's `MessageEvent`, `CloseEvent`, ...) and of `ws` (with its own event classes) both
 * fit, though neither event type is assignable to the other.
 */
export type WebSocketHandler<Ev> = { bivarianceHack(ev: Ev): void }['bivarianceHack'];

/**
 * The part of the WebSocket API the client uses: browsers' `WebSocket`, Node.js 22's
 * global one and the `ws` package all have it.
 */
export interface WebSocketLike {
  readonly readyState: number;
  onopen: WebSocketHandler<object> | null;
  onmessage: WebSocketHandler<WebSocketMessageEventLike> | null;
  onclose: WebSocketHandler<WebSocketCloseEventLike> | null;
  onerror: WebSocketHandler<object> | null;
  send(data: string): void;
  close(code?: number, reason?: string): void;
}

/** A WebSocket class: `new WebSocket(url)`. */
export type WebSocketConstructor = new (url: string) => WebSocketLike;

/** Options of `new RetrotroClient(options)`. Give `url` or `urls`, and `token`. */
export interface RetrotroClientOptions {
  /** The server's WebSocket URL, e.g. `wss://example.com/ws`. Use `urls` for several. */
  url?: string;
  /** Several URLs (pods, regions): each connection attempt takes the next one in turn. */
  urls?: readonly string[];
  /**
   * The JWT, or a function returning it (sync or async). A function is called before
   * every connection attempt, so it can refresh an expired token (close code 4001).
   * It is sent as the `token` query parameter, after the URL's own parameters. A function
   * that throws is reported (`error` event, code `token`) and retried after the backoff;
   * give it its own timeout, as one that never settles stalls the reconnection.
   */
  token: string | (() => string | Promise<string>);
  /**
   * The WebSocket class. Default: `globalThis.WebSocket` (browsers, Node.js >= 22).
   * On Node.js 20 pass the `WebSocket` class of the `ws` package.
   */
  WebSocket?: WebSocketConstructor;
  /** Ceiling of the first reconnection delay, in ms. Default `1000`. */
  reconnectDelayMs?: number;
  /** Ceiling of any reconnection delay, in ms. Default `5000`. */
  maxReconnectDelayMs?: number;
  /**
   * Random source in [0, 1) for the backoff's full jitter: attempt n waits
   * `random() * min(maxReconnectDelayMs, reconnectDelayMs * 2^n)`. Default `Math.random`.
   */
  random?: () => number;
  /** A socket not open, with its room rejoined, after this many ms is dropped and retried. Default `10000`. */
  connectTimeoutMs?: number;
  /** Interval of `{"type":"heartbeat"}` frames while the socket is open, in ms; `0` sends none. Default `25000`. */
  heartbeatMs?: number;
  /**
   * Most publishes waiting for their ack (queued while disconnected, or sent and not yet
   * acknowledged). One more makes `publish()` reject at once with code `queue_full`.
   * Default `1000`.
   */
  maxPending?: number;
  /**
   * Largest publish frame in UTF-8 bytes; a larger one rejects with code `too_large`
   * instead of making the server close the socket (1009) again on every re-send. Match
   * the server's `WS_MAX_PAYLOAD`; `0` turns the check off. Default `65536`.
   */
  maxFrameBytes?: number;
}
