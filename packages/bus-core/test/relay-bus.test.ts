/**
 * RelayBus over the in-memory broker: sequence checks, own echoes, failures as values,
 * chunking, readiness, replicated room state, expiry of silent pods and goodbyes.
 * Pods and fakes: test/support/memory-pods.ts.
 */
import { describe, expect, it } from 'vitest';
import { decodeControl, decodePresence, decodeRoom, type PresenceEnvelope } from '../src/envelopes.js';
import {
  BusUnavailableError,
  MemoryBroker,
  MemoryTransport,
  PayloadTooLargeError,
  RelayBus,
  type DeliverOptions,
  type Frame,
  type StreamKind,
} from '../src/index.js';
import { RecordingHub, sleep, waitFor } from '../src/testing/index.js';
import { FAST, cleanup, inject, ns, recordingLogger, roomEnv, startPod, tap } from './support/memory-pods.js';

// ---- sequence numbers -----------------------------------------------------------------

describe('RelayBus: sequence numbers', () => {
  it("a gap in a pod's sequence triggers a sync_request targeted at that pod", async () => {
    const broker = new MemoryBroker();
    const wire = await tap(broker);
    const a = await startPod(broker, { podId: 'pod-a' });
    const join = (seq: number, userId: string) =>
      inject(broker, 'presence', { podId: 'fake', roomId: 'r', userId, userName: userId, action: 'join', seq });
    join(1, 'u1');
    join(2, 'u2');
    await waitFor('u1 and u2', () => a.bus.getRoomClients('r').length === 2);
    const before = wire.syncRequests('pod-a', 'fake');
    expect(a.bus.stats.gaps).toBe(0);

    join(5, 'u5'); // 3 and 4 were lost
    await waitFor('a sync_request for fake', () => wire.syncRequests('pod-a', 'fake') === before + 1);
    expect(a.bus.stats.gaps).toBe(1);
    // The envelope after the gap is still applied.
    expect(a.bus.isUserInRoom('r', 'u5')).toBe(true);
  });

  it('duplicate and replayed (older) sequence numbers are dropped', async () => {
    const broker = new MemoryBroker();
    const a = await startPod(broker);
    for (const seq of [1, 2, 3, 2, 3, 4]) inject(broker, 'room', roomEnv('fake', seq, seq));
    inject(broker, 'room', roomEnv('marker', undefined, 99));
    await waitFor('the marker', () => ns(a.hub).includes(99));
    expect(ns(a.hub)).toEqual([1, 2, 3, 4, 99]);
    expect(a.bus.stats.gaps).toBe(0);
  });

  it('seq 1 again is a restarted pod: accepted, and its new sequence continues', async () => {
    const broker = new MemoryBroker();
    const a = await startPod(broker);
    for (const [seq, n] of [
      [1, 1],
      [2, 2],
      [3, 3],
      [1, 10],
      [2, 20],
      [2, 21],
      [3, 30],
    ] as const) {
      inject(broker, 'room', roomEnv('fake', seq, n));
    }
    await waitFor('frame 30', () => ns(a.hub).includes(30));
    expect(ns(a.hub)).toEqual([1, 2, 3, 10, 20, 30]);
    expect(a.bus.stats.gaps).toBe(0);
  });

  it('two real pods exchanging traffic see no gaps', async () => {
    const broker = new MemoryBroker();
    const a = await startPod(broker);
    const b = await startPod(broker);
    for (let i = 0; i < 100; i++) {
      void a.bus.broadcastToRoom('r', { type: 'm', payload: { n: i } });
      void b.bus.broadcastToRoom('r', { type: 'm', payload: { n: i } });
    }
    await a.bus.publishPresenceJoin('r', { userId: 'u', userName: 'U' });
    await waitFor('all frames on both', () => ns(a.hub).length === 200 && ns(b.hub).length === 200);
    await waitFor('presence on B', () => b.bus.isUserInRoom('r', 'u'));
    expect(a.bus.stats.gaps).toBe(0);
    expect(b.bus.stats.gaps).toBe(0);
  });
});

// ---- echoes, failures, sizes ------------------------------------------------------------

