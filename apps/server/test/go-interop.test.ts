/**
 * CONTRACT section 5 against real Go code: TypeScript server processes and the Go pod of
 * shared/go-peer (the design document's NATSBus, compiled with Go) share one NATS server.
 *
 * The Go pod's subjects are fixed (retrotro.room, retrotro.presence), so the TypeScript pods
 * run with BUS_PREFIX=retrotro too, and these subjects are shared with anything else on this
 * NATS server: every test has its own room id and looks only at that room.
 */
import { randomUUID } from 'node:crypto';
import { connect as natsConnect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GO_BUILD_TIMEOUT_MS, GoPod } from './support/gopod.js';
import { ClientPool, sleep, startPod, waitUntil, type Client, type Frame, type Pod } from './support/pods.js';

const NATS_URL = process.env.NATS_URL ?? 'nats://127.0.0.1:4222';
const TTL_MS = 2_000;
const ENV = {
  BUS_TYPE: 'nats',
  BUS_PREFIX: 'retrotro',
  NATS_URL,
  PRESENCE_HEARTBEAT_MS: '500',
  PRESENCE_TTL_MS: String(TTL_MS),
  DISCONNECT_GRACE_MS: '1000',
};
/** Time for stray duplicates to show up before counting. */
const SETTLE_MS = 1_000;

const room = (label: string) => `go-${label}-${randomUUID().slice(0, 8)}`;
const userIds = (state: Frame) => (state.payload.participants as Array<{ userId: string }>).map((p) => p.userId).sort();
const joinedOf = (c: Client, userId: string) => c.of('participant_joined').filter((f) => f.payload.userId === userId);
const leftOf = (c: Client, userId: string) => c.of('participant_left').filter((f) => f.payload.userId === userId);

/** Presence envelopes seen on retrotro.presence, as any pod would get them. */
interface PresenceEnvelope {
  podId: string;
  roomId: string;
  userId: string;
  userName?: string;
  action: string;
}

