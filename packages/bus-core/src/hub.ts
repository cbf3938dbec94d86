import type { Frame, Participant } from './types.js';

export interface DeliverOptions {
  /** The client to skip (the sender of an event). */
  except?: string | undefined;
  /** The frame already serialised, when the bus has it: serialise once per fan-out. */
  json?: string | undefined;
  /** The event's history offset, when history is on: a hub recovering a client drops offsets it already replayed. */
  offset?: number | undefined;
}

/**
 * What the bus needs from the application's socket layer (no `ws` here: any socket
 * library can implement it). All calls are synchronous and must not throw.
 */
export interface LocalHub {
  /** Send a frame to this pod's sockets in a room (see DeliverOptions). */
  deliverLocal(roomId: string, frame: Frame, options?: DeliverOptions): void;
  /** A user appeared in a room for the first time anywhere in the cluster. */
  participantJoined(roomId: string, participant: Participant): void;
  /** A user's last connection in a room, on any pod, is gone. */
  participantLeft(roomId: string, userId: string): void;
  /**
   * Another pod now holds this user in this room. If the hub is waiting out a disconnect
   * grace period for them, it can end it now: the user is still present elsewhere.
   */
  cancelPendingDisconnect(roomId: string, userId: string): void;
}