describe('RelayBus: publishing', () => {
  it('drops its own echoes, whether relayed or injected with its pod id', async () => {
    const broker = new MemoryBroker();
    const a = await startPod(broker, { podId: 'pod-a' });
    const b = await startPod(broker, { podId: 'pod-b' });
    expect(await a.bus.broadcastToRoom('r', { type: 'm', payload: { n: 1 } })).toEqual({ ok: true });
    await waitFor('frame on B', () => ns(b.hub).length === 1);
    const echoes = a.bus.stats.ownEchoes;
    expect(echoes).toBeGreaterThan(0);

    inject(broker, 'room', roomEnv('pod-a', 10_000, 2));
    inject(broker, 'presence', { podId: 'pod-a', roomId: 'r', userId: 'ghost', userName: 'G', action: 'join', seq: 10_001 });
    inject(broker, 'room', roomEnv('other', 1, 3));
    await waitFor('the marker on A', () => ns(a.hub).includes(3));
    expect(ns(a.hub)).toEqual([1, 3]); // 1: the local delivery; the echo and the forged frame never arrive
    expect(a.bus.isUserInRoom('r', 'ghost')).toBe(false);
    expect(a.bus.stats.ownEchoes).toBeGreaterThanOrEqual(echoes + 2);
  });

  it('publishing while severed returns {ok:false} with BusUnavailableError and counts it', async () => {
    const broker = new MemoryBroker();
    // Slow heartbeats: no background publish can fail and move the counter during the test.
    const a = await startPod(broker, { heartbeatMs: 60_000, ttlMs: 120_000 });
    a.transport.sever();
    expect(a.bus.isConnected).toBe(false);
    const before = a.bus.stats.publishFailures;
    const r = await a.bus.broadcastToRoom('r', { type: 'm', payload: { n: 1 } });
    expect(r.ok).toBe(false);
    if (r.ok) throw new Error('unreachable');
    expect(r.error).toBeInstanceOf(BusUnavailableError);
    expect((r.error as BusUnavailableError).code).toBe('bus_unavailable');
    expect(r.error.message).toMatch(/memory/);
    expect(a.bus.stats.publishFailures).toBe(before + 1);
    // The local half of a broadcast still happened.
    expect(ns(a.hub)).toEqual([1]);
    const p = await a.bus.publishPresenceJoin('r', { userId: 'u', userName: 'U' });
    expect(p.ok).toBe(false);
    const s = await a.bus.setRoomState('r', 'k', 1);
    expect(s.ok).toBe(false);
    expect(a.bus.stats.publishFailures).toBe(before + 3);
  });

  it('refuses a payload over the limit with PayloadTooLargeError when the transport does not chunk', async () => {
    const broker = new MemoryBroker();
    const transport = { maxPayloadBytes: 1_000 };
    const a = await startPod(broker, { transport });
    const b = await startPod(broker, { transport });
    const before = a.bus.stats.publishFailures;
    // 400 characters but 1 200 UTF-8 bytes: the limit counts bytes, not string length.
    const r = await a.bus.broadcastToRoom('r', { type: 'm', payload: { n: 1, text: '€'.repeat(400) } });
    expect(r.ok).toBe(false);
    if (r.ok) throw new Error('unreachable');
    expect(r.error).toBeInstanceOf(PayloadTooLargeError);
    expect(r.error.message).toMatch(/1000-byte limit/);
    expect(a.bus.stats.publishFailures).toBe(before + 1);
    expect(a.bus.stats.chunkedMessages).toBe(0);
    expect(await a.bus.broadcastToRoom('r', { type: 'm', payload: { n: 2 } })).toEqual({ ok: true });
    await waitFor('the small frame on B', () => ns(b.hub).length === 1);
    expect(ns(b.hub)).toEqual([2]);
  });

  it('chunks a payload over the limit when the transport asks for it, and it arrives intact', async () => {
    const broker = new MemoryBroker();
    const wire = await tap(broker);
    const transport = { maxPayloadBytes: 1_000, chunking: true };
    const a = await startPod(broker, { podId: 'pod-a', transport });
    const b = await startPod(broker, { transport });
    const text = 'é€😀<>&"\\'.repeat(400);
    const chunkFramesBefore = wire.all.filter((m) => m.stream === 'chunk').length;
    expect(await a.bus.broadcastToRoom('r', { type: 'm', payload: { n: 1, text } })).toEqual({ ok: true });
    await a.bus.broadcastToRoom('r', { type: 'm', payload: { n: 2 } });
    await waitFor('both frames on B', () => ns(b.hub).length === 2);
    expect(ns(b.hub)).toEqual([1, 2]);
    expect((b.hub.frames('r')[0]!.payload as { text: string }).text).toBe(text);
    expect(a.bus.stats.chunkedMessages).toBe(1);
    const frames = wire.all.filter((m) => m.stream === 'chunk').slice(chunkFramesBefore);
    expect(frames.length).toBeGreaterThan(1);
    expect(a.bus.stats.published.chunk).toBe(frames.length);
    for (const f of frames) {
      expect(Buffer.byteLength(f.payload, 'utf8')).toBeLessThanOrEqual(1_000);
      expect(f.payload.startsWith('c1 pod-a ')).toBe(true);
    }
    // A's own chunk frames came back and were dropped as echoes, not reassembled.
    expect(ns(a.hub)).toEqual([1, 2]);
  });
});

