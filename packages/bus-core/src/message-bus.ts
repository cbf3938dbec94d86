import type { LocalHub } from './hub.js';
import type { WhenReadyOptions } from './membership.js';
import type { StopOptions } from './relay-bus.js';
import type { BusStats } from './stats.js';
import type { HistoryPage, HistoryPosition } from './history.js';
import type { EventResult, Frame, Participant, PublishResult, RoomEvent } from './types.js';

/** A snapshot of the bus's health, as `/readyz` shows it. */
export interface BusStatus {
  podId: string;
  /** `postgres`, `nats` or `memory`. */
  transport: string;
  /** Where the transport connects, password masked. */
  target: string;
  connected: boolean;
  /** Connected and done with the start-up (or reconnect) presence sync. */
  ready: boolean;
  /** Other pods heard from. */
  peers: number;
  /** Rooms with someone present on any pod. */
  rooms: number;
  /** (room, user) pairs present on any pod. */
  presence: number;
  /** (room, user) pairs this pod holds. */
  localPresence: number;
  /** Rooms holding replicated state. */
  roomStates: number;
}

/**
 * The cluster relay, as the socket layer sees it: the ten operations of the Go
 * `MessageBus`, replicated room state, and health. Operations that reach the broker resolve
 * to a `PublishResult` and never reject: a failure is reported, counted and logged, and the
 * caller decides what to tell its client.
 */
export interface MessageBus {
  readonly podId: string;
  /** The hub given to `start()`; throws a `BusError` (`not_started`) before that. */
  readonly hub: LocalHub;
  /** Connected to the broker and done with the start-up (or reconnect) presence sync. */
  readonly ready: boolean;
  readonly isConnected: boolean;
  /**
   * True while too much waits for the broker's acknowledgement: stop reading from the
   * sockets that publish until it turns false again (backpressure, instead of refusals).
   */
  readonly overloaded: boolean;
  /** Called with true when the bus becomes overloaded and false when it recovers; returns an unsubscribe. */
  onPressure(listener: (overloaded: boolean) => void): () => void;
  /** Counters, cheap to read (exporters read them at scrape time). */
  readonly stats: BusStats;
  status(): BusStatus;
  /**
   * Resolves the next time the bus is ready (at once if it is). Rejects when the bus stops
   * first, when `timeoutMs` passes, or when `signal` aborts.
   */
  whenReady(options?: WhenReadyOptions): Promise<void>;

  /** Connects, then relays for `hub`: the socket layer the bus delivers to. */
  start(hub: LocalHub): Promise<void>;
  /**
   * Tells the other pods this pod stops (its users leave at once, or after `graceMs` unless
   * they reconnected elsewhere), then disconnects.
   */
  stop(options?: StopOptions): Promise<void>;

  /** Local sockets of the room and every other pod. */
  broadcastToRoom(roomId: string, frame: Frame): Promise<PublishResult>;
  /** Same, skipping one local client (the sender). */
  broadcastToRoomExcept(roomId: string, frame: Frame, exceptClientId: string): Promise<PublishResult>;
  /** Other pods only. */
  publishToRemotePods(roomId: string, frame: Frame): Promise<PublishResult>;

  /** True when the bus keeps room history (offsets, recovery). */
  readonly historyEnabled: boolean;
  /**
   * Publishes a room `event` to every socket of the room on every pod but `exceptClientId`.
   * With history on it is stored first and given the room's next offset; every socket gets
   * the room's events in offset order (the publishing pod's too, from the store's live feed);
   * the result comes once it is stored and handed to the broker. Never rejects.
   */
  publishEvent(roomId: string, event: RoomEvent, exceptClientId?: string): Promise<EventResult>;
  /** Events after `after`, at most `limit`; rejects with a BusError when the store fails, or when history is off. */
  readHistory(roomId: string, after: number, limit: number): Promise<HistoryPage>;
  /** The room's newest offset and epoch; null when history is off. Rejects when the store fails. */
  historyPosition(roomId: string): Promise<HistoryPosition | null>;

  /** Everyone present in the room on any live pod, each user once. */
  getRoomClients(roomId: string): Participant[];
  isUserInRoom(roomId: string, userId: string): boolean;

  /** This pod now holds the user in the room (call for their first local connection). */
  publishPresenceJoin(roomId: string, participant: Participant): Promise<PublishResult>;
  /** This pod no longer holds the user in the room (last local connection, after any grace). */
  publishPresenceLeave(roomId: string, userId: string): Promise<PublishResult>;

  /** Replicated room state: last writer wins cluster-wide; `null` deletes. */
  setRoomState(roomId: string, key: string, value: unknown): Promise<PublishResult>;
  getRoomState(roomId: string, key: string): unknown;
  /** Called on every pod when a key changes (`undefined`: deleted or room emptied). */
  watchRoomState(key: string, listener: (roomId: string, value: unknown) => void): () => void;
}
