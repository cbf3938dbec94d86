/**
 * The multi-pod scenarios, run once per bus type with real server processes and real
 * WebSocket clients. Every suite uses its own BUS_PREFIX, so runs never see each other.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client, names, sleep, startPod, uniqueBusPrefix, waitUntil, type Pod, ClientPool } from './pods.js';

let rooms = 0;
const room = () => `room-${rooms++}`;

export function describeMultiPod(busType: 'postgres' | 'nats', extraEnv: Record<string, string> = {}) {
  describe(`two pods over ${busType}`, () => {
    const prefix = uniqueBusPrefix(busType);
    const env = { BUS_TYPE: busType, BUS_PREFIX: prefix, ...extraEnv };
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

    it('relays events across pods exactly once, in order, never echoed to the sender', async () => {
      const r = room();
      const alice = await connect(a, 'alice');
      const bob = await connect(b, 'bob');
      const carol = await connect(a, 'carol');
      await alice.join(r);
      await bob.join(r);
      await carol.join(r);
      const n = 200;
      for (let i = 0; i < n; i++) alice.send('publish', { event: 'note', data: { i } });
      for (const c of [bob, carol]) await waitUntil(`${n} events`, () => c.of('event').length >= n, 30_000);
      await new Promise((res) => setTimeout(res, 300)); // room for duplicates to show up
      for (const c of [bob, carol]) {
        const events = c.of('event');
        expect(events.map((e) => e.payload.data.i)).toEqual([...Array(n).keys()]);
        expect(events[0]!.payload.from).toMatchObject({ userName: 'alice' });
        expect(events[0]!.payload.event).toBe('note');
      }
      expect(alice.of('event')).toHaveLength(0);
    });

    it('room_state lists the users of both pods, each once, the joiner included', async () => {
      const r = room();
      const alice = await connect(a, 'alice', { userId: 'alice-id' });
      const aliceTab2 = await connect(b, 'alice', { userId: 'alice-id' });
      const bob = await connect(b, 'bob');
      await alice.join(r);
      await aliceTab2.join(r);
      const state = await bob.join(r);
      expect(names(state.payload.participants)).toEqual(['alice', 'bob']);
      expect(state.payload.timer).toBeNull();
      await alice.next('participant_joined', (f) => f.payload.userName === 'bob');
      const dave = await connect(a, 'dave');
      expect(names((await dave.join(r)).payload.participants)).toEqual(['alice', 'bob', 'dave']);
    });

    it('tells the others on every pod when a user joins and leaves; a second tab keeps the user present', async () => {
      const r = room();
      const alice = await connect(a, 'alice');
      await alice.join(r);
      const bob = await connect(b, 'bob', { userId: 'bob-id' });
      await bob.join(r);
      await alice.next('participant_joined', (f) => f.payload.userId === 'bob-id');
      expect(alice.of('participant_joined')[0]!.payload).toEqual({ userId: 'bob-id', userName: 'bob' });

      // Bob opens a second tab on pod A: nobody is told he joined again.
      const bobTab2 = await connect(a, 'bob', { userId: 'bob-id' });
      await bobTab2.join(r);
      // Bob leaves on pod B: his tab on A keeps him present.
      bob.send('leave_room');
      await new Promise((res) => setTimeout(res, 800));
      expect(alice.of('participant_joined')).toHaveLength(1);
      expect(alice.of('participant_left')).toHaveLength(0);
      // His last tab leaves: everyone is told at once.
      bobTab2.send('leave_room');
      const left = await alice.next('participant_left');
      expect(left.payload).toEqual({ userId: 'bob-id' });
    });

    it('keeps a dropped user for the grace period, and a reconnect on the other pod shows no leave', async () => {
      const r = room();
      const alice = await connect(a, 'alice');
      await alice.join(r);
      const bob = await connect(b, 'bob', { userId: 'bob-grace' });
      await bob.join(r);
      await alice.next('participant_joined');
      bob.terminate(); // dropped, no leave_room
      const bobAgain = await connect(a, 'bob', { userId: 'bob-grace' });
      const state = await bobAgain.join(r);
      expect(names(state.payload.participants)).toEqual(['alice', 'bob']);
      await new Promise((res) => setTimeout(res, 2_000)); // longer than DISCONNECT_GRACE_MS
      expect(alice.of('participant_left')).toHaveLength(0);
      expect(alice.of('participant_joined')).toHaveLength(1);

      // Without a reconnect, the leave comes after the grace period.
      const carol = await connect(b, 'carol', { userId: 'carol-grace' });
      await carol.join(r);
      await alice.next('participant_joined', (f) => f.payload.userId === 'carol-grace');
      await carol.close();
      await alice.next('participant_left', (f) => f.payload.userId === 'carol-grace', 10_000);
    });

    it('refuses bad tokens with HTTP 401 and rooms outside the token with forbidden', async () => {
      const url = `ws://127.0.0.1:${a.port}/ws`;
      const refused = async (u: string, headers?: Record<string, string>) => {
        const c = new Client(u, headers ? { headers } : undefined);
        await expect(c.opened).rejects.toThrow('HTTP 401');
      };
      await refused(url);
      await refused(`${url}?token=not-a-jwt`);
      const { Authenticator } = await import('../../src/auth.js');
      await refused(`${url}?token=${await new Authenticator('wrong-secret').issue('mallory')}`);
      const expired = await new Authenticator('multipod-test-secret').issue('old', { ttlSeconds: -10 });
      await refused(`${url}?token=${expired}`);
      await refused(url, { authorization: 'Bearer garbage' });

      const limited = await connect(a, 'limited', { rooms: ['allowed-room'] });
      limited.send('join_room', { roomId: 'other-room' });
      const err = await limited.next('error');
      expect(err.payload.code).toBe('forbidden');
      const ok = await limited.join('allowed-room');
      expect(names(ok.payload.participants)).toEqual(['limited']);
    });

    it('answers bad frames with bad_message and keeps the socket open; an oversized frame closes it with 1009', async () => {
      const c = await connect(b, 'fuzzer');
      const bad = [
        'not json',
        '[]',
        '{"type":42}',
        '{"type":"nope"}',
        '{"type":"join_room","payload":{"roomId":"bad room!"}}',
        '{"type":"join_room"}',
        '{"type":"publish","payload":{"event":""}}',
      ];
      for (const f of bad) c.sendRaw(f);
      await waitUntil('all errors', () => c.of('error').length === bad.length);
      expect(c.of('error').every((e) => e.payload.code === 'bad_message')).toBe(true);
      c.send('publish', { event: 'x', data: 1 });
      expect((await c.next('error', (e) => e.payload.code === 'not_in_room')).payload.message).toMatch(/join/);
      expect((await c.join('fuzz-room')).payload.roomId).toBe('fuzz-room');
      c.sendRaw('x'.repeat(70_000));
      expect(await c.closed).toBe(1009);
      const still = await connect(b, 'after');
      expect((await still.join('fuzz-room')).type).toBe('room_state');
    });

    it('serves health, readiness and metrics', async () => {
      expect((await fetch(a.url('/healthz'))).status).toBe(200);
      const ready = await fetch(b.url('/readyz'));
      expect(ready.status).toBe(200);
      const metrics = await (await fetch(a.url('/metrics'))).text();
      expect(metrics).toMatch(/^retrotro_sockets \d+/m);
      expect(metrics).toMatch(/retrotro_bus_envelopes_published_total\{transport="\w+",stream="room"\} [1-9]/);
      expect((await fetch(a.url('/dev/token'))).status).toBe(404); // JWT_SECRET set: not dev mode
    });
  });

  describe(`pods that come, crash and go over ${busType}`, () => {
    const prefix = uniqueBusPrefix(`${busType}_life`);
    const env = { BUS_TYPE: busType, BUS_PREFIX: prefix, ...extraEnv };
    const pods: Pod[] = [];
    const clients = new ClientPool();
    const pod = async (more: Record<string, string> = {}) => {
      const p = await startPod({ ...env, ...more });
      pods.push(p);
      return p;
    };
    const connect = clients.connect;
    afterAll(async () => {
      clients.dropAll();
      await Promise.all(pods.map((p) => p.kill()));
    });

    it('a pod started later sees who was already connected elsewhere', async () => {
      const r = room();
      const a = await pod();
      const alice = await connect(a, 'alice');
      await alice.join(r);
      const late = await pod();
      const bob = await connect(late, 'bob');
      expect(names((await bob.join(r)).payload.participants)).toEqual(['alice', 'bob']);
    });

    it('after kill -9 of a pod, its users leave for everyone else within the TTL', async () => {
      const r = room();
      const a = await pod();
      const doomed = await pod();
      const alice = await connect(a, 'alice');
      await alice.join(r);
      const bob = await connect(doomed, 'bob', { userId: 'bob-doomed' });
      await bob.join(r);
      await alice.next('participant_joined', (f) => f.payload.userId === 'bob-doomed');
      await doomed.kill();
      // PRESENCE_TTL_MS is 2000 in these pods; allow generous slack on a busy machine.
      await alice.next('participant_left', (f) => f.payload.userId === 'bob-doomed', 15_000);
      const carol = await connect(a, 'carol');
      expect(names((await carol.join(r)).payload.participants)).toEqual(['alice', 'carol']);
    });

    // Regression: only a periodic heartbeat started a pod's TTL clock. A pod started between
    // two heartbeats of another learnt it from its sync answer; when that pod was killed
    // before its next heartbeat, its users stayed present on the new pod for ever.
    it('expires a pod killed before the late pod heard its first periodic heartbeat', async () => {
      const r = room();
      // The doomed pod heartbeats every 60 s: after its start-up announce, it stays silent.
      const doomed = await pod({ PRESENCE_HEARTBEAT_MS: '60000', PRESENCE_TTL_MS: '120000' });
      const bob = await connect(doomed, 'bob', { userId: 'bob-early' });
      await bob.join(r);
      const late = await pod();
      const alice = await connect(late, 'alice');
      expect(names((await alice.join(r)).payload.participants)).toEqual(['alice', 'bob']);
      await doomed.kill();
      await alice.next('participant_left', (f) => f.payload.userId === 'bob-early', 15_000);
    });

    it('SIGTERM: sockets closed with 1001; its users stay for the grace, and one who reconnects elsewhere never leaves', async () => {
      const r = room();
      // A TTL of a minute: only the goodbye can explain a leave; a grace of 3 s for the handover.
      const slow = { PRESENCE_TTL_MS: '60000', DISCONNECT_GRACE_MS: '3000' };
      const a = await pod(slow);
      const leaving = await pod(slow);
      const alice = await connect(a, 'alice');
      await alice.join(r);
      const bob = await connect(leaving, 'bob', { userId: 'bob-sigterm' });
      await bob.join(r);
      const carol = await connect(leaving, 'carol', { userId: 'carol-sigterm' });
      await carol.join(r);
      await alice.next('participant_joined', (f) => f.payload.userId === 'carol-sigterm');
      expect(await leaving.stop()).toBe(0);
      expect(await bob.closed).toBe(1001);
      expect(await carol.closed).toBe(1001);
      // Bob's client reconnects to the other pod at once; Carol's never does.
      const bob2 = await connect(a, 'bob', { userId: 'bob-sigterm' });
      expect(names((await bob2.join(r)).payload.participants)).toEqual(['alice', 'bob', 'carol']);
      await alice.next('participant_left', (f) => f.payload.userId === 'carol-sigterm', 15_000);
      await sleep(500);
      expect(alice.of('participant_left').filter((f) => f.payload.userId === 'bob-sigterm')).toEqual([]);
      expect(alice.of('participant_joined').filter((f) => f.payload.userId === 'bob-sigterm')).toHaveLength(1);
    });
  });
}
