/**
 * History over the memory broker: offsets, delivery in offset order on every pod (the
 * publisher's included), idempotent ids, reads, retention, and history off.
 */
import { describe, expect, it } from 'vitest';
import { MemoryBroker, MemoryTransport, RelayBus, type Frame } from '../src/index.js';
import { RecordingHub, sleep, waitFor } from '../src/testing/index.js';
import { FAST, cleanup } from './support/memory-pods.js';

const HISTORY = { size: 100, ttlS: 3_600 };

async function pod(broker: MemoryBroker, podId: string, history = HISTORY) {
  const hub = new RecordingHub();
  const bus = new RelayBus({ transport: new MemoryTransport(broker, { history: true }), podId, history, ...FAST });
  cleanup.push(() => bus.stop());
  await bus.start(hub);
  await bus.whenReady();
  return { bus, hub };
}

const from = (userId: string) => ({ userId, userName: userId });
const offsets = (hub: RecordingHub, roomId = 'r') => hub.deliveries.filter((d) => d.roomId === roomId).map((d) => d.offset);
const payloadOf = (f: Frame) => f.payload as { event: string; data: { n: number }; offset: number; id?: string };

describe('history: offsets and order', () => {
  it('two pods publishing into one room at once: every pod gets the events in offset order, each once', async () => {
    const broker = new MemoryBroker();
    const a = await pod(broker, 'pod-a');
    const b = await pod(broker, 'pod-b');
    const results = await Promise.all(
      Array.from({ length: 200 }, (_, n) => (n % 2 ? a : b).bus.publishEvent('r', { event: 'note', data: { n }, from: from(`u${n % 2}`) })),
    );
    const assigned = results.map((r) => (r.ok ? r.offset : -1));
    expect(new Set(assigned).size).toBe(200);
    for (const p of [a, b]) {
      await waitFor('all 200 events', () => p.hub.deliveries.length === 200);
      const seen = offsets(p.hub) as number[];
      expect(seen).toEqual([...seen].sort((x, y) => x - y));
      expect(new Set(seen).size).toBe(200);
      // The frame carries its offset, and json is the frame's bytes (RecordingHub checks it).
      for (const d of p.hub.deliveries) expect(payloadOf(d.frame).offset).toBe(d.offset);
    }
  });

  it('the sender is skipped on its own pod only, and the publisher pod delivers from the feed', async () => {
    const broker = new MemoryBroker();
    const a = await pod(broker, 'pod-a');
    const b = await pod(broker, 'pod-b');
    const r = await a.bus.publishEvent('r', { event: 'note', data: { n: 1 }, from: from('alice') }, 'client-1');
    expect(r).toEqual({ ok: true, offset: 1, duplicate: false });
    await waitFor('on both pods', () => a.hub.deliveries.length === 1 && b.hub.deliveries.length === 1);
    expect(a.hub.deliveries[0]).toMatchObject({ roomId: 'r', exceptClientId: 'client-1', offset: 1 });
    expect(b.hub.deliveries[0]!.exceptClientId).toBeUndefined();
  });
});

