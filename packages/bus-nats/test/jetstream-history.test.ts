/**
 * JetStreamHistory against real JetStream: the shared server (unique prefixes, streams
 * deleted at the end) and test-owned servers for faults (no JetStream, outage, restart).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { connect, headers, nanos, type NatsConnection } from '@nats-io/transport-node';
import { BusError, BusUnavailableError, type TransportSink, type TransportState } from '@retrotro/bus-core';
import { decodeRoom, eventFrameJson, type AppendItem, type AppendOutcome } from '@retrotro/bus-core/internal';
import { sleep, TcpProxy, uniquePrefix, waitFor } from '@retrotro/bus-core/testing';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { epochOf } from '../src/jetstream-history.js';

/** A room's epoch: the stream's, then its genesis marker's sequence. */
const streamPart = (roomEpoch: string) => roomEpoch.split('.')[0];
const roomEpochOf = (h: { epoch: string }) => expect.stringMatching(new RegExp(`^${h.epoch}\\.\\d+$`));
import { HISTORY_COPY_HEADER, NatsTransport, historyStreamName, type NatsTransportOptions } from '../src/index.js';
import { SHARED_NATS_URL, TestNatsServer } from './helpers/nats-server.js';

interface Received {
  roomId: string;
  podId: string;
  offset: number;
  except?: string;
  payload: string;
}

class Sink implements TransportSink {
  readonly room: string[] = [];
  readonly states: TransportState[] = [];
  receive(stream: string, payload: string): void {
    if (stream === 'room') this.room.push(payload);
  }
  stateChanged(state: TransportState): void {
    this.states.push(state);
  }
  /** History envelopes received for a room, decoded. */
  history(roomId: string): Received[] {
    const out: Received[] = [];
    for (const p of this.room) {
      const d = decodeRoom(p);
      if (d.ok !== true) throw new Error(`bad envelope: ${p}`);
      const v = d.value as unknown as Received & { message: { payload: { offset: number } } };
      if (v.roomId !== roomId || typeof v.offset !== 'number') continue;
      expect(v.message.payload.offset).toBe(v.offset);
      out.push(v);
    }
    return out;
  }
}

const transports: NatsTransport[] = [];
const servers: TestNatsServer[] = [];
const proxies: TcpProxy[] = [];
const tempDirs: string[] = [];
/** Streams on the shared server to delete at the end. */
const sharedStreams = new Set<string>();
let admin: NatsConnection;
let jsm: JetStreamManager;

const LIMITS = { size: 1_000, ttlS: 3_600 };

async function openHistory(prefix: string, limits = LIMITS, options: Partial<NatsTransportOptions> = {}) {
  const servers = options.servers ?? SHARED_NATS_URL;
  if (servers === SHARED_NATS_URL) sharedStreams.add(historyStreamName(prefix));
  const t = new NatsTransport({ servers, prefix, history: true, reconnectTimeWaitMs: 100, ...options });
  transports.push(t);
  const sink = new Sink();
  await t.open(sink);
  await t.history!.open(limits);
  return { t, sink, h: t.history! };
}

function item(roomId: string, data: unknown, extra: Partial<Pick<AppendItem, 'id' | 'userId' | 'podId' | 'except'>> = {}): AppendItem {
  const { id, except, userId = 'u1', podId = 'pod-a' } = extra;
  const payload = JSON.stringify({ event: 'note', data, from: userId, ...(id !== undefined && { id }) });
  return {
    roomId,
    userId,
    podId,
    payload,
    ...(id !== undefined && { id }),
    ...(except !== undefined && { except }),
    frames: (offset) => [
      {
        stream: 'room',
        payload: `{"podId":${JSON.stringify(podId)},"roomId":${JSON.stringify(roomId)},"message":${eventFrameJson(payload, offset)}}`,
      },
    ],
  };
}

/** Polls an async check until it is true. */
async function until(what: string, check: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(50);
  }
}

async function jsServer(): Promise<TestNatsServer> {
  const dir = mkdtempSync(join(tmpdir(), 'bus-nats-js-'));
  tempDirs.push(dir);
  const server = await TestNatsServer.start(`jetstream { store_dir: "${dir}" }`);
  servers.push(server);
  return server;
}

beforeAll(async () => {
  admin = await connect({ servers: SHARED_NATS_URL });
  jsm = await jetstreamManager(admin);
});

afterEach(async () => {
  await Promise.allSettled(transports.splice(0).map((t) => t.close()));
});

