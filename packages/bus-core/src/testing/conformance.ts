/**
 * The behaviour every transport must show through RelayBus, run against its real broker:
 * ordering, exactly-once delivery, own-echo filtering, presence and sync, large payloads,
 * garbage on the wire, Go-written envelopes, reconnects and crashed pods; and, on the bare
 * transport, its lifecycle edges (open twice, open or publish after close, close during open,
 * a throwing sink, state changes once and never after close).
 *
 *   describeTransportConformance('postgres', { createTransport, injectRaw, sever });
 */
import { afterEach, describe, expect, it } from 'vitest';
import { RelayBus, type RelayBusOptions } from '../relay-bus.js';
import { BusError } from '../errors.js';
import type { Transport, TransportSink, TransportState } from '../transport.js';
import type { StreamKind } from '../types.js';
import { RecordingHub, sleep, waitFor } from './recording-hub.js';
import { uniquePrefix } from './unique-prefix.js';

export interface ConformanceHarness {
  /** A new, unopened transport on `prefix` (each test gets its own prefix). */
  createTransport(prefix: string): Transport | Promise<Transport>;
  /** Puts raw bytes on a stream, as a foreign, old or broken pod would. */
  injectRaw(prefix: string, stream: StreamKind, payload: string): Promise<void>;
  /** Cuts the transport's broker connection from outside; it must reconnect by itself. */
  sever(transport: Transport): Promise<void>;
  /** Size of the "large" room frame to send (bytes of data). Default 60 000. */
  largePayloadBytes?: number;
  /** Per-test timeout. Default 30 s. */
  timeoutMs?: number;
}

