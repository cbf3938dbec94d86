import type { HistoryStore } from './history.js';
import type { StreamKind } from './types.js';

/**
 * Connection state a transport reports. `reconnecting` means the broker was lost and the
 * transport is trying again by itself; `closed` is final (after `close()`).
 */
export type TransportState = 'connected' | 'reconnecting' | 'closed';

/** What a transport calls back into; implemented by the relay. */
export interface TransportSink {
  /** Bytes (as UTF-8 text) received on a stream, including this pod's own echoes. */
  receive(stream: StreamKind, payload: string): void;
  /** Connection state changed. `error` says why it was lost, when known. */
  stateChanged(state: TransportState, error?: Error): void;
}

/** Hints for transports that can route room traffic (e.g. NATS per-room subjects). */
export interface PublishOptions {
  roomId?: string;
}

/**
 * A broker adapter: connect, publish text on a named stream, deliver what arrives, report
 * connection state. Everything else (envelopes, presence, ordering checks, chunking) lives
 * in the relay, once for all brokers.
 */
export interface Transport {
  /** Short broker name for logs and metrics: `postgres`, `nats`, `memory`. */
  readonly kind: string;
  /** Where it connects, with any password masked. */
  readonly target: string;
  /** Largest payload (UTF-8 bytes) one publish may carry. Known after `open()`. */
  readonly maxPayloadBytes: number;
  /**
   * True when the relay should split larger payloads into `chunk` frames (PostgreSQL's
   * 8000-byte NOTIFY limit), sent with `publishBatch`. False: larger payloads are refused
   * with a clear error.
   */
  readonly chunking: boolean;
  /** Connects and subscribes. Rejects with `BrokerUnreachableError` if the broker is down. */
  open(sink: TransportSink): Promise<void>;
  /**
   * Hands one payload to the broker. Payloads from one transport reach every subscriber in
   * publish order. Rejects when the broker refuses it or the connection is down.
   */
  publish(stream: StreamKind, payload: string, options?: PublishOptions): Promise<void>;
  /**
   * Hands several payloads to the broker as one unit, in order: all are accepted, or the
   * promise rejects and none is sent (a chunked message goes whole or not at all). Required
   * when `chunking` is true.
   */
  publishBatch?(stream: StreamKind, payloads: readonly string[], options?: PublishOptions): Promise<void>;
  /**
   * Optional: the room history this broker keeps (CONTRACT section 8). Its live feed reaches
   * `receive('room', …)` as history envelopes (`historyEnvelope`), in offset order per room.
   */
  readonly history?: HistoryStore;
  /** Optional: this pod gained (true) or lost (false) its last local member in a room. */
  setRoomInterest?(roomId: string, interested: boolean): void;
  /** Closes connections; no callbacks after it resolves. */
  close(): Promise<void>;
}