afterAll(async () => {
  for (const name of sharedStreams) await jsm.streams.delete(name).catch(() => {});
  await admin.close();
  await Promise.allSettled(servers.map((s) => s.dispose()));
  await Promise.allSettled(proxies.map((p) => p.close()));
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
});

describe('the stream', () => {
  it('is created at open with the limits, once even when two pods open at the same time', async () => {
    const prefix = uniquePrefix('hcreate');
    const [a, b] = await Promise.all([openHistory(prefix), openHistory(prefix)]);
    const info = await jsm.streams.info(historyStreamName(prefix));
    expect(info.config.subjects).toEqual([`${prefix}.history.*`]);
    expect(info.config.max_msgs_per_subject).toBe(1_000);
    expect(info.config.max_age).toBe(nanos(3_600_000));
    expect(info.config.duplicate_window).toBe(nanos(3_600_000)); // min(ttl, 2 h)
    expect(info.config.discard).toBe('old');
    expect(info.config.storage).toBe('file');
    expect(a.h.epoch).toBe(b.h.epoch);
    expect(a.h.epoch).toBe(epochOf(info));
    expect(a.h.epoch).toMatch(/^[0-9a-f]{16}$/);
    // Each pod's live feed is one consumer, deleted when the pod closes (reads leave none).
    await a.h.read('r', 0, 10);
    expect((await jsm.streams.info(historyStreamName(prefix))).state.consumer_count).toBe(2);
    await Promise.all([a.t.close(), b.t.close()]);
    await until('the consumers to go', async () => (await jsm.streams.info(historyStreamName(prefix))).state.consumer_count === 0);
  });

  it('is opened after the transport, and refuses use once closed', async () => {
    const prefix = uniquePrefix('horder');
    sharedStreams.add(historyStreamName(prefix));
    const t = new NatsTransport({ servers: SHARED_NATS_URL, prefix, history: true });
    transports.push(t);
    await expect(t.history!.open(LIMITS)).rejects.toMatchObject({ code: 'not_started' });
    await expect(t.history!.append([item('r', 1)])).rejects.toMatchObject({ code: 'not_started' });
    await t.open(new Sink());
    await t.history!.open(LIMITS);
    await t.history!.open(LIMITS); // once is enough; again is harmless
    expect(new NatsTransport({ prefix }).history).toBeUndefined();
    await t.close();
    await expect(t.history!.append([item('r', 1)])).rejects.toMatchObject({ code: 'stopped' });
    await expect(t.history!.read('r', 0, 1)).rejects.toMatchObject({ code: 'stopped' });
  });

  it('is updated by an open with other limits, keeping its epoch', async () => {
    const prefix = uniquePrefix('hupdate');
    const a = await openHistory(prefix, { size: 50, ttlS: 86_400 });
    let info = await jsm.streams.info(historyStreamName(prefix));
    expect(info.config.max_msgs_per_subject).toBe(50);
    expect(info.config.duplicate_window).toBe(nanos(7_200_000));
    const b = await openHistory(prefix, { size: 20, ttlS: 600 });
    info = await jsm.streams.info(historyStreamName(prefix));
    expect(info.config.max_msgs_per_subject).toBe(20);
    expect(info.config.max_age).toBe(nanos(600_000));
    expect(info.config.duplicate_window).toBe(nanos(600_000));
    expect(b.h.epoch).toBe(a.h.epoch);
  });

  it('has a new epoch once deleted and made again; the same one for another transport', async () => {
    const prefix = uniquePrefix('hepoch');
    const a = await openHistory(prefix);
    await a.h.append([item('r', 1)]);
    const b = await openHistory(prefix);
    expect(b.h.epoch).toBe(a.h.epoch);
    expect(streamPart((await b.h.position('r')).epoch)).toBe(a.h.epoch);
    await Promise.all([a.t.close(), b.t.close()]);
    await jsm.streams.delete(historyStreamName(prefix));
    const c = await openHistory(prefix);
    expect(c.h.epoch).not.toBe(a.h.epoch);
    expect(await c.h.position('r')).toEqual({ offset: 0, epoch: roomEpochOf(c.h) });
  });

  it('is noticed when replaced under a running pod: new epoch, live feed on the new stream', async () => {
    const prefix = uniquePrefix('hreplace');
    const a = await openHistory(prefix);
    await a.h.append([item('r', 1), item('r', 2)]);
    await waitFor('two live events', () => a.sink.history('r').length === 2);
    const old = a.h.epoch;
    await jsm.streams.delete(historyStreamName(prefix));
    const b = await openHistory(prefix); // another pod makes it again
    expect(b.h.epoch).not.toBe(old);
    const page = await a.h.read('r', 0, 10); // a read notices the new stream
    expect(streamPart(page.epoch)).toBe(b.h.epoch);
    await waitFor('a takes the new epoch', () => a.h.epoch === b.h.epoch);
    const [o] = await b.h.append([item('r', 3)]);
    await waitFor('the new event on a', () => a.sink.history('r').length === 3);
    expect(a.sink.history('r')[2]!.offset).toBe(o!.offset);
  });
});

