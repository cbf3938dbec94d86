/**
 * History, acks and recovery (CONTRACT section 8) with real server processes and real
 * WebSocket clients, run once per bus type. Every suite has its own BUS_PREFIX (tables or
 * stream of its own) and its own rooms.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { TcpProxy } from '@retrotro/bus-core/testing';
import { type Client, ClientPool, sleep, startPod, uniqueBusPrefix, waitUntil, type Frame, type Pod } from './pods.js';

const DATABASE_URL = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const NATS_URL = process.env.NATS_URL?.split(',')[0] ?? 'nats://127.0.0.1:4222';

let rooms = 0;
const room = () => `hist-${process.pid}-${Date.now().toString(36)}-${rooms++}`;
const WAIT = 20_000;

interface Position {
  offset: number;
  epoch: string;
}

const events = (c: Client, from = 0) => c.frames.slice(from).filter((f) => f.type === 'event');
const offsetsOf = (frames: Frame[]) => frames.map((f) => f.payload.offset as number);
const dataOf = (frames: Frame[]) => frames.map((f) => f.payload.data);

/** Joins with `since` and waits for room_state. */
async function rejoin(c: Client, roomId: string, since: Position | undefined): Promise<Frame> {
  const from = c.frames.length;
  c.send('join_room', since ? { roomId, since } : { roomId });
  return c.next('room_state', (f) => f.payload.roomId === roomId, WAIT, from);
}

/** Publishes with an id and waits for its ack (or error). */
async function publishAcked(c: Client, event: string, data: unknown, id: string): Promise<Frame> {
  const from = c.frames.length;
  c.send('publish', { event, data, id });
  return c.next('ack', (f) => f.payload.id === id, WAIT, from).catch(async () => c.next('error', (f) => f.payload.id === id, 1, from));
}

/** The position after the last event a client saw (what an SDK would keep). */
function lastPosition(c: Client, state: Frame): Position {
  const seen = events(c);
  const offset = Math.max(state.payload.position.offset as number, ...offsetsOf(seen).filter((o) => Number.isFinite(o)));
  return { offset, epoch: state.payload.position.epoch as string };
}

