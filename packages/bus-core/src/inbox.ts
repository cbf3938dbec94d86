/**
 * The receiving side of the relay: drops our own echoes unparsed, decodes and validates
 * envelopes, puts chunked messages back together, checks each pod's sequence numbers, and
 * yields typed events for the relay to act on. Garbage is counted and logged at a bounded
 * rate, never thrown.
 */
import { ChunkAssembler, parseChunk } from './chunking.js';
import {
  decodeControl,
  decodePresence,
  decodeRoom,
  type ControlEnvelope,
  type Decoded,
  type PresenceEnvelope,
  type RoomEnvelope,
} from './envelopes.js';
import { RateLimitedLog, type Logger } from './logger.js';
import type { PeerTable } from './peer-table.js';
import { historyFrameJson, type RoomCodec } from './room-codec.js';
import type { BusStats } from './stats.js';
import type { StreamKind } from './types.js';

export type InboxEvent =
  /** `frameJson`: the frame's bytes as received, when the envelope is one of ours. */
  | { kind: 'room'; env: RoomEnvelope; frameJson: string | undefined }
  /** A history event (its envelope has an offset), from the store's live feed. */
  | { kind: 'history'; env: RoomEnvelope & { offset: number }; frameJson: string | undefined }
  | { kind: 'presence'; env: PresenceEnvelope }
  | { kind: 'control'; env: ControlEnvelope };

export interface InboxOptions {
  podId: string;
  /** Random per process (see the heartbeat's `instance`). */
  instance: string;
  codec: RoomCodec;
  peers: PeerTable;
  stats: BusStats;
  logger: Logger;
  /** A pod's presence may be missing here (a gap, or a pod we did not know): ask it for a sync. */
  requestSync: (podId: string) => void;
}

export class Inbox {
  private readonly chunks = new ChunkAssembler();
  private readonly malformedLog: RateLimitedLog;
  private readonly conflictLog: RateLimitedLog;

  constructor(private readonly o: InboxOptions) {
    this.malformedLog = new RateLimitedLog((obj, msg) => o.logger.warn(obj, msg));
    this.conflictLog = new RateLimitedLog((obj, msg) => o.logger.error(obj, msg), 1, 60_000);
  }

  /** Turns one payload from the transport into an event, or undefined when there is nothing to do. */
  receive(stream: StreamKind, payload: string): InboxEvent | undefined {
    if (stream === 'chunk') return this.receiveChunk(payload);
    const { stats, podId } = this.o;
    // Our own room and presence envelopes start with our podId: drop them unparsed.
    if (stream !== 'control' && this.o.codec.isOwnEcho(payload)) {
      stats.ownEchoes++;
      return undefined;
    }
    const decoded: Decoded<RoomEnvelope | PresenceEnvelope | ControlEnvelope> =
      stream === 'room' ? decodeRoom(payload) : stream === 'presence' ? decodePresence(payload) : decodeControl(payload);
    if (decoded.ok === false) return this.malformed(stream, decoded.reason, payload);
    if (decoded.ok === 'ignored') {
      // A newer pod's extension: skipped, but its sequence number still counts.
      if (decoded.podId !== podId) {
        stats.ignored++;
        this.checkSequence(decoded.podId, decoded.seq, 'other', false);
      }
      return undefined;
    }
    const env = decoded.value;
    const isHistory = stream === 'room' && (env as RoomEnvelope).offset !== undefined;
    // Our own history events are delivered like everyone's: the live feed is what puts a
    // room's events in offset order, on the publishing pod too.
    if (env.podId === podId && !isHistory) {
      const c = env as ControlEnvelope;
      if (stream === 'control' && c.kind === 'heartbeat' && c.instance !== undefined && c.instance !== this.o.instance) {
        // Another process with our podId: each drops the other's traffic as its own echoes.
        stats.podIdConflicts++;
        this.conflictLog.write({ podId }, "another pod uses this podId: each drops the other's messages as its own; give every pod its own id");
      }
      stats.ownEchoes++;
      return undefined;
    }
    const isSync = stream === 'control' && (env as ControlEnvelope).kind === 'sync';
    if (env.podId !== podId && !this.checkSequence(env.podId, env.seq, stream === 'room' ? 'room' : 'other', isSync)) return undefined;
    stats.received[stream]++;
    if (stream === 'room') {
      const room = env as RoomEnvelope;
      if (isHistory) {
        const history = room as RoomEnvelope & { offset: number };
        return { kind: 'history', env: history, frameJson: historyFrameJson(payload, history) };
      }
      return { kind: 'room', env: room, frameJson: this.o.codec.frameJson(payload, room) };
    }
    return stream === 'presence' ? { kind: 'presence', env: env as PresenceEnvelope } : { kind: 'control', env: env as ControlEnvelope };
  }

  /** Drops chunked messages abandoned half way (their pod died); call every few seconds. */
  sweep(): void {
    const dropped = this.chunks.sweep();
    if (dropped > 0) {
      this.o.stats.malformed.chunk += dropped;
      this.malformedLog.write({ dropped }, 'dropped incomplete chunked messages');
    }
  }

  forgetPod(podId: string): void {
    this.chunks.forgetPod(podId);
  }

  private receiveChunk(frame: string): InboxEvent | undefined {
    const chunk = parseChunk(frame);
    if (!chunk) return this.malformed('chunk', 'bad chunk header', frame);
    if (chunk.podId === this.o.podId) {
      this.o.stats.ownEchoes++;
      return undefined;
    }
    const result = this.chunks.add(chunk);
    if (result.kind === 'malformed') return this.malformed('chunk', result.reason, frame);
    this.o.stats.received.chunk++;
    return result.kind === 'complete' ? this.receive(result.stream, result.payload) : undefined;
  }

  /**
   * Notes the sighting of a pod. Returns false for a duplicate. A gap on presence/control
   * means presence or state was lost, and a pod we know nothing about has presence we lack
   * (unless this is its snapshot): either way, ask that pod for a full sync.
   */
  private checkSequence(podId: string, seq: number | undefined, counter: 'room' | 'other', isSync: boolean): boolean {
    const { isNew, verdict, missed } = this.o.peers.seen(podId, seq, counter);
    if (verdict === 'duplicate') return false;
    if (verdict === 'gap') {
      this.o.stats.gaps++;
      this.o.logger.warn({ podId, missed }, 'messages from a pod were lost; requesting a presence sync');
    }
    if (verdict === 'gap' || (isNew && seq !== undefined && !isSync)) this.o.requestSync(podId);
    return true;
  }

  private malformed(stream: StreamKind, reason: string, payload: string): undefined {
    this.o.stats.malformed[stream]++;
    this.malformedLog.write({ stream, reason, bytes: payload.length, sample: payload.slice(0, 120) }, 'malformed envelope dropped');
    return undefined;
  }
}