// ---- readiness ------------------------------------------------------------------------

describe('RelayBus: readiness', () => {
  it('is not ready while severed, and ready again after restore plus the sync window', async () => {
    const broker = new MemoryBroker();
    const a = await startPod(broker, { syncWindowMs: 100 });
    expect(a.bus.ready).toBe(true);
    a.transport.sever();
    expect(a.bus.ready).toBe(false);
    expect(a.bus.isConnected).toBe(false);
    expect(a.bus.status()).toMatchObject({ connected: false, ready: false, transport: 'memory' });
    const readyAgain = a.bus.whenReady();
    await sleep(150);
    expect(a.bus.ready).toBe(false); // still severed: the sync window never started
    a.transport.restore();
    expect(a.bus.isConnected).toBe(true);
    expect(a.bus.ready).toBe(false); // connected, but the presence sync is not done yet
    await readyAgain;
    expect(a.bus.ready).toBe(true);
    expect(a.bus.stats.reconnects).toBe(1);
  });

  it('start() rejects when the broker is down', async () => {
    const broker = new MemoryBroker();
    broker.down = true;
    const bus = new RelayBus({ transport: new MemoryTransport(broker), ...FAST });
    await expect(bus.start(new RecordingHub())).rejects.toThrow(/cannot reach memory:\/\/local/);
    expect(bus.ready).toBe(false);
  });
});

// ---- room state -----------------------------------------------------------------------