describe('append and read', () => {
  it('reads back what was appended, in order, with increasing offsets', async () => {
    const prefix = uniquePrefix('hread');
    const { h, sink } = await openHistory(prefix);
    expect(await h.position('room.1')).toEqual({ offset: 0, epoch: roomEpochOf(h) });
    const items = Array.from({ length: 30 }, (_, i) => item(i % 3 === 0 ? 'other' : 'room.1', i));
    const outcomes = await h.append(items);
    expect(outcomes).toHaveLength(30);
    for (const o of outcomes) {
      expect(o.duplicate).toBe(false);
      expect(streamPart(o.epoch)).toBe(h.epoch);
    }
    const mine = outcomes.filter((_, i) => i % 3 !== 0).map((o) => o.offset);
    for (let i = 1; i < mine.length; i++) expect(mine[i]).toBeGreaterThan(mine[i - 1]!);

    const page = await h.read('room.1', 0, 100);
    expect(streamPart(page.epoch)).toBe(h.epoch);
    expect(page.complete).toBe(true); // nothing was ever trimmed
    expect(page.newest).toBe(mine[mine.length - 1]);
    expect(page.events.map((e) => e.offset)).toEqual(mine);
    expect(page.events.map((e) => JSON.parse(e.payload).data)).toEqual(items.map((_, i) => i).filter((i) => i % 3 !== 0));
    expect(page.events[0]!.payload).toBe(items[1]!.payload);

    const tail = await h.read('room.1', mine[9]!, 5);
    expect(tail.complete).toBe(true);
    expect(tail.events.map((e) => e.offset)).toEqual(mine.slice(10, 15));
    const empty = await h.read('room.1', mine[mine.length - 1]!, 5);
    expect(empty).toMatchObject({ complete: true, events: [], newest: mine[mine.length - 1] });
    // An offset of another room, or above the newest: not a position of this room.
    expect((await h.read('room.1', outcomes[0]!.offset, 5)).complete).toBe(false);
    expect((await h.read('room.1', mine[mine.length - 1]! + 1000, 5)).complete).toBe(false);
    expect(await h.position('room.1')).toEqual({ offset: mine[mine.length - 1], epoch: roomEpochOf(h) });
    expect((await h.read('nobody', 0, 5)).events).toEqual([]);

    // The live feed gave the same events, in order, with except and pod id.
    await waitFor('the live events', () => sink.history('room.1').length === 20);
    const live = sink.history('room.1');
    expect(live.map((e) => e.offset)).toEqual(mine);
    expect(live[0]!.podId).toBe('pod-a');
  });

  it('carries pod, room and except through the live feed, whatever their characters', async () => {
    const prefix = uniquePrefix('hheaders');
    const { h, sink } = await openHistory(prefix);
    const podId = ' pod %41 é\u2028';
    const except = 'client 1|%';
    const [o] = await h.append([item('team.alpha_2E', 'x', { podId, except, userId: 'ü ser\n' })]);
    await waitFor('the event', () => sink.history('team.alpha_2E').length === 1);
    const [e] = sink.history('team.alpha_2E');
    expect(e).toMatchObject({ roomId: 'team.alpha_2E', podId, except, offset: o!.offset });
    expect((await h.read('team.alpha_2E', 0, 1)).events[0]!.offset).toBe(o!.offset);
  });

  it('delivers two pods appending at once into one room to every pod in offset order, each once', async () => {
    const prefix = uniquePrefix('hconc');
    const a = await openHistory(prefix);
    const b = await openHistory(prefix);
    const n = 500;
    const run = async (h: typeof a.h, pod: string) => {
      const all = [];
      for (let i = 0; i < n; i += 50) {
        all.push(h.append(Array.from({ length: 50 }, (_, j) => item('shared', `${pod}${i + j}`, { podId: pod }))));
      }
      return (await Promise.all(all)).flat();
    };
    const [oa, ob] = await Promise.all([run(a.h, 'a'), run(b.h, 'b')]);
    const offsets = new Set([...oa, ...ob].map((o) => o.offset));
    expect(offsets.size).toBe(2 * n);
    for (const { sink } of [a, b]) {
      await waitFor('all events live', () => sink.history('shared').length >= 2 * n, 20_000);
      const got = sink.history('shared').map((e) => e.offset);
      expect(got).toHaveLength(2 * n);
      for (let i = 1; i < got.length; i++) expect(got[i]).toBeGreaterThan(got[i - 1]!);
      expect(new Set(got)).toEqual(offsets);
    }
    const page = await a.h.read('shared', 0, 5_000);
    expect(page.events.map((e) => e.offset)).toEqual(a.sink.history('shared').map((e) => e.offset));
  });

  it('acks a retried id with the first offset and delivers it once', async () => {
    const prefix = uniquePrefix('hdup');
    const a = await openHistory(prefix);
    const [first] = await a.h.append([item('r', 'once', { id: 'm-1' })]);
    const again = await a.h.append([item('r', 'once', { id: 'm-1' }), item('r', 'other user', { id: 'm-1', userId: 'u2' })]);
    expect(again[0]).toEqual({ offset: first!.offset, epoch: roomEpochOf(a.h), duplicate: true });
    expect(again[1]!.duplicate).toBe(false);
    expect(again[1]!.offset).toBeGreaterThan(first!.offset);
    const [elsewhere] = await a.h.append([item('r2', 'once', { id: 'm-1' })]);
    expect(elsewhere!.duplicate).toBe(false);
    await waitFor('two events live in r', () => a.sink.history('r').length === 2);
    await sleep(200);
    expect(a.sink.history('r').map((e) => e.offset)).toEqual([first!.offset, again[1]!.offset]);
    expect((await a.h.read('r', 0, 10)).events).toHaveLength(2);
  });
});

