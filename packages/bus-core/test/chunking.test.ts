import { describe, expect, it } from 'vitest';
import { ChunkAssembler, parseChunk, splitIntoChunks } from '../src/chunking.js';
import type { StreamKind } from '../src/types.js';

const bytes = (s: string) => Buffer.byteLength(s, 'utf8');

/** Parses every frame (failing the test on a bad one) and feeds them to an assembler. */
function reassemble(frames: string[], assembler = new ChunkAssembler()) {
  const results = frames.map((f) => {
    const chunk = parseChunk(f);
    if (!chunk) throw new Error(`unparseable frame ${JSON.stringify(f.slice(0, 80))}`);
    return assembler.add(chunk);
  });
  return { results, last: results[results.length - 1], assembler };
}

function chunkOf(frame: string) {
  const c = parseChunk(frame);
  if (!c) throw new Error(`unparseable frame ${JSON.stringify(frame.slice(0, 80))}`);
  return c;
}

const payloads: Record<string, string> = {
  ascii: JSON.stringify({ podId: 'p', roomId: 'r', message: { type: 'x', payload: 'a'.repeat(20_000) } }),
  accents: 'é'.repeat(9_001),
  euro: '€'.repeat(7_777) + 'x',
  emoji: '😀'.repeat(5_003),
  mixed: 'aé€😀<>&"\\\n'.repeat(2_345),
  // Shifts the character boundaries against every cut position.
  offsets: 'x' + '😀é'.repeat(3_000) + '€€' + '🎉'.repeat(1_000),
};

describe('splitIntoChunks', () => {
  for (const limit of [100, 257, 1_000, 7_999]) {
    for (const [name, payload] of Object.entries(payloads)) {
      it(`limit ${limit}, ${name}: frames fit, are valid UTF-8, and reassemble exactly`, () => {
        const frames = splitIntoChunks('pod-1', 42, 'room', payload, limit);
        expect(frames.length).toBeGreaterThan(1);
        for (const f of frames) {
          expect(bytes(f)).toBeLessThanOrEqual(limit);
          // A split surrogate pair or UTF-8 sequence would not survive the round trip.
          expect(Buffer.from(f, 'utf8').toString('utf8')).toBe(f);
          expect(f).not.toMatch(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/);
        }
        const { last, results } = reassemble(frames);
        expect(results.slice(0, -1).every((r) => r.kind === 'partial')).toBe(true);
        expect(last).toEqual({ kind: 'complete', stream: 'room', payload });
      });
    }
  }

  it('writes the documented header: c1 <podId> <msgId> <index> <count> <stream>', () => {
    const frames = splitIntoChunks('pod-1', 7, 'presence', 'z'.repeat(300), 100);
    frames.forEach((f, i) => {
      expect(f.startsWith(`c1 pod-1 7 ${i} ${frames.length} presence\n`)).toBe(true);
    });
    expect(chunkOf(frames[0]!)).toMatchObject({ podId: 'pod-1', msgId: '7', index: 0, count: frames.length, stream: 'presence' });
  });

  it('a payload under the limit is one frame', () => {
    const frames = splitIntoChunks('p', 1, 'control', '{"kind":"bye"}', 1_000);
    expect(frames).toEqual(['c1 p 1 0 1 control\n{"kind":"bye"}']);
  });

  it('refuses a limit too small for the header', () => {
    expect(() => splitIntoChunks('p', 1, 'room', 'x'.repeat(100), 20)).toThrow(/too small/);
  });

  it('keeps the limit with the longest allowed pod id', () => {
    const podId = 'p'.repeat(128);
    const frames = splitIntoChunks(podId, 123_456, 'control', '😀'.repeat(4_000), 300);
    for (const f of frames) expect(bytes(f)).toBeLessThanOrEqual(300);
    expect(reassemble(frames).last).toEqual({ kind: 'complete', stream: 'control', payload: '😀'.repeat(4_000) });
  });
});