describe('RelayBus: replicated room state', () => {
  it('setRoomState replicates, watchers fire on every pod, and unsubscribe works', async () => {
    const broker = new MemoryBroker();
    const a = await startPod(broker);
    const b = await startPod(broker);
    const seenA: Array<[string, unknown]> = [];
    const seenB: Array<[string, unknown]> = [];
    a.bus.watchRoomState('timer', (roomId, value) => seenA.push([roomId, value]));
    const unwatchB = b.bus.watchRoomState('timer', (roomId, value) => seenB.push([roomId, value]));
    b.bus.watchRoomState('other-key', () => seenB.push(['wrong key', null]));

    expect(await a.bus.setRoomState('r', 'timer', { phase: 'vote' })).toEqual({ ok: true });
    expect(a.bus.getRoomState('r', 'timer')).toEqual({ phase: 'vote' });
    await waitFor('state on B', () => b.bus.getRoomState('r', 'timer'));
    expect(b.bus.getRoomState('r', 'timer')).toEqual({ phase: 'vote' });
    expect(seenA).toEqual([['r', { phase: 'vote' }]]);
    expect(seenB).toEqual([['r', { phase: 'vote' }]]);

    // null deletes: watchers get undefined.
    await a.bus.setRoomState('r', 'timer', null);
    await waitFor('deletion on B', () => seenB.length === 2);
    expect(seenB[1]).toEqual(['r', undefined]);
    expect(b.bus.getRoomState('r', 'timer')).toBeUndefined();

    unwatchB();
    await a.bus.setRoomState('r', 'timer', { phase: 'discuss' });
    await waitFor('new state on B', () => b.bus.getRoomState('r', 'timer'));
    expect(seenB).toHaveLength(2);
    expect(seenA).toHaveLength(3);
  });

  it('concurrent writes on two pods converge to the same value (last writer wins)', async () => {
    const broker = new MemoryBroker();
    const a = await startPod(broker, { podId: 'pod-a' });
    const b = await startPod(broker, { podId: 'pod-b' });
    // Same tick: neither has seen the other's write. Equal counters: the higher pod id wins.
    const both = await Promise.all([a.bus.setRoomState('r', 'k', 'from-a'), b.bus.setRoomState('r', 'k', 'from-b')]);
    expect(both.every((r) => r.ok)).toBe(true);
    await waitFor('convergence', () => a.bus.getRoomState('r', 'k') === 'from-b' && b.bus.getRoomState('r', 'k') === 'from-b');

    // A's next write has seen B's version, so it wins everywhere despite the lower pod id.
    await a.bus.setRoomState('r', 'k', 'a-again');
    await waitFor('a-again on both', () => a.bus.getRoomState('r', 'k') === 'a-again' && b.bus.getRoomState('r', 'k') === 'a-again');

    // Many interleaved writes from both sides still end equal on both.
    for (let i = 0; i < 20; i++) {
      void a.bus.setRoomState('r', 'k', `a${i}`);
      void b.bus.setRoomState('r', 'k', `b${i}`);
    }
    await waitFor('final convergence', () => {
      const va = a.bus.getRoomState('r', 'k');
      return va === b.bus.getRoomState('r', 'k') && (va === 'a19' || va === 'b19');
    });
    await sleep(50);
    expect(a.bus.getRoomState('r', 'k')).toBe(b.bus.getRoomState('r', 'k'));
  });

  it("a room's state is dropped on every pod when its last user leaves cluster-wide", async () => {
    const broker = new MemoryBroker();
    const a = await startPod(broker);
    const b = await startPod(broker);
    const seenA: Array<[string, unknown]> = [];
    const seenB: Array<[string, unknown]> = [];
    a.bus.watchRoomState('timer', (roomId, value) => seenA.push([roomId, value]));
    b.bus.watchRoomState('timer', (roomId, value) => seenB.push([roomId, value]));
    await a.bus.publishPresenceJoin('r', { userId: 'u1', userName: 'Ann' });
    await b.bus.publishPresenceJoin('r', { userId: 'u2', userName: 'Ben' });
    await a.bus.setRoomState('r', 'timer', { phase: 'vote' });
    await a.bus.setRoomState('elsewhere', 'timer', { phase: 'kept' });
    await waitFor('state and presence on B', () => b.bus.getRoomState('r', 'timer') && b.bus.isUserInRoom('r', 'u1'));
    await waitFor('presence on A', () => a.bus.isUserInRoom('r', 'u2'));

    await a.bus.publishPresenceLeave('r', 'u1');
    await waitFor('u1 gone on B', () => !b.bus.isUserInRoom('r', 'u1'));
    // Ben is still there: the state stays.
    expect(a.bus.getRoomState('r', 'timer')).toEqual({ phase: 'vote' });
    expect(b.bus.getRoomState('r', 'timer')).toEqual({ phase: 'vote' });

    await b.bus.publishPresenceLeave('r', 'u2');
    await waitFor('state dropped on A', () => a.bus.getRoomState('r', 'timer') === undefined);
    expect(b.bus.getRoomState('r', 'timer')).toBeUndefined();
    expect(seenA.at(-1)).toEqual(['r', undefined]);
    expect(seenB.at(-1)).toEqual(['r', undefined]);
    // Another room's state is untouched.
    expect(a.bus.getRoomState('elsewhere', 'timer')).toEqual({ phase: 'kept' });
  });

  it('a pod that starts late receives the state of occupied rooms only', async () => {
    const broker = new MemoryBroker();
    const a = await startPod(broker);
    await a.bus.publishPresenceJoin('busy', { userId: 'u1', userName: 'Ann' });
    await a.bus.setRoomState('busy', 'timer', 1);
    await a.bus.setRoomState('empty', 'timer', 2);
    const late = await startPod(broker);
    await waitFor('busy state on the late pod', () => late.bus.getRoomState('busy', 'timer') === 1);
    expect(late.bus.getRoomState('empty', 'timer')).toBeUndefined();
  });
});

// ---- liveness -------------------------------------------------------------------------

