/**
 * Optional: cluster-wide presence for a Socket.IO application, through bus-core's
 * PresenceTracker. The adapter itself needs none of it; an application that wants to know
 * which *users* are in a room on any node (not which sockets) wires its namespace here.
 */
import type { Participant, PresenceTracker } from '@retrotro/bus-core';

export interface TrackPresenceOptions {
  /** Counts connections and publishes joins and leaves on a RelayBus (PgBus, NatsBus). */
  tracker: PresenceTracker;
  /** Who a socket is (e.g. from `socket.data` or its handshake); undefined: not tracked. */
  // biome-ignore lint/suspicious/noExplicitAny: a Socket.IO Socket (socket.io is not a dependency)
  participant: (socket: any) => Participant | undefined;
  /** Which rooms count for presence. Default: every room but the socket's own id. */
  rooms?: (room: string, socketId: string) => boolean;
}

/** Disconnect reasons that are deliberate: the user leaves at once, without grace. */
const DELIBERATE = new Set(['client namespace disconnect', 'server namespace disconnect', 'server shutting down']);

/**
 * Tracks this node's sockets of a namespace in the rooms they join and leave: `attach` on
 * join, `detach` on leave, with the tracker's grace period when the connection dropped
 * (transport closed, ping timeout) and without it for a deliberate disconnect or
 * `socket.leave()`. Call it after `io.adapter(...)`. Returns a function that stops tracking.
 */
// biome-ignore lint/suspicious/noExplicitAny: a Socket.IO Namespace
export function trackPresence(nsp: any, options: TrackPresenceOptions): () => void {
  const { tracker, participant } = options;
  const counts = options.rooms ?? ((room: string, socketId: string) => room !== socketId);
  const adapter = nsp.adapter;
  /** userId of each tracked socket, as attached. */
  const users = new Map<string, string>();
  /** Sockets disconnecting because their connection dropped. */
  const dropping = new Set<string>();

  const onJoin = (room: string, socketId: string) => {
    if (!counts(room, socketId)) return;
    const socket = nsp.sockets.get(socketId);
    const who = socket ? participant(socket) : undefined;
    if (!who) return;
    users.set(socketId, who.userId);
    tracker.attach(room, who, socketId);
  };
  const onLeave = (room: string, socketId: string) => {
    const userId = users.get(socketId);
    if (userId === undefined || !counts(room, socketId)) return;
    tracker.detach(room, userId, socketId, { grace: dropping.has(socketId) });
  };
  // biome-ignore lint/suspicious/noExplicitAny: a Socket.IO Socket
  const onConnection = (socket: any) => {
    socket.on('disconnecting', (reason: string) => {
      if (!DELIBERATE.has(reason)) dropping.add(socket.id);
    });
    socket.on('disconnect', () => {
      dropping.delete(socket.id);
      users.delete(socket.id);
    });
  };

  adapter.on('join-room', onJoin);
  adapter.on('leave-room', onLeave);
  nsp.on('connection', onConnection);
  return () => {
    adapter.off('join-room', onJoin);
    adapter.off('leave-room', onLeave);
    nsp.off('connection', onConnection);
  };
}