describe('trimming', () => {
  it('keeps the newest `size` events of a room: complete only from a kept offset', async () => {
    const prefix = uniquePrefix('hsize');
    const { h } = await openHistory(prefix, { size: 10, ttlS: 3_600 });
    const outcomes = await h.append(Array.from({ length: 25 }, (_, i) => item('r', i)));
    const offsets = outcomes.map((o) => o.offset);
    const all = await h.read('r', 0, 100);
    expect(all.complete).toBe(false);
    expect(all.events.map((e) => e.offset)).toEqual(offsets.slice(15));
    const tail = await h.read('r', offsets[19]!, 100);
    expect(tail.complete).toBe(true);
    expect(tail.events.map((e) => e.offset)).toEqual(offsets.slice(20));
    const trimmed = await h.read('r', offsets[9]!, 100);
    expect(trimmed.complete).toBe(false);
    expect(trimmed.events.map((e) => e.offset)).toEqual(offsets.slice(15));
    expect(all.newest).toBe(offsets[24]);
  });

  it('a room first seen empty is complete from 0 while its marker stands, though other rooms were trimmed', async () => {
    const prefix = uniquePrefix('hgen');
    const { h } = await openHistory(prefix, { size: 3, ttlS: 3_600 });
    await h.append(Array.from({ length: 10 }, (_, i) => item('busy', i))); // trims room busy
    const seen = await h.position('fresh'); // a client joins the empty room: it gets offset 0
    expect(seen.offset).toBe(0);
    const outcomes = await h.append([item('fresh', 1), item('fresh', 2)]);
    const page = await h.read('fresh', 0, 10);
    expect(page).toMatchObject({ complete: true, epoch: seen.epoch, newest: outcomes[1]!.offset });
    expect(page.events.map((e) => e.offset)).toEqual(outcomes.map((o) => o.offset));
    expect(outcomes[0]!.epoch).toBe(seen.epoch);
    // Two more events trim the marker away (size 3): from 0 is no longer complete, the epoch stays.
    await h.append([item('fresh', 3), item('fresh', 4)]);
    const later = await h.read('fresh', 0, 10);
    expect(later).toMatchObject({ complete: false, epoch: seen.epoch });
    expect((await h.read('busy', 0, 10)).complete).toBe(false);
  });

  it('drops events older than the ttl', async () => {
    const prefix = uniquePrefix('hage');
    const { h } = await openHistory(prefix, { size: 100, ttlS: 1 });
    const outcomes = await h.append([item('r', 1), item('r', 2)]);
    expect((await h.read('r', 0, 10)).events).toHaveLength(2);
    await until('the events to age out', async () => (await h.position('r')).offset === 0);
    const before = outcomes[0]!.epoch;
    const page = await h.read('r', 0, 10);
    // The room's whole history aged out: it starts again under a new epoch (a new marker).
    expect(page).toMatchObject({ events: [], newest: 0 });
    expect(page.epoch).not.toBe(before);
    expect((await h.read('r', outcomes[0]!.offset, 10)).complete).toBe(false);
  });
});

