/**
 * Payloads above NOTIFY's limit, by table (large-payloads.ts), against the real database:
 * whole, in order with everything else, read back in batches, swept, and the ways it can go
 * wrong (a reference whose row is gone, a malformed one, the table dropped, the listener
 * killed with references pending).
 */
import { uniquePrefix, waitFor, type TcpProxy } from '@retrotro/bus-core/testing';
import type { Logger, StreamKind } from '@retrotro/bus-core';
import { escapeIdentifier, type Client } from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { PgTransport, type PgTransportOptions } from '../src/index.js';
import { LargePayloads } from '../src/large-payloads.js';
import { adminClient, DATABASE_URL, dropLargeTables, RecordingSink, terminate } from './helpers.js';

let admin: Client;
const transports: PgTransport[] = [];
const proxies: TcpProxy[] = [];
const prefixes = new Set<string>();

beforeAll(async () => {
  admin = await adminClient();
});
afterEach(async () => {
  await Promise.allSettled(transports.splice(0).map((t) => t.close()));
  await Promise.allSettled(proxies.splice(0).map((p) => p.close()));
});
afterAll(async () => {
  await admin.end();
  await dropLargeTables(prefixes);
});

const FAST: Partial<PgTransportOptions> = {
  probeIntervalMs: 200,
  probeTimeoutMs: 1_000,
  connectTimeoutMs: 2_000,
  backoff: { initialMs: 50, maxMs: 300 },
};

/** Warnings a transport logged. */
class Warnings {
  readonly lines: Array<{ detail: Record<string, unknown>; message: string }> = [];
  readonly logger: Logger = {
    debug: () => {},
    info: () => {},
    warn: (detail, message) => this.lines.push({ detail: detail as Record<string, unknown>, message: message ?? '' }),
    error: () => {},
  };
}

async function pod(prefix: string, options: Partial<PgTransportOptions> = {}) {
  prefixes.add(prefix);
  const warnings = new Warnings();
  const t = new PgTransport({ connectionString: DATABASE_URL, prefix, ...FAST, logger: warnings.logger, ...options });
  transports.push(t);
  const sink = new RecordingSink();
  await t.open(sink);
  return { t, sink, warnings };
}

const big = (tag: string, bytes = 30_000) => `${tag}:${'€'.repeat(Math.ceil(bytes / 3))}`;
const rows = async (prefix: string) =>
  Number((await admin.query<{ n: string }>(`SELECT count(*) AS n FROM ${escapeIdentifier(`${prefix}_large`)}`)).rows[0]!.n);

