/**
 * The connection: URLs and tokens, backoff with full jitter, state transitions, heartbeats,
 * connect timeout, close(). A fake WebSocket under fake timers.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { RetrotroClient, RetrotroError, type ClientState, type WebSocketConstructor } from '../src/index.js';
import { withToken } from '../src/client.js';
import { FakeSocket, flush, joined, makeClient, nextSocket, reconnect, roomState } from './support/fake.js';

beforeEach(() => {
  vi.useFakeTimers();
  FakeSocket.reset();
});
afterEach(() => {
  vi.useRealTimers();
});

/** Advances the fake clock by `ms` and lets the token promise and connect run. */
async function advance(ms: number): Promise<void> {
  await vi.advanceTimersByTimeAsync(ms);
  await flush();
}

describe('URLs and tokens', () => {
  it('appends the token as a query parameter and keeps the URL’s own', () => {
    expect(withToken('ws://h/ws', 'a.b.c')).toBe('ws://h/ws?token=a.b.c');
    expect(withToken('wss://h/ws?region=eu&x=1', 'a b')).toBe('wss://h/ws?region=eu&x=1&token=a%20b');
    expect(withToken('ws://h/ws#frag', 't')).toBe('ws://h/ws?token=t');
  });

  it('takes the next URL on every attempt, in turn', async () => {
    const client = makeClient({ url: undefined, urls: ['ws://a/ws', 'ws://b/ws?k=v', 'ws://c/ws'], random: () => 0 });
    await flush();
    for (let i = 0; i < 4; i++) {
      FakeSocket.last.drop();
      await advance(0);
    }
    expect(FakeSocket.all.map((ws) => ws.url)).toEqual([
      'ws://a/ws?token=tok',
      'ws://b/ws?k=v&token=tok',
      'ws://c/ws?token=tok',
      'ws://a/ws?token=tok',
      'ws://b/ws?k=v&token=tok',
    ]);
    client.close();
  });

  it('asks an async token function again before every connection', async () => {
    let n = 0;
    const token = vi.fn(async () => `t${++n}`);
    const client = makeClient({ token, random: () => 0 });
    const first = await nextSocket();
    first.open();
    first.drop();
    const second = await nextSocket();
    second.drop(1011);
    const third = await nextSocket();
    expect([first.token, second.token, third.token]).toEqual(['t1', 't2', 't3']);
    expect(token).toHaveBeenCalledTimes(3);
    client.close();
  });

  it('after a 4001 close, reports token_expired and connects with a fresh token', async () => {
    let n = 0;
    const client = makeClient({ token: () => `t${++n}`, random: () => 0 });
    const errors: RetrotroError[] = [];
    client.on('error', (e) => errors.push(e));
    const first = await nextSocket();
    first.open();
    first.drop(4001);
    const second = await nextSocket();
    expect(errors.map((e) => e.code)).toEqual(['token_expired']);
    expect(second.token).toBe('t2');
    client.close();
  });

  it('a failing token function is reported and retried after the backoff', async () => {
    let calls = 0;
    const client = makeClient({
      token: async () => {
        if (++calls === 1) throw new Error('auth server down');
        return 'ok';
      },
      random: () => 0.5,
    });
    const errors: RetrotroError[] = [];
    client.on('error', (e) => errors.push(e));
    await flush();
    expect(FakeSocket.all).toHaveLength(0);
    expect(errors[0]?.code).toBe('token');
    expect((errors[0]?.cause as Error | undefined)?.message).toBe('auth server down');
    await advance(500);
    expect(FakeSocket.last.token).toBe('ok');
    client.close();
  });

  it('without a WebSocket class it throws a clear error', () => {
    const saved = (globalThis as { WebSocket?: unknown }).WebSocket;
    delete (globalThis as { WebSocket?: unknown }).WebSocket;
    try {
      expect(() => new RetrotroClient({ url: 'ws://h/ws', token: 't' })).toThrow(/pass one/);
    } finally {
      if (saved) (globalThis as { WebSocket?: unknown }).WebSocket = saved;
    }
    expect(() => new RetrotroClient({ token: 't', WebSocket: FakeSocket })).toThrow(/url/);
  });

  it('accepts the browser WebSocket class (types)', () => {
    const browser: WebSocketConstructor = null as unknown as typeof globalThis.WebSocket;
    expect(browser).toBeNull();
  });

  it('uses the global WebSocket when none is passed', async () => {
    vi.stubGlobal('WebSocket', FakeSocket);
    try {
      const client = new RetrotroClient({ url: 'ws://g/ws', token: 't' });
      await flush();
      expect(FakeSocket.last.url).toBe('ws://g/ws?token=t');
      client.close();
    } finally {
      vi.unstubAllGlobals();
    }
  });
});

