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

/** Result of an operation that reaches the broker: failures are values, never thrown. */
export type PublishResult = { ok: true } | { ok: false; error: Error };
export const OK: PublishResult = Object.freeze({ ok: true }) as PublishResult;
