/**
 * The SDK against the REAL server (apps/server/dist/main.js, built by `pnpm build`) in memory
 * mode, with `ws` as the WebSocket class (Node.js 20 has no global one). The server keeps
 * history (CONTRACT section 8): publishes resolve on its ack with their offset, events carry
 * offsets; pods in memory mode share nothing, so failing over to another pod emits `reset`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { SignJWT } from 'jose';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RetrotroClient, type ClientState, type Room, type RoomEvent } from '../src/index.js';

const MAIN = fileURLToPath(new URL('../../../apps/server/dist/main.js', import.meta.url));
const SECRET = 'client-sdk-integration-secret';
const key = new TextEncoder().encode(SECRET);

interface Pod {
  port: number;
  proc: ChildProcess;
  exited: Promise<unknown>;
}

async function startPod(): Promise<Pod> {
  const proc = spawn(process.execPath, [MAIN], {
    env: {
      PATH: process.env.PATH ?? '',
      BUS_TYPE: 'memory',
      PORT: '0',
      HOST: '127.0.0.1',
      JWT_SECRET: SECRET,
      DISCONNECT_GRACE_MS: '300',
      LOG_LEVEL: 'info',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: string[] = [];
  createInterface({ input: proc.stderr! }).on('line', (l) => logs.push(l));
  const exited = new Promise((resolve) => proc.once('exit', resolve));
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start in 20 s:\n${logs.join('\n')}`)), 20_000);
    createInterface({ input: proc.stdout! }).on('line', (line) => {
      logs.push(line);
      try {
        const entry = JSON.parse(line) as { msg?: string; port?: number };
        if (entry.msg === 'listening' && entry.port) {
          clearTimeout(timer);
          resolve(entry.port);
        }
      } catch {
        // not a JSON log line
      }
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`server exited with ${String(code)} before listening:\n${logs.join('\n')}`));
    });
  });
  return { port, proc, exited };
}

async function stopPod(pod: Pod | undefined, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (!pod || pod.proc.exitCode !== null || pod.proc.signalCode !== null) return;
  pod.proc.kill(signal);
  await pod.exited;
}

async function waitFor(what: string, check: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

type Events = { card: { text: string }; n: number };

/** A client whose token function signs a fresh JWT (and counts its calls). */
function user(userId: string, name: string, urls: string[]) {
  const tokens = { issued: 0 };
  const states: ClientState[] = [];
  const client = new RetrotroClient({
    urls,
    token: async () => {
      tokens.issued++;
      return new SignJWT({ name }).setProtectedHeader({ alg: 'HS256' }).setSubject(userId).setIssuedAt().setExpirationTime('1h').sign(key);
    },
    WebSocket,
  });
  client.on('state', (s) => states.push(s));
  return { client, tokens, states };
}

const ids = (room: Room<any>) => room.participants.map((p) => p.userId).sort();

