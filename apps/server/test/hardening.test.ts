/**
 * Deployment hardening (CONTRACT section 7, plus the limits of the README) on real server
 * processes: allowed origins, token expiry, rate limit, frame size, binary frames, room and
 * participant limits, slow consumers. Single-pod behaviour, so BUS_TYPE=memory.
 */
import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type WebSocket from 'ws';
import { auth, Client, names, startPod, uniqueBusPrefix, waitUntil, type Pod, ClientPool } from './support/pods.js';

const pods: Pod[] = [];
const clients = new ClientPool();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function pod(env: Record<string, string>): Promise<Pod> {
  const p = await startPod({ BUS_TYPE: 'memory', BUS_PREFIX: uniqueBusPrefix('hard'), ...env });
  pods.push(p);
  return p;
}

const connect = clients.connect;

function open(p: Pod, token: string, options?: WebSocket.ClientOptions): Client {
  const c = new Client(`ws://127.0.0.1:${p.port}/ws?token=${encodeURIComponent(token)}`, options);
  c.opened.catch(() => {}); // observed by the test when it matters
  clients.track(c);
  return c;
}

/** The value of one unlabelled metric of the pod. */
async function metric(p: Pod, name: string): Promise<number> {
  const text = await (await fetch(p.url('/metrics'))).text();
  const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
  if (!m) throw new Error(`metric ${name} not found`);
  return Number(m[1]);
}

/** A raw upgrade request: the HTTP status, and whether the server switched protocols. */
function rawUpgrade(p: Pod, token: string, origin: string): Promise<{ status: number; upgraded: boolean }> {
  return new Promise((resolve, reject) => {
    const req = request({
      host: '127.0.0.1',
      port: p.port,
      path: `/ws?token=${encodeURIComponent(token)}`,
      headers: {
        connection: 'Upgrade',
        upgrade: 'websocket',
        'sec-websocket-version': '13',
        'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==',
        origin,
      },
    });
    req.on('upgrade', (res, socket) => {
      socket.destroy();
      resolve({ status: res.statusCode ?? 0, upgraded: true });
    });
    req.on('response', (res) => {
      res.resume();
      resolve({ status: res.statusCode ?? 0, upgraded: false });
    });
    req.on('error', reject);
    req.end();
  });
}

let rooms = 0;
const room = () => `hard-room-${rooms++}`;

afterAll(async () => {
  clients.dropAll();
  await Promise.all(pods.map((p) => p.stop()));
});