describe('TypeScript pods and a Go pod over NATS (BUS_PREFIX=retrotro)', () => {
  let go: GoPod;
  let a: Pod;
  let b: Pod;
  let tap: NatsConnection;
  const presence: PresenceEnvelope[] = [];
  const clients = new ClientPool();
  const connect = clients.connect;
  const extraPods: Pod[] = [];

  beforeAll(async () => {
    tap = await natsConnect({ servers: NATS_URL.split(',') });
    const sub = tap.subscribe('retrotro.presence');
    void (async () => {
      for await (const m of sub) {
        try {
          presence.push(m.json<PresenceEnvelope>());
        } catch {
          // not JSON: not ours
        }
      }
    })();
    await tap.flush(); // the subscription is on the server
    [go, a, b] = await Promise.all([GoPod.start(NATS_URL), startPod(ENV), startPod(ENV)]);
  }, GO_BUILD_TIMEOUT_MS + 60_000);

  afterAll(async () => {
    clients.dropAll();
    await Promise.all([go?.stop(), a?.stop(), b?.stop(), ...extraPods.map((p) => p.stop())]);
    await tap?.close();
  });

  /** A TS user joins `r` on `pod`; resolves once the Go pod lists them (their presence crossed). */
  async function tsUserSeenByGo(pod: Pod, name: string, r: string): Promise<{ client: Client; userId: string; state: Frame }> {
    const userId = randomUUID();
    const client = await connect(pod, name, { userId });
    const state = await client.join(r);
    await go.waitForClients(`lists ${name}`, r, (cs) => cs.some((c) => c.userId === userId));
    return { client, userId, state };
  }

  it('shows presence both ways: a Go user on the TypeScript pods, TypeScript users on the Go pod, each once', async () => {
    const r = room('presence');
    const alice = await tsUserSeenByGo(a, 'alice', r);
    const bob = await tsUserSeenByGo(b, 'bob', r);

    // Go -> TS: a Go user joins; the users on both pods are told...
    const gopher = randomUUID();
    await go.join(r, gopher, 'gopher');
    for (const u of [alice, bob]) {
      const joined = await u.client.next('participant_joined', (f) => f.payload.userId === gopher);
      expect(joined.payload).toEqual({ userId: gopher, userName: 'gopher' });
    }
    // ...and, now that both pods have it, a newcomer on either finds it in room_state.
    const carol = await tsUserSeenByGo(a, 'carol', r);
    const dave = await tsUserSeenByGo(b, 'dave', r);
    for (const u of [carol, dave]) {
      expect(u.state.payload.participants).toContainEqual({ userId: gopher, userName: 'gopher' });
      expect(userIds(u.state).filter((id) => id === gopher)).toHaveLength(1);
    }

    // TS -> Go: every TypeScript user is listed, as a remote user, once.
    await sleep(SETTLE_MS);
    const ts = [alice, bob, carol, dave];
    const expected = [
      { local: true, userId: gopher, userName: 'gopher' },
      ...ts.map((u, i) => ({ local: false, userId: u.userId, userName: ['alice', 'bob', 'carol', 'dave'][i]! })),
    ].sort((x, y) => (x.userId < y.userId ? -1 : 1));
    expect(await go.clients(r)).toEqual(expected);
    // Go took in each TS join once ("CancelPendingDisconnect" is its mark of a decoded join).
    for (const u of ts) {
      expect(go.lines.filter((l) => l.hub === 'CancelPendingDisconnect' && l.roomId === r && l.userId === u.userId)).toHaveLength(1);
    }
    // The Go user's join was announced once on each pod, and never to those who joined after it.
    for (const u of ts) expect(joinedOf(u.client, gopher)).toHaveLength(u === alice || u === bob ? 1 : 0);
  });

  it('relays events both ways, each exactly once and in order, JSON-equal', async () => {
    const r = room('events');
    const alice = await tsUserSeenByGo(a, 'alice', r);
    const bob = await tsUserSeenByGo(b, 'bob', r);
    const gopher = randomUUID();
    await go.join(r, gopher, 'gopher');
    await alice.client.next('participant_joined', (f) => f.payload.userId === gopher);
    await bob.client.next('participant_joined', (f) => f.payload.userId === gopher);
    const n = 50;
    const text = (i: number) => `<b>card ${i}</b> & "é" \u2028`;

    // TS -> Go: alice publishes on pod A; the Go pod's socket gets every frame once, in order,
    // JSON-equal to what bob (pod B) gets.
    for (let i = 0; i < n; i++) alice.client.send('publish', { event: 'note', data: { i, text: text(i) } });
    await waitUntil(`bob gets ${n} events`, () => bob.client.of('event').length >= n, 30_000);
    const fromAlice = () => go.deliveries(r).filter((d) => (d.goParsed as Frame | null)?.payload?.from?.userId === alice.userId);
    await waitUntil(`the Go pod gets ${n} events`, () => fromAlice().length >= n, 30_000);
    await sleep(SETTLE_MS);
    const toGo = fromAlice();
    expect(toGo).toHaveLength(n);
    expect(bob.client.of('event')).toHaveLength(n);
    toGo.forEach((d, i) => {
      const frame = JSON.parse(d.raw) as Frame;
      // History is on (the default): the frame carries its offset, which a Go pod passes on as it is.
      expect(frame).toEqual({
        type: 'event',
        payload: { event: 'note', data: { i, text: text(i) }, from: { userId: alice.userId, userName: 'alice' }, offset: expect.any(Number) },
      });
      expect(frame).toEqual(bob.client.of('event')[i]);
      expect(d).toMatchObject({ hub: 'BroadcastRaw', to: [gopher], goParseErr: '' });
    });

    // Go -> TS: the Go pod broadcasts (Go's encoding/json writes <, >, & as \u003c...); alice
    // and bob get every frame once, in order, JSON-equal to the frame sent.
    const goFrame = (i: number) => ({
      type: 'event',
      payload: { event: 'card', data: { i, text: text(i) }, from: { userId: gopher, userName: 'gopher' } },
    });
    for (let i = 0; i < n; i++) await go.broadcast(r, goFrame(i));
    expect(
      go
        .deliveries(r)
        .filter((d) => d.hub === 'BroadcastRaw')
        .some((d) => d.raw.includes('\\u003cb\\u003e')),
    ).toBe(true);
    const fromGo = (c: Client) => c.of('event').filter((f) => f.payload.from?.userId === gopher);
    for (const c of [alice.client, bob.client]) await waitUntil(`${n} Go events`, () => fromGo(c).length >= n, 30_000);
    await sleep(SETTLE_MS);
    for (const c of [alice.client, bob.client]) expect(fromGo(c)).toEqual([...Array(n).keys()].map(goFrame));
    expect(alice.client.of('event')).toHaveLength(n); // never her own events back
  });

  it('never expires a Go user: several TTLs later it is still in room_state and nobody was told it left', async () => {
    const r = room('ttl');
    const alice = await tsUserSeenByGo(a, 'alice', r);
    const gopher = randomUUID();
    await go.join(r, gopher, 'gopher');
    await alice.client.next('participant_joined', (f) => f.payload.userId === gopher);
    await sleep(4 * TTL_MS); // the Go pod never heartbeats
    expect(leftOf(alice.client, gopher)).toHaveLength(0);
    for (const pod of [a, b]) {
      const late = await connect(pod, 'late');
      expect(userIds(await late.join(r))).toContain(gopher);
    }
    expect(await go.clients(r)).toContainEqual({ local: true, userId: gopher, userName: 'gopher' });
  });

  it('lists a Go user on a TypeScript pod started after it joined', async () => {
    const r = room('late-pod');
    const alice = await tsUserSeenByGo(a, 'alice', r);
    const gopher = randomUUID();
    await go.join(r, gopher, 'gopher');
    await alice.client.next('participant_joined', (f) => f.payload.userId === gopher);

    // Pod C never saw the Go join; only pod A's (or B's) sync can tell it. /readyz waits for sync.
    const c = await startPod(ENV);
    extraPods.push(c);
    const carolId = randomUUID();
    const carol = await connect(c, 'carol', { userId: carolId });
    const state = await carol.join(r);
    expect(userIds(state)).toContain(alice.userId); // pod A's snapshot has arrived...
    expect(state.payload.participants).toContainEqual({ userId: gopher, userName: 'gopher' }); // ...with the Go user in it
    expect(userIds(state)).toEqual([alice.userId, carolId, gopher].sort());
  });

  it('when the TypeScript pods expire a dead pod, the Go pod drops its users too: one Go-style leave each', async () => {
    const r = room('dead-pod');
    const alice = await tsUserSeenByGo(a, 'alice', r);
    const bob = await tsUserSeenByGo(b, 'bob', r);
    const d = await startPod(ENV);
    extraPods.push(d);
    const dave = await tsUserSeenByGo(d, 'dave', r);
    const podIdOf = (userId: string) => presence.find((e) => e.roomId === r && e.userId === userId && e.action === 'join')?.podId;
    const [podA, podB, podD] = [podIdOf(alice.userId), podIdOf(bob.userId), podIdOf(dave.userId)];
    expect(new Set([podA, podB, podD].filter(Boolean)).size).toBe(3); // three pods, three ids

    await d.kill(); // SIGKILL: no goodbye, no leave
    await alice.client.next('participant_left', (f) => f.payload.userId === dave.userId, 10 * TTL_MS);
    await go.waitForClients('drops dave', r, (cs) => !cs.some((c) => c.userId === dave.userId), 10 * TTL_MS);
    await sleep(SETTLE_MS);
    const leaves = presence.filter((e) => e.roomId === r && e.userId === dave.userId && e.action === 'leave');
    expect(leaves).toHaveLength(1);
    // Spoken by a surviving TypeScript pod (the lowest id of the cluster: any pod of this
    // file may be it), never in the dead pod's name.
    expect(leaves[0]!.podId).not.toBe(podD);
    expect(leaves[0]!.podId).not.toBe(go.podId);
    expect(leaves[0]).toMatchObject({ roomId: r, userId: dave.userId, action: 'leave' }); // Go-style: no userName needed
    expect((await go.clients(r)).map((c) => c.userId).sort()).toEqual([alice.userId, bob.userId].sort());
  });
});
