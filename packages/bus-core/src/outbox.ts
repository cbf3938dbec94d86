/**
 * The sending side of the relay: stamps per-pod sequence numbers, splits payloads larger
 * than the transport's limit into chunk frames (sent whole or refused whole), hands
 * everything to the transport synchronously (so publish order is call order), and turns
 * outcomes into counted, rate-limited `PublishResult` values. Nothing here throws.
 */
import type { Backpressure } from './backpressure.js';
import { splitIntoChunks } from './chunking.js';
import type { ControlEnvelope, PresenceEnvelope } from './envelopes.js';
import { BusError, PayloadTooLargeError, toError } from './errors.js';
import { RateLimitedLog, type Logger } from './logger.js';
import type { BusStats } from './stats.js';
import type { Transport } from './transport.js';
import { OK, type PublishResult, type StreamKind } from './types.js';

/** The streams an envelope is published on (chunk frames are the outbox's own business). */
export type EnvelopeStream = Exclude<StreamKind, 'chunk'>;

export interface OutboxOptions {
  podId: string;
  transport: Transport;
  stats: BusStats;
  logger: Logger;
  /** Counts what waits for the broker's acknowledgement. */
  backpressure: Backpressure;
  /** Why nothing can be sent right now (stopped, disconnected), or undefined. */
  unavailable: () => Error | undefined;
  observePublish?: ((stream: StreamKind, seconds: number, ok: boolean) => void) | undefined;
}

export class Outbox {
  /** Last sequence numbers used: one counter for room frames, one for presence and control. */
  private roomSeq = 0;
  private seq = 0;
  private msgIds = 0;
  private readonly failureLog: RateLimitedLog;

  constructor(private readonly o: OutboxOptions) {
    if (o.transport.chunking && !o.transport.publishBatch) {
      throw new Error(`transport ${o.transport.kind} sets chunking but has no publishBatch`);
    }
    // Under overload every refusal fails the same way: a few lines a minute, with counts.
    this.failureLog = new RateLimitedLog((obj, msg) => o.logger.warn(obj, msg), 5, 10_000);
  }

  /** Publishes an envelope object (presence, control) with the next sequence number. */
  sendEnvelope(stream: 'presence', env: PresenceEnvelope): Promise<PublishResult>;
  sendEnvelope(stream: 'control', env: ControlEnvelope): Promise<PublishResult>;
  sendEnvelope(stream: 'presence' | 'control', env: PresenceEnvelope | ControlEnvelope): Promise<PublishResult> {
    return this.send(stream, (seq) => {
      env.seq = seq;
      return JSON.stringify(env);
    });
  }

  /**
   * Encodes with the next sequence number and publishes. The number is only taken once the
   * payload is accepted for sending, so a refused payload leaves no hole that other pods
   * would read as lost messages.
   */
  send(stream: EnvelopeStream, encode: (seq: number) => string, roomId?: string): Promise<PublishResult> {
    const unavailable = this.o.unavailable();
    if (unavailable) return this.fail(stream, unavailable);
    const { transport, stats } = this.o;
    const isRoom = stream === 'room';
    const seq = (isRoom ? this.roomSeq : this.seq) + 1;
    const payload = encode(seq);
    const max = transport.maxPayloadBytes;
    // Cheap check first: a UTF-16 unit never takes more than 3 UTF-8 bytes.
    const bytes = payload.length * 3 <= max ? payload.length : Buffer.byteLength(payload, 'utf8');
    const options = roomId === undefined ? undefined : { roomId };
    const started = this.o.observePublish ? performance.now() : 0;
    let sent: Promise<unknown>;
    if (bytes <= max) {
      sent = this.o.backpressure.track(bytes, transport.publish(stream, payload, options));
    } else {
      let frames: string[];
      try {
        frames = this.chunksOf(stream, payload, bytes);
      } catch (e) {
        return this.fail(stream, toError(e));
      }
      sent = this.o.backpressure.track(bytes, transport.publishBatch!('chunk', frames, options));
    }
    if (isRoom) this.roomSeq = seq;
    else this.seq = seq;
    stats.published[stream]++;
    return sent.then(
      () => {
        this.o.observePublish?.(stream, (performance.now() - started) / 1000, true);
        return OK;
      },
      (e: unknown) => {
        this.o.observePublish?.(stream, (performance.now() - started) / 1000, false);
        return this.fail(stream, toError(e));
      },
    );
  }

  /**
   * A payload as the transport can carry it: itself, or its chunk frames (sent together,
   * whole or not at all). Throws PayloadTooLargeError when the transport cannot chunk.
   */
  framesOf(stream: EnvelopeStream, payload: string): Array<{ stream: StreamKind; payload: string }> {
    const max = this.o.transport.maxPayloadBytes;
    const bytes = payload.length * 3 <= max ? payload.length : Buffer.byteLength(payload, 'utf8');
    if (bytes <= max) return [{ stream, payload }];
    return this.chunksOf(stream, payload, bytes).map((frame) => ({ stream: 'chunk', payload: frame }));
  }

  private chunksOf(stream: EnvelopeStream, payload: string, bytes: number): string[] {
    const { transport, stats } = this.o;
    if (!transport.chunking) throw new PayloadTooLargeError(bytes, transport.maxPayloadBytes, `the ${transport.kind} broker`);
    const frames = splitIntoChunks(this.o.podId, this.msgIds + 1, stream, payload, transport.maxPayloadBytes);
    this.msgIds++;
    stats.chunkedMessages++;
    stats.published.chunk += frames.length;
    return frames;
  }

  private fail(stream: StreamKind, error: Error): Promise<PublishResult> {
    this.o.stats.publishFailures++;
    const code = error instanceof BusError ? error.code : 'publish_failed';
    // The message names the broker for operators; no stack (the cause is always the same).
    this.failureLog.write({ stream, code, reason: error.message }, 'publish failed');
    return Promise.resolve({ ok: false, error });
  }
}
