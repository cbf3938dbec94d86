/** A user as the cluster sees them in a room. */
export interface Participant {
  userId: string;
  userName: string;
}

/**
 * A frame as clients see it: `{"type": ..., "payload"?: ...}`. Room envelopes carry
 * one of these verbatim, so the bus never needs to know the application protocol.
 */
export interface Frame {
  type: string;
  payload?: unknown;
}

/** The four streams a transport carries. `room` and `presence` are the Go-compatible ones. */
export type StreamKind = 'room' | 'presence' | 'control' | 'chunk';
export const STREAMS: readonly StreamKind[] = ['room', 'presence', 'control', 'chunk'];

/** An `event` of a room as its publisher gave it (CONTRACT sections 4 and 8). */
export interface RoomEvent {
  event: string;
  data: unknown;
  from: Participant;
  /** Client-chosen id (1-64 of [A-Za-z0-9._:-]): a retry with the same id is not delivered twice. */
  id?: string | undefined;
}

/**
 * Result of `publishEvent`. `offset` is the event's position in the room's history (null
 * when history is off); `duplicate`: an event with this id was already stored, nothing was
 * delivered again. A failure says whether trying again (with the same id) can succeed.
 */
export type EventResult = { ok: true; offset: number | null; duplicate: boolean } | { ok: false; error: Error; retryable: boolean };

/** Result of an operation that reaches the broker: failures are values, never thrown. */
export type PublishResult = { ok: true } | { ok: false; error: Error };
export const OK: PublishResult = Object.freeze({ ok: true }) as PublishResult;
