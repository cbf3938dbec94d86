import { BrokerUnreachableError } from '@retrotro/bus-core';
import { RecordingHub, uniquePrefix, waitFor } from '@retrotro/bus-core/testing';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { PgBus, PgTransport, type PgBusOptions } from '../src/index.js';
import { DATABASE_URL, dropLargeTables } from './helpers.js';

const buses: PgBus[] = [];
const prefixes = new Set<string>();
afterEach(async () => {
  await Promise.allSettled(buses.splice(0).map((b) => b.stop()));
});
afterAll(() => dropLargeTables(prefixes));

function bus(options: Partial<PgBusOptions> & { prefix: string }) {
  prefixes.add(options.prefix);
  const hub = new RecordingHub();
  const b = new PgBus({ connectionString: DATABASE_URL, heartbeatMs: 200, ttlMs: 2_000, syncWindowMs: 300, ...options });
  buses.push(b);
  return { bus: b, hub, start: () => b.start(hub) };
}

describe('PgBus', () => {
  it('is a RelayBus over a PgTransport built from one options object', async () => {
    const prefix = uniquePrefix('pgbus');
    const a = bus({ prefix, podId: 'pod-a', probeIntervalMs: 1_000 });
    const b = bus({ prefix, podId: 'pod-b' });
    expect(a.bus.transport).toBeInstanceOf(PgTransport);
    expect(a.bus.transport.channels.byStream.room).toBe(`${prefix}_room`);
    expect(a.bus.podId).toBe('pod-a');
    await Promise.all([a.start(), b.start()]);
    await Promise.all([a.bus.whenReady(), b.bus.whenReady()]);

    await a.bus.publishPresenceJoin('r', { userId: 'u1', userName: 'Alice' });
    const text = '€'.repeat(10_000); // 30 000 bytes: more than one NOTIFY, so stored by reference
    expect(await a.bus.broadcastToRoom('r', { type: 'big', payload: { text } })).toEqual({ ok: true });
    await waitFor('the big frame on B', () => b.hub.frames('r', 'big').length === 1);
    expect((b.hub.frames('r', 'big')[0]!.payload as { text: string }).text).toBe(text);
    expect(b.bus.getRoomClients('r')).toEqual([{ userId: 'u1', userName: 'Alice' }]);
    expect(a.bus.stats.chunkedMessages).toBe(0);
    expect(a.bus.transport.stats.large).toMatchObject({ stored: 1 });
    expect(b.bus.transport.stats.large).toMatchObject({ read: 1, missing: 0 });
  });

  // A rolling upgrade from pods that chunk: a pod that stores large payloads by table still
  // reads their chunk frames (the pods that chunk do not read the table).
  it("reads the chunk frames of a pod with largePayloads 'chunks'", async () => {
    const prefix = uniquePrefix('upgrade');
    const old = bus({ prefix, podId: 'pod-old', largePayloads: 'chunks' });
    const now = bus({ prefix, podId: 'pod-new' });
    await Promise.all([old.start(), now.start()]);
    await Promise.all([old.bus.whenReady(), now.bus.whenReady()]);
    const text = 'y'.repeat(25_000);
    expect(await old.bus.broadcastToRoom('r', { type: 'big', payload: { text } })).toEqual({ ok: true });
    await waitFor('the big frame on the new pod', () => now.hub.frames('r', 'big').length === 1);
    expect((now.hub.frames('r', 'big')[0]!.payload as { text: string }).text).toBe(text);
    expect(old.bus.stats.chunkedMessages).toBe(1);
  });

  it('start() rejects with BrokerUnreachableError naming host and port when the database is down', async () => {
    const { start } = bus({ prefix: uniquePrefix('down'), connectionString: 'postgres://app:hunter2@127.0.0.1:1/db' });
    const error = await start().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(BrokerUnreachableError);
    expect((error as Error).message).toMatch(/127\.0\.0\.1:1/);
    expect((error as Error).message).not.toMatch(/hunter2/);
  });

  // Regression: with a full publish queue a chunked message was refused part by part, and
  // receiving pods logged "chunk without its first part". Now it goes whole or not at all.
  it.each(['chunks', 'table'] as const)(
    'sends a large message whole or refuses it whole when the publish queue is full (%s)',
    async (largePayloads) => {
      const prefix = uniquePrefix('whole');
      const a = bus({ prefix, podId: 'pod-a', maxQueuedMessages: 10, largePayloads });
      const b = bus({ prefix, podId: 'pod-b', largePayloads });
      await Promise.all([a.start(), b.start()]);
      await Promise.all([a.bus.whenReady(), b.bus.whenReady()]);
      const text = 'x'.repeat(20_000); // three NOTIFYs each
      const results = await Promise.all(Array.from({ length: 20 }, (_, i) => a.bus.broadcastToRoom('r', { type: 'big', payload: { i, text } })));
      const sent = results.flatMap((r, i) => (r.ok ? [i] : []));
      expect(sent.length).toBeGreaterThan(0);
      expect(sent.length).toBeLessThan(20); // the queue did refuse some
      await waitFor('every accepted message on B', () => b.hub.frames('r', 'big').length === sent.length);
      await new Promise((r) => setTimeout(r, 300));
      expect(b.hub.frames('r', 'big').map((f) => (f.payload as { i: number }).i)).toEqual(sent);
      expect(b.bus.stats.malformed.chunk).toBe(0);
    },
  );
});
