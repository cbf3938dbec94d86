import { BusError, BusUnavailableError, type HistoryLimits } from '@retrotro/bus-core';
import {
  ChunkAssembler,
  decodeRoom,
  historyEnvelope,
  parseChunk,
  splitIntoChunks,
  type AppendItem,
  type AppendOutcome,
} from '@retrotro/bus-core/internal';
import { sleep, uniquePrefix, waitFor, type TcpProxy } from '@retrotro/bus-core/testing';
import { escapeIdentifier, type Client } from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { PgTransport, type PgTransportOptions } from '../src/index.js';
import { adminClient, DATABASE_URL, RecordingSink, startPgProxy, terminate, viaProxy } from './helpers.js';

let admin: Client;
const transports: PgTransport[] = [];
const proxies: TcpProxy[] = [];
const prefixes = new Set<string>();

const LIMITS: HistoryLimits = { size: 1000, ttlS: 3600 };
const FAST: Partial<PgTransportOptions> = {
  probeIntervalMs: 200,
  probeTimeoutMs: 500,
  connectTimeoutMs: 1_000,
  publishTimeoutMs: 3_000,
  backoff: { initialMs: 50, maxMs: 300 },
};

beforeAll(async () => {
  admin = await adminClient();
});
afterEach(async () => {
  await Promise.allSettled(transports.splice(0).map((t) => t.close()));
  await Promise.allSettled(proxies.splice(0).map((p) => p.close()));
});
afterAll(async () => {
  for (const prefix of prefixes) {
    await admin.query(
      `DROP TABLE IF EXISTS ${escapeIdentifier(`${prefix}_history_events`)}, ${escapeIdentifier(`${prefix}_history_rooms`)}, ${escapeIdentifier(`${prefix}_large`)}; ` +
        `DROP FUNCTION IF EXISTS ${escapeIdentifier(`${prefix}_history_append`)}`,
    );
  }
  await admin.end();
});

function newPrefix(label: string): string {
  const prefix = uniquePrefix(label);
  prefixes.add(prefix);
  return prefix;
}

function transport(prefix: string, options: Partial<PgTransportOptions> = {}): PgTransport {
  const t = new PgTransport({ connectionString: DATABASE_URL, prefix, history: true, ...FAST, ...options });
  transports.push(t);
  return t;
}

/** A transport with history, connected and opened. */
async function pod(prefix: string, limits: HistoryLimits = LIMITS, options: Partial<PgTransportOptions> = {}) {
  const t = transport(prefix, options);
  const sink = new RecordingSink();
  await t.open(sink);
  await t.history!.open(limits);
  return { t, h: t.history!, sink };
}

let msgIds = 0;

/**
 * An item as the relay makes it: its history envelope, or (with `chunks`, the relay over a
 * transport with `largePayloads: 'chunks'`) its chunk frames when too large.
 */
function item(
  roomId: string,
  data: unknown,
  options: { userId?: string; id?: string; podId?: string; except?: string; chunks?: boolean } = {},
): AppendItem {
  const userId = options.userId ?? 'u1';
  const podId = options.podId ?? 'pod-a';
  const payload = JSON.stringify({ event: 'note', data, from: userId, ...(options.id === undefined ? {} : { id: options.id }) });
  const made: AppendItem = {
    roomId,
    userId,
    podId,
    payload,
    frames(offset) {
      const envelope = historyEnvelope({ roomId, podId, offset, payload, ...(options.except === undefined ? {} : { except: options.except }) });
      if (!options.chunks || Buffer.byteLength(envelope) <= 7_999) return [{ stream: 'room', payload: envelope }];
      return splitIntoChunks(podId, ++msgIds, 'room', envelope, 7_999).map((frame) => ({ stream: 'chunk' as const, payload: frame }));
    },
  };
  if (options.id !== undefined) made.id = options.id;
  return made;
}

