/**
 * Chaos with the SDK (@retrotro/client over `ws`): six clients across three real pods, each
 * given all three URLs (its own pod first), publish continuously (one awaited publish every
 * 50 ms each, with ids) while one pod is SIGKILLed and restarted, then another SIGTERMed and
 * restarted (both on their old port, so the clients' URL lists stay right). Run on the
 * postgres and the nats bus (history on: the default HISTORY_SIZE).
 *
 * Asserted: every publish resolves (none rejects), every client receives every other
 * client's events exactly once and in each publisher's order, with strictly increasing
 * offsets that match the publisher's acks; nobody ever leaves (no `participant_left` on a
 * raw observer socket, no participants list of any client missing anyone) and no `reset`.
 * Figures (events, reconnects, time back to 'open') are printed, not asserted.
 */
import { RetrotroClient, type ClientState, type Room } from '@retrotro/client';
import WebSocket from 'ws';
import { afterAll, describe, expect, it } from 'vitest';
import { auth, Client, sleep, startPod, uniqueBusPrefix, waitUntil, type Pod } from './support/pods.js';

type Events = { n: { c: number; seq: number } };
const CLIENTS = 6;
const PUBLISH_EVERY_MS = 50;

interface Tracked {
  index: number;
  userId: string;
  client: RetrotroClient;
  room: Room<Events>;
  states: Array<{ state: ClientState; at: number }>;
  /** Events received: publisher, seq, offset, in emission order. */
  received: Array<{ c: number; seq: number; offset: number | null }>;
  /** Offsets of this client's own acked publishes, by seq. */
  acked: Array<number | null>;
  rejected: unknown[];
  /** Participants lists emitted (sizes and ids), after everyone had joined. */
  shortLists: string[][];
  resets: number;
  /** The URL of the client's current (or last) socket, token left out. */
  url: string;
}