describe('core copies for Go pods', () => {
  it('publishes each stored event on <prefix>.room, marked, for a plain core subscriber', async () => {
    const prefix = uniquePrefix('hgo');
    const { h } = await openHistory(prefix);
    const got: Array<{ data: string; marker: string | undefined }> = [];
    const sub = admin.subscribe(`${prefix}.room`, {
      callback: (_e, m) => {
        got.push({ data: m.string(), marker: m.headers?.get(HISTORY_COPY_HEADER) });
      },
    });
    await admin.flush();
    const it1 = item('r', 'hello <go>', { id: 'x' });
    const [o] = await h.append([it1]);
    await h.append([item('r', 'hello <go>', { id: 'x' })]); // a duplicate: no second copy
    await waitFor('the copy', () => got.length === 1);
    await sleep(200);
    sub.unsubscribe();
    expect(got).toHaveLength(1);
    expect(got[0]!.marker).toBe('1');
    expect(got[0]!.data).toBe(it1.frames(o!.offset)[0]!.payload);
    const env = JSON.parse(got[0]!.data);
    expect(env).toMatchObject({ podId: 'pod-a', roomId: 'r', message: { type: 'event', payload: { data: 'hello <go>', offset: o!.offset } } });
  });

  it('NatsTransport drops marked core room messages and keeps unmarked ones', async () => {
    const prefix = uniquePrefix('hdrop');
    const t = new NatsTransport({ servers: SHARED_NATS_URL, prefix });
    transports.push(t);
    const sink = new Sink();
    await t.open(sink);
    const marked = headers();
    marked.set(HISTORY_COPY_HEADER, '1');
    admin.publish(`${prefix}.room`, '{"podId":"go","roomId":"r","message":{"type":"event","payload":{"n":1}}}', { headers: marked });
    admin.publish(`${prefix}.room`, '{"podId":"go","roomId":"r","message":{"type":"event","payload":{"n":2}}}');
    await waitFor('the unmarked message', () => sink.room.length >= 1);
    await sleep(100);
    expect(sink.room).toEqual(['{"podId":"go","roomId":"r","message":{"type":"event","payload":{"n":2}}}']);
  });
});