describe('RelayBus: pod liveness', () => {
  it('keeps a heartbeating pod, and expires it once it falls silent for the TTL', async () => {
    const broker = new MemoryBroker();
    const a = await startPod(broker);
    const b = await startPod(broker);
    await b.bus.publishPresenceJoin('r', { userId: 'u2', userName: 'Bea' });
    await waitFor('Bea on A', () => a.bus.isUserInRoom('r', 'u2'));
    await sleep(FAST.ttlMs * 3); // B heartbeats all along
    expect(a.bus.isUserInRoom('r', 'u2')).toBe(true);
    expect(a.bus.stats.podsExpired).toBe(0);

    b.transport.freeze(); // B dies without a word
    await waitFor('Bea expired on A', () => a.hub.left.length === 1);
    expect(a.hub.left).toEqual([{ roomId: 'r', userId: 'u2' }]);
    expect(a.bus.stats.podsExpired).toBe(1);
    expect(a.bus.getRoomClients('r')).toEqual([]);
  });

  it('never expires a pod that never heartbeats (a Go pod)', async () => {
    const broker = new MemoryBroker();
    const a = await startPod(broker);
    inject(broker, 'presence', '{"podId":"go-pod","roomId":"r","userId":"g1","userName":"Go \\u0026 co","action":"join"}');
    inject(broker, 'room', roomEnv('go-pod', undefined, 1));
    await waitFor('the Go user', () => a.bus.isUserInRoom('r', 'g1'));
    await sleep(FAST.ttlMs * 3);
    expect(a.bus.isUserInRoom('r', 'g1')).toBe(true);
    expect(a.bus.getRoomClients('r')).toEqual([{ userId: 'g1', userName: 'Go & co' }]);
    expect(a.bus.stats.podsExpired).toBe(0);
    expect(a.hub.left).toEqual([]);
    inject(broker, 'presence', '{"podId":"go-pod","roomId":"r","userId":"g1","action":"leave"}');
    await waitFor('the Go user to leave', () => a.hub.left.length === 1);
    expect(a.hub.left).toEqual([{ roomId: 'r', userId: 'g1' }]);
  });

  it("a bye removes all of a pod's users at once", async () => {
    const broker = new MemoryBroker();
    const a = await startPod(broker, { heartbeatMs: 50, ttlMs: 60_000 });
    inject(broker, 'control', { kind: 'heartbeat', podId: 'fake', seq: 1 });
    inject(broker, 'presence', { podId: 'fake', roomId: 'r1', userId: 'u1', userName: 'One', action: 'join', seq: 2 });
    inject(broker, 'presence', { podId: 'fake', roomId: 'r2', userId: 'u2', userName: 'Two', action: 'join', seq: 3 });
    await waitFor('both users', () => a.bus.isUserInRoom('r1', 'u1') && a.bus.isUserInRoom('r2', 'u2'));
    inject(broker, 'control', { kind: 'bye', podId: 'fake', seq: 4 });
    await waitFor('both gone', () => a.hub.left.length === 2);
    expect(a.hub.left).toEqual(
      expect.arrayContaining([
        { roomId: 'r1', userId: 'u1' },
        { roomId: 'r2', userId: 'u2' },
      ]),
    );
    expect(a.bus.stats.podsExpired).toBe(0);
  });

  it('stop() publishes a Go-compatible presence leave for each local user, then a bye', async () => {
    const broker = new MemoryBroker();
    const wire = await tap(broker);
    const a = await startPod(broker, { podId: 'pod-a' });
    const b = await startPod(broker, { ttlMs: 60_000 });
    await a.bus.publishPresenceJoin('r1', { userId: 'u1', userName: 'One' });
    await a.bus.publishPresenceJoin('r2', { userId: 'u1', userName: 'One' });
    await a.bus.publishPresenceJoin('r2', { userId: 'u2', userName: 'Two' });
    await waitFor('three on B', () => b.bus.isUserInRoom('r1', 'u1') && b.bus.isUserInRoom('r2', 'u1') && b.bus.isUserInRoom('r2', 'u2'));
    const mark = wire.all.length;

    await a.bus.stop();
    await waitFor('the bye on the wire', () =>
      wire.all.slice(mark).some((m) => m.stream === 'control' && decodeControl(m.payload).ok === true && m.payload.includes('"bye"')),
    );
    const after = wire.all.slice(mark);
    const leaves = after.flatMap((m): PresenceEnvelope[] => {
      if (m.stream !== 'presence') return [];
      const d = decodePresence(m.payload);
      return d.ok === true ? [d.value] : [];
    });
    expect(leaves.map((l) => [l.podId, l.roomId, l.userId, l.action])).toEqual(
      expect.arrayContaining([
        ['pod-a', 'r1', 'u1', 'leave'],
        ['pod-a', 'r2', 'u1', 'leave'],
        ['pod-a', 'r2', 'u2', 'leave'],
      ]),
    );
    expect(leaves).toHaveLength(3);
    // What a Go pod reads: the contract's presence fields, no userName on a leave.
    for (const l of leaves) expect(Object.keys(l).sort()).toEqual(['action', 'podId', 'roomId', 'seq', 'userId']);
    const byeIndex = after.findIndex((m) => m.stream === 'control' && m.payload.includes('"bye"'));
    const lastLeaveIndex = after.map((m) => m.stream).lastIndexOf('presence');
    expect(byeIndex).toBeGreaterThan(lastLeaveIndex);

    await waitFor('all three gone on B', () => b.hub.left.length === 3);
    expect(b.bus.stats.podsExpired).toBe(0);
    // A stopped bus reports instead of throwing.
    const r = await a.bus.broadcastToRoom('r1', { type: 'm' });
    expect(r.ok).toBe(false);
    if (!r.ok) expect((r.error as { code?: string }).code).toBe('stopped');
    await expect(a.bus.start(a.hub)).rejects.toThrow(/stopped/);
  });

  // Was a bug (fixed in onTransportState() while these tests were written): after our own
  // outage longer than the TTL, peers' lastSeen was stale and the next expiry tick declared
  // every live peer dead before it could be heard again; its users flapped (left, joined).
  it('our own outage does not expire peers that are heard again within the TTL after reconnecting', async () => {
    const broker = new MemoryBroker();
    const a = await startPod(broker, { heartbeatMs: 50, ttlMs: 400 });
    let seq = 0;
    let paused = false;
    const beat = () => inject(broker, 'control', { kind: 'heartbeat', podId: 'peer', seq: ++seq });
    const timer = setInterval(() => paused || beat(), 100);
    cleanup.push(async () => clearInterval(timer));
    beat();
    inject(broker, 'presence', { podId: 'peer', roomId: 'r', userId: 'u', userName: 'U', action: 'join', seq: ++seq });
    await waitFor('u on A', () => a.bus.isUserInRoom('r', 'u'));

    paused = true; // what A cannot hear while it is cut off
    a.transport.sever();
    await sleep(800);
    a.transport.restore();
    setTimeout(() => {
      paused = false;
      beat();
    }, 150); // heard again well within the TTL after A's reconnect
    await sleep(300);
    expect(a.bus.stats.podsExpired).toBe(0);
    expect(a.hub.left).toEqual([]);
  });
});