describe('backoff with full jitter', () => {
  /** Fails `failures` attempts in a row; returns the delay before each next attempt. */
  async function delays(random: () => number, failures: number, options = {}): Promise<number[]> {
    const client = makeClient({ random, ...options });
    await flush();
    const out: number[] = [];
    for (let i = 0; i < failures; i++) {
      const before = FakeSocket.all.length;
      FakeSocket.last.drop();
      let waited = 0;
      while (FakeSocket.all.length === before) {
        await advance(1);
        waited++;
        if (waited > 10_000) throw new Error('no retry within 10 s');
      }
      out.push(waited);
    }
    client.close();
    return out;
  }

  it('ceilings double from 1 s and stop at 5 s (random just below 1)', async () => {
    // floor(0.999 * ceiling) ms; the loop above counts whole ms, so +1 when exact.
    expect(await delays(() => 0.999, 6)).toEqual([999, 1998, 3996, 4995, 4995, 4995]);
  });

  it('retries at once with random 0, and mid-way with 0.5', async () => {
    expect(await delays(() => 0, 3)).toEqual([1, 1, 1]); // 0 ms: the first advance of 1 ms runs it
    expect(await delays(() => 0.5, 5)).toEqual([500, 1000, 2000, 2500, 2500]);
  });

  it('every delay is within [0, min(5000, 1000 * 2^n)) for any random value', async () => {
    let seed = 42;
    const random = () => ((seed = (seed * 16807) % 2147483647) - 1) / 2147483646;
    const got = await delays(random, 8);
    got.forEach((d, n) => {
      expect(d).toBeGreaterThanOrEqual(1);
      expect(d).toBeLessThanOrEqual(Math.min(5000, 1000 * 2 ** n));
    });
    expect(new Set(got).size).toBeGreaterThan(4); // jittered, not fixed
  });

  it('honours reconnectDelayMs and maxReconnectDelayMs', async () => {
    expect(await delays(() => 0.999, 4, { reconnectDelayMs: 200, maxReconnectDelayMs: 500 })).toEqual([199, 399, 499, 499]);
  });

  it('starts again from the first ceiling once a connection is open', async () => {
    const client = makeClient({ random: () => 0.999 });
    await flush();
    FakeSocket.last.drop();
    await advance(999);
    FakeSocket.last.drop();
    await advance(1998);
    expect(FakeSocket.all).toHaveLength(3);
    FakeSocket.last.open();
    FakeSocket.last.drop();
    await advance(998);
    expect(FakeSocket.all).toHaveLength(3);
    await advance(1);
    expect(FakeSocket.all).toHaveLength(4);
    client.close();
  });
});

