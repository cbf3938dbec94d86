import { describe, expect, it } from 'vitest';
import { decodeRoom, type RoomEnvelope } from '../src/envelopes.js';
import { RoomCodec } from '../src/room-codec.js';

function decoded(payload: string): RoomEnvelope {
  const d = decodeRoom(payload);
  if (d.ok !== true) throw new Error(`not a room envelope: ${payload}`);
  return d.value;
}

describe('RoomCodec', () => {
  const frame = { type: 'event', payload: { event: 'note', data: 'a "quoted" <b> \u2028 ü', n: [1, 2.5, null, true] } };

  it('writes exactly what JSON.stringify writes for the envelope object', () => {
    const codec = new RoomCodec('pod-a');
    for (const [roomId, seq] of [
      ['r1', 42],
      ['room "with" quotes', 0],
      ['émoji 🎉', Number.MAX_SAFE_INTEGER],
    ] as const) {
      const payload = codec.encode(roomId, JSON.stringify(frame), seq);
      expect(payload).toBe(JSON.stringify({ podId: 'pod-a', roomId, message: frame, seq }));
    }
  });

  it("slices the frame out of another pod's envelope: the same bytes as JSON.stringify(frame)", () => {
    const writer = new RoomCodec('pod-a');
    const reader = new RoomCodec('pod-b');
    for (const [roomId, seq] of [
      ['r1', 42],
      ['room "with" quotes', 0],
      ['émoji 🎉', Number.MAX_SAFE_INTEGER],
      ['r1', 7],
    ] as const) {
      const payload = writer.encode(roomId, JSON.stringify(frame), seq);
      expect(reader.frameJson(payload, decoded(payload))).toBe(JSON.stringify(frame));
    }
  });

  it('gives undefined for layouts it does not know, so the frame is serialised again', () => {
    const codec = new RoomCodec('me');
    const go = '{"podId":"go","roomId":"r","message":{"type":"event","payload":{"data":"\\u003cb\\u003e"}}}';
    expect(codec.frameJson(go, decoded(go))).toBeUndefined(); // Go: no seq
    const reordered = '{"roomId":"r","podId":"p","message":{"type":"x"},"seq":1}';
    expect(codec.frameJson(reordered, decoded(reordered))).toBeUndefined();
    const spaced = '{"podId":"p","roomId":"r","message":{"type":"x"}, "seq":1}';
    expect(codec.frameJson(spaced, decoded(spaced))).toBeUndefined();
    const dupSeq = '{"podId":"p","roomId":"r","message":{"type":"x"},"seq":1,"seq":2}';
    expect(codec.frameJson(dupSeq, { podId: 'p', roomId: 'r', message: { type: 'x' }, seq: 1 })).toBeUndefined();
    const extra = '{"podId":"p","roomId":"r","message":{"type":"x"},"seq":1,"v":2}';
    expect(codec.frameJson(extra, decoded(extra))).toBeUndefined();
  });

  it('keeps its caches per instance: two buses in one process do not share a head', () => {
    const a = new RoomCodec('pod-a');
    const b = new RoomCodec('pod-b');
    const fromC = new RoomCodec('pod-c').encode('r', '{"type":"x"}', 1);
    const fromD = new RoomCodec('pod-d').encode('r', '{"type":"y"}', 1);
    expect(a.frameJson(fromC, decoded(fromC))).toBe('{"type":"x"}');
    expect(b.frameJson(fromD, decoded(fromD))).toBe('{"type":"y"}');
    expect(a.frameJson(fromD, decoded(fromD))).toBe('{"type":"y"}');
  });

  it('recognises its own room and presence envelopes, and nobody else’s', () => {
    const codec = new RoomCodec('pod-a');
    expect(codec.isOwnEcho(codec.encode('r', '{"type":"x"}', 1))).toBe(true);
    expect(codec.isOwnEcho(JSON.stringify({ podId: 'pod-a', roomId: 'r', userId: 'u', action: 'join' }))).toBe(true);
    expect(codec.isOwnEcho(JSON.stringify({ podId: 'pod-ab', roomId: 'r', message: { type: 'x' } }))).toBe(false);
    expect(codec.isOwnEcho(JSON.stringify({ roomId: 'r', podId: 'pod-a', message: { type: 'x' } }))).toBe(false);
  });
});