describe('against the real server (memory mode)', () => {
  let podA: Pod | undefined;
  let podB: Pod | undefined;
  const clients: RetrotroClient[] = [];

  beforeAll(async () => {
    [podA, podB] = await Promise.all([startPod(), startPod()]);
  });
  afterAll(async () => {
    for (const c of clients) c.close();
    await Promise.all([stopPod(podA), stopPod(podB)]);
  });

  it('two clients join, see each other, exchange events, survive a pod kill, leave', async () => {
    const urls = [`ws://127.0.0.1:${podA!.port}/ws`, `ws://127.0.0.1:${podB!.port}/ws?via=b`];
    const alice = user('alice', 'Alice', urls);
    const bob = user('bob', 'Bob', urls);
    clients.push(alice.client, bob.client);

    const aRoom = await alice.client.join<Events>('it-room');
    expect(aRoom.participants).toEqual([{ userId: 'alice', userName: 'Alice' }]);
    const lists: string[][] = [];
    aRoom.on('participants', (list) => lists.push(list.map((p) => p.userId).sort()));
    const aEvents: RoomEvent<Events>[] = [];
    aRoom.on('event', (e) => aEvents.push(e));

    const bRoom = await bob.client.join<Events>('it-room');
    expect(ids(bRoom)).toEqual(['alice', 'bob']);
    await waitFor('alice to see bob join', () => ids(aRoom).join() === 'alice,bob');
    expect(lists).toEqual([['alice', 'bob']]);
    expect(alice.states).toEqual(['connecting', 'open']);

    // Events both ways, in order; nobody gets their own.
    const bEvents: RoomEvent<Events>[] = [];
    bRoom.on('event', (e) => bEvents.push(e));
    const sent = await bRoom.publish('card', { text: 'hi' });
    expect(sent).toEqual({ offset: expect.any(Number) }); // resolved on the server's ack
    for (let n = 0; n < 20; n++) void aRoom.publish('n', n);
    await waitFor('alice to get the card', () => aEvents.length === 1);
    await waitFor('bob to get 20 events', () => bEvents.length === 20);
    expect(aEvents[0]).toMatchObject({ event: 'card', data: { text: 'hi' }, from: { userId: 'bob', userName: 'Bob' }, offset: sent.offset });
    expect(bEvents.map((e) => e.data)).toEqual([...Array(20).keys()]);
    expect(bEvents.every((e) => e.event === 'n' && e.from.userId === 'alice')).toBe(true);

    // The timer, started by one, seen by both in room_state's shape.
    expect(aRoom.startTimer(60, 'vote')).toBe(true);
    await waitFor('both to see the timer', () => aRoom.timer?.running === true && bRoom.timer?.running === true);
    expect(bRoom.timer).toMatchObject({ phase: 'vote', running: true });
    expect(bRoom.timer!.remaining_seconds).toBeGreaterThan(55);
    expect(Date.parse(bRoom.timer!.end_at!)).toBeGreaterThan(Date.now());

    // Pod A dies: both reconnect to the next URL (pod B), with a fresh token, and rejoin.
    // Pod B has none of pod A's history (memory mode), so each room emits `reset`.
    let resets = 0;
    aRoom.on('reset', () => resets++);
    bRoom.on('reset', () => resets++);
    const tokensBefore = alice.tokens.issued;
    await stopPod(podA, 'SIGKILL');
    await waitFor('both clients open again', () => alice.client.state === 'open' && bob.client.state === 'open' && resets === 2);
    expect(alice.states).toEqual(['connecting', 'open', 'reconnecting', 'open']);
    expect(alice.tokens.issued).toBeGreaterThan(tokensBefore);
    await waitFor('both present on pod B', () => ids(aRoom).join() === 'alice,bob' && ids(bRoom).join() === 'alice,bob');
    expect(bRoom.timer).toBeNull(); // pod B never heard of pod A's timer (memory mode: no relay)

    await bRoom.publish('card', { text: 'after the kill' });
    await waitFor('alice to get it over pod B', () => aEvents.length === 2);
    expect(aEvents[1]?.data).toEqual({ text: 'after the kill' });

    // leave: the other side sees participant_left at once (no grace).
    await bRoom.leave();
    await waitFor('alice to see bob leave', () => ids(aRoom).join() === 'alice', 2_000);
    expect(bob.client.state).toBe('open');
    bob.client.close();
    alice.client.close();
    expect(alice.states.at(-1)).toBe('closed');
  });

  it('a refused join rejects with the server code; the connection stays usable', async () => {
    const restricted = new RetrotroClient({
      url: `ws://127.0.0.1:${podB!.port}/ws`,
      token: () =>
        new SignJWT({ name: 'Cy', rooms: ['allowed'] }).setProtectedHeader({ alg: 'HS256' }).setSubject('cy').setExpirationTime('1h').sign(key),
      WebSocket,
    });
    clients.push(restricted);
    await expect(restricted.join('forbidden-room')).rejects.toMatchObject({ code: 'forbidden' });
    const room = await restricted.join('allowed');
    expect(room.participants).toEqual([{ userId: 'cy', userName: 'Cy' }]);
    restricted.close();
  });
});