// ---- robustness -----------------------------------------------------------------------

describe('RelayBus: robustness', () => {
  class ThrowingHub extends RecordingHub {
    override deliverLocal(roomId: string, frame: Frame, options?: DeliverOptions): void {
      if (frame.type === 'boom') throw new Error('hub bug');
      super.deliverLocal(roomId, frame, options);
    }
    override participantJoined(roomId: string, participant: { userId: string; userName: string }): void {
      if (participant.userId === 'boom') throw new Error('hub bug in participantJoined');
      super.participantJoined(roomId, participant);
    }
  }

  it('a hub callback that throws does not break the relay: the next envelope is delivered', async () => {
    const broker = new MemoryBroker();
    const { logger, lines } = recordingLogger();
    const a = await startPod(broker, { hub: new ThrowingHub(), logger });
    const b = await startPod(broker);
    await b.bus.broadcastToRoom('r', { type: 'boom' });
    await b.bus.broadcastToRoom('r', { type: 'm', payload: { n: 1 } });
    await b.bus.publishPresenceJoin('r', { userId: 'boom', userName: 'X' });
    await b.bus.publishPresenceJoin('r', { userId: 'ok', userName: 'Y' });
    await waitFor('the frame after the throw', () => ns(a.hub).length === 1);
    await waitFor('the join after the throw', () => a.hub.joined.some((j) => j.userId === 'ok'));
    expect(lines.filter((l) => l.level === 'error' && l.msg === 'error while handling an envelope')).toHaveLength(2);
    // Still relaying both ways.
    await a.bus.broadcastToRoom('r', { type: 'm', payload: { n: 2 } });
    await waitFor('A to B', () => ns(b.hub).includes(2));
  });

  it('unknown presence actions and control kinds are counted as ignored, not malformed', async () => {
    const broker = new MemoryBroker();
    const a = await startPod(broker);
    inject(broker, 'presence', { podId: 'newer', roomId: 'r', userId: 'u', action: 'away' });
    inject(broker, 'control', { kind: 'rebalance', podId: 'newer' });
    inject(broker, 'room', roomEnv('newer', undefined, 1));
    await waitFor('the marker', () => ns(a.hub).length === 1);
    expect(a.bus.stats.ignored).toBe(2);
    expect(a.bus.stats.malformed).toEqual({ room: 0, presence: 0, control: 0, chunk: 0 });
    expect(a.bus.isUserInRoom('r', 'u')).toBe(false);
  });

  it('the constructor rejects an invalid podId and ttlMs <= heartbeatMs with clear errors', () => {
    const transport = new MemoryTransport();
    for (const podId of ['', 'has space', 'slash/no', 'é', 'x'.repeat(129), 'new\nline']) {
      expect(() => new RelayBus({ transport, podId }), JSON.stringify(podId)).toThrow(/invalid podId/);
    }
    expect(() => new RelayBus({ transport, podId: 'Pod-1.a_b:c' })).not.toThrow();
    expect(new RelayBus({ transport }).podId).toMatch(/^[0-9a-f-]{36}$/);
    expect(() => new RelayBus({ transport, heartbeatMs: 5_000, ttlMs: 5_000 })).toThrow('ttlMs (5000) must exceed heartbeatMs (5000)');
    expect(() => new RelayBus({ transport, heartbeatMs: 1_000, ttlMs: 500 })).toThrow(/ttlMs \(500\) must exceed heartbeatMs \(1000\)/);
    // Defaults: 5 000 / 15 000 are consistent.
    expect(() => new RelayBus({ transport })).not.toThrow();
    expect(() => new RelayBus({ transport, ttlMs: 4_000 })).toThrow(/must exceed heartbeatMs \(5000\)/);
  });
});