export function describeTransportConformance(name: string, harness: ConformanceHarness): void {
  const timeout = harness.timeoutMs ?? 30_000;
  const buses: RelayBus[] = [];
  const transports: Transport[] = [];

  /** A bare transport (no relay), cleaned up after the test. */
  async function bare(prefix: string): Promise<Transport> {
    const transport = await harness.createTransport(prefix);
    transports.push(transport);
    return transport;
  }

  async function pod(prefix: string, extra: Partial<RelayBusOptions> = {}) {
    const transport = await harness.createTransport(prefix);
    transports.push(transport);
    const hub = new RecordingHub();
    const bus = new RelayBus({ transport, heartbeatMs: 200, ttlMs: 2_000, syncWindowMs: 300, ...extra });
    buses.push(bus);
    await bus.start(hub);
    await bus.whenReady();
    return { bus, hub, transport };
  }

  describe(`${name} transport conformance`, () => {
    afterEach(async () => {
      await Promise.allSettled(buses.splice(0).map((b) => b.stop()));
      await Promise.allSettled(transports.splice(0).map((t) => t.close()));
    });

    it('delivers room frames to other pods exactly once, in order, and drops its own echoes', { timeout }, async () => {
      const prefix = uniquePrefix('order');
      const a = await pod(prefix);
      const b = await pod(prefix);
      const c = await pod(prefix);
      const n = 500;
      const results = [];
      for (let i = 0; i < n; i++) results.push(a.bus.broadcastToRoom('r1', { type: 'event', payload: { i } }));
      expect((await Promise.all(results)).every((r) => r.ok)).toBe(true);
      for (const other of [b, c]) {
        await waitFor(`${n} frames on the other pod`, () => other.hub.frames('r1').length >= n, timeout);
      }
      await sleep(200); // anything extra (a duplicate) would have arrived by now
      for (const other of [b, c]) {
        expect(other.hub.frames('r1').map((f) => (f.payload as { i: number }).i)).toEqual([...Array(n).keys()]);
      }
      // A saw each frame once: its local delivery, never an echo from the broker (a broker
      // may send echoes, which the relay drops, or be told not to, as NATS is).
      expect(a.hub.frames('r1')).toHaveLength(n);
    });

    it('broadcastToRoomExcept skips only the local client; publishToRemotePods skips the local hub', { timeout }, async () => {
      const prefix = uniquePrefix('except');
      const a = await pod(prefix);
      const b = await pod(prefix);
      await a.bus.broadcastToRoomExcept('r', { type: 'x' }, 'client-1');
      await a.bus.publishToRemotePods('r', { type: 'y' });
      await waitFor('both frames on B', () => b.hub.frames('r').length === 2, timeout);
      expect(b.hub.deliveries.every((d) => d.exceptClientId === undefined)).toBe(true);
      expect(a.hub.deliveries).toEqual([{ roomId: 'r', frame: { type: 'x' }, exceptClientId: 'client-1' }]);
    });

    it('replicates presence per (room, user, pod): multi-tab users leave with their last tab', { timeout }, async () => {
      const prefix = uniquePrefix('presence');
      const a = await pod(prefix);
      const b = await pod(prefix);
      await a.bus.publishPresenceJoin('room', { userId: 'u1', userName: 'Alice' });
      await waitFor('Alice on B', () => b.bus.isUserInRoom('room', 'u1'), timeout);
      expect(b.hub.joined).toEqual([{ roomId: 'room', userId: 'u1', userName: 'Alice' }]);
      expect(a.hub.joined).toEqual([{ roomId: 'room', userId: 'u1', userName: 'Alice' }]);

      // Second tab on B: no new joined anywhere, and the hub on B is told to keep it.
      await b.bus.publishPresenceJoin('room', { userId: 'u1', userName: 'Alice' });
      await waitFor('A told that B holds Alice too', () => a.hub.cancelled.length === 1, timeout);
      expect(a.hub.cancelled).toEqual([{ roomId: 'room', userId: 'u1' }]);
      await a.bus.publishPresenceLeave('room', 'u1');
      await sleep(300);
      expect(a.hub.joined).toHaveLength(1);
      expect(b.hub.left).toEqual([]);
      expect(a.hub.left).toEqual([]);
      expect(a.bus.getRoomClients('room')).toEqual([{ userId: 'u1', userName: 'Alice' }]);

      await b.bus.publishPresenceLeave('room', 'u1');
      await waitFor('Alice gone on A', () => a.hub.left.length === 1, timeout);
      expect(a.bus.getRoomClients('room')).toEqual([]);
      expect(b.hub.left).toEqual([{ roomId: 'room', userId: 'u1' }]);
    });

    it('a pod that starts late learns who is already present', { timeout }, async () => {
      const prefix = uniquePrefix('late');
      const a = await pod(prefix);
      await a.bus.publishPresenceJoin('room', { userId: 'u1', userName: 'Alice' });
      await a.bus.setRoomState('room', 'timer', { phase: 'vote' });
      const late = await pod(prefix);
      expect(late.bus.getRoomClients('room')).toEqual([{ userId: 'u1', userName: 'Alice' }]);
      expect(late.bus.getRoomState('room', 'timer')).toEqual({ phase: 'vote' });
    });

    it('carries a large frame intact and in order with the frames around it', { timeout }, async () => {
      const prefix = uniquePrefix('large');
      const a = await pod(prefix);
      const b = await pod(prefix);
      const size = harness.largePayloadBytes ?? 60_000;
      // Multi-byte characters: limits are in UTF-8 bytes, not string length.
      const text = 'é€😀<>&"\\'.repeat(Math.ceil(size / 20)).slice(0, Math.floor(size / 3));
      await a.bus.broadcastToRoom('r', { type: 'before' });
      const big = await a.bus.broadcastToRoom('r', { type: 'big', payload: { text } });
      expect(big).toEqual({ ok: true });
      await a.bus.broadcastToRoom('r', { type: 'after' });
      await waitFor('three frames', () => b.hub.frames('r').length === 3, timeout);
      const frames = b.hub.frames('r');
      expect(frames.map((f) => f.type)).toEqual(['before', 'big', 'after']);
      expect((frames[1]!.payload as { text: string }).text).toBe(text);
    });

    it('counts garbage on every stream and keeps relaying', { timeout }, async () => {
      const prefix = uniquePrefix('garbage');
      const a = await pod(prefix);
      const b = await pod(prefix);
      const junk = [
        'not json',
        '{"podId":"x"',
        '[]',
        '{"podId":"x","roomId":"r"}',
        '{"roomId":"r","message":{"type":"x"}}',
        '{"podId":"x","roomId":"r","message":"str"}',
        JSON.stringify({ podId: 'x', junk: 'z'.repeat(5000) }),
      ];
      for (const stream of ['room', 'presence', 'control'] as const) {
        for (const j of junk) await harness.injectRaw(prefix, stream, j);
      }
      // A chunk that never completes, one with a bad header, one out of sequence.
      await harness.injectRaw(prefix, 'chunk', 'c1 evil 1 0 3 room\n{"podId"');
      await harness.injectRaw(prefix, 'chunk', 'garbage header\nxx');
      await harness.injectRaw(prefix, 'chunk', 'c1 evil 2 2 3 room\nxx');
      await a.bus.broadcastToRoom('r', { type: 'still-works' });
      await waitFor('the frame after the garbage', () => b.hub.frames('r', 'still-works').length === 1, timeout);
      const m = b.bus.stats.malformed;
      expect(m.room).toBe(junk.length);
      expect(m.presence).toBe(junk.length);
      expect(m.control).toBe(junk.length);
      expect(m.chunk).toBe(2);
      expect(b.hub.frames('r')).toHaveLength(1);
    });

    it('accepts room and presence envelopes exactly as a Go pod writes them, and never expires a Go pod', { timeout }, async () => {
      const prefix = uniquePrefix('gopod');
      const a = await pod(prefix);
      // Go's encoding/json escapes <, > and & and sends no seq, heartbeat or sync.
      await harness.injectRaw(
        prefix,
        'presence',
        '{"podId":"go-pod-1","roomId":"r","userId":"g1","userName":"Bob \\u003cGo\\u003e \\u0026 co","action":"join"}',
      );
      await harness.injectRaw(
        prefix,
        'room',
        '{"podId":"go-pod-1","roomId":"r","message":{"type":"event","payload":{"event":"note","data":"\\u003cb\\u003ehi\\u003c/b\\u003e \\u0026"}}}',
      );
      await waitFor('the Go frame', () => a.hub.frames('r').length === 1, timeout);
      expect(a.hub.frames('r')[0]).toEqual({ type: 'event', payload: { event: 'note', data: '<b>hi</b> &' } });
      expect(a.bus.getRoomClients('r')).toEqual([{ userId: 'g1', userName: 'Bob <Go> & co' }]);
      await sleep(2_500); // longer than the TTL: a pod without heartbeats is not expired
      expect(a.bus.isUserInRoom('r', 'g1')).toBe(true);
      await harness.injectRaw(prefix, 'presence', '{"podId":"go-pod-1","roomId":"r","userId":"g1","action":"leave"}');
      await waitFor('the Go user to leave', () => !a.bus.isUserInRoom('r', 'g1'), timeout);
      expect(a.hub.left).toEqual([{ roomId: 'r', userId: 'g1' }]);
    });

    it('declares a silent pod dead after the TTL and reports its users as gone', { timeout }, async () => {
      const prefix = uniquePrefix('crash');
      const a = await pod(prefix);
      const b = await pod(prefix);
      await b.bus.publishPresenceJoin('room', { userId: 'u2', userName: 'Bea' });
      await waitFor('Bea on A', () => a.bus.isUserInRoom('room', 'u2'), timeout);
      // Crash: the transport goes away without a goodbye.
      await b.transport.close();
      const lostAt = Date.now();
      await waitFor('Bea to be expired on A', () => a.hub.left.length === 1, timeout);
      expect(Date.now() - lostAt).toBeLessThan(8_000); // TTL 2 s, generous for a busy machine
      expect(a.hub.left).toEqual([{ roomId: 'room', userId: 'u2' }]);
      expect(a.bus.stats.podsExpired).toBe(1);
    });

    it('a graceful stop makes its users leave at once', { timeout }, async () => {
      const prefix = uniquePrefix('bye');
      const a = await pod(prefix, { ttlMs: 60_000 });
      const b = await pod(prefix);
      await b.bus.publishPresenceJoin('room', { userId: 'u2', userName: 'Bea' });
      await waitFor('Bea on A', () => a.bus.isUserInRoom('room', 'u2'), timeout);
      await b.bus.stop();
      await waitFor('Bea to leave A', () => a.hub.left.length === 1, 5_000);
      expect(a.bus.stats.podsExpired).toBe(0);
    });

    it('recovers from a lost broker connection: reconnects, relays again and resyncs presence', { timeout }, async () => {
      const prefix = uniquePrefix('reconnect');
      const a = await pod(prefix);
      const b = await pod(prefix);
      await a.bus.publishPresenceJoin('room', { userId: 'u1', userName: 'Alice' });
      await waitFor('Alice on B', () => b.bus.isUserInRoom('room', 'u1'), timeout);

      await harness.sever(a.transport);
      await waitFor('A to notice the loss', () => !a.bus.ready || a.bus.stats.reconnects > 0, timeout);
      await waitFor('A to be ready again', () => a.bus.ready && a.bus.stats.reconnects > 0, timeout);

      // A change made on B while A may have been away reaches A through the resync.
      await b.bus.publishPresenceJoin('room', { userId: 'u2', userName: 'Bea' });
      await waitFor('Bea on A', () => a.bus.isUserInRoom('room', 'u2'), timeout);
      await a.bus.broadcastToRoom('room', { type: 'after-reconnect' });
      await waitFor('frame after reconnect on B', () => b.hub.frames('room', 'after-reconnect').length === 1, timeout);
      expect(b.bus.isUserInRoom('room', 'u1')).toBe(true);
    });

    describe('lifecycle', () => {
      it('publish before open and after close rejects (never throws): bus_unavailable, then stopped', { timeout }, async () => {
        const t = await bare(uniquePrefix('pubclose'));
        const early = publishOutcome(t);
        expect(early.threw).toBeUndefined();
        expect(await early.settled).toMatchObject({ code: 'bus_unavailable' });
        await t.open(new RecordingSink());
        await t.close();
        const late = publishOutcome(t);
        expect(late.threw).toBeUndefined();
        const error = await late.settled;
        expect(error).toBeInstanceOf(BusError);
        expect(error).toMatchObject({ code: 'stopped' });
      });

      it('open after close rejects with stopped, whether it was ever opened or not', { timeout }, async () => {
        const t = await bare(uniquePrefix('reopen'));
        await t.open(new RecordingSink());
        await t.close();
        await expect(t.open(new RecordingSink())).rejects.toMatchObject({ code: 'stopped' });
        const never = await bare(uniquePrefix('reopen'));
        await never.close();
        await expect(never.open(new RecordingSink())).rejects.toMatchObject({ code: 'stopped' });
      });

      it('a second open rejects, while opening and once open, and the first keeps working', { timeout }, async () => {
        const prefix = uniquePrefix('twice');
        const t = await bare(prefix);
        const sink = new RecordingSink();
        const other = new RecordingSink();
        const first = t.open(sink);
        const whileOpening = await t.open(other).then(
          () => undefined,
          (e: unknown) => e,
        );
        await first;
        const whileOpen = await t.open(other).then(
          () => undefined,
          (e: unknown) => e,
        );
        for (const error of [whileOpening, whileOpen]) {
          expect(error).toBeInstanceOf(BusError);
          expect(error).toMatchObject({ code: 'already_open' });
        }
        await harness.injectRaw(prefix, 'room', 'still-works');
        await waitFor('delivery to the first sink', () => sink.payloads().includes('still-works'), timeout);
        expect(other.received).toEqual([]);
        expect(sink.states).toEqual([]);
      });

      it('close during a pending open: open rejects with stopped, and nothing is delivered or reported', { timeout }, async () => {
        const prefix = uniquePrefix('abort');
        const t = await bare(prefix);
        const sink = new RecordingSink();
        const opening = t.open(sink).then(
          () => undefined,
          (e: unknown) => e,
        );
        await t.close();
        const error = await opening;
        expect(error).toBeInstanceOf(BusError);
        expect(error).toMatchObject({ code: 'stopped' });
        await harness.injectRaw(prefix, 'room', 'after-close');
        await expect(t.publish('room', 'after-close')).rejects.toMatchObject({ code: 'stopped' });
        await sleep(300);
        expect(sink.received).toEqual([]);
        expect(sink.states).toEqual([]);
      });

      it('a sink whose receive throws does not break later deliveries', { timeout }, async () => {
        const prefix = uniquePrefix('throwsink');
        const t = await bare(prefix);
        const sink = new RecordingSink();
        sink.failOn = (payload) => payload.startsWith('boom');
        await t.open(sink);
        for (let i = 0; i < 3; i++) await harness.injectRaw(prefix, 'room', `boom-${i}`);
        await harness.injectRaw(prefix, 'presence', 'after-1');
        await harness.injectRaw(prefix, 'room', 'after-2');
        await waitFor('deliveries after the throwing ones', () => sink.payloads().includes('after-2'), timeout);
        expect(sink.payloads()).toEqual(['boom-0', 'boom-1', 'boom-2', 'after-1', 'after-2']);
        expect(sink.states).toEqual([]);
      });

      it('close() twice, or twice at once, is fine', { timeout }, async () => {
        const t = await bare(uniquePrefix('close2'));
        await t.open(new RecordingSink());
        await expect(Promise.all([t.close(), t.close()])).resolves.toEqual([undefined, undefined]);
        await expect(t.close()).resolves.toBeUndefined();
        const never = await bare(uniquePrefix('close2'));
        await never.close();
        await never.close();
      });

      it('reports a lost and regained connection exactly once each, and nothing after close', { timeout }, async () => {
        const prefix = uniquePrefix('states');
        const t = await bare(prefix);
        const sink = new RecordingSink();
        await t.open(sink);
        await harness.sever(t);
        await waitFor('reconnecting', () => sink.count('reconnecting') > 0, timeout);
        await waitFor('connected again', () => sink.count('connected') > 0, timeout);
        await sleep(300); // a duplicate report would be here by now
        expect(sink.states.map((s) => s.state)).toEqual(['reconnecting', 'connected']);

        // Lost again, then closed while it is reconnecting: it must not report coming back.
        await harness.sever(t);
        await waitFor('reconnecting again', () => sink.count('reconnecting') > 1, timeout);
        await t.close();
        const reported = sink.states.length;
        const received = sink.received.length;
        await sleep(1_500); // longer than every harness's outage and retry delay
        await harness.injectRaw(prefix, 'room', 'after-close');
        await sleep(200);
        expect(sink.states).toHaveLength(reported);
        expect(sink.states.map((s) => s.state)).toEqual(['reconnecting', 'connected', 'reconnecting']);
        expect(sink.received).toHaveLength(received);
      });
    });
  });
}

/** A TransportSink that records; `failOn` makes receive throw for chosen payloads (after recording them). */
class RecordingSink implements TransportSink {
  readonly received: Array<{ stream: StreamKind; payload: string }> = [];
  readonly states: Array<{ state: TransportState; error?: Error }> = [];
  failOn: (payload: string) => boolean = () => false;

  receive(stream: StreamKind, payload: string): void {
    this.received.push({ stream, payload });
    if (this.failOn(payload)) throw new Error(`test sink refuses ${payload}`);
  }
  stateChanged(state: TransportState, error?: Error): void {
    this.states.push(error === undefined ? { state } : { state, error });
  }
  payloads(): string[] {
    return this.received.map((r) => r.payload);
  }
  count(state: TransportState): number {
    return this.states.filter((s) => s.state === state).length;
  }
}

/** Calls publish and separates a synchronous throw (a bug) from the promise's outcome. */
function publishOutcome(t: Transport): { threw: unknown; settled: Promise<unknown> } {
  try {
    const p = t.publish('room', 'x');
    return {
      threw: undefined,
      settled: p.then(
        () => 'resolved',
        (e: unknown) => e,
      ),
    };
  } catch (e) {
    return { threw: e, settled: Promise.resolve(undefined) };
  }
}