describe.each(['postgres', 'nats'] as const)('SDK clients through pod crashes and restarts, %s bus', (busType) => {
  const pods: Pod[] = [];
  const tracked: Tracked[] = [];
  let observer: Client | undefined;

  afterAll(async () => {
    for (const t of tracked) t.client.close();
    observer?.terminate();
    await Promise.all(pods.map((p) => p.kill()));
  });

  it('six clients on three pods: one pod SIGKILLed, one SIGTERMed, both restarted; every event once, in order; nobody leaves', async () => {
    const env = {
      BUS_TYPE: busType,
      BUS_PREFIX: uniqueBusPrefix(`chaos_${busType}`),
      DISCONNECT_GRACE_MS: '8000',
      PRESENCE_TTL_MS: '4000',
    };
    const roomId = `chaos-${busType}-${process.pid}-${Date.now().toString(36)}`;
    const started = await Promise.all([startPod(env), startPod(env), startPod(env)]);
    pods.push(...started);
    const ports = started.map((p) => p.port);
    const wsUrl = (port: number) => `ws://127.0.0.1:${port}/ws`;
    /** The live pod on each port (restarts replace them). */
    const live = [...started];

    // A raw socket on the pod that is never touched: sees every participant frame as sent.
    observer = await Client.connect(started[2]!, 'observer', { userId: 'observer' });
    await observer.join(roomId);

    for (let i = 0; i < CLIENTS; i++) {
      const own = i % 3;
      const urls = [0, 1, 2].map((k) => wsUrl(ports[(own + k) % 3]!));
      const userId = `chaos-user-${i}`;
      const token = await auth.issue(`user${i}`, { userId });
      // ws's WebSocket, noting which pod each connection attempt goes to.
      const Tracking = class extends WebSocket {
        constructor(url: string) {
          super(url);
          t.url = url.split('?')[0]!;
        }
      };
      const client = new RetrotroClient({ urls, token, WebSocket: Tracking as never });
      const t: Tracked = {
        index: i,
        userId,
        client,
        room: undefined as never,
        states: [],
        received: [],
        acked: [],
        rejected: [],
        shortLists: [],
        resets: 0,
        url: '',
      };
      client.on('state', (state) => t.states.push({ state, at: Date.now() }));
      const joined = client.join<Events>(roomId);
      const room = client.room as Room<Events>;
      t.room = room;
      room.on('event', (e) => t.received.push({ c: e.data.c, seq: e.data.seq, offset: e.offset }));
      room.on('reset', () => t.resets++);
      await joined;
      tracked.push(t);
    }
    const everyone = ['observer', ...tracked.map((t) => t.userId)].sort();
    await waitUntil('everyone sees everyone', () => tracked.every((t) => t.room.participants.length === everyone.length));
    const joinedFrames = observer.of('participant_joined').length;
    for (const t of tracked) {
      t.room.on('participants', (list) => {
        const ids = list.map((p) => p.userId).sort();
        if (ids.join() !== everyone.join()) t.shortLists.push(ids);
      });
    }

    // Everyone publishes, awaited, one every 50 ms, until told to stop.
    let publishing = true;
    const loops = tracked.map(async (t) => {
      for (let seq = 0; publishing; seq++) {
        try {
          const { offset } = await t.room.publish('n', { c: t.index, seq });
          t.acked[seq] = offset;
        } catch (err) {
          t.rejected.push(err);
          return;
        }
        await sleep(PUBLISH_EVERY_MS);
      }
    });

    /** Ms from `since` until each of `clients` was 'open' again (NaN: not yet). */
    const backToOpen = (since: number, clients: Tracked[]) =>
      clients.map((t) => {
        const lost = t.states.find((s) => s.at >= since && s.state === 'reconnecting');
        const open = lost && t.states.find((s) => s.at >= lost.at && s.state === 'open');
        return { client: t.index, ms: open ? open.at - since : Number.NaN };
      });
    /** Takes pod `k` down (SIGKILL or SIGTERM); waits for its clients to be open elsewhere, then restarts it on its port. */
    const outage = async (k: number, how: 'SIGKILL' | 'SIGTERM') => {
      const affected = tracked.filter((t) => t.url === wsUrl(ports[k]!));
      expect(affected.length, `clients on pod ${k}`).toBeGreaterThan(0);
      const at = Date.now();
      await (how === 'SIGKILL' ? live[k]!.kill() : live[k]!.stop());
      await waitUntil(
        `clients of pod ${k} open again after ${how}`,
        () => backToOpen(at, affected).every((x) => !Number.isNaN(x.ms)) && tracked.every((t) => t.client.state === 'open'),
        20_000,
      );
      const times = backToOpen(at, affected);
      live[k] = await startPod({ ...env, PORT: String(ports[k]) });
      pods.push(live[k]!);
      return times;
    };

    await sleep(2000);
    // 1. SIGKILL the first pod (clients 0 and 3 are on it); 2. SIGTERM the second one (its
    // clients and whoever moved there), each restarted on its port.
    const afterKill = await outage(0, 'SIGKILL');
    await sleep(2500);
    const afterStop = await outage(1, 'SIGTERM');
    await sleep(2500);

    publishing = false;
    await Promise.all(loops);
    const published = tracked.map((t) => t.acked.length);
    const total = published.reduce((a, b) => a + b, 0);
    await waitUntil(
      'every client has every other client’s events',
      () => tracked.every((t) => t.received.length >= total - published[t.index]!),
      30_000,
    ).catch(() => {}); // the assertions below say what is missing
    await sleep(500); // anything extra (a duplicate) would arrive now

    for (const t of tracked) {
      expect(t.rejected, `client ${t.index}: rejected publishes`).toEqual([]);
      expect(t.acked.every((o) => typeof o === 'number')).toBe(true);
      expect(t.resets, `client ${t.index}: resets`).toBe(0);
      // Offsets strictly increasing, in emission order.
      const offsets = t.received.map((r) => r.offset as number);
      for (let k = 1; k < offsets.length; k++) {
        if (!(offsets[k]! > offsets[k - 1]!)) throw new Error(`client ${t.index}: offset ${offsets[k]} after ${offsets[k - 1]} (event ${k})`);
      }
      // Each other publisher's events exactly once, in its order, at the offsets its acks gave.
      for (const p of tracked) {
        const got = t.received.filter((r) => r.c === p.index);
        if (p === t) {
          expect(got, `client ${t.index} got its own events`).toEqual([]);
          continue;
        }
        expect(
          got.map((r) => r.seq),
          `client ${t.index} from client ${p.index}`,
        ).toEqual(p.acked.map((_, seq) => seq));
        expect(
          got.map((r) => r.offset),
          `client ${t.index} from client ${p.index}: offsets`,
        ).toEqual(p.acked);
      }
      expect(t.shortLists, `client ${t.index}: participants lists missing someone`).toEqual([]);
      expect(t.room.participants.map((p) => p.userId).sort()).toEqual(everyone);
    }
    expect(observer.of('participant_left')).toEqual([]);
    expect(observer.of('participant_joined')).toHaveLength(joinedFrames); // no second join either

    console.log(
      `[chaos-sdk ${busType}] ${total} events published (${published.join('/')} per client), ` +
        `each delivered to ${CLIENTS - 1} clients; reconnects per client: ` +
        tracked.map((t) => t.states.filter((s) => s.state === 'reconnecting').length).join('/') +
        `; back to open after SIGKILL: ${afterKill.map((x) => `c${x.client} ${x.ms} ms`).join(', ')}` +
        `; after SIGTERM: ${afterStop.map((x) => `c${x.client} ${x.ms} ms`).join(', ')}`,
    );
  }, 90_000);
});
