/**
 * Splitting payloads larger than a transport's limit (PostgreSQL NOTIFY: under 8000 bytes)
 * into `chunk` frames, and putting them back together on the other side.
 *
 * Frame format (text, one line of header then data):
 *   c1 <podId> <msgId> <index> <count> <stream>\n<data>
 * Data is cut on UTF-8 character boundaries, so every frame is valid text. A pod's frames
 * arrive in publish order, so a message completes before anything it sent later.
 */
import type { StreamKind } from './types.js';

const MAGIC = 'c1';
const STREAM_NAMES = new Set<string>(['room', 'presence', 'control']);

/** Byte offsets cutting `buf` into slices of at most `max` bytes, never inside a character. */
function cutPoints(buf: Buffer, max: number): number[] {
  const cuts: number[] = [];
  let start = 0;
  while (start < buf.length) {
    let end = Math.min(start + max, buf.length);
    // Step back over UTF-8 continuation bytes (10xxxxxx) so no character is split.
    while (end < buf.length && end > start && (buf[end]! & 0xc0) === 0x80) end--;
    cuts.push(end);
    start = end;
  }
  return cuts;
}

export function splitIntoChunks(podId: string, msgId: number, stream: StreamKind, payload: string, maxFrameBytes: number): string[] {
  const buf = Buffer.from(payload, 'utf8');
  // Header length is bounded: reserve for the largest index/count we could need.
  const headerBytes = Buffer.byteLength(`${MAGIC} ${podId} ${msgId} 999999 999999 ${stream}\n`);
  const room = maxFrameBytes - headerBytes;
  if (room < 16) throw new Error(`frame limit ${maxFrameBytes} too small for chunk headers`);
  const frames: string[] = [];
  let start = 0;
  const cuts = cutPoints(buf, room);
  cuts.forEach((end, index) => {
    frames.push(`${MAGIC} ${podId} ${msgId} ${index} ${cuts.length} ${stream}\n${buf.toString('utf8', start, end)}`);
    start = end;
  });
  return frames;
}

export interface ChunkHeader {
  podId: string;
  msgId: string;
  index: number;
  count: number;
  stream: StreamKind;
  data: string;
}

export function parseChunk(frame: string): ChunkHeader | undefined {
  const nl = frame.indexOf('\n');
  if (nl < 0 || nl > 512) return undefined;
  const parts = frame.slice(0, nl).split(' ');
  if (parts.length !== 6 || parts[0] !== MAGIC) return undefined;
  const [, podId, msgId, indexText, countText, stream] = parts as [string, string, string, string, string, string];
  const index = Number(indexText);
  const count = Number(countText);
  if (!podId || !msgId || !STREAM_NAMES.has(stream)) return undefined;
  if (!Number.isSafeInteger(index) || !Number.isSafeInteger(count) || count < 1 || index < 0 || index >= count) {
    return undefined;
  }
  return { podId, msgId, index, count, stream: stream as StreamKind, data: frame.slice(nl + 1) };
}

interface Pending {
  stream: StreamKind;
  count: number;
  parts: string[];
  bytes: number;
  startedAt: number;
}

export type ChunkResult = { kind: 'partial' } | { kind: 'complete'; stream: StreamKind; payload: string } | { kind: 'malformed'; reason: string };

/**
 * Reassembles chunk frames. Memory is bounded: a message abandoned half way (a pod died,
 * frames were lost) is dropped after `staleMs`, and all pending data together never
 * exceeds `maxPendingBytes`.
 */
export class ChunkAssembler {
  private readonly pending = new Map<string, Pending>();
  private pendingBytes = 0;

  constructor(
    private readonly maxPendingBytes = 16 * 1024 * 1024,
    private readonly staleMs = 30_000,
    private readonly now: () => number = Date.now,
  ) {}

  get pendingMessages(): number {
    return this.pending.size;
  }

  add(chunk: ChunkHeader): ChunkResult {
    const key = `${chunk.podId}/${chunk.msgId}`;
    let p = this.pending.get(key);
    if (p && chunk.index === 0) {
      // A pod restarted under the same id mid-message: its new message starts over.
      this.drop(key, p);
      p = undefined;
    }
    if (!p) {
      if (chunk.index !== 0) return { kind: 'malformed', reason: 'chunk without its first part' };
      p = { stream: chunk.stream, count: chunk.count, parts: [], bytes: 0, startedAt: this.now() };
      this.pending.set(key, p);
    }
    if (chunk.index !== p.parts.length || chunk.count !== p.count || chunk.stream !== p.stream) {
      this.drop(key, p);
      return { kind: 'malformed', reason: 'chunk out of sequence' };
    }
    const size = chunk.data.length * 3; // upper bound of UTF-8 bytes, cheap to compute
    if (this.pendingBytes + size > this.maxPendingBytes) {
      this.drop(key, p);
      return { kind: 'malformed', reason: 'chunked message exceeds the reassembly budget' };
    }
    p.parts.push(chunk.data);
    p.bytes += size;
    this.pendingBytes += size;
    if (p.parts.length < p.count) return { kind: 'partial' };
    this.drop(key, p);
    return { kind: 'complete', stream: p.stream, payload: p.parts.join('') };
  }

  /** Drops messages whose frames stopped coming; returns how many were dropped. */
  sweep(): number {
    const limit = this.now() - this.staleMs;
    let dropped = 0;
    for (const [key, p] of this.pending) {
      if (p.startedAt < limit) {
        this.drop(key, p);
        dropped++;
      }
    }
    return dropped;
  }

  /** Forgets every partial message of one pod (it died or restarted its sequence). */
  forgetPod(podId: string): void {
    for (const [key, p] of this.pending) if (key.startsWith(`${podId}/`)) this.drop(key, p);
  }

  private drop(key: string, p: Pending): void {
    this.pending.delete(key);
    this.pendingBytes -= p.bytes;
  }
}