describe('state', () => {
  it('connecting, open; reconnecting once per outage; open again; closed', async () => {
    const client = makeClient({ random: () => 0.5 });
    const states: ClientState[] = [];
    client.on('state', (s) => states.push(s));
    expect(client.state).toBe('connecting');
    const first = await nextSocket();
    expect(states).toEqual(['connecting']);
    first.open();
    expect(states).toEqual(['connecting', 'open']);

    first.drop();
    for (let i = 0; i < 3; i++) (await nextSocket()).drop(); // an outage of several attempts
    const back = await nextSocket();
    back.open();
    expect(states).toEqual(['connecting', 'open', 'reconnecting', 'open']);

    back.drop(1001);
    const again = await nextSocket();
    again.open();
    client.close();
    expect(states).toEqual(['connecting', 'open', 'reconnecting', 'open', 'reconnecting', 'open', 'closed']);
    expect(client.state).toBe('closed');
  });

  it('stays connecting while the first attempts fail', async () => {
    const client = makeClient();
    const states: ClientState[] = [];
    client.on('state', (s) => states.push(s));
    (await nextSocket()).drop();
    (await nextSocket()).drop();
    (await nextSocket()).open();
    expect(states).toEqual(['connecting', 'open']);
    client.close();
  });

  it('is open only once the socket is open AND the room is rejoined', async () => {
    const { client, ws } = await joined('r1');
    const states: ClientState[] = [];
    client.on('state', (s) => states.push(s));
    ws.drop();
    const next = await nextSocket();
    next.open();
    expect(states).toEqual(['reconnecting']);
    expect(next.of('join_room')).toHaveLength(1);
    next.receive('room_state', roomState('r1', { recovered: true }));
    expect(states).toEqual(['reconnecting', 'open']);
    client.close();
  });

  it('a first join waits for the connection; the state opens after its room_state', async () => {
    const client = makeClient();
    const states: ClientState[] = [];
    client.on('state', (s) => states.push(s));
    const joining = client.join('r1');
    const ws = await nextSocket();
    ws.open();
    expect(ws.frames).toEqual([{ type: 'join_room', payload: { roomId: 'r1' } }]);
    expect(states).toEqual(['connecting']);
    ws.receive('room_state', roomState('r1'));
    const room = await joining;
    expect(room.id).toBe('r1');
    expect(states).toEqual(['connecting', 'open']);
    client.close();
  });

  it('a listener that throws does not break the client', async () => {
    const client = makeClient();
    client.on('state', () => {
      throw new Error('app bug');
    });
    const seen: ClientState[] = [];
    client.on('state', (s) => seen.push(s));
    const ws = await nextSocket();
    ws.open();
    expect(seen).toEqual(['connecting', 'open']);
    expect(() => vi.runOnlyPendingTimers()).toThrow('app bug');
    client.close();
  });
});

describe('close()', () => {
  it('closes the socket with 1000 and never reconnects', async () => {
    const { client, ws } = await joined('r1');
    client.close();
    expect(ws.closedWith).toBe(1000);
    ws.drop(1000); // the close event arrives afterwards: ignored
    await advance(60_000);
    expect(FakeSocket.all).toHaveLength(1);
    expect(client.state).toBe('closed');
  });

  it('during a backoff cancels the pending attempt', async () => {
    const client = makeClient({ random: () => 0.5 });
    (await nextSocket()).drop();
    client.close();
    await advance(60_000);
    expect(FakeSocket.all).toHaveLength(1);
  });

  it('while the token is being fetched opens no socket', async () => {
    let release!: (t: string) => void;
    const client = makeClient({ token: () => new Promise<string>((r) => (release = r)) });
    await flush();
    client.close();
    release('late');
    await flush();
    expect(FakeSocket.all).toHaveLength(0);
  });

  it('rejects waiting joins and publishes with code closed, and later joins too', async () => {
    const { client, room } = await joined('r1');
    const publish = room.publish('card', 1);
    client.close();
    await expect(publish).rejects.toMatchObject({ code: 'closed' });
    await expect(client.join('r2')).rejects.toMatchObject({ code: 'closed' });
    await expect(room.publish('card', 2)).rejects.toMatchObject({ code: 'left' });

    const other = makeClient();
    const joining = other.join('r1');
    other.close();
    await expect(joining).rejects.toBeInstanceOf(RetrotroError);
  });
});

