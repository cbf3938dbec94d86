import { BrokerUnreachableError, BusError, BusUnavailableError, MAX_PREFIX_LENGTH, PayloadTooLargeError, type StreamKind } from '@retrotro/bus-core';
import { sleep, uniquePrefix, waitFor } from '@retrotro/bus-core/testing';
import type { Client } from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Channels, PgTransport, type PgTransportOptions } from '../src/index.js';
import type { TcpProxy } from '@retrotro/bus-core/testing';
import { adminClient, backendsOf, DATABASE_URL, RecordingSink, silentServer, startPgProxy, terminate, viaProxy } from './helpers.js';

let admin: Client;
const transports: PgTransport[] = [];
const proxies: TcpProxy[] = [];

beforeAll(async () => {
  admin = await adminClient();
});
afterAll(async () => {
  await admin.end();
});
afterEach(async () => {
  await Promise.allSettled(transports.splice(0).map((t) => t.close()));
  await Promise.allSettled(proxies.splice(0).map((p) => p.close()));
});

/** Fast probes and retries so outages are noticed and healed within a test. */
const FAST: Partial<PgTransportOptions> = {
  probeIntervalMs: 200,
  probeTimeoutMs: 500,
  connectTimeoutMs: 1_000,
  backoff: { initialMs: 50, maxMs: 300 },
};

function transport(options: Partial<PgTransportOptions> = {}): PgTransport {
  const t = new PgTransport({ connectionString: DATABASE_URL, prefix: uniquePrefix('pgt'), ...FAST, ...options });
  transports.push(t);
  return t;
}

async function opened(options: Partial<PgTransportOptions> = {}) {
  const t = transport(options);
  const sink = new RecordingSink();
  await t.open(sink);
  return { t, sink };
}

async function notify(prefix: string, stream: StreamKind, payload: string): Promise<void> {
  await admin.query('SELECT pg_notify($1, $2)', [new Channels(prefix).byStream[stream], payload]);
}

async function proxied(options: Partial<PgTransportOptions> = {}) {
  const proxy = await startPgProxy();
  proxies.push(proxy);
  const { t, sink } = await opened({ connectionString: viaProxy(proxy), ...options });
  return { proxy, t, sink };
}

/** Delivery works end to end: a raw NOTIFY from outside reaches the sink, and our own publish too. */
async function expectDelivery(t: PgTransport, sink: RecordingSink, tag: string): Promise<void> {
  await notify(t.channels.prefix, 'room', `${tag}-from-outside`);
  await t.publish('room', `${tag}-own`);
  await waitFor(`${tag} deliveries`, () => sink.payloads('room').includes(`${tag}-from-outside`) && sink.payloads('room').includes(`${tag}-own`));
}