describe('history: ids, reads and retention', () => {
  it('a retry with an id already stored is acknowledged with the original offset and delivered to nobody again', async () => {
    const broker = new MemoryBroker();
    const a = await pod(broker, 'pod-a');
    const b = await pod(broker, 'pod-b');
    const event = { event: 'card', data: { n: 7 }, from: from('alice'), id: 'c-1' };
    const first = await a.bus.publishEvent('r', event);
    await a.bus.publishEvent('r', { event: 'other', data: { n: 8 }, from: from('bob') });
    const retry = await b.bus.publishEvent('r', event); // reconnected elsewhere, sent again
    expect(first).toEqual({ ok: true, offset: 1, duplicate: false });
    expect(retry).toEqual({ ok: true, offset: 1, duplicate: true });
    await sleep(50);
    expect(b.hub.deliveries.map((d) => payloadOf(d.frame).event)).toEqual(['card', 'other']);
    // Another user may use the same id.
    expect(await b.bus.publishEvent('r', { ...event, from: from('bob') })).toMatchObject({ duplicate: false, offset: 3 });
    expect(a.bus.stats.historyWrites + b.bus.stats.historyWrites).toBe(3);
    expect(b.bus.stats.historyDuplicates).toBe(1);
  });

  it('reads events after an offset; complete turns false once events were trimmed', async () => {
    const broker = new MemoryBroker();
    const a = await pod(broker, 'pod-a', { size: 10, ttlS: 3_600 });
    for (let n = 1; n <= 25; n++) await a.bus.publishEvent('r', { event: 'e', data: { n }, from: from('u'), id: `i${n}` });
    const all = await a.bus.readHistory('r', 0, 100);
    expect(all.complete).toBe(false);
    expect(all.newest).toBe(25);
    expect(all.events.map((e) => e.offset)).toEqual([16, 17, 18, 19, 20, 21, 22, 23, 24, 25]);
    expect(JSON.parse(all.events[0]!.payload)).toEqual({ event: 'e', data: { n: 16 }, from: from('u'), id: 'i16' });
    const recent = await a.bus.readHistory('r', 20, 2);
    expect(recent).toMatchObject({ complete: true, newest: 25 });
    expect(recent.events.map((e) => e.offset)).toEqual([21, 22]);
    expect(await a.bus.historyPosition('r')).toEqual({ offset: 25, epoch: all.epoch });
    expect(await a.bus.historyPosition('empty')).toEqual({ offset: 0, epoch: all.epoch });
  });

  it('a trimmed id is an id no more: history decides what counts as a retry', async () => {
    const broker = new MemoryBroker();
    const a = await pod(broker, 'pod-a', { size: 2, ttlS: 3_600 });
    await a.bus.publishEvent('r', { event: 'e', data: 1, from: from('u'), id: 'old' });
    await a.bus.publishEvent('r', { event: 'e', data: 2, from: from('u') });
    await a.bus.publishEvent('r', { event: 'e', data: 3, from: from('u') });
    expect(await a.bus.publishEvent('r', { event: 'e', data: 1, from: from('u'), id: 'old' })).toMatchObject({ duplicate: false, offset: 4 });
  });
});

describe('history: off, and failures', () => {
  it('history off: events relay at once with a null offset, and readHistory rejects', async () => {
    const broker = new MemoryBroker();
    const hubA = new RecordingHub();
    const a = new RelayBus({ transport: new MemoryTransport(broker), podId: 'pod-a', ...FAST });
    cleanup.push(() => a.stop());
    await a.start(hubA);
    expect(a.historyEnabled).toBe(false);
    expect(await a.publishEvent('r', { event: 'e', data: 1, from: from('u'), id: 'x' }, 'c1')).toEqual({ ok: true, offset: null, duplicate: false });
    expect(hubA.deliveries).toEqual([
      { roomId: 'r', frame: { type: 'event', payload: { event: 'e', data: 1, from: from('u'), id: 'x' } }, exceptClientId: 'c1' },
    ]);
    await expect(a.readHistory('r', 0, 10)).rejects.toThrow(/history is off/);
    expect(await a.historyPosition('r')).toBeNull();
  });

  it('refuses a history size without a store, and fails retryably while cut off', async () => {
    expect(() => new RelayBus({ transport: new MemoryTransport(), history: HISTORY })).toThrow(/keeps no history/);
    const broker = new MemoryBroker();
    const transport = new MemoryTransport(broker, { history: true });
    const bus = new RelayBus({ transport, podId: 'pod-a', history: HISTORY, ...FAST });
    cleanup.push(() => bus.stop());
    await bus.start(new RecordingHub());
    transport.sever();
    const r = await bus.publishEvent('r', { event: 'e', data: 1, from: from('u'), id: 'x' });
    expect(r).toMatchObject({ ok: false, retryable: true });
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    transport.restore();
    expect(await bus.publishEvent('r', { event: 'e', data: cyclic, from: from('u') })).toMatchObject({ ok: false, retryable: false });
  });
});

describe('history: events too large for the broker', () => {
  it('are refused before they are stored (not retryable), and smaller ones still go', async () => {
    const broker = new MemoryBroker();
    const bus = new RelayBus({
      transport: new MemoryTransport(broker, { history: true, maxPayloadBytes: 1_000 }),
      podId: 'pod-a',
      history: HISTORY,
      ...FAST,
    });
    cleanup.push(() => bus.stop());
    await bus.start(new RecordingHub());
    await bus.whenReady();
    const big = await bus.publishEvent('r', { event: 'e', data: 'x'.repeat(2_000), from: from('u') });
    expect(big).toMatchObject({ ok: false, retryable: false });
    expect((await bus.historyPosition('r'))?.offset).toBe(0);
    expect(await bus.publishEvent('r', { event: 'e', data: 'small', from: from('u') })).toMatchObject({ ok: true, offset: 1 });
  });
});