describe('origins, token expiry, frame size and binary frames', () => {
  let p: Pod;
  beforeAll(async () => {
    p = await pod({ ALLOWED_ORIGINS: 'https://ok.example, https://Also-OK.example/', WS_MAX_PAYLOAD: '1024' });
  });

  it('refuses an upgrade from an origin not in ALLOWED_ORIGINS with HTTP 403 and opens no socket', async () => {
    const token = await auth.issue('mallory');
    const before = await metric(p, 'retrotro_sockets');
    expect(await rawUpgrade(p, token, 'https://evil.example')).toEqual({ status: 403, upgraded: false });
    // Prefix and suffix tricks are not matches.
    expect((await rawUpgrade(p, token, 'https://ok.example.evil.example')).status).toBe(403);
    expect((await rawUpgrade(p, token, 'http://ok.example')).status).toBe(403);
    expect((await rawUpgrade(p, token, 'null')).status).toBe(403);
    const evil = open(p, token, { origin: 'https://evil.example' });
    await expect(evil.opened).rejects.toThrow('HTTP 403');
    // Origin is checked before the token: a forged page learns nothing about tokens.
    expect((await rawUpgrade(p, 'garbage', 'https://evil.example')).status).toBe(403);
    expect(await metric(p, 'retrotro_sockets')).toBe(before);
  });

  it('opens a socket for a listed origin (and for clients that send no Origin, which browsers always do)', async () => {
    const token = await auth.issue('olivia');
    const ok = open(p, token, { origin: 'https://ok.example' });
    await ok.opened;
    const ok2 = open(p, token, { origin: 'https://also-ok.example' }); // listed as https://Also-OK.example/
    await ok2.opened;
    const r = room();
    expect(names((await ok.join(r)).payload.participants)).toEqual(['olivia']);
    const backend = await connect(p, 'backend'); // the ws Node client sends no Origin
    await backend.join(r);
    // A listed origin with a bad token is still 401.
    expect(await rawUpgrade(p, 'garbage', 'https://ok.example')).toEqual({ status: 401, upgraded: false });
  });

  it('closes a socket with 4001 when its token expires, and refuses an already expired token with 401', async () => {
    const r = room();
    const watcher = await connect(p, 'watcher');
    await watcher.join(r);
    const token = await auth.issue('shortlived', { userId: 'shortlived-id', ttlSeconds: 2 });
    const c = open(p, token);
    await c.opened;
    await c.join(r); // works before exp
    await watcher.next('participant_joined', (f) => f.payload.userId === 'shortlived-id');
    expect(await c.closed).toBe(4001);
    // The user leaves like any dropped socket (after the grace period).
    await watcher.next('participant_left', (f) => f.payload.userId === 'shortlived-id');
    expect(watcher.closeCode).toBeUndefined();

    const expired = await auth.issue('expired', { ttlSeconds: -5 });
    const late = open(p, expired);
    await expect(late.opened).rejects.toThrow('HTTP 401');
  });

  it('closes a socket sending a frame over WS_MAX_PAYLOAD with 1009; a frame under it is fine', async () => {
    const r = room();
    const sender = await connect(p, 'sender');
    const listener = await connect(p, 'listener');
    await sender.join(r);
    await listener.join(r);
    const small = JSON.stringify({ type: 'publish', payload: { event: 'note', data: 'y'.repeat(900) } });
    expect(Buffer.byteLength(small)).toBeLessThan(1024);
    sender.sendRaw(small);
    await listener.next('event', (f) => f.payload.data.length === 900);
    const big = JSON.stringify({ type: 'publish', payload: { event: 'note', data: 'x'.repeat(2000 - 50) } });
    expect(Buffer.byteLength(big)).toBeGreaterThanOrEqual(2000);
    sender.sendRaw(big);
    expect(await sender.closed).toBe(1009);
    expect(listener.of('event')).toHaveLength(1);
    expect(listener.closeCode).toBeUndefined();
  });

  it('answers a binary frame with bad_message and keeps the socket open', async () => {
    const c = await connect(p, 'binary');
    c.sendRaw(Buffer.from(JSON.stringify({ type: 'join_room', payload: { roomId: 'x' } })));
    const err = await c.next('error');
    expect(err.payload.code).toBe('bad_message');
    c.sendRaw(Buffer.from([0, 1, 2, 255]));
    await waitUntil('second bad_message', () => c.of('error').length === 2);
    expect(c.of('error').every((f) => f.payload.code === 'bad_message')).toBe(true);
    const state = await c.join(room()); // the socket still works
    expect(names(state.payload.participants)).toEqual(['binary']);
    expect(c.closeCode).toBeUndefined();
    expect(c.of('room_state')).toHaveLength(1); // the binary join was not applied
  });
});

describe('WS_RATE_LIMIT=5', () => {
  let p: Pod;
  beforeAll(async () => {
    p = await pod({ WS_RATE_LIMIT: '5' });
  });

  it('drops frames over the limit with rate_limited; the socket stays open when the client slows down', async () => {
    const c = await connect(p, 'bursty');
    for (let i = 0; i < 30; i++) c.send('heartbeat');
    await waitUntil('rate_limited errors', () => c.of('error').length >= 15);
    await sleep(300); // the rest of the burst's answers
    const limited = c.of('error');
    expect(limited.every((f) => f.payload.code === 'rate_limited')).toBe(true);
    // A burst of twice the rate passes; at least the rest minus a refill of a token or two is dropped.
    expect(limited.length).toBeGreaterThanOrEqual(15);
    expect(limited.length).toBeLessThanOrEqual(21);

    // Slower than 5 frames per second: every frame is served.
    await sleep(1000);
    const r = room();
    for (let i = 0; i < 4; i++) {
      const state = await c.join(i % 2 ? r : `${r}-b`);
      expect(state.type).toBe('room_state');
      await sleep(300);
    }
    expect(c.of('error')).toHaveLength(limited.length);
    expect(c.closeCode).toBeUndefined();
  });

  it('closes a socket that keeps flooding with 1008', async () => {
    const r = room();
    const flooder = await connect(p, 'flooder');
    const other = await connect(p, 'other');
    await flooder.join(r);
    await other.join(r);
    for (let i = 0; i < 500; i++) flooder.send('publish', { event: 'spam', data: i });
    expect(await flooder.closed).toBe(1008);
    expect(flooder.of('error').some((f) => f.payload.code === 'rate_limited')).toBe(true);
    // Only the frames within the limit were relayed.
    await sleep(200);
    expect(other.of('event').length).toBeLessThanOrEqual(12);
    expect(other.of('event').length).toBeGreaterThan(0);
    expect(other.closeCode).toBeUndefined();
    expect(await metric(p, 'retrotro_rate_limited_total')).toBeGreaterThan(0);
  });
});

