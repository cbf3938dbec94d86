import { BrokerUnreachableError } from '@retrotro/bus-core';
import { RecordingHub, uniquePrefix, waitFor } from '@retrotro/bus-core/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { PgBus, PgTransport, type PgBusOptions } from '../src/index.js';
import { DATABASE_URL } from './helpers.js';

const buses: PgBus[] = [];
afterEach(async () => {
  await Promise.allSettled(buses.splice(0).map((b) => b.stop()));
});

function bus(options: Partial<PgBusOptions> & { prefix: string }) {
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
    const text = '€'.repeat(10_000); // 30 000 bytes: more than one NOTIFY, so chunked
    expect(await a.bus.broadcastToRoom('r', { type: 'big', payload: { text } })).toEqual({ ok: true });
    await waitFor('the big frame on B', () => b.hub.frames('r', 'big').length === 1);
    expect((b.hub.frames('r', 'big')[0]!.payload as { text: string }).text).toBe(text);
    expect(b.bus.getRoomClients('r')).toEqual([{ userId: 'u1', userName: 'Alice' }]);
    expect(a.bus.stats.chunkedMessages).toBe(1);
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
  it('sends a chunked message whole or refuses it whole when the publish queue is full', async () => {
    const prefix = uniquePrefix('whole');
    const a = bus({ prefix, podId: 'pod-a', maxQueuedMessages: 10 });
    const b = bus({ prefix, podId: 'pod-b' });
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
  });
});