export function describeHistory(busType: 'postgres' | 'nats' | 'memory') {
  const multiPod = busType !== 'memory';
  describe(`history and recovery over ${busType}`, () => {
    const prefix = uniqueBusPrefix(`${busType}_hist`);
    const env = { BUS_TYPE: busType, BUS_PREFIX: prefix };
    const pods: Pod[] = [];
    const proxies: TcpProxy[] = [];
    const clients = new ClientPool();
    const connect = clients.connect;
    const pod = async (more: Record<string, string> = {}) => {
      const p = await startPod({ ...env, ...more });
      pods.push(p);
      return p;
    };
    afterAll(async () => {
      clients.dropAll();
      await Promise.all(pods.map((p) => p.kill()));
      await Promise.all(proxies.map((p) => p.close()));
    });

    it('acks a publish with an id once, with its offset; events carry offsets and ids; a retry is not delivered again', async () => {
      const r = room();
      const a = await pod();
      const b = multiPod ? await pod() : a;
      const alice = await connect(a, 'alice');
      const bob = await connect(b, 'bob');
      const state = await alice.join(r);
      expect(state.payload.position).toEqual({ offset: 0, epoch: expect.any(String) });
      await bob.join(r);
      const ack1 = await publishAcked(alice, 'card', { n: 1 }, 'id-1');
      const ack2 = await publishAcked(alice, 'card', { n: 2 }, 'id-2');
      expect(ack1.type).toBe('ack');
      expect(ack2.payload.offset).toBeGreaterThan(ack1.payload.offset);
      const retry = await publishAcked(alice, 'card', { n: 1 }, 'id-1');
      expect(retry.payload).toEqual({ id: 'id-1', offset: ack1.payload.offset });
      alice.send('publish', { event: 'note', data: { n: 3 } }); // no id: no ack
      await waitUntil('three events on bob', () => events(bob).length >= 3, WAIT);
      await sleep(300);
      const got = events(bob);
      expect(dataOf(got)).toEqual([{ n: 1 }, { n: 2 }, { n: 3 }]);
      expect(got[0]!.payload).toMatchObject({ event: 'card', id: 'id-1', offset: ack1.payload.offset, from: { userName: 'alice' } });
      expect(alice.of('ack')).toHaveLength(3);
      expect(events(alice)).toEqual([]); // the sender does not get its own events
    });

    it('a client that reconnects with since gets exactly what it missed, in order, then live events', async () => {
      const r = room();
      const a = await pod();
      const b = multiPod ? await pod() : a;
      const alice = await connect(a, 'alice');
      await alice.join(r);
      let bob = await connect(b, 'bob', { userId: 'bob-h' });
      const first = await bob.join(r);
      for (let i = 0; i < 5; i++) await publishAcked(alice, 'n', i, `a${i}`);
      await waitUntil('five events', () => events(bob).length === 5, WAIT);
      const position = lastPosition(bob, first);
      bob.terminate();
      for (let i = 5; i < 12; i++) await publishAcked(alice, 'n', i, `a${i}`);
      bob = await connect(a, 'bob', { userId: 'bob-h' }); // the other pod
      const state = await rejoin(bob, r, position);
      expect(state.payload.recovered).toBe(true);
      await waitUntil('the seven missed events', () => events(bob).length >= 7, WAIT);
      for (let i = 12; i < 15; i++) await publishAcked(alice, 'n', i, `a${i}`);
      await waitUntil('live events after the replay', () => events(bob).length >= 10, WAIT);
      await sleep(300);
      expect(dataOf(events(bob))).toEqual([5, 6, 7, 8, 9, 10, 11, 12, 13, 14]);
      const offs = offsetsOf(events(bob));
      expect(offs).toEqual([...offs].sort((x, y) => x - y));
      expect(offs[0]).toBeGreaterThan(position.offset);
    });

    it('says recovered: false for another epoch, a since above the newest offset, or a since older than the history', async () => {
      const r = room();
      const a = await pod({ HISTORY_SIZE: '5' });
      const alice = await connect(a, 'alice');
      const state = await alice.join(r);
      const epoch = state.payload.position.epoch as string;
      const acked: number[] = [];
      for (let i = 0; i < 12; i++) acked.push((await publishAcked(alice, 'n', i, `x${i}`)).payload.offset as number);
      const bob = await connect(a, 'bob');
      for (const since of [
        { offset: 0, epoch: 'not-the-epoch' },
        { offset: 10_000, epoch },
        { offset: 1, epoch }, // trimmed: only the newest 5 are kept
      ]) {
        const from = bob.frames.length;
        const s = await rejoin(bob, r, since);
        expect(s.payload.recovered, JSON.stringify(since)).toBe(false);
        expect(s.payload.position.epoch).toBe(epoch);
        await sleep(100);
        expect(events(bob, from)).toEqual([]);
      }
      // Regression: after a join that could not be recovered, live events flow again (the
      // offset the client had seen under another epoch or above the newest is forgotten).
      const after = (await publishAcked(alice, 'n', 'after', 'x-after')).payload.offset as number;
      await bob.next('event', (f) => f.payload.data === 'after', WAIT);
      // A since within the history (the 11th event) is recovered: the 12th and the last follow.
      const from = bob.frames.length;
      const s = await rejoin(bob, r, { offset: acked[10]!, epoch });
      expect(s.payload.recovered).toBe(true);
      await waitUntil('two replayed events', () => events(bob, from).length === 2, WAIT);
      expect(offsetsOf(events(bob, from))).toEqual([acked[11], after]);
    });

    it('serves GET /api/rooms/{id}/history and answers POST publish with its offset', async () => {
      const r = room();
      const a = await pod({ API_KEY: 'k' });
      const alice = await connect(a, 'alice');
      await alice.join(r);
      const acked = await publishAcked(alice, 'card', { text: '<b>' }, 'h1');
      const headers = { authorization: 'Bearer k', 'content-type': 'application/json' };
      const posted = await fetch(a.url(`/api/rooms/${r}/publish`), { method: 'POST', headers, body: JSON.stringify({ event: 'srv', data: 1 }) });
      expect(posted.status).toBe(202);
      const { offset } = (await posted.json()) as { offset: number };
      expect(offset).toBeGreaterThan(acked.payload.offset);
      const res = await fetch(a.url(`/api/rooms/${r}/history?since=0&limit=10`), { headers });
      expect(res.status).toBe(200);
      const body = (await res.json()) as { epoch: string; offset: number; events: Array<Record<string, unknown>> };
      expect(body.offset).toBe(offset);
      expect(body.events).toEqual([
        { offset: acked.payload.offset, event: 'card', data: { text: '<b>' }, from: expect.objectContaining({ userName: 'alice' }), id: 'h1' },
        { offset, event: 'srv', data: 1, from: { userId: 'server', userName: 'server' } },
      ]);
      expect((await fetch(a.url(`/api/rooms/${r}/history?limit=0`), { headers })).status).toBe(400);
      expect((await fetch(a.url(`/api/rooms/${r}/history`), {})).status).toBe(401);
    });

    it('HISTORY_SIZE=0: no offsets, no position, acks with a null offset', async () => {
      const r = room();
      const a = await pod({ HISTORY_SIZE: '0' });
      const alice = await connect(a, 'alice');
      const bob = await connect(a, 'bob');
      const state = await alice.join(r);
      expect(state.payload.position).toBeNull();
      await bob.join(r);
      const ack = await publishAcked(alice, 'card', 1, 'z1');
      expect(ack.payload).toEqual({ id: 'z1', offset: null });
      const e = await bob.next('event');
      expect(e.payload).toEqual({ event: 'card', data: 1, from: expect.any(Object), id: 'z1' });
      const s = await rejoin(bob, r, { offset: 0, epoch: 'x' });
      expect(s.payload.recovered).toBe(false);
    });

    it('refuses a bad id or since with bad_message, carrying the id', async () => {
      const r = room();
      const a = await pod();
      const alice = await connect(a, 'alice');
      await alice.join(r);
      alice.send('publish', { event: 'x', data: 1, id: 'has space' });
      const err = await alice.next('error', (f) => f.payload.id === 'has space');
      expect(err.payload).toMatchObject({ code: 'bad_message', retryable: false });
      alice.send('join_room', { roomId: r, since: { offset: -1, epoch: 'e' } });
      expect((await alice.next('error', (f) => /since/.test(f.payload.message))).payload.code).toBe('bad_message');
    });

    if (!multiPod) return;

    it('every pod restarted: an acknowledged event is still replayed', async () => {
      const r = room();
      const a = await pod();
      const b = await pod();
      const alice = await connect(a, 'alice');
      await alice.join(r);
      const bob = await connect(b, 'bob', { userId: 'bob-r' });
      const state = await bob.join(r);
      const position = lastPosition(bob, state);
      bob.terminate();
      const acked = await publishAcked(alice, 'card', 'kept', 'keep-1');
      await a.kill();
      await b.kill();
      const c = await pod();
      const bob2 = await connect(c, 'bob', { userId: 'bob-r' });
      const s = await rejoin(bob2, r, position);
      expect(s.payload.recovered).toBe(true);
      const replayed = await bob2.next('event');
      expect(replayed.payload).toMatchObject({ data: 'kept', id: 'keep-1', offset: acked.payload.offset });
    });

    it("SIGKILL of the receiver's pod mid-stream: it rejoins on the other pod and gets every event once, in order", async () => {
      const r = room();
      const a = await pod();
      const b = await pod();
      const alice = await connect(a, 'alice');
      await alice.join(r);
      const bob = await connect(b, 'bob', { userId: 'bob-k' });
      const state = await bob.join(r);
      const n = 200;
      const acks: Array<Promise<Frame>> = [];
      for (let i = 0; i < n; i++) {
        acks.push(publishAcked(alice, 'n', i, `k${i}`));
        if (i === 60) {
          await waitUntil('some events on bob', () => events(bob).length > 10, WAIT);
          await b.kill(); // mid-stream
        }
      }
      expect((await Promise.all(acks)).every((f) => f.type === 'ack')).toBe(true);
      const before = events(bob);
      const bob2 = await connect(a, 'bob', { userId: 'bob-k' });
      const s2 = await rejoin(bob2, r, lastPosition(bob, state));
      expect(s2.payload.recovered).toBe(true);
      await waitUntil('the rest of the events', () => events(bob2).at(-1)?.payload.data === n - 1, WAIT);
      await sleep(300);
      // What the first socket got, then what the second one got: every event once, in order.
      expect([...dataOf(before), ...dataOf(events(bob2))]).toEqual([...Array(n).keys()]);
    });

    it('broker lost while publishing: nothing acknowledged is lost, the rest get retryable errors', async () => {
      const r = room();
      const target = new URL(busType === 'postgres' ? DATABASE_URL : NATS_URL);
      const proxy = await TcpProxy.start(Number(target.port), target.hostname);
      proxies.push(proxy);
      const urlVar = busType === 'postgres' ? 'DATABASE_URL' : 'NATS_URL';
      target.hostname = '127.0.0.1';
      target.port = String(proxy.port);
      const a = await pod({ [urlVar]: target.toString() });
      const b = await pod();
      const alice = await connect(a, 'alice');
      const state = await alice.join(r);
      const n = 120;
      for (let i = 0; i < n; i++) {
        alice.send('publish', { event: 'n', data: i, id: `c${i}` });
        if (i === 40) proxy.sever(1_000); // pod A loses its broker mid-burst, for a second
        if (i % 10 === 0) await sleep(20);
      }
      const answers = () => alice.frames.filter((f) => (f.type === 'ack' || f.type === 'error') && typeof f.payload.id === 'string');
      await waitUntil('an ack or an error for each publish', () => answers().length >= n, 60_000);
      await sleep(300);
      const outcomes = answers();
      expect(new Set(outcomes.map((f) => f.payload.id)).size).toBe(n); // exactly one answer each
      expect(outcomes).toHaveLength(n);
      for (const f of outcomes.filter((o) => o.type === 'error')) expect(f.payload).toMatchObject({ code: 'relay_failed', retryable: true });
      const acked = outcomes.filter((o) => o.type === 'ack').map((o) => Number((o.payload.id as string).slice(1)));
      expect(acked.length).toBeGreaterThan(0);
      // A client that comes back with a position before them gets every acknowledged event, once, in order.
      const carol = await connect(b, 'carol');
      const s = await rejoin(carol, r, { offset: 0, epoch: state.payload.position.epoch });
      expect(s.payload.recovered).toBe(true);
      await waitUntil('the replay', () => acked.every((i) => dataOf(events(carol)).includes(i)), WAIT);
      const got = dataOf(events(carol)) as number[];
      expect(new Set(got).size).toBe(got.length);
      expect(offsetsOf(events(carol))).toEqual([...offsetsOf(events(carol))].sort((x, y) => x - y));
    });

    it('a 20 KB event is stored and relayed whole', async () => {
      const r = room();
      const a = await pod();
      const b = await pod();
      const alice = await connect(a, 'alice');
      await alice.join(r);
      const bob = await connect(b, 'bob');
      await bob.join(r);
      const text = 'é€'.repeat(5_000);
      await publishAcked(alice, 'big', { text }, 'big-1');
      const e = await bob.next('event', (f) => f.payload.event === 'big', WAIT);
      expect(e.payload.data.text).toBe(text);
    });

    it('two publishers on two pods at once: one strictly increasing order, the same on every socket', async () => {
      const r = room();
      const a = await pod();
      const b = await pod();
      const alice = await connect(a, 'alice');
      const bob = await connect(b, 'bob');
      const carol = await connect(a, 'carol');
      const dan = await connect(b, 'dan');
      for (const c of [alice, bob, carol, dan]) await c.join(r);
      const n = 150;
      for (let i = 0; i < n; i++) {
        alice.send('publish', { event: 'a', data: i, id: `a-${i}` });
        bob.send('publish', { event: 'b', data: i, id: `b-${i}` });
      }
      for (const c of [carol, dan]) await waitUntil(`${2 * n} events`, () => events(c).length >= 2 * n, 60_000);
      await sleep(300);
      const orderCarol = offsetsOf(events(carol));
      expect(orderCarol).toHaveLength(2 * n);
      expect(orderCarol).toEqual([...orderCarol].sort((x, y) => x - y));
      expect(new Set(orderCarol).size).toBe(2 * n);
      expect(offsetsOf(events(dan))).toEqual(orderCarol);
      // Each publisher's own events in the order it sent them.
      expect(
        events(carol)
          .filter((e) => e.payload.event === 'a')
          .map((e) => e.payload.data),
      ).toEqual([...Array(n).keys()]);
    });
  });
}