describe('faults', () => {
  it('refuses to open on a server without JetStream, naming HISTORY_SIZE=0', async () => {
    const server = await TestNatsServer.start();
    servers.push(server);
    const t = new NatsTransport({ servers: server.url, prefix: uniquePrefix('hnojs'), history: true });
    transports.push(t);
    await t.open(new Sink());
    const error = await t.history!.open(LIMITS).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(BusError);
    const message = (error as Error).message;
    expect(message).toContain(`nats://127.0.0.1:${server.port}`);
    expect(message).toMatch(/no JetStream/);
    expect(message).toContain('HISTORY_SIZE=0');
  });

  it('fails an append waiting for its PubAcks as soon as the connection is lost, not at its timeout', async () => {
    const proxy = await TcpProxy.start(Number(new URL(SHARED_NATS_URL.replace(/^nats:/, 'http:')).port || 4222));
    proxies.push(proxy);
    const prefix = uniquePrefix('hlost');
    sharedStreams.add(historyStreamName(prefix));
    const { h, sink } = await openHistory(prefix, LIMITS, { servers: `nats://127.0.0.1:${proxy.port}`, history: { ackTimeoutMs: 20_000 } });
    proxy.blackhole(); // the publish goes nowhere, no PubAck comes back
    const started = Date.now();
    const pending = h.append([item('r', 'in flight', { id: 'f1' })]).then(
      () => undefined,
      (e: unknown) => e,
    );
    await sleep(100);
    proxy.sever(); // now the client sees the connection go
    const error = await pending;
    expect(error).toMatchObject({ code: 'bus_unavailable' });
    expect(Date.now() - started).toBeLessThan(5_000);
    proxy.restore();
    await waitFor('connected again', () => sink.states.at(-1) === 'connected', 20_000);
  });

  it('rejects appends at once while disconnected, and the live feed resumes in order after a server restart', async () => {
    const server = await jsServer();
    const prefix = uniquePrefix('hrestart');
    const a = await openHistory(prefix, LIMITS, { servers: server.url });
    const b = await openHistory(prefix, LIMITS, { servers: server.url });
    const before = await a.h.append(Array.from({ length: 50 }, (_, i) => item('r', i)));
    await waitFor('the first events on b', () => b.sink.history('r').length === 50);
    const epoch = a.h.epoch;

    await server.kill();
    await waitFor('a to notice', () => a.sink.states.includes('reconnecting'), 20_000);
    const started = Date.now();
    await expect(a.h.append([item('r', 'lost')])).rejects.toBeInstanceOf(BusUnavailableError);
    expect(Date.now() - started).toBeLessThan(100);

    await server.restart();
    await waitFor('both connected again', () => a.sink.states.at(-1) === 'connected' && b.sink.states.at(-1) === 'connected', 30_000);
    // JetStream may need a moment after the restart: retry like a caller would.
    let after: AppendOutcome[] | undefined;
    const deadline = Date.now() + 30_000;
    while (!after) {
      after = await a.h.append(Array.from({ length: 50 }, (_, i) => item('r', 50 + i, { id: `after-${i}` }))).catch((e: unknown) => {
        if (Date.now() > deadline) throw e;
        return sleep(200).then(() => undefined);
      });
    }
    expect(after[0]!.offset).toBeGreaterThan(before[49]!.offset);
    for (const { sink } of [a, b]) {
      await waitFor('the events after the restart', () => sink.history('r').length >= 100, 30_000);
      const got = sink.history('r').map((e) => e.offset);
      expect(got).toEqual([...before, ...after].map((o) => o.offset));
    }
    expect(streamPart((await b.h.position('r')).epoch)).toBe(epoch);
    const page = await b.h.read('r', 0, 1_000);
    expect(page.events).toHaveLength(100);
    expect(page.complete).toBe(true);
    expect(streamPart(page.epoch)).toBe(epoch); // read() asks the server: the restarted stream kept its epoch
  });
});

describe('throughput', () => {
  it('appends and replays fast enough (warm, median of three)', async () => {
    const prefix = uniquePrefix('hperf');
    const { h, sink } = await openHistory(prefix, { size: 20_000, ttlS: 3_600 });
    const body = 'x'.repeat(200 - JSON.stringify({ event: 'note', data: '', from: 'u1' }).length);
    const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]!;
    const appendRun = async (n: number, room: string) => {
      const t0 = performance.now();
      const calls = [];
      for (let i = 0; i < n; i += 100) calls.push(h.append(Array.from({ length: 100 }, () => item(room, body))));
      await Promise.all(calls);
      return n / ((performance.now() - t0) / 1_000);
    };
    await appendRun(1_000, 'warm');
    const appendRates = [await appendRun(3_000, 'a1'), await appendRun(3_000, 'a2')];
    await waitFor('the live feed to catch up', () => sink.room.length === 7_000, 20_000);
    // 10,000 more, timing the live feed too (first append sent to last event delivered).
    const liveStart = performance.now();
    appendRates.push(await appendRun(10_000, 'perf'));
    await waitFor('the live feed to catch up', () => sink.room.length === 17_000, 20_000);
    const liveRate = 10_000 / ((performance.now() - liveStart) / 1_000);
    await h.read('warm', 0, 1_000);
    const rates: Record<string, number> = {};
    for (const count of [1_000, 10_000]) {
      const runs = [];
      for (let r = 0; r < 3; r++) {
        const t0 = performance.now();
        const page = await h.read('perf', 0, count);
        runs.push(count / ((performance.now() - t0) / 1_000));
        expect(page.events).toHaveLength(count);
      }
      rates[count] = median(runs);
    }
    const t0 = performance.now();
    for (let i = 0; i < 20; i++) await h.read('perf', (await h.position('perf')).offset - 3, 10);
    const smallReadMs = (performance.now() - t0) / 20;
    console.log(
      `JetStream history: append ${Math.round(median(appendRates))} events/s (200 B, calls of 100), live feed ${Math.round(liveRate)} events/s; replay ${Math.round(rates[1_000]!)} events/s (1,000), ${Math.round(rates[10_000]!)} events/s (10,000); position + read of 3: ${smallReadMs.toFixed(2)} ms`,
    );
    // Loose floor: the machine running the tests is shared; the numbers above are what counts.
    expect(rates[10_000]).toBeGreaterThan(20_000);
  });
});