describe('room limits', () => {
  it('MAX_PARTICIPANTS_PER_ROOM=2: a third user gets room_full; another tab of a present user is fine', async () => {
    const p = await pod({ MAX_PARTICIPANTS_PER_ROOM: '2' });
    const r = room();
    const alice = await connect(p, 'alice', { userId: 'alice-id' });
    const bob = await connect(p, 'bob');
    const carol = await connect(p, 'carol');
    await alice.join(r);
    await bob.join(r);
    carol.send('join_room', { roomId: r });
    expect((await carol.next('error')).payload.code).toBe('room_full');
    expect(carol.of('room_state')).toHaveLength(0);
    const aliceTab2 = await connect(p, 'alice', { userId: 'alice-id' });
    expect(names((await aliceTab2.join(r)).payload.participants)).toEqual(['alice', 'bob']);
    expect(alice.of('participant_joined').filter((f) => f.payload.userName === 'carol')).toHaveLength(0);
    // Once bob leaves there is room for carol.
    bob.send('leave_room');
    await alice.next('participant_left');
    expect(names((await carol.join(r)).payload.participants)).toEqual(['alice', 'carol']);
    expect(carol.closeCode).toBeUndefined();
  });

  it('MAX_ROOMS_PER_POD=1: joining a second room gets too_many_rooms; the hosted room stays open', async () => {
    const p = await pod({ MAX_ROOMS_PER_POD: '1' });
    const first = room();
    const second = room();
    const a = await connect(p, 'a');
    const b = await connect(p, 'b');
    await a.join(first);
    b.send('join_room', { roomId: second });
    expect((await b.next('error')).payload.code).toBe('too_many_rooms');
    expect(b.of('room_state')).toHaveLength(0);
    expect(names((await b.join(first)).payload.participants)).toEqual(['a', 'b']);
    // Once the hosted room is empty, the slot is free again.
    a.send('leave_room');
    await b.next('participant_left');
    b.send('leave_room');
    await waitUntil('no room on the pod', async () => (await metric(p, 'retrotro_rooms_local')) === 0);
    expect(names((await b.join(second)).payload.participants)).toEqual(['b']);
    expect(b.closeCode).toBeUndefined();
  });
});

describe('slow consumer (WS_MAX_BUFFERED_BYTES=65536)', () => {
  it('closes sockets that stop reading (1013 if they read again), drops their presence, the others receive everything', async () => {
    const p = await pod({ WS_MAX_BUFFERED_BYTES: '65536' });
    const r = room();
    const publisher = await connect(p, 'publisher');
    const fast = await connect(p, 'fast');
    const slow = await connect(p, 'slow');
    const stalled = await connect(p, 'stalled', { userId: 'stalled-id' });
    for (const c of [publisher, fast, slow, stalled]) await c.join(r);
    // Both stop reading their TCP socket: the kernel buffers fill, then the server's.
    const tcp = (c: Client) => (c as unknown as { ws: { _socket: { pause(): void; resume(): void } } }).ws._socket;
    tcp(slow).pause();
    tcp(stalled).pause(); // never reads again: a dead peer

    const data = 'z'.repeat(10_000);
    let sent = 0;
    // Keep publishing until the pod has given up on both (bounded: 40 MB).
    const dropped = async () => fast.of('participant_left').length > 0 || (await metric(p, 'retrotro_slow_consumer_disconnects_total')) >= 2;
    while (!(await dropped())) {
      if (sent >= 4000) throw new Error(`slow consumers still connected after ${sent} events of 10 KB`);
      for (let i = 0; i < 100; i++) publisher.send('publish', { event: 'chunk', data: { i: sent++, data } });
      await waitUntil('fast client keeps up', () => fast.of('event').length === sent, 30_000);
    }
    tcp(slow).resume(); // reads what was buffered, then the close frame
    expect(await slow.closed).toBe(1013);
    // The dead peer does not stay present: it is cut off and leaves after the grace period.
    await fast.next('participant_left', (f) => f.payload.userId === 'stalled-id');

    // The fast client got every event, in order, and stays connected.
    expect(fast.of('event').map((f) => f.payload.data.i)).toEqual([...Array(sent).keys()]);
    expect(fast.closeCode).toBeUndefined();
    expect(publisher.closeCode).toBeUndefined();
    // The slow client got a prefix of the events, never a gap.
    const got = slow.of('event').map((f) => f.payload.data.i);
    expect(got.length).toBeLessThan(sent);
    expect(got).toEqual([...Array(got.length).keys()]);
  });
});