// ---- regressions ------------------------------------------------------------------------

describe('RelayBus: regressions', () => {
  // A refused oversized payload consumes a sequence
  // number, so every other pod sees a gap, logs "messages were lost" and asks for a full sync.
  it('a refused oversized payload does not look like a gap to other pods', async () => {
    const broker = new MemoryBroker();
    const transport = { maxPayloadBytes: 1_000 };
    const a = await startPod(broker, { transport });
    const b = await startPod(broker, { transport });
    const r = await a.bus.broadcastToRoom('r', { type: 'm', payload: { n: 1, text: 'x'.repeat(2_000) } });
    expect(r.ok).toBe(false);
    await a.bus.broadcastToRoom('r', { type: 'm', payload: { n: 2 } });
    await waitFor('the next frame on B', () => ns(b.hub).length === 1);
    expect(b.bus.stats.gaps).toBe(0);
  });

  // A pod we expired (partition, long pause)
  // that comes back without a heartbeat as its first envelope is never asked for a sync:
  // its users stay missing on this pod for good.
  it('a pod that reappears after being expired is asked for its presence', async () => {
    const broker = new MemoryBroker();
    const wire = await tap(broker);
    const a = await startPod(broker, { podId: 'pod-a' });
    inject(broker, 'control', { kind: 'heartbeat', podId: 'fake', seq: 1 });
    inject(broker, 'presence', { podId: 'fake', roomId: 'r', userId: 'u9', userName: 'Nine', action: 'join', seq: 2 });
    await waitFor('u9 on A', () => a.bus.isUserInRoom('r', 'u9'));
    expect(wire.syncRequests('pod-a', 'fake')).toBe(1); // first contact was a heartbeat
    await waitFor('fake expired', () => a.bus.stats.podsExpired === 1);
    expect(a.bus.isUserInRoom('r', 'u9')).toBe(false);
    // The partition heals; the pod never noticed and carries on with room traffic.
    inject(broker, 'room', roomEnv('fake', 3, 3));
    inject(broker, 'control', { kind: 'heartbeat', podId: 'fake', seq: 4 });
    await waitFor('its frame', () => ns(a.hub).includes(3));
    await waitFor('a sync_request for the returning pod', () => wire.syncRequests('pod-a', 'fake') >= 2, 1_000);
  });

  // An envelope of an unknown kind from a newer pod
  // (allowed by CONTRACT section 5) is skipped without recording its seq, so the next
  // envelope from that pod looks like a gap and triggers a sync during every rolling upgrade.
  it('an ignored envelope from a newer pod still advances its sequence', async () => {
    const broker = new MemoryBroker();
    const a = await startPod(broker);
    inject(broker, 'room', roomEnv('newer', 1, 1));
    inject(broker, 'control', { kind: 'rebalance', podId: 'newer', seq: 2 });
    inject(broker, 'presence', { podId: 'newer', roomId: 'r', userId: 'u', action: 'away', seq: 3 });
    inject(broker, 'room', roomEnv('newer', 4, 4));
    await waitFor('frame 4', () => ns(a.hub).includes(4));
    expect(a.bus.stats.ignored).toBe(2);
    expect(a.bus.stats.gaps).toBe(0);
  });
});

/**
 * A memory transport that, like bus-nats with `roomSubjects: 'per-room'`, only receives room
 * envelopes of rooms this pod declared interest in (Transport.setRoomInterest).
 */
class RoomFilteringTransport extends MemoryTransport {
  private readonly interested = new Set<string>();
  setRoomInterest(roomId: string, interested: boolean): void {
    if (interested) this.interested.add(roomId);
    else this.interested.delete(roomId);
  }
  override enqueue(stream: StreamKind, payload: string): void {
    if (stream === 'room') {
      const d = decodeRoom(payload);
      if (d.ok === true && !this.interested.has(d.value.roomId)) return;
    }
    super.enqueue(stream, payload);
  }
}

