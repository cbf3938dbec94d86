/**
 * The HTTP surface (CONTRACT sections 3, 6 and 7) against real server processes over
 * PostgreSQL: the server API (publish, participants), the demo page, health, readiness,
 * metrics and the dev-mode token route.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client, names, startPod, uniqueBusPrefix, waitUntil, type Frame, type Pod, ClientPool } from './support/pods.js';

const API_KEY = 'http-api-test-key';
const MAX_PAYLOAD = 4096;

let rooms = 0;
const room = () => `api-room-${rooms++}`;

const bearer = (key: string) => ({ authorization: `Bearer ${key}` });

function publish(pod: Pod, roomId: string, body: string, headers: Record<string, string> = bearer(API_KEY)) {
  return fetch(pod.url(`/api/rooms/${roomId}/publish`), {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body,
  });
}

async function participantsOf(pod: Pod, roomId: string): Promise<Array<{ userId: string; userName: string }>> {
  const res = await fetch(pod.url(`/api/rooms/${roomId}/participants`), { headers: bearer(API_KEY) });
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^application\/json/);
  const body = (await res.json()) as { participants: Array<{ userId: string; userName: string }> };
  return body.participants;
}

const serverEvents = (c: Client) => c.of('event').filter((f: Frame) => f.payload.from?.userId === 'server');

describe('server API on two pods over postgres (API_KEY set)', () => {
  const env = { BUS_TYPE: 'postgres', BUS_PREFIX: uniqueBusPrefix('httpapi'), API_KEY, WS_MAX_PAYLOAD: String(MAX_PAYLOAD) };
  let a: Pod;
  let b: Pod;
  const clients = new ClientPool();
  const connect = clients.connect;

  beforeAll(async () => {
    [a, b] = await Promise.all([startPod(env), startPod(env)]);
  });
  afterAll(async () => {
    clients.dropAll();
    await Promise.all([a?.stop(), b?.stop()]);
  });

  it('POST /api/rooms/{roomId}/publish reaches every socket of the room on both pods, from the server', async () => {
    const r = room();
    const alice = await connect(a, 'alice', { userId: 'alice-id' });
    const aliceTab2 = await connect(b, 'alice', { userId: 'alice-id' });
    const bob = await connect(b, 'bob');
    const elsewhere = await connect(a, 'eve');
    for (const c of [alice, aliceTab2, bob]) await c.join(r);
    await elsewhere.join(room());
    // Presence is cluster-wide once both pods list all users.
    for (const pod of [a, b]) await waitUntil('presence on both pods', async () => (await participantsOf(pod, r)).length === 2);

    const res = await publish(a, r, JSON.stringify({ event: 'announcement', data: { text: 'retro in 5 <min> & go' } }));
    expect(res.status, 'a 2xx answer').toBeGreaterThanOrEqual(200);
    expect(res.status, 'a 2xx answer').toBeLessThan(300);
    const res2 = await publish(b, r, JSON.stringify({ event: 'second' })); // data omitted: null
    expect(res2.ok).toBe(true);

    for (const c of [alice, aliceTab2, bob]) {
      await waitUntil('both server events', () => serverEvents(c).length >= 2);
    }
    await new Promise((res) => setTimeout(res, 300)); // room for duplicates to show up
    for (const c of [alice, aliceTab2, bob]) {
      const events = serverEvents(c).map((f) => f.payload);
      expect(events).toHaveLength(2);
      // History is on (the default): each event carries its offset.
      expect(events).toContainEqual({
        event: 'announcement',
        data: { text: 'retro in 5 <min> & go' },
        from: { userId: 'server', userName: 'server' },
        offset: expect.any(Number),
      });
      expect(events).toContainEqual({ event: 'second', data: null, from: { userId: 'server', userName: 'server' }, offset: expect.any(Number) });
    }
    expect(elsewhere.of('event')).toHaveLength(0);
  });

  it('answers 401 for a missing or wrong key, on both routes', async () => {
    const r = room();
    const body = JSON.stringify({ event: 'x', data: 1 });
    expect((await publish(a, r, body, {})).status).toBe(401);
    expect((await publish(a, r, body, bearer('wrong-key'))).status).toBe(401);
    expect((await publish(a, r, body, bearer(API_KEY + 'x'))).status).toBe(401);
    expect((await publish(a, r, body, { authorization: API_KEY })).status).toBe(401); // no Bearer scheme
    expect((await publish(a, r, body, { authorization: `Basic ${API_KEY}` })).status).toBe(401);
    const url = a.url(`/api/rooms/${r}/participants`);
    expect((await fetch(url)).status).toBe(401);
    expect((await fetch(url, { headers: bearer('wrong-key') })).status).toBe(401);
  });

  it('answers 400 for a body that is not JSON, has no event, or a bad room id', async () => {
    const r = room();
    const listener = await connect(a, 'listener');
    await listener.join(r);
    const bad = [
      'not json',
      '',
      '{"event": ',
      JSON.stringify({ data: 1 }),
      JSON.stringify({ event: '' }),
      JSON.stringify({ event: 42, data: 1 }),
      JSON.stringify(['event', 'data']),
      JSON.stringify('event'),
      'null',
    ];
    for (const body of bad) {
      const res = await publish(a, r, body);
      expect(res.status, `body ${JSON.stringify(body)}`).toBe(400);
      expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    }
    const ok = JSON.stringify({ event: 'x', data: 1 });
    for (const badRoom of ['bad%20room', 'a'.repeat(129), 'caf%C3%A9', 'x%2Fy', '%E0%A4%A']) {
      expect((await publish(a, badRoom, ok)).status, `room ${badRoom}`).toBe(400);
      const res = await fetch(a.url(`/api/rooms/${badRoom}/participants`), { headers: bearer(API_KEY) });
      expect(res.status, `participants of room ${badRoom}`).toBe(400);
    }
    // A room id of 128 allowed characters is fine.
    expect((await publish(a, 'A.b_c:d-' + 'z'.repeat(120), ok)).ok).toBe(true);
    // Nothing reached the room.
    await new Promise((res) => setTimeout(res, 200));
    expect(listener.of('event')).toHaveLength(0);
  });

  it('answers 413 for a body over WS_MAX_PAYLOAD and accepts one exactly at the limit', async () => {
    const r = room();
    const listener = await connect(b, 'listener');
    await listener.join(r);
    const sized = (bytes: number) => {
      const base = JSON.stringify({ event: 'big', data: '' });
      return JSON.stringify({ event: 'big', data: 'x'.repeat(bytes - Buffer.byteLength(base)) });
    };
    const over = sized(MAX_PAYLOAD + 1);
    expect(Buffer.byteLength(over)).toBe(MAX_PAYLOAD + 1);
    expect((await publish(a, r, over)).status).toBe(413);
    expect((await publish(a, r, sized(MAX_PAYLOAD * 20))).status).toBe(413);
    const atLimit = sized(MAX_PAYLOAD);
    expect(Buffer.byteLength(atLimit)).toBe(MAX_PAYLOAD);
    expect((await publish(a, r, atLimit)).ok).toBe(true);
    const got = await listener.next('event', (f) => f.payload.event === 'big');
    expect(got.payload.data).toHaveLength(MAX_PAYLOAD - Buffer.byteLength(JSON.stringify({ event: 'big', data: '' })));
    expect(listener.of('event')).toHaveLength(1);
  });

  it('GET /api/rooms/{roomId}/participants lists the room cluster-wide, each user once, on both pods', async () => {
    const r = room();
    expect(await participantsOf(a, r)).toEqual([]);
    const alice = await connect(a, 'alice', { userId: 'p-alice' });
    const bob = await connect(b, 'bob', { userId: 'p-bob' });
    const carolA = await connect(a, 'carol', { userId: 'p-carol' });
    const carolB = await connect(b, 'carol', { userId: 'p-carol' });
    for (const c of [alice, bob, carolA, carolB]) await c.join(r);
    const expected = [
      { userId: 'p-alice', userName: 'alice' },
      { userId: 'p-bob', userName: 'bob' },
      { userId: 'p-carol', userName: 'carol' },
    ];
    const sorted = (ps: Array<{ userId: string; userName: string }>) => [...ps].sort((x, y) => x.userId.localeCompare(y.userId));
    for (const pod of [a, b]) {
      await waitUntil('three participants', async () => (await participantsOf(pod, r)).length === 3);
      expect(sorted(await participantsOf(pod, r))).toEqual(expected);
    }

    // Carol closes her tab on pod A: her tab on pod B keeps her present, still once.
    carolA.send('leave_room');
    bob.send('leave_room');
    for (const pod of [a, b]) {
      await waitUntil('bob gone', async () => (await participantsOf(pod, r)).length === 2);
      expect(names(await participantsOf(pod, r))).toEqual(['alice', 'carol']);
    }
  });

  it('answers 405 for the wrong method on an API route', async () => {
    const r = room();
    expect((await fetch(a.url(`/api/rooms/${r}/publish`), { headers: bearer(API_KEY) })).status).toBe(405);
    const res = await fetch(a.url(`/api/rooms/${r}/participants`), { method: 'POST', headers: bearer(API_KEY), body: '{}' });
    expect(res.status).toBe(405);
  });
});

describe('HTTP routes on two pods in dev mode (no JWT_SECRET, no API_KEY)', () => {
  const env = { BUS_TYPE: 'postgres', BUS_PREFIX: uniqueBusPrefix('httpdev'), JWT_SECRET: '' };
  let a: Pod;
  let b: Pod;
  const clients = new ClientPool();

  beforeAll(async () => {
    [a, b] = await Promise.all([startPod(env), startPod(env)]);
  });
  afterAll(async () => {
    clients.dropAll();
    await Promise.all([a?.stop(), b?.stop()]);
  });

  it('answers 404 on both API routes when API_KEY is unset', async () => {
    const post = await fetch(a.url('/api/rooms/r1/publish'), {
      method: 'POST',
      headers: { ...bearer(API_KEY), 'content-type': 'application/json' },
      body: JSON.stringify({ event: 'x', data: 1 }),
    });
    expect(post.status).toBe(404);
    expect((await fetch(a.url('/api/rooms/r1/participants'), { headers: bearer(API_KEY) })).status).toBe(404);
    expect((await fetch(a.url('/api/rooms/r1/participants'))).status).toBe(404);
    expect((await fetch(a.url('/no/such/route'))).status).toBe(404);
  });

  it('serves the demo page at / as text/html, with the client SDK it imports', async () => {
    const res = await fetch(a.url('/'));
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/html/);
    const html = await res.text();
    expect(html).toMatch(/<!doctype html>/i);
    expect(html).toContain("import { RetrotroClient } from '/sdk/index.js'");
    const sdk = await fetch(a.url('/sdk/index.js'));
    expect(sdk.status).toBe(200);
    expect(sdk.headers.get('content-type')).toMatch(/^text\/javascript/);
  });

  it('serves /healthz, /readyz and Prometheus /metrics', async () => {
    for (const pod of [a, b]) {
      expect((await fetch(pod.url('/healthz'))).status).toBe(200);
      expect((await fetch(pod.url('/readyz'))).status).toBe(200);
      const res = await fetch(pod.url('/metrics'));
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
      const text = await res.text();
      expect(text).toMatch(/^# HELP process_cpu_user_seconds_total /m);
      expect(text).toMatch(/^# TYPE process_cpu_user_seconds_total counter$/m);
      expect(text).toMatch(/^process_resident_memory_bytes \d+/m);
      expect(text).toMatch(/^# TYPE retrotro_sockets gauge$/m);
      expect(text).toMatch(/^retrotro_sockets \d+$/m);
      expect(text).toMatch(/^retrotro_bus_ready 1$/m);
      expect(text).toMatch(/^retrotro_frames_in_total \d+$/m);
    }
  });

  it('GET /dev/token returns a token that works on the other pod too', async () => {
    const res = await fetch(a.url('/dev/token?name=alice'));
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    const { token } = (await res.json()) as { token: string };
    expect(typeof token).toBe('string');
    const { token: bobToken } = (await (await fetch(b.url('/dev/token?name=bob'))).json()) as { token: string };

    const open = async (pod: Pod, t: string) => {
      const c = new Client(`ws://127.0.0.1:${pod.port}/ws?token=${encodeURIComponent(t)}`);
      clients.track(c);
      await c.opened;
      return c;
    };
    const aliceOnB = await open(b, token); // minted on A, used on B
    const bobOnA = await open(a, bobToken); // minted on B, used on A
    const r = room();
    const state = await bobOnA.join(r);
    const bobId = state.payload.participants.find((p: { userName: string }) => p.userName === 'bob')?.userId;
    await aliceOnB.join(r);
    // Presence crosses pods asynchronously: pod A announces alice once it has heard of her.
    const joined = await bobOnA.next('participant_joined', (f) => f.payload.userName === 'alice');
    // Each call mints a fresh user id.
    expect(typeof bobId).toBe('string');
    expect(joined.payload.userId).not.toBe(bobId);

    // A garbage token is still refused in dev mode.
    const bad = new Client(`ws://127.0.0.1:${a.port}/ws?token=not-a-jwt`);
    await expect(bad.opened).rejects.toThrow('HTTP 401');
  });
});

describe('production mode', () => {
  let pod: Pod;
  beforeAll(async () => {
    pod = await startPod({
      BUS_TYPE: 'memory',
      NODE_ENV: 'production',
      JWT_SECRET: 'production-test-secret',
      ALLOWED_ORIGINS: 'https://retro.example',
    });
  });
  afterAll(async () => {
    await pod?.stop();
  });

  it('answers 404 on /dev/token', async () => {
    expect((await fetch(pod.url('/dev/token?name=alice'))).status).toBe(404);
    expect((await fetch(pod.url('/dev/token'))).status).toBe(404);
    expect((await fetch(pod.url('/healthz'))).status).toBe(200);
  });
});
