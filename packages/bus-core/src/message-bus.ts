import type { LocalHub } from './hub.js';
import type { Frame, Participant, PublishResult } from './types.js';

/**
 * The cluster relay, as the socket layer sees it: the ten operations of the Go
 * `MessageBus`, plus replicated room state. Operations that reach the broker resolve to a
 * `PublishResult` and never reject: a failure is reported, counted and logged, and the
 * caller decides what to tell its client.
 */
export interface MessageBus {
  readonly podId: string;
  readonly hub: LocalHub;

  start(): Promise<void>;
  /** Tells the other pods this pod's users left, then disconnects. */
  stop(): Promise<void>;

  /** Local sockets of the room and every other pod. */
  broadcastToRoom(roomId: string, frame: Frame): Promise<PublishResult>;
  /** Same, skipping one local client (the sender). */
  broadcastToRoomExcept(roomId: string, frame: Frame, exceptClientId: string): Promise<PublishResult>;
  /** Other pods only. */
  publishToRemotePods(roomId: string, frame: Frame): Promise<PublishResult>;

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