/** Room envelopes a sink received (chunks put back together), decoded. */
function envelopes(
  sink: RecordingSink,
  roomId?: string,
): Array<{ roomId: string; offset: number; message: { type: string; payload: Record<string, unknown> }; raw: string }> {
  const assembler = new ChunkAssembler();
  const out = [];
  for (const { stream, payload } of sink.received) {
    let text: string | undefined;
    if (stream === 'room') text = payload;
    if (stream === 'chunk') {
      const header = parseChunk(payload);
      const result = header ? assembler.add(header) : undefined;
      if (result?.kind === 'complete') text = result.payload;
    }
    if (text === undefined) continue;
    const decoded = decodeRoom(text);
    if (decoded.ok !== true) throw new Error(`undecodable room envelope: ${text.slice(0, 100)}`);
    const env = decoded.value as unknown as { roomId: string; offset: number; message: { type: string; payload: Record<string, unknown> } };
    if (roomId === undefined || env.roomId === roomId) out.push({ ...env, raw: text });
  }
  return out;
}

async function tableNames(prefix: string): Promise<string[]> {
  const { rows } = await admin.query<{ tablename: string }>(`SELECT tablename FROM pg_tables WHERE tablename LIKE $1 ORDER BY 1`, [`${prefix}\\_%`]);
  return rows.map((r) => r.tablename);
}

function expectIncreasing(offsets: number[]): void {
  for (let i = 1; i < offsets.length; i++) {
    if (!(offsets[i]! > offsets[i - 1]!)) throw new Error(`offsets not strictly increasing at ${i}: ${offsets[i - 1]} then ${offsets[i]}`);
  }
}