describe('RelayBus: transports that filter rooms', () => {
  // One sequence counter spanning every
  // stream, but a transport routing rooms per subject (bus-nats `roomSubjects: 'per-room'`)
  // delivers only the rooms a pod holds. Every room message a pod does not receive looks
  // like a lost message: a gap, a warning, and a full sync broadcast, all the time.
  it('room traffic a pod is not subscribed to does not look like lost messages', async () => {
    const broker = new MemoryBroker();
    const makeTransport = (b: MemoryBroker) => new RoomFilteringTransport(b);
    const a = await startPod(broker, { makeTransport });
    const b = await startPod(broker, { makeTransport });
    await a.bus.publishPresenceJoin('x', { userId: 'ua', userName: 'A' });
    await b.bus.publishPresenceJoin('y', { userId: 'ub', userName: 'B' });
    await waitFor('presence both ways', () => a.bus.isUserInRoom('y', 'ub') && b.bus.isUserInRoom('x', 'ua'));
    for (let i = 0; i < 10; i++) await a.bus.broadcastToRoom('x', { type: 'm', payload: { n: i } });
    await a.bus.publishPresenceJoin('z', { userId: 'ua', userName: 'A' });
    await waitFor('the join after the room traffic', () => b.bus.isUserInRoom('z', 'ua'));
    expect(ns(b.hub, 'x')).toEqual([]); // the filter works: B never saw room x
    expect(b.bus.stats.gaps).toBe(0);
  });
});

describe('RelayBus: one serialisation per fan-out', () => {
  it('writes room envelopes byte for byte as JSON.stringify of {podId, roomId, message, seq}', async () => {
    const broker = new MemoryBroker();
    const wire = await tap(broker);
    const { bus, hub } = await startPod(broker, { podId: 'pod-x.1' });
    const frame: Frame = { type: 'event', payload: { text: 'é "quoted" </script> \u2028', n: [1, 2] } };
    await bus.broadcastToRoom('room:"1"', frame);
    await bus.publishToRemotePods('room:"1"', { type: 'second' });
    await waitFor('two room envelopes', () => wire.all.filter((m) => m.stream === 'room').length === 2);
    const room = wire.all.filter((m) => m.stream === 'room').map((m) => m.payload);
    expect(room[0]).toBe(JSON.stringify({ podId: 'pod-x.1', roomId: 'room:"1"', message: frame, seq: 1 }));
    expect(room[1]).toBe(JSON.stringify({ podId: 'pod-x.1', roomId: 'room:"1"', message: { type: 'second' }, seq: 2 }));
    // The hub got the same serialisation, so it need not stringify again.
    expect(hub.deliveries[0]).toEqual({ roomId: 'room:"1"', frame });
  });

  it('the receiving pod hands its hub the frame bytes from the envelope; Go envelopes are serialised again', async () => {
    const broker = new MemoryBroker();
    class JsonHub extends RecordingHub {
      readonly json: Array<string | undefined> = [];
      override deliverLocal(roomId: string, frame: Frame, options?: DeliverOptions): void {
        super.deliverLocal(roomId, frame, options); // throws if json is not the frame
        this.json.push(options?.json);
      }
    }
    const hub = new JsonHub();
    await startPod(broker, { podId: 'pod-b', hub });
    const a = await startPod(broker, { podId: 'pod-a' });
    const frame: Frame = { type: 'event', payload: { data: 'x'.repeat(20_000) + ' "é" </b>' } };
    await a.bus.broadcastToRoom('r', frame);
    inject(broker, 'room', { podId: 'go-pod', roomId: 'r', message: { type: 'go' } });
    await waitFor('two deliveries on B', () => hub.deliveries.length === 2);
    expect(hub.json).toEqual([JSON.stringify(frame), undefined]);
    expect(hub.deliveries.map((d) => d.frame)).toEqual([frame, { type: 'go' }]);
  });

  it('drops its own room and presence echoes without counting them as received', async () => {
    const broker = new MemoryBroker();
    const { bus } = await startPod(broker);
    await bus.broadcastToRoom('r', { type: 'm' });
    await bus.publishPresenceJoin('r', { userId: 'u', userName: 'U' });
    await waitFor('both echoes', () => bus.stats.ownEchoes >= 2);
    expect(bus.stats.received.room).toBe(0);
    expect(bus.stats.received.presence).toBe(0);
    expect(bus.stats.malformed.room + bus.stats.malformed.presence).toBe(0);
  });
});