describe('configuration', () => {
  it('describes itself as a postgres transport that sends large payloads by table, or chunks them when asked', () => {
    const t = new PgTransport({ connectionString: 'postgres://app:s3cret@db.internal/retro', prefix: 'retrotro' });
    expect(t.kind).toBe('postgres');
    expect(t.maxPayloadBytes).toBe(16 * 1024 * 1024);
    expect(t.chunking).toBe(false);
    expect(t.channels.all).toEqual(['retrotro_room', 'retrotro_presence', 'retrotro_control', 'retrotro_chunk']);
    expect(t.channels.large).toBe('retrotro_large');
    expect(t.stats.large).toEqual({ stored: 0, read: 0, selects: 0, missing: 0, malformed: 0, swept: 0 });
    const chunks = new PgTransport({ connectionString: 'postgres://db/retro', largePayloads: 'chunks' });
    expect(chunks.maxPayloadBytes).toBe(7999);
    expect(chunks.chunking).toBe(true);
    expect(chunks.stats.large).toBeUndefined();
    expect(new PgTransport({ connectionString: 'postgres://db/retro', maxLargePayloadBytes: 1_000_000 }).maxPayloadBytes).toBe(1_000_000);
    expect(() => new PgTransport({ connectionString: 'postgres://db/retro', largePayloads: 'split' as 'table' })).toThrow(
      /largePayloads must be 'table' or 'chunks'/,
    );
    expect(() => new PgTransport({ connectionString: 'postgres://db/retro', largePayloadRetentionMs: 0 })).toThrow(/largePayloadRetentionMs/);
    // Password masked, default port made explicit.
    expect(t.target).toBe('postgres://app:****@db.internal:5432/retro');
    expect(new PgTransport({ connectionString: 'postgresql://app@[::1]:6543/x?password=s3cret' }).target).toBe(
      'postgresql://app@[::1]:6543/x?password=****',
    );
    // pg takes only URLs; anything else is refused, and never echoed (it could hold password=...).
    expect(() => new PgTransport({ connectionString: 'host=db user=app password=s3cret' })).toThrow(/must be a postgres:\/\//);
    try {
      new PgTransport({ connectionString: 'host=db user=app password=s3cret' });
    } catch (e) {
      expect((e as Error).message).not.toContain('s3cret');
    }
  });

  it('defaults the prefix to retrotro', () => {
    expect(new PgTransport({ connectionString: DATABASE_URL }).channels.byStream.presence).toBe('retrotro_presence');
  });

  it('applies clientConfig to its connections (here the user the URL does not name)', async () => {
    const url = new URL(DATABASE_URL);
    const user = url.username || 'postgres';
    url.username = '';
    const { t, sink } = await opened({ connectionString: url.toString(), clientConfig: { user } });
    await expectDelivery(t, sink, 'clientconfig');
    const refused = transport({ connectionString: url.toString(), clientConfig: { user: 'no_such_role_here' } });
    await expect(refused.open(new RecordingSink())).rejects.toThrow(/no_such_role_here/);
  });

  it('refuses a connection string that is neither a URL nor key=value pairs, saying what it expects', () => {
    for (const bad of ['base', 'db.example.com', 'mysql://x@y/z', 'host=h port=5432 dbname=d']) {
      expect(() => new PgTransport({ connectionString: bad }), bad).toThrow(/must be a postgres:\/\/ .*URL/);
    }
    for (const good of ['postgres://u@h:5432/d', 'postgresql://h/d']) {
      expect(() => new PgTransport({ connectionString: good }), good).not.toThrow();
    }
  });

  it("refuses prefixes that break bus-core's prefix rule (bad or truncated channel names)", () => {
    for (const bad of ['', 'a-b', 'a.b', 'a b', 'é', 'x;DROP']) {
      expect(() => new PgTransport({ connectionString: DATABASE_URL, prefix: bad })).toThrow(/letters, digits or underscores/);
    }
    const longest = 'p'.repeat(MAX_PREFIX_LENGTH);
    expect(new PgTransport({ connectionString: DATABASE_URL, prefix: longest }).channels.byStream.presence).toBe(`${longest}_presence`);
    expect(() => new PgTransport({ connectionString: DATABASE_URL, prefix: `${longest}p` })).toThrow(/at most 40/);
  });
});

describe('start-up', () => {
  it('rejects fast with BrokerUnreachableError naming host and port, never the password, when nothing listens', async () => {
    const t = transport({ connectionString: 'postgres://app:hunter2@127.0.0.1:1/db', connectTimeoutMs: 5_000 });
    const started = Date.now();
    const error = await t.open(new RecordingSink()).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(BrokerUnreachableError);
    const message = (error as Error).message;
    expect(message).toContain('127.0.0.1:1');
    expect(message).not.toContain('hunter2');
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it('rejects with BrokerUnreachableError when the server refuses the login, password masked', async () => {
    const t = transport({ connectionString: 'postgres://no_such_role:hunter2@127.0.0.1:5432/postgres' });
    const error = await t.open(new RecordingSink()).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(BrokerUnreachableError);
    const message = (error as Error).message;
    expect(message).toContain('127.0.0.1:5432');
    expect(message).toContain('no_such_role');
    expect(message).not.toContain('hunter2');
  });

  it('gives up on a server that accepts but never answers within connectTimeoutMs, leaving no socket behind', async () => {
    const silent = await silentServer();
    try {
      const t = transport({ connectionString: `postgres://app:hunter2@127.0.0.1:${silent.port}/db`, connectTimeoutMs: 500 });
      const started = Date.now();
      const error = await t.open(new RecordingSink()).catch((e: unknown) => e);
      const elapsed = Date.now() - started;
      expect(error).toBeInstanceOf(BrokerUnreachableError);
      expect((error as Error).message).toContain(`127.0.0.1:${silent.port}`);
      expect((error as Error).message).toContain('500 ms');
      expect((error as Error).message).not.toContain('hunter2');
      expect(elapsed).toBeGreaterThanOrEqual(450);
      expect(elapsed).toBeLessThan(5_000);
      await waitFor('sockets closed', () => silent.sockets() === 0);
    } finally {
      await silent.stop();
    }
  });

  it('can be opened again after a failed open', async () => {
    const proxy = await startPgProxy();
    proxies.push(proxy);
    proxy.sever();
    const t = transport({ connectionString: viaProxy(proxy) });
    await expect(t.open(new RecordingSink())).rejects.toBeInstanceOf(BrokerUnreachableError);
    proxy.restore();
    const sink = new RecordingSink();
    await t.open(sink);
    await expectDelivery(t, sink, 'second-open');
  });
});

describe('delivery', () => {
  it('maps every channel to its stream and delivers raw notifications from anyone', async () => {
    const { t, sink } = await opened();
    for (const stream of ['room', 'presence', 'control', 'chunk'] as const) await notify(t.channels.prefix, stream, `to-${stream}`);
    // A channel of another prefix is not ours.
    await admin.query('SELECT pg_notify($1, $2)', [`${t.channels.prefix}x_room`, 'not ours']);
    await waitFor('four notifications', () => sink.received.length >= 4);
    await sleep(100);
    expect(sink.received).toEqual([
      { stream: 'room', payload: 'to-room' },
      { stream: 'presence', payload: 'to-presence' },
      { stream: 'control', payload: 'to-control' },
      { stream: 'chunk', payload: 'to-chunk' },
    ]);
  });

  it('with largePayloads chunks: carries payloads up to 7999 UTF-8 bytes and refuses larger ones before sending', async () => {
    const { t, sink } = await opened({ largePayloads: 'chunks' });
    const fits = '€'.repeat(2666) + 'a'; // 2666 * 3 + 1 = 7999 bytes
    expect(Buffer.byteLength(fits)).toBe(7999);
    await t.publish('chunk', fits);
    const tooBig = '€'.repeat(2667); // 8001 bytes, though only 2667 characters
    await expect(t.publish('chunk', tooBig)).rejects.toBeInstanceOf(PayloadTooLargeError);
    await expect(t.publish('room', 'a\u0000b')).rejects.toThrow(/NUL/);
    await t.publish('chunk', 'after');
    await waitFor('both frames', () => sink.payloads('chunk').length === 2);
    expect(sink.payloads('chunk')).toEqual([fits, 'after']);
  });

  it('batches: 5000 publishes at once arrive in order, exactly once, in far fewer statements', async () => {
    const sender = await opened();
    const receiver = await opened({ prefix: sender.t.channels.prefix });
    const n = 5_000;
    const streams: StreamKind[] = ['room', 'presence', 'control', 'chunk'];
    const sent = Array.from({ length: n }, (_, i) => ({ stream: streams[i % 4]!, payload: JSON.stringify({ i, pad: 'x'.repeat(i % 300) }) }));
    const before = sender.t.stats.statements;
    await Promise.all(sent.map((m) => sender.t.publish(m.stream, m.payload)));
    const statements = sender.t.stats.statements - before;
    for (const { sink } of [receiver, sender]) {
      await waitFor(`${n} notifications`, () => sink.received.length >= n, 20_000);
    }
    await sleep(200); // a duplicate would have arrived by now
    expect(receiver.sink.received).toEqual(sent);
    expect(sender.sink.received).toEqual(sent);
    expect(statements).toBeLessThan(n / 5);
    expect(sender.t.stats.notifications).toBe(n);
    expect(sender.t.stats.failedStatements).toBe(0);
  });

  it('carries any text unchanged in a shared statement: quotes, backslashes, separators, non-ASCII, empty, lone surrogates', async () => {
    const sender = await opened();
    const receiver = await opened({ prefix: sender.t.channels.prefix });
    const plain = [
      '{"a":"b\\"c"}',
      '\\\\server\\share, with commas',
      '\\u0041 is not A',
      'tab\there, newline\nthere, \u0001 control',
      'emoji 🎉 and é',
      '[1,2,3]',
      'null',
      'lone \ud800 surrogate',
    ];
    // Each synchronous burst shares one statement; the second holds what the separator cannot
    // carry. (No payload twice in one burst: PostgreSQL folds identical NOTIFYs of a transaction.)
    const awkward = ['', 'record\u001eseparator', ...plain.map((p) => `${p} again`)];
    await Promise.all(plain.map((p) => sender.t.publish('room', p)));
    await Promise.all(awkward.map((p) => sender.t.publish('room', p)));
    const expected = [...plain, ...awkward].map((p) => p.replace('\ud800', '\ufffd'));
    await waitFor('all payloads', () => receiver.sink.received.length >= expected.length);
    await sleep(100);
    expect(receiver.sink.payloads('room')).toEqual(expected);
    expect(sender.t.stats.failedStatements).toBe(0);
  });

  it('keeps the publish queue bounded: beyond the limit publish rejects at once', async () => {
    const { t, sink } = await opened({ maxQueuedMessages: 10 });
    const results = await Promise.allSettled(Array.from({ length: 100 }, (_, i) => t.publish('room', `m${i}`)));
    const ok = results.filter((r) => r.status === 'fulfilled').length;
    const refused = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    expect(ok).toBe(10);
    expect(refused).toHaveLength(90);
    for (const r of refused) expect(r.reason).toMatchObject({ code: 'publish_failed', message: expect.stringMatching(/queue .* is full/) });
    expect(t.stats.queueFull).toBe(90);
    await waitFor('the accepted ten', () => sink.received.length === 10);
    expect(sink.payloads()).toEqual(Array.from({ length: 10 }, (_, i) => `m${i}`));

    const bytes = await opened({ maxQueuedBytes: 1_000 });
    const big = await Promise.allSettled(Array.from({ length: 10 }, () => bytes.t.publish('room', 'x'.repeat(400))));
    expect(big.map((r) => r.status)).toEqual(['fulfilled', 'fulfilled', ...Array(8).fill('rejected')]);
  });
});

describe('outages', () => {
  it('reconnects after its LISTEN backend is terminated, and delivers again', async () => {
    const { t, sink } = await opened();
    const { listener } = t.backendPids();
    await terminate(admin, listener);
    await waitFor('reconnecting', () => sink.count('reconnecting') === 1);
    expect(sink.states[0]!.error).toBeInstanceOf(Error);
    await waitFor('connected again', () => sink.count('connected') === 1);
    expect(t.backendPids().listener).not.toBe(listener);
    await expectDelivery(t, sink, 'after-listener-kill');
    expect(t.stats).toMatchObject({ losses: 1, reconnects: 1 });
  });

  it('reconnects after its publishing backend is terminated, and publishes again', async () => {
    const { t, sink } = await opened();
    const { publisher } = t.backendPids();
    await terminate(admin, publisher);
    await waitFor('reconnecting', () => sink.count('reconnecting') === 1);
    await waitFor('connected again', () => sink.count('connected') === 1);
    expect(t.backendPids().publisher).not.toBe(publisher);
    await expectDelivery(t, sink, 'after-publisher-kill');
  });

  it('survives a cut network: publish fails fast while down, reconnect with backoff, delivers again', async () => {
    const { proxy, t, sink } = await proxied();
    await expectDelivery(t, sink, 'before');
    proxy.sever();
    await waitFor('reconnecting', () => sink.count('reconnecting') === 1);
    // Down: publish rejects at once, nothing is queued.
    const started = Date.now();
    const results = await Promise.allSettled(Array.from({ length: 1_000 }, () => t.publish('room', 'while-down')));
    expect(Date.now() - started).toBeLessThan(1_000);
    expect(results.every((r) => r.status === 'rejected' && r.reason instanceof BusUnavailableError)).toBe(true);
    expect(t.queued.messages).toBe(0);
    // Refused reconnects keep being retried until the network is back.
    const accepted = proxy.attempts;
    await waitFor('several refused attempts', () => proxy.attempts >= accepted + 4);
    expect(sink.count('connected')).toBe(0);
    proxy.restore();
    await waitFor('connected again', () => sink.count('connected') === 1);
    await expectDelivery(t, sink, 'after');
  });

  it('notices a silently dead connection with its probe, and recovers when the network heals', async () => {
    const { proxy, t, sink } = await proxied();
    await expectDelivery(t, sink, 'before');
    proxy.blackhole(); // sockets stay open, no error, no FIN: only the probe can tell
    // Publishes made now wait on a dead connection; the queue stays bounded meanwhile.
    const limit = 10_000;
    const early = Array.from({ length: limit + 500 }, (_, i) => t.publish('room', `lost-${i}`).catch((e: unknown) => e));
    expect(t.queued.messages).toBeLessThanOrEqual(limit);
    await waitFor('probe to declare the connection dead', () => sink.count('reconnecting') === 1, 10_000);
    expect(sink.states[0]!.error?.message).toMatch(/no answer/);
    const outcomes = await Promise.all(early);
    expect(outcomes.every((o) => o instanceof BusError)).toBe(true);
    expect(outcomes.filter((o) => o instanceof BusUnavailableError).length).toBeGreaterThan(0);
    expect(t.queued.messages).toBe(0);
    // Reconnect attempts through the black hole time out; then the network heals.
    await sleep(1_500);
    expect(sink.count('connected')).toBe(0);
    proxy.restore();
    await waitFor('connected again', () => sink.count('connected') === 1, 10_000);
    await expectDelivery(t, sink, 'after');
    expect(sink.payloads().some((p) => p.startsWith('lost-'))).toBe(false);
  });
});

describe('close', () => {
  it('ends both connections, rejects later publishes and makes no callbacks afterwards', async () => {
    const { t, sink } = await opened();
    expect(await backendsOf(admin, t.instanceId)).toHaveLength(2);
    await t.close();
    await waitFor('backends gone', async () => (await backendsOf(admin, t.instanceId)).length === 0 || undefined);
    await expect(t.publish('room', 'late')).rejects.toMatchObject({ code: 'stopped' });
    const before = sink.received.length;
    await notify(t.channels.prefix, 'room', 'after-close');
    await sleep(200);
    expect(sink.received).toHaveLength(before);
    expect(sink.states).toEqual([]);
    await t.close(); // idempotent
    await expect(t.open(new RecordingSink())).rejects.toMatchObject({ code: 'stopped' });
  });

  it('stops reconnecting when closed during an outage', async () => {
    const { proxy, t, sink } = await proxied();
    proxy.sever();
    await waitFor('reconnecting', () => sink.count('reconnecting') === 1);
    await t.close();
    const attempts = proxy.attempts;
    await sleep(1_000);
    expect(proxy.attempts).toBe(attempts);
    expect(sink.states).toEqual([{ state: 'reconnecting', error: expect.any(Error) }]);
  });

  it('closing while open() is still connecting aborts it', async () => {
    const silent = await silentServer();
    try {
      const t = transport({ connectionString: `postgres://postgres@127.0.0.1:${silent.port}/postgres`, connectTimeoutMs: 10_000 });
      const opening = t.open(new RecordingSink()).catch((e: unknown) => e);
      await waitFor('sockets opened', () => silent.sockets() === 2);
      await t.close();
      expect(await opening).toMatchObject({ code: 'stopped' });
      await waitFor('sockets closed', () => silent.sockets() === 0);
    } finally {
      await silent.stop();
    }
  });
});