describe('PgHistory', () => {
  it('is absent unless asked for', () => {
    expect(new PgTransport({ connectionString: DATABASE_URL }).history).toBeUndefined();
    expect(new PgTransport({ connectionString: DATABASE_URL, history: true }).history).toBeDefined();
  });

  it('creates its tables at open, concurrently from two transports without error, and again when they exist', async () => {
    const prefix = newPrefix('create');
    const a = transport(prefix);
    const b = transport(prefix);
    // Before the transports connect, too: open() has a connection of its own.
    await Promise.all([a.history!.open(LIMITS), b.history!.open(LIMITS), a.history!.open(LIMITS)]);
    expect(await tableNames(prefix)).toEqual([`${prefix}_history_events`, `${prefix}_history_rooms`]);
    await a.history!.open(LIMITS);
    expect(a.history!.tables).toEqual({ rooms: `${prefix}_history_rooms`, events: `${prefix}_history_events` });
  });

  it('refuses to work before open(limits), and refuses bad limits', async () => {
    const prefix = newPrefix('unopened');
    const t = transport(prefix);
    await t.open(new RecordingSink());
    await expect(t.history!.append([item('r', 1)])).rejects.toMatchObject({ code: 'not_started' });
    await expect(t.history!.read('r', 0, 10)).rejects.toMatchObject({ code: 'not_started' });
    await expect(t.history!.open({ size: 0, ttlS: 10 })).rejects.toMatchObject({ code: 'bad_argument' });
    await expect(t.history!.open({ size: 10, ttlS: 0 })).rejects.toMatchObject({ code: 'bad_argument' });
  });

  it('appends and reads back in order, with strictly increasing offsets and one epoch per room', async () => {
    const prefix = newPrefix('order');
    const { h, sink } = await pod(prefix);
    const outcomes: AppendOutcome[] = [];
    // Many concurrent calls (sockets) and a few multi-item calls share transactions.
    const calls: Promise<AppendOutcome[]>[] = [];
    for (let i = 0; i < 300; i++) calls.push(h.append(i % 50 === 0 ? [item('r1', `${i}a`), item('r1', `${i}b`)] : [item('r1', i)]));
    for (const c of await Promise.all(calls)) outcomes.push(...c);
    expect(outcomes).toHaveLength(306);
    expectIncreasing(outcomes.map((o) => o.offset));
    expect(new Set(outcomes.map((o) => o.epoch)).size).toBe(1);
    expect(outcomes.every((o) => !o.duplicate)).toBe(true);
    expect(h.stats.transactions).toBeLessThan(100);

    const page = await h.read('r1', 0, 1000);
    expect(page.complete).toBe(true);
    expect(page.epoch).toBe(outcomes[0]!.epoch);
    expect(page.newest).toBe(outcomes.at(-1)!.offset);
    expect(page.events.map((e) => e.offset)).toEqual(outcomes.map((o) => o.offset));
    expect(page.events.map((e) => JSON.parse(e.payload).data)).toEqual(
      Array.from({ length: 300 }, (_, i) => (i % 50 === 0 ? [`${i}a`, `${i}b`] : [i])).flat(),
    );
    // Paging: after an offset, at most limit.
    const middle = outcomes[100]!.offset;
    const next = await h.read('r1', middle, 5);
    expect(next.events.map((e) => e.offset)).toEqual(outcomes.slice(101, 106).map((o) => o.offset));
    expect(next.complete).toBe(true);
    expect(await h.position('r1')).toEqual({ offset: outcomes.at(-1)!.offset, epoch: outcomes[0]!.epoch });

    // The live feed: history envelopes in offset order, with the offset inside the frame too.
    await waitFor('live feed', () => envelopes(sink, 'r1').length === 306);
    const live = envelopes(sink, 'r1');
    expect(live.map((e) => e.offset)).toEqual(outcomes.map((o) => o.offset));
    expect(live.map((e) => e.message.payload.offset)).toEqual(outcomes.map((o) => o.offset));
    expect(live[0]!.message.type).toBe('event');
  });

  it("keeps every pod's live feed in offset order when two transports append into one room at once", async () => {
    const prefix = newPrefix('concurrent');
    const a = await pod(prefix);
    const b = await pod(prefix);
    const n = 500;
    const sends: Promise<AppendOutcome[]>[] = [];
    for (let i = 0; i < n; i++) {
      sends.push(a.h.append([item('shared', `a${i}`, { podId: 'pod-a', userId: 'ua' })]));
      sends.push(b.h.append([item('shared', `b${i}`, { podId: 'pod-b', userId: 'ub' })]));
      // And a little traffic elsewhere, so batches span rooms.
      if (i % 10 === 0)
        sends.push(a.h.append([item(`other${i % 3}`, i, { podId: 'pod-a' })]), b.h.append([item(`other${(i + 1) % 3}`, i, { podId: 'pod-b' })]));
    }
    const outcomes = (await Promise.all(sends)).flat();
    expect(new Set(outcomes.map((o) => `${o.epoch}/${o.offset}`)).size).toBe(outcomes.length);
    for (const { sink } of [a, b]) {
      await waitFor('both feeds', () => envelopes(sink, 'shared').length === 2 * n, 20_000);
      const offsets = envelopes(sink, 'shared').map((e) => e.offset);
      expectIncreasing(offsets);
      expect(new Set(offsets).size).toBe(2 * n);
    }
    // Both pods saw the same sequence, and history agrees.
    expect(envelopes(a.sink, 'shared').map((e) => e.raw)).toEqual(envelopes(b.sink, 'shared').map((e) => e.raw));
    const page = await a.h.read('shared', 0, 1000);
    expect(page.events.map((e) => e.offset)).toEqual(envelopes(a.sink, 'shared').map((e) => e.offset));
  });

  it('answers a repeated id with the original offset and notifies nothing', async () => {
    const prefix = newPrefix('dedupe');
    const { h, sink } = await pod(prefix);
    const [first] = await h.append([item('r', 'one', { id: 'm-1' })]);
    await h.append([item('r', 'two', { id: 'm-2' })]);
    await waitFor('two events', () => envelopes(sink, 'r').length === 2);
    const [again] = await h.append([item('r', 'one again', { id: 'm-1' })]);
    expect(again).toEqual({ offset: first!.offset, epoch: first!.epoch, duplicate: true });
    // Another user may use the same id; so may the same user in another room.
    const [other] = await h.append([item('r', 'other user', { id: 'm-1', userId: 'u2' })]);
    const [elsewhere] = await h.append([item('r2', 'other room', { id: 'm-1' })]);
    expect(other!.duplicate).toBe(false);
    expect(elsewhere!.duplicate).toBe(false);
    // Within one batch (a retry racing its original), and concurrently from two calls.
    const batch = await h.append([item('r', 'x', { id: 'm-3' }), item('r', 'y'), item('r', 'x again', { id: 'm-3' })]);
    expect(batch.map((o) => o.duplicate)).toEqual([false, false, true]);
    expect(batch[2]!.offset).toBe(batch[0]!.offset);
    const racing = await Promise.all([h.append([item('r', 'race', { id: 'm-4' })]), h.append([item('r', 'race', { id: 'm-4' })])]);
    expect(
      racing
        .flat()
        .map((o) => o.duplicate)
        .sort(),
    ).toEqual([false, true]);
    await sleep(200);
    const live = envelopes(sink, 'r');
    expect(live.map((e) => e.message.payload.data)).toEqual(['one', 'two', 'other user', 'x', 'y', 'race']);
    const page = await h.read('r', 0, 100);
    expect(page.events.map((e) => JSON.parse(e.payload).data)).toEqual(['one', 'two', 'other user', 'x', 'y', 'race']);
    expect(h.stats.duplicates).toBe(3);
  });

  it('never stores the same id twice when two transports append it at once', async () => {
    const prefix = newPrefix('dedupe2');
    const a = await pod(prefix);
    const b = await pod(prefix);
    const ids = Array.from({ length: 200 }, (_, i) => `id-${i}`);
    const results = await Promise.all([
      Promise.all(ids.map((id) => a.h.append([item('r', id, { id })]))),
      Promise.all(ids.map((id) => b.h.append([item('r', id, { id })]))),
    ]);
    for (let i = 0; i < ids.length; i++) {
      const x = results[0][i]![0]!;
      const y = results[1][i]![0]!;
      expect(x.offset).toBe(y.offset);
      expect([x.duplicate, y.duplicate].sort()).toEqual([false, true]);
    }
    const page = await a.h.read('r', 0, 1000);
    expect(page.events).toHaveLength(200);
  });

  it('trims by size: the newest `size` events stay, and complete says whether anything after `after` left', async () => {
    const prefix = newPrefix('size');
    const { h } = await pod(prefix, { size: 10, ttlS: 3600 });
    const offsets: number[] = [];
    for (let i = 1; i <= 25; i++) offsets.push((await h.append([item('r', i)]))[0]!.offset);
    const all = await h.read('r', 0, 100);
    expect(all.complete).toBe(false);
    expect(all.newest).toBe(offsets[24]);
    expect(all.events.length).toBeLessThanOrEqual(10);
    expect(all.events.map((e) => JSON.parse(e.payload).data)).toEqual([16, 17, 18, 19, 20, 21, 22, 23, 24, 25]);
    const recent = await h.read('r', offsets[19]!, 100);
    expect(recent.complete).toBe(true);
    expect(recent.events.map((e) => JSON.parse(e.payload).data)).toEqual([21, 22, 23, 24, 25]);
    // A batch larger than the window: delivered, only its newest `size` kept.
    await h.append(Array.from({ length: 30 }, (_, i) => item('r', 100 + i)));
    const after = await h.read('r', 0, 100);
    expect(after.events.map((e) => JSON.parse(e.payload).data)).toEqual(Array.from({ length: 10 }, (_, i) => 120 + i));
    const { rows } = await admin.query(`SELECT count(*)::int AS n FROM ${escapeIdentifier(`${prefix}_history_events`)}`);
    expect(rows[0].n).toBeLessThanOrEqual(11);
    // A batch larger than the window still recognises a stored id.
    const [kept] = await h.append([item('r', 'kept', { id: 'kept' })]);
    const big = await h.append([item('r', 'kept again', { id: 'kept' }), ...Array.from({ length: 15 }, (_, i) => item('r', 200 + i))]);
    expect(big[0]).toEqual({ offset: kept!.offset, epoch: kept!.epoch, duplicate: true });
    // An id whose event left the history is new again.
    const [old] = await h.append([item('r', 'idd', { id: 'k' })]);
    await h.append(Array.from({ length: 12 }, (_, i) => item('r', i)));
    const [reused] = await h.append([item('r', 'idd again', { id: 'k' })]);
    expect(reused!.duplicate).toBe(false);
    expect(reused!.offset).toBeGreaterThan(old!.offset);
  });

  it('trims by age: expired events are never read, complete is false, and the sweep deletes them', async () => {
    const prefix = newPrefix('age');
    const { h } = await pod(prefix, { size: 100, ttlS: 1 });
    for (let i = 0; i < 5; i++) await h.append([item('r', i)]);
    expect((await h.read('r', 0, 100)).events).toHaveLength(5);
    await sleep(1_200);
    const page = await h.read('r', 0, 100);
    expect(page.events).toEqual([]);
    expect(page.complete).toBe(false);
    expect(page.newest).toBe(5);
    const [fresh] = await h.append([item('r', 'fresh')]);
    const later = await h.read('r', 0, 100);
    expect(later.events.map((e) => e.offset)).toEqual([fresh!.offset]);
    expect(later.complete).toBe(false);
    expect((await h.read('r', 5, 100)).complete).toBe(true);
    // The sweep (every ttl/10, here 100 ms) deletes the rows and records the trim.
    const events = escapeIdentifier(`${prefix}_history_events`);
    await waitFor('sweep', async () => (await admin.query(`SELECT count(*)::int AS n FROM ${events} WHERE event_offset <= 5`)).rows[0].n === 0);
    const { rows } = await admin.query(`SELECT trimmed_through::int AS t FROM ${escapeIdentifier(`${prefix}_history_rooms`)} WHERE room_id = 'r'`);
    expect(rows[0].t).toBeGreaterThanOrEqual(5);
    expect((await h.read('r', 0, 100)).complete).toBe(false);
  });

  it("keeps a room's epoch across transports and restarts, from its first use, and changes it when history is lost", async () => {
    const prefix = newPrefix('epoch');
    const first = await pod(prefix);
    // Reading an unknown room gives it its epoch at once; its first event keeps it.
    const empty = await first.h.read('r', 0, 10);
    expect(empty).toMatchObject({ newest: 0, events: [], complete: true });
    expect(empty.epoch).toMatch(/^[0-9a-f]{16}$/);
    expect(await first.h.position('r')).toEqual({ offset: 0, epoch: empty.epoch });
    const [o] = await first.h.append([item('r', 1)]);
    expect(o!.epoch).toBe(empty.epoch);
    await first.t.close();

    const restarted = await pod(prefix);
    expect(await restarted.h.position('r')).toEqual({ offset: o!.offset, epoch: empty.epoch });
    expect(await restarted.h.position('unused')).toEqual({ offset: 0, epoch: (await restarted.h.position('unused')).epoch });

    // The room's row is lost: a new epoch, offsets start over, the old events are gone.
    await admin.query(`DELETE FROM ${escapeIdentifier(`${prefix}_history_rooms`)} WHERE room_id = 'r'`);
    const [after] = await restarted.h.append([item('r', 'after loss')]);
    expect(after!.epoch).not.toBe(empty.epoch);
    const page = await restarted.h.read('r', 0, 10);
    expect(page.epoch).toBe(after!.epoch);
    expect(page.events.map((e) => JSON.parse(e.payload).data)).toEqual(['after loss']);

    // The tables are dropped while pods run: the next append creates them again.
    await admin.query(`DROP TABLE ${escapeIdentifier(`${prefix}_history_events`)}, ${escapeIdentifier(`${prefix}_history_rooms`)}`);
    const [remade] = await restarted.h.append([item('r', 'after drop')]);
    expect(remade!.epoch).not.toBe(after!.epoch);
    expect(remade!.offset).toBe(1);
    // And so does the next read.
    await admin.query(`DROP TABLE ${escapeIdentifier(`${prefix}_history_events`)}, ${escapeIdentifier(`${prefix}_history_rooms`)}`);
    const reread = await restarted.h.read('r', 0, 10);
    expect(reread).toMatchObject({ newest: 0, events: [], complete: true });
    expect(reread.epoch).not.toBe(remade!.epoch);
  });

  it('delivers a 20 KB event whole (stored by reference in the transaction) and keeps it in history', async () => {
    const prefix = newPrefix('large');
    const { t, h, sink } = await pod(prefix);
    const other = await pod(prefix);
    const big = 'é'.repeat(10_000); // 20 000 UTF-8 bytes
    const [o] = await h.append([item('r', big)]);
    await h.append([item('r', 'small')]);
    for (const s of [sink, other.sink]) {
      await waitFor('both', () => envelopes(s, 'r').length === 2);
      const live = envelopes(s, 'r');
      expect(live[0]!.message.payload.data).toBe(big);
      expect(live[0]!.offset).toBe(o!.offset);
      expect(live[1]!.message.payload.data).toBe('small');
      expect(s.payloads('chunk')).toEqual([]);
    }
    expect(t.stats.large).toMatchObject({ stored: 1, read: 1, missing: 0 });
    const page = await h.read('r', 0, 10);
    expect(JSON.parse(page.events[0]!.payload).data).toBe(big);
  });

  it("with largePayloads 'chunks': delivers a 20 KB event whole as chunk frames in the transaction", async () => {
    const prefix = newPrefix('chunks');
    const { h, sink } = await pod(prefix, LIMITS, { largePayloads: 'chunks' });
    const big = 'é'.repeat(10_000);
    const [o] = await h.append([item('r', big, { chunks: true })]);
    await h.append([item('r', 'small', { chunks: true })]);
    await waitFor('both', () => envelopes(sink, 'r').length === 2);
    const live = envelopes(sink, 'r');
    expect(live[0]!.message.payload.data).toBe(big);
    expect(live[0]!.offset).toBe(o!.offset);
    expect(sink.payloads('chunk').length).toBeGreaterThanOrEqual(3);
  });

  it('rejects appends and reads at once with BusUnavailableError while the connection is down', async () => {
    const prefix = newPrefix('down');
    const proxy = await startPgProxy();
    proxies.push(proxy);
    const { t, h, sink } = await pod(prefix, LIMITS, { connectionString: viaProxy(proxy) });
    await h.append([item('r', 'before')]);
    proxy.sever();
    await waitFor('reconnecting', () => sink.count('reconnecting') === 1);
    await expect(h.append([item('r', 'while down')])).rejects.toBeInstanceOf(BusUnavailableError);
    await expect(h.read('r', 0, 10)).rejects.toBeInstanceOf(BusUnavailableError);
    await expect(h.position('r')).rejects.toBeInstanceOf(BusUnavailableError);
    proxy.restore();
    await waitFor('reconnected', () => t.connected, 10_000);
    await h.append([item('r', 'after')]);
    expect((await h.read('r', 0, 10)).events.map((e) => JSON.parse(e.payload).data)).toEqual(['before', 'after']);
    await t.close();
    await expect(h.append([item('r', 'closed')])).rejects.toMatchObject({ code: 'stopped' });
  });

  it('bounds the queue: beyond maxQueuedMessages append rejects at once with publish_failed', async () => {
    const prefix = newPrefix('queue');
    const { h } = await pod(prefix, LIMITS, { maxQueuedMessages: 50 });
    const calls = Array.from({ length: 200 }, (_, i) => h.append([item('r', i)]));
    const settled = await Promise.allSettled(calls);
    const refused = settled.filter((s) => s.status === 'rejected');
    expect(refused.length).toBeGreaterThan(0);
    for (const r of refused) expect((r as PromiseRejectedResult).reason).toMatchObject({ code: 'publish_failed' });
    expect((r0(refused).reason as Error).message).toMatch(/queue .* is full/);
  });

  it('never resolves an append that was not stored when its backend is killed mid-stream', async () => {
    const prefix = newPrefix('kill');
    const { t, h } = await pod(prefix, { size: 100_000, ttlS: 3600 });
    const resolved = new Map<number, number>(); // n -> offset
    let rejected = 0;
    const pending: Promise<void>[] = [];
    let stop = false;
    let n = 0;
    const writer = (async () => {
      // Appends keep coming without waiting for each other, so transactions are in flight.
      while (!stop) {
        for (let i = 0; i < 50; i++) {
          const k = n++;
          pending.push(
            h.append([item('r', k, { id: `k${k}` })]).then(
              ([o]) => void resolved.set(k, o!.offset),
              (e: unknown) => {
                expect(e).toBeInstanceOf(BusError);
                rejected++;
              },
            ),
          );
        }
        await sleep(2);
      }
    })();
    await waitFor('some appended', () => resolved.size > 500);
    // Best effort: kill it while a transaction is open (the next test makes sure of that case).
    const pid = t.backendPids().publisher;
    for (let tries = 0; tries < 200; tries++) {
      const { rows } = await admin.query(`SELECT state FROM pg_stat_activity WHERE pid = $1`, [pid]);
      if (rows[0]?.state !== 'idle') break;
    }
    await terminate(admin, pid);
    await waitFor('some refused', () => rejected > 0, 10_000);
    await waitFor('reconnected and appending again', () => t.connected && resolved.size > 1500, 15_000);
    stop = true;
    await writer;
    await Promise.all(pending);
    const page = await h.read('r', 0, 100_000);
    const stored = new Map(page.events.map((e) => [JSON.parse(e.payload).data as number, e.offset]));
    for (const [k, offset] of resolved) expect(stored.get(k)).toBe(offset);
    expectIncreasing(page.events.map((e) => e.offset));
  });

  it('rejects every item of a transaction whose connection dies mid-way, and stores none of them', async () => {
    const prefix = newPrefix('midway');
    const { t, h } = await pod(prefix);
    await h.append([item('r', 'first')]);
    // Hold the room's row lock from outside, so the next transaction stops inside the function.
    const blocker = await adminClient();
    try {
      await blocker.query('BEGIN');
      await blocker.query(`SELECT 1 FROM ${escapeIdentifier(`${prefix}_history_rooms`)} WHERE room_id = 'r' FOR UPDATE`);
      const pid = t.backendPids().publisher;
      const calls = Promise.allSettled([h.append([item('r', 'a1'), item('r', 'a2')]), h.append([item('r', 'b', { id: 'b' })])]);
      await waitFor('append waiting on the lock', async () => {
        const { rows } = await admin.query(`SELECT wait_event_type FROM pg_stat_activity WHERE pid = $1`, [pid]);
        return rows[0]?.wait_event_type === 'Lock';
      });
      await terminate(admin, pid);
      for (const outcome of await calls) {
        expect(outcome.status).toBe('rejected');
        expect((outcome as PromiseRejectedResult).reason).toBeInstanceOf(BusError);
        expect(((outcome as PromiseRejectedResult).reason as Error).message).toMatch(/nothing was stored/);
      }
    } finally {
      await blocker.query('ROLLBACK');
      await blocker.end();
    }
    await waitFor('reconnected', () => t.connected, 10_000);
    const [retry] = await h.append([item('r', 'b', { id: 'b' })]);
    expect(retry!.duplicate).toBe(false);
    const page = await h.read('r', 0, 10);
    expect(page.events.map((e) => JSON.parse(e.payload).data)).toEqual(['first', 'b']);
    expect(page.events.map((e) => e.offset)).toEqual([1, 2]);
  });

  it('open() names what failed: an unreachable database, or tables it may not create', async () => {
    const t = transport(newPrefix('unreach'), { connectionString: 'postgres://app:hunter2@127.0.0.1:1/db' });
    const error = await t.history!.open(LIMITS).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(BusError);
    expect((error as Error).message).toMatch(
      /^cannot reach postgres:\/\/app:\*\*\*\*@127\.0\.0\.1:1\/db to create history tables t.*_history_rooms, t.*_history_events: .*ECONNREFUSED/,
    );
    expect((error as Error).message).not.toContain('hunter2');

    const prefix = newPrefix('denied');
    const role = `${prefix}_role`;
    await admin.query(`CREATE ROLE ${escapeIdentifier(role)} LOGIN`);
    try {
      // Ordinary roles may not create in schema public (the default since PostgreSQL 15).
      const { rows } = await admin.query(`SELECT has_schema_privilege($1, 'public', 'CREATE') AS can`, [role]);
      if (rows[0].can) return;
      const url = new URL(DATABASE_URL);
      url.username = role;
      const denied = transport(prefix, { connectionString: url.toString() });
      const e2 = await denied.history!.open(LIMITS).catch((e: unknown) => e);
      expect(e2).toBeInstanceOf(BusError);
      expect((e2 as Error).message).toMatch(
        new RegExp(
          `^cannot create history tables ${prefix}_history_rooms, ${prefix}_history_events in postgres://.*127\\.0\\.0\\.1:5432/postgres: permission denied`,
        ),
      );
    } finally {
      await admin.query(`DROP ROLE ${escapeIdentifier(role)}`);
    }
  });
});

function r0(list: PromiseSettledResult<unknown>[]): PromiseRejectedResult {
  return list[0] as PromiseRejectedResult;
}