describe('parseChunk', () => {
  it('parses a valid frame; the data may itself contain newlines and spaces', () => {
    expect(parseChunk('c1 pod 5 1 3 control\nline 1\nline 2')).toEqual({
      podId: 'pod',
      msgId: '5',
      index: 1,
      count: 3,
      stream: 'control',
      data: 'line 1\nline 2',
    });
  });

  it('rejects bad headers', () => {
    const bad = [
      'no newline at all',
      'c2 pod 1 0 1 room\nx', // wrong magic
      'c1 pod 1 0 room\nx', // five fields
      'c1 pod 1 0 1 room extra\nx', // seven fields
      'c1 pod 1 0 1 chunk\nx', // chunks do not nest
      'c1 pod 1 0 1 bogus\nx',
      'c1 pod 1 1 1 room\nx', // index >= count
      'c1 pod 1 0 0 room\nx', // count 0
      'c1 pod 1 -1 2 room\nx',
      'c1 pod 1 0.5 2 room\nx',
      'c1 pod 1 a 2 room\nx',
      'c1 pod 1 0 two room\nx',
      `c1 ${'p'.repeat(600)} 1 0 1 room\nx`, // header too long
      '\nc1 pod 1 0 1 room',
    ];
    for (const b of bad) expect(parseChunk(b), b.slice(0, 40)).toBeUndefined();
  });
});