describe('large payloads by table', () => {
  it('cross whole, in order with small notifications on every stream, on the sending pod and another', async () => {
    const prefix = uniquePrefix('lp');
    const a = await pod(prefix);
    const b = await pod(prefix);
    const sent: Array<{ stream: StreamKind; payload: string }> = [];
    const streams: StreamKind[] = ['room', 'presence', 'control'];
    const publishes: Array<Promise<void>> = [];
    for (let i = 0; i < 60; i++) {
      const stream = streams[i % 3]!;
      const payload = i % 4 === 1 ? big(`${i}`) : `small-${i}`;
      sent.push({ stream, payload });
      publishes.push(a.t.publish(stream, payload));
    }
    // A unit of several (as the relay sends a chunked message): large and small together.
    const unit = [big('unit-0', 9_000), 'unit-1', big('unit-2', 12_000)];
    publishes.push(a.t.publishBatch('room', unit));
    for (const payload of unit) sent.push({ stream: 'room', payload });
    await Promise.all(publishes);
    for (const { sink } of [a, b]) {
      await waitFor('everything', () => sink.received.length === sent.length, 20_000);
      expect(sink.received).toEqual(sent);
    }
    const stored = sent.filter((s) => Buffer.byteLength(s.payload) > 7_999).length;
    expect(a.t.stats.large).toMatchObject({ stored, read: stored, missing: 0, malformed: 0 });
    expect(b.t.stats.large).toMatchObject({ stored: 0, read: stored, missing: 0 });
    // The sending pod resolves its own references from memory.
    expect(a.t.stats.large!.selects).toBe(0);
    // Read in batches: a burst of references shares its SELECTs.
    expect(b.t.stats.large!.selects).toBeLessThan(stored);
    expect(b.sink.payloads('chunk')).toEqual([]);
  });

  it('keep each publisher’s order under a burst of 400 from two pods', async () => {
    const prefix = uniquePrefix('lpburst');
    const a = await pod(prefix);
    const b = await pod(prefix);
    const c = await pod(prefix);
    const n = 200;
    await Promise.all([
      ...Array.from({ length: n }, (_, i) => a.t.publish('room', i % 2 ? big(`a${i}`, 10_240) : `a${i}`)),
      ...Array.from({ length: n }, (_, i) => b.t.publish('room', i % 2 ? `b${i}` : big(`b${i}`, 10_240))),
    ]);
    await waitFor('all 400 on c', () => c.sink.received.length === 2 * n, 30_000);
    const tags = c.sink.payloads('room').map((p) => p.split(':')[0]!);
    expect(new Set(tags).size).toBe(2 * n);
    expect(tags.filter((t) => t.startsWith('a'))).toEqual(Array.from({ length: n }, (_, i) => `a${i}`));
    expect(tags.filter((t) => t.startsWith('b'))).toEqual(Array.from({ length: n }, (_, i) => `b${i}`));
    expect(c.t.stats.large!.selects).toBeLessThan(c.t.stats.large!.read);
  });

  it('are stored in parts that each fit in a row: no TOAST, no compression, read back whole', async () => {
    const prefix = uniquePrefix('lpinline');
    const a = await pod(prefix);
    const b = await pod(prefix);
    let noise = '';
    while (noise.length < 10_240) noise += Math.random().toString(36).slice(2);
    // Incompressible ASCII, 3-byte characters, and surrogate pairs straddling every cut.
    const payloads = [noise, '€'.repeat(9_000), `a${'😀'.repeat(6_000)}`];
    for (const p of payloads) await a.t.publish('room', p);
    await waitFor('delivered', () => b.sink.received.length === 3);
    expect(b.sink.payloads('room')).toEqual(payloads);
    const table = escapeIdentifier(`${prefix}_large`);
    const { rows } = await admin.query<{ parts: number; widest: number; compressed: number; toast: string }>(
      `SELECT (SELECT count(*)::int FROM ${table}) AS parts,
              (SELECT max(octet_length(payload)) FROM ${table}) AS widest,
              (SELECT count(pg_column_compression(payload))::int FROM ${table}) AS compressed,
              (SELECT pg_relation_size(reltoastrelid) FROM pg_class WHERE oid = '${table}'::regclass) AS toast`,
    );
    const expected = payloads.reduce((n, p) => n + LargePayloads.split(p).length, 0);
    expect(rows[0]).toEqual({ parts: expected, widest: expect.any(Number), compressed: 0, toast: '0' });
    expect(rows[0]!.widest).toBeLessThanOrEqual(7_800);
  });

  it('split: parts of at most 7800 UTF-8 bytes that join back to the payload, never cutting a surrogate pair', () => {
    for (const payload of ['x'.repeat(7_800), 'x'.repeat(7_801), '€'.repeat(5_000), `${'a'.repeat(7_799)}😀b`, '😀'.repeat(4_000)]) {
      const parts = LargePayloads.split(payload);
      expect(parts.join('')).toBe(payload);
      for (const part of parts) {
        expect(Buffer.byteLength(part)).toBeLessThanOrEqual(7_800);
        expect(Buffer.from(part, 'utf8').toString('utf8')).toBe(part); // no lone surrogate
      }
    }
    expect(LargePayloads.split('x'.repeat(7_801)).map((p) => p.length)).toEqual([7_800, 1]);
    expect(LargePayloads.parse('room 0123456789abcdef0 2')).toEqual({ stream: 'room', key: '0123456789abcdef0', parts: 2 });
    for (const bad of ['room 0123456789abcdef0', 'room 0123456789abcdef0 0', 'chat 0123456789abcdef0 1', 'room KEY 1', 'room 0123456789abcdef0 1 x'])
      expect(LargePayloads.parse(bad)).toBeUndefined();
  });

  it('are swept from the table once older than the retention', async () => {
    const prefix = uniquePrefix('lpsweep');
    const a = await pod(prefix, { largePayloadRetentionMs: 300 });
    await Promise.all(Array.from({ length: 5 }, (_, i) => a.t.publish('room', big(`${i}`))));
    await waitFor('delivered', () => a.sink.received.length === 5);
    expect(await rows(prefix)).toBeGreaterThan(0);
    const parts = Array.from({ length: 5 }, (_, i) => LargePayloads.split(big(`${i}`)).length).reduce((x, y) => x + y, 0);
    await waitFor('swept', () => a.t.stats.large!.swept === parts, 10_000);
    expect(await rows(prefix)).toBe(0);
  });

  it('a reference whose row is gone is counted, logged, and does not hold up what follows; a malformed one too', async () => {
    const prefix = uniquePrefix('lpgone');
    const a = await pod(prefix);
    await a.t.publish('room', big('creates-the-table'));
    await waitFor('first', () => a.sink.received.length === 1);
    await admin.query('SELECT pg_notify($1, $2)', [`${prefix}_large`, 'room 0123456789abcdef0zz 1']);
    await admin.query('SELECT pg_notify($1, $2)', [`${prefix}_large`, 'not a reference']);
    await admin.query('SELECT pg_notify($1, $2)', [`${prefix}_room`, 'after']);
    await waitFor('after', () => a.sink.payloads('room').includes('after'));
    expect(a.sink.received.length).toBe(2);
    expect(a.t.stats.large).toMatchObject({ missing: 1, malformed: 1 });
    const messages = a.warnings.lines.map((l) => l.message).join('\n');
    expect(messages).toMatch(/swept before this pod read them/);
    expect(messages).toMatch(/malformed large-payload reference/);
  });

  it('the table dropped under running pods is created again, and large payloads flow again', async () => {
    const prefix = uniquePrefix('lpdrop');
    const a = await pod(prefix);
    const b = await pod(prefix);
    await a.t.publish('room', big('before'));
    await waitFor('before on b', () => b.sink.received.length === 1);
    await admin.query(`DROP TABLE ${escapeIdentifier(`${prefix}_large`)}`);
    // The statement that finds it gone fails (its publisher is told); the next one recreates it.
    const first = await a.t.publish('room', big('lost')).then(
      () => 'sent',
      (e: Error) => e.message,
    );
    if (first !== 'sent') expect(first).toMatch(/NOTIFY failed/);
    await a.t.publish('room', big('after'));
    await waitFor('after on b', () => b.sink.payloads('room').some((p) => p.startsWith('after:')));
    expect(b.t.stats.large!.missing).toBe(0);
    expect(await rows(prefix)).toBeGreaterThan(0);
  });

  it('a publisher without the right to create the table gets a clear error; small payloads still flow', async () => {
    const prefix = uniquePrefix('lpnoright');
    const role = `${prefix}_user`;
    await admin.query(`CREATE ROLE ${escapeIdentifier(role)} LOGIN`);
    try {
      const url = new URL(DATABASE_URL);
      url.username = role;
      const a = await pod(prefix, { connectionString: url.toString() });
      const refused = await a.t.publish('room', big('x')).catch((e: Error) => e);
      // From PostgreSQL 15 on, PUBLIC may not create in schema public; older servers allow it.
      const version = Number((await admin.query<{ server_version_num: string }>('SHOW server_version_num')).rows[0]!.server_version_num);
      if (version >= 150_000) expect(refused).toBeInstanceOf(Error);
      if (refused instanceof Error) {
        expect(refused.message).toMatch(new RegExp(`cannot create table ${prefix}_large`));
        expect(refused).toMatchObject({ code: 'publish_failed' });
      }
      await a.t.publish('room', 'small');
      await waitFor('small', () => a.sink.payloads('room').includes('small'));
    } finally {
      for (const t of transports.splice(0)) await t.close();
      await admin.query(`DROP TABLE IF EXISTS ${escapeIdentifier(`${prefix}_large`)}`);
      await admin.query(`DROP OWNED BY ${escapeIdentifier(role)}; DROP ROLE ${escapeIdentifier(role)}`);
    }
  });

  it('the listener killed while references are pending: the pod reconnects, and later large payloads arrive whole', async () => {
    const prefix = uniquePrefix('lpkill');
    const a = await pod(prefix);
    const b = await pod(prefix);
    const n = 300;
    const sending = Promise.allSettled(Array.from({ length: n }, (_, i) => a.t.publish('room', big(`${i}`, 10_240))));
    await waitFor('some arrived', () => b.sink.received.length > 0, 20_000);
    await terminate(admin, b.t.backendPids().listener);
    await sending;
    await waitFor('b reconnected', () => b.sink.count('connected') === 1, 20_000);
    await a.t.publish('room', big('after-reconnect'));
    await waitFor('after-reconnect on b', () => b.sink.payloads('room').some((p) => p.startsWith('after-reconnect:')), 20_000);
    // What arrived is in publish order, each once and whole.
    const tags = b.sink.payloads('room').map((p) => p.split(':')[0]!);
    const numbers = tags.filter((t) => t !== 'after-reconnect').map(Number);
    expect(numbers).toEqual([...numbers].sort((x, y) => x - y));
    expect(new Set(numbers).size).toBe(numbers.length);
    for (const p of b.sink.payloads('room')) expect(Buffer.byteLength(p)).toBeGreaterThan(10_000);
  });
});