describe('heartbeats', () => {
  it('sends {"type":"heartbeat"} every heartbeatMs while open, and stops when the socket is gone', async () => {
    const client = makeClient({ heartbeatMs: 25_000, random: () => 0.999 });
    const ws = await nextSocket();
    ws.open();
    const beats = (s: FakeSocket) => s.sent.filter((f) => f === '{"type":"heartbeat"}').length;
    await advance(24_999);
    expect(beats(ws)).toBe(0);
    await advance(1);
    expect(beats(ws)).toBe(1);
    await advance(50_000);
    expect(beats(ws)).toBe(3);

    ws.drop();
    await advance(999); // the next attempt starts after 999 ms
    const next = FakeSocket.last;
    expect(next).not.toBe(ws);
    await advance(100_000); // not open yet (then timed out and retried): no heartbeats anywhere
    expect(beats(ws)).toBe(3);
    expect(FakeSocket.all.every((s) => beats(s) === (s === ws ? 3 : 0))).toBe(true);
    client.close();
  });

  it('default interval is 25 s; 0 turns them off', async () => {
    const client = new RetrotroClient({ url: 'ws://a/ws', token: 't', WebSocket: FakeSocket });
    const ws = await nextSocket();
    ws.open();
    await advance(25_000);
    expect(ws.sent).toEqual(['{"type":"heartbeat"}']);
    client.close();

    const quiet = makeClient({ heartbeatMs: 0 });
    const ws2 = await nextSocket();
    ws2.open();
    await advance(100_000);
    expect(ws2.sent).toEqual([]);
    quiet.close();
  });
});

describe('connect timeout', () => {
  it('drops a socket that does not open within connectTimeoutMs and tries the next URL', async () => {
    const client = makeClient({ urls: ['ws://a/ws', 'ws://b/ws'], url: undefined, connectTimeoutMs: 3000, random: () => 0 });
    const first = await nextSocket();
    await advance(2999);
    expect(FakeSocket.all).toHaveLength(1);
    await advance(1);
    expect(first.closedWith).toBe(1000);
    await advance(1); // the retry's 0 ms timer
    expect(FakeSocket.all).toHaveLength(2);
    expect(FakeSocket.last.url).toBe('ws://b/ws?token=tok');
    client.close();
  });

  it('also when the socket opens but the rejoin gets no room_state', async () => {
    const { client, ws } = await joined('r1', {}, { connectTimeoutMs: 5000, random: () => 0 });
    ws.drop();
    const next = await nextSocket();
    next.open();
    await advance(5000);
    expect(next.closedWith).toBe(1000);
    expect(FakeSocket.all).toHaveLength(3);
    const third = FakeSocket.last;
    third.open();
    third.receive('room_state', roomState('r1', { recovered: true }));
    expect(client.state).toBe('open');
    await advance(60_000);
    expect(FakeSocket.all).toHaveLength(3); // an open socket is never timed out
    client.close();
  });
});

describe('server errors without an id', () => {
  it('go to the client error event, and the socket stays', async () => {
    const { client, ws } = await joined('r1');
    const errors: RetrotroError[] = [];
    client.on('error', (e) => errors.push(e));
    ws.receive('error', { code: 'rate_limited', message: 'slow down' });
    ws.receive('error', { code: 'no_active_timer', message: 'no timer' });
    ws.onmessage?.({ data: 'not json' });
    ws.receive('something_new', { x: 1 });
    expect(errors.map((e) => [e.code, e.message])).toEqual([
      ['rate_limited', 'slow down'],
      ['no_active_timer', 'no timer'],
    ]);
    expect(client.state).toBe('open');
    expect(FakeSocket.all).toHaveLength(1);
    client.close();
  });

  it('a refused rejoin is reported and retried on a new connection', async () => {
    const { client, ws } = await joined('r1', {}, { random: () => 0 });
    const errors: string[] = [];
    client.on('error', (e) => errors.push(e.code));
    ws.drop();
    const next = await nextSocket();
    next.open();
    next.receive('error', { code: 'room_full', message: 'full' });
    expect(errors).toEqual(['room_full']);
    const third = await nextSocket();
    expect(third).not.toBe(next);
    third.open();
    third.receive('room_state', roomState('r1', { recovered: true }));
    expect(client.state).toBe('open');
    client.close();
  });

  it('reconnect() helper sanity: rejoin answered', async () => {
    const { client, ws } = await joined('r1');
    await reconnect(ws, { position: { offset: 0, epoch: 'e1' }, recovered: true });
    expect(client.state).toBe('open');
    client.close();
  });
});