describe('ChunkAssembler', () => {
  it('reassembles interleaved messages from two pods', () => {
    const a = 'A€'.repeat(2_000);
    const b = 'B😀'.repeat(1_500);
    const fa = splitIntoChunks('pod-a', 1, 'room', a, 500);
    const fb = splitIntoChunks('pod-b', 1, 'presence', b, 400);
    const asm = new ChunkAssembler();
    const done: Array<{ stream: StreamKind; payload: string }> = [];
    for (let i = 0; i < Math.max(fa.length, fb.length); i++) {
      for (const f of [fa[i], fb[i]]) {
        if (f === undefined) continue;
        const r = asm.add(chunkOf(f));
        expect(r.kind).not.toBe('malformed');
        if (r.kind === 'complete') done.push({ stream: r.stream, payload: r.payload });
      }
    }
    expect(done).toHaveLength(2);
    expect(done).toContainEqual({ stream: 'room', payload: a });
    expect(done).toContainEqual({ stream: 'presence', payload: b });
    expect(asm.pendingMessages).toBe(0);
  });

  it('keeps two messages of one pod apart by msgId', () => {
    const f1 = splitIntoChunks('p', 1, 'room', '1'.repeat(300), 100);
    const f2 = splitIntoChunks('p', 2, 'room', '2'.repeat(300), 100);
    const asm = new ChunkAssembler();
    asm.add(chunkOf(f1[0]!));
    asm.add(chunkOf(f2[0]!));
    expect(asm.pendingMessages).toBe(2);
    expect(reassemble(f1.slice(1), asm).last).toEqual({ kind: 'complete', stream: 'room', payload: '1'.repeat(300) });
    expect(reassemble(f2.slice(1), asm).last).toEqual({ kind: 'complete', stream: 'room', payload: '2'.repeat(300) });
  });

  it('a chunk without its first part is malformed', () => {
    const frames = splitIntoChunks('p', 1, 'room', 'x'.repeat(500), 100);
    const asm = new ChunkAssembler();
    expect(asm.add(chunkOf(frames[1]!))).toEqual({ kind: 'malformed', reason: 'chunk without its first part' });
    expect(asm.pendingMessages).toBe(0);
  });

  it('an out-of-sequence chunk is malformed and drops the partial message', () => {
    const frames = splitIntoChunks('p', 1, 'room', 'x'.repeat(500), 100);
    expect(frames.length).toBeGreaterThanOrEqual(3);
    const asm = new ChunkAssembler();
    expect(asm.add(chunkOf(frames[0]!)).kind).toBe('partial');
    expect(asm.add(chunkOf(frames[2]!))).toEqual({ kind: 'malformed', reason: 'chunk out of sequence' });
    expect(asm.pendingMessages).toBe(0);
    // The rest of that message can no longer complete.
    expect(asm.add(chunkOf(frames[1]!)).kind).toBe('malformed');
  });

  it('a duplicated chunk is malformed', () => {
    const frames = splitIntoChunks('p', 1, 'room', 'x'.repeat(500), 100);
    const asm = new ChunkAssembler();
    asm.add(chunkOf(frames[0]!));
    asm.add(chunkOf(frames[1]!));
    expect(asm.add(chunkOf(frames[1]!)).kind).toBe('malformed');
  });

  it('a wrong count or stream in a later chunk is malformed', () => {
    const asm = new ChunkAssembler();
    expect(asm.add(chunkOf('c1 p 1 0 3 room\naa')).kind).toBe('partial');
    expect(asm.add(chunkOf('c1 p 1 1 4 room\nbb'))).toEqual({ kind: 'malformed', reason: 'chunk out of sequence' });
    expect(asm.pendingMessages).toBe(0);
    expect(asm.add(chunkOf('c1 p 2 0 2 room\naa')).kind).toBe('partial');
    expect(asm.add(chunkOf('c1 p 2 1 2 control\nbb')).kind).toBe('malformed');
    expect(asm.pendingMessages).toBe(0);
  });

  it('sweep() drops partial messages older than staleMs, and only those', () => {
    let now = 1_000;
    const asm = new ChunkAssembler(1024 * 1024, 5_000, () => now);
    const old = splitIntoChunks('p', 1, 'room', 'o'.repeat(300), 100);
    const fresh = splitIntoChunks('p', 2, 'room', 'f'.repeat(300), 100);
    asm.add(chunkOf(old[0]!));
    now = 4_000;
    asm.add(chunkOf(fresh[0]!));
    expect(asm.sweep()).toBe(0);
    now = 6_001; // old started 5 001 ms ago, fresh 2 001 ms ago
    expect(asm.sweep()).toBe(1);
    expect(asm.pendingMessages).toBe(1);
    expect(asm.add(chunkOf(old[1]!)).kind).toBe('malformed');
    expect(reassemble(fresh.slice(1), asm).last).toEqual({ kind: 'complete', stream: 'room', payload: 'f'.repeat(300) });
  });

  it('enforces maxPendingBytes and frees the budget afterwards', () => {
    // Budget accounting is an upper bound: 3 bytes per UTF-16 unit of data.
    const asm = new ChunkAssembler(300);
    expect(asm.add(chunkOf(`c1 p 1 0 3 room\n${'a'.repeat(60)}`)).kind).toBe('partial'); // 180
    expect(asm.add(chunkOf(`c1 p 1 1 3 room\n${'a'.repeat(60)}`))).toEqual({
      kind: 'malformed',
      reason: 'chunked message exceeds the reassembly budget',
    });
    expect(asm.pendingMessages).toBe(0);
    // The dropped message's bytes are released: a message that fits goes through, many times.
    for (let i = 0; i < 20; i++) {
      const frames = splitIntoChunks('p', 100 + i, 'room', 'b'.repeat(90), 60);
      expect(reassemble(frames, asm).last).toEqual({ kind: 'complete', stream: 'room', payload: 'b'.repeat(90) });
    }
  });

  it('the budget is shared by all pending messages', () => {
    const asm = new ChunkAssembler(300);
    expect(asm.add(chunkOf(`c1 a 1 0 2 room\n${'a'.repeat(60)}`)).kind).toBe('partial'); // 180
    expect(asm.add(chunkOf(`c1 b 1 0 2 room\n${'b'.repeat(60)}`)).kind).toBe('malformed'); // 360 > 300
    expect(asm.pendingMessages).toBe(1);
  });

  it('forgetPod drops that pod only (no prefix confusion)', () => {
    const asm = new ChunkAssembler();
    asm.add(chunkOf('c1 a 1 0 2 room\nA'));
    asm.add(chunkOf('c1 a 2 0 2 room\nA'));
    asm.add(chunkOf('c1 ab 1 0 2 room\nB'));
    expect(asm.pendingMessages).toBe(3);
    asm.forgetPod('a');
    expect(asm.pendingMessages).toBe(1);
    expect(asm.add(chunkOf('c1 a 1 1 2 room\nA')).kind).toBe('malformed');
    expect(asm.add(chunkOf('c1 ab 1 1 2 room\nB'))).toEqual({ kind: 'complete', stream: 'room', payload: 'BB' });
  });
});
