/**
 * The room timer across real pods (issue 4), run once per bus type: commands from any pod,
 * late joiners (also on a pod started after the timer), ticks derived locally on every pod
 * at no bus cost, a timer that outlives the pod that started it, concurrent commands that
 * converge, and validation. Every suite uses its own BUS_PREFIX.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type Client,
  metricValue,
  names,
  scrapeMetrics,
  sleep,
  startPod,
  uniqueBusPrefix,
  waitUntil,
  type Frame,
  type Pod,
  ClientPool,
} from './pods.js';

let rooms = 0;
const room = () => `timer-room-${rooms++}`;

/** Heartbeats are slow in these pods, so relayed ticks (one per second) would stand out in the metrics. */
const HEARTBEAT_MS = 3_000;
const WAIT = 20_000;

const ticksOf = (c: Client, from = 0) =>
  c.frames
    .slice(from)
    .filter((f) => f.type === 'timer_tick')
    .map((f) => f.payload.remaining_seconds as number);

function expectStrictlyDecreasing(values: number[]): void {
  for (let i = 1; i < values.length; i++) expect(values[i]!).toBeLessThan(values[i - 1]!);
}

export function describeTimer(busType: 'postgres' | 'nats', extraEnv: Record<string, string> = {}) {
  describe(`room timer across pods over ${busType}`, () => {
    const prefix = uniqueBusPrefix(`${busType}_tmr`);
    const env = {
      BUS_TYPE: busType,
      BUS_PREFIX: prefix,
      PRESENCE_HEARTBEAT_MS: String(HEARTBEAT_MS),
      PRESENCE_TTL_MS: String(HEARTBEAT_MS * 4),
      ...extraEnv,
    };
    let a: Pod;
    let b: Pod;
    /** A third pod, started after a timer is already running (then used as a timer owner that crashes). */
    let late: Pod | undefined;
    const clients = new ClientPool();
    const connect = clients.connect;
    /** Two users on two pods in a fresh room, each knowing about the other. */
    const pair = async (p1: Pod, p2: Pod, r = room()) => {
      const one = await connect(p1, `one-${r}`);
      const two = await connect(p2, `two-${r}`);
      await one.join(r);
      await two.join(r);
      await one.next('participant_joined', (f) => f.payload.userName === `two-${r}`, WAIT);
      return { r, one, two };
    };
    /**
     * Runs `act`, then waits until every client got a frame of `type` sent after it, and
     * checks they all got the same payload (the one the command's pod computed).
     */
    const onAll = async (cs: Client[], type: string, act: () => void): Promise<Frame['payload']> => {
      const marks = cs.map((c) => c.frames.length);
      act();
      const got = await Promise.all(cs.map((c, i) => c.next(type, () => true, WAIT, marks[i])));
      for (const f of got) expect(f.payload).toEqual(got[0]!.payload);
      return got[0]!.payload;
    };

    beforeAll(async () => {
      [a, b] = await Promise.all([startPod(env), startPod(env)]);
    });
    afterAll(async () => {
      clients.dropAll();
      await Promise.all([a?.stop(), b?.stop(), late?.kill()]);
    });

    it('takes commands from both pods, and every client on both pods sees the same timer', async () => {
      const { r, one: alice, two: bob } = await pair(a, b);
      const both = [alice, bob];

      const started = await onAll(both, 'timer_started', () => alice.send('timer_start', { durationSeconds: 600, phase: 'brainstorm' }));
      expect(started).toMatchObject({ phase: 'brainstorm', duration_seconds: 600 });
      expect(started.end_at).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);

      const paused = await onAll(both, 'timer_paused', () => bob.send('timer_pause'));
      expect(paused.remaining_seconds).toBeGreaterThan(0);
      expect(paused.remaining_seconds).toBeLessThanOrEqual(600);

      const resumed = await onAll(both, 'timer_resumed', () => alice.send('timer_resume'));
      expect(resumed.remaining_seconds).toBe(paused.remaining_seconds);
      expect(Date.parse(resumed.end_at)).toBeGreaterThan(Date.parse(started.end_at) - 1); // a pause only pushes the end

      const extended = await onAll(both, 'timer_extended', () => bob.send('timer_add_time', { seconds: 60 }));
      expect(extended.added_seconds).toBe(60);
      expect(Date.parse(extended.new_end_at) - Date.parse(resumed.end_at)).toBe(60_000);
      expect(extended.new_remaining).toBeGreaterThan(60);

      // A late joiner on either pod sees the extended timer.
      const carol = await connect(b, 'carol');
      expect((await carol.join(r)).payload.timer).toMatchObject({ phase: 'brainstorm', running: true, end_at: extended.new_end_at });

      expect(await onAll([...both, carol], 'timer_stopped', () => alice.send('timer_stop'))).toEqual({});
      const dave = await connect(a, 'dave');
      expect((await dave.join(r)).payload.timer).toBeNull();
      // Each change reached each client exactly once.
      for (const c of both) {
        for (const t of ['timer_started', 'timer_paused', 'timer_resumed', 'timer_extended', 'timer_stopped']) {
          expect(c.of(t), t).toHaveLength(1);
        }
        expect(c.of('error')).toHaveLength(0);
      }
    });

    it('ticks on both pods down to timer_ended, and a tick costs no bus traffic', async () => {
      const { r, one: alice, two: bob } = await pair(a, b);
      const both = [alice, bob];
      const marks = both.map((c) => c.frames.length);
      // 10 s: a tick every second from 9 down to 1.
      const started = await onAll(both, 'timer_started', () => alice.send('timer_start', { durationSeconds: 10, phase: 'sprint' }));
      expect(started.duration_seconds).toBe(10);

      // A window in the middle of the countdown (ticks every second): only heartbeats may be published.
      const control = (text: string) => metricValue(text, 'retrotro_bus_envelopes_published_total', { stream: 'control' });
      const roomStream = (text: string) => metricValue(text, 'retrotro_bus_envelopes_published_total', { stream: 'room' });
      const t0 = Date.now();
      const before = await Promise.all([scrapeMetrics(a), scrapeMetrics(b)]);
      await sleep(6_000);
      const after = await Promise.all([scrapeMetrics(a), scrapeMetrics(b)]);
      const elapsed = Date.now() - t0;
      const ticksInWindow = ticksOf(bob, marks[1]).length;
      // A heartbeat timer fires at most once per interval; +2 for the edges of the window.
      const allowance = Math.floor(elapsed / HEARTBEAT_MS) + 2;
      for (const i of [0, 1]) {
        const controlPublished = control(after[i]!) - control(before[i]!);
        expect(controlPublished, `pod ${'ab'[i]}: control envelopes in ${elapsed} ms (ticks seen: ${ticksInWindow})`).toBeLessThanOrEqual(allowance);
        expect(roomStream(after[i]!) - roomStream(before[i]!), `pod ${'ab'[i]}: room envelopes during the countdown`).toBe(0);
      }
      // The window saw more ticks than the allowance: had each tick been relayed (as a control
      // or a room envelope), the checks above would have failed even with no heartbeat at all.
      expect(ticksInWindow).toBeGreaterThan(allowance);

      const ended = await Promise.all(both.map((c, i) => c.next('timer_ended', () => true, WAIT, marks[i])));
      for (const [i, c] of both.entries()) {
        expect(ended[i]!.payload).toEqual({ phase: 'sprint' });
        const ticks = ticksOf(c, marks[i]);
        expectStrictlyDecreasing(ticks);
        expect(ticks.every((t) => Number.isInteger(t) && t >= 1 && t < 10)).toBe(true);
        expect(ticks.filter((t) => t <= 5)).toEqual([5, 4, 3, 2, 1]);
        const frames = c.frames.slice(marks[i]);
        expect(frames.findIndex((f) => f.type === 'timer_ended')).toBeGreaterThan(frames.findLastIndex((f) => f.type === 'timer_tick'));
        expect(c.of('timer_tick').every((f) => f.payload.phase === 'sprint')).toBe(true);
      }
      await sleep(500);
      for (const c of both) expect(c.of('timer_ended')).toHaveLength(1);
      const carol = await connect(b, 'carol');
      expect((await carol.join(r)).payload.timer).toBeNull();
    });

    it('shows the running timer to late joiners on the other pod and on a pod started after the timer', async () => {
      const r = room();
      const alice = await connect(a, 'alice');
      await alice.join(r);
      alice.send('timer_start', { durationSeconds: 900, phase: 'vote' });
      const started = (await alice.next('timer_started', () => true, WAIT)).payload;

      const bob = await connect(b, 'bob');
      const onB = (await bob.join(r)).payload.timer;
      expect(onB).toMatchObject({ phase: 'vote', running: true, end_at: started.end_at });
      expect(onB.remaining_seconds).toBeGreaterThan(0);
      expect(onB.remaining_seconds).toBeLessThanOrEqual(900);

      late = await startPod(env);
      const carol = await connect(late, 'carol');
      const onLate = (await carol.join(r)).payload;
      expect(names(onLate.participants)).toEqual(['alice', 'bob', 'carol']);
      expect(onLate.timer).toMatchObject({ phase: 'vote', running: true, end_at: started.end_at });
      expect(onLate.timer.remaining_seconds).toBeGreaterThan(0);

      // The late pod takes commands too: a pause there is what a joiner on B sees.
      const paused = await onAll([alice, bob, carol], 'timer_paused', () => carol.send('timer_pause'));
      const dave = await connect(b, 'dave');
      expect((await dave.join(r)).payload.timer).toEqual({
        phase: 'vote',
        running: false,
        remaining_seconds: paused.remaining_seconds,
        end_at: null,
      });
    });

    it('concurrent commands on two pods converge: every pod ends with the same timer', async () => {
      for (let round = 0; round < 3; round++) {
        const { r, one: alice, two: bob } = await pair(a, b);
        const marks = [alice.frames.length, bob.frames.length];
        // The same moment, as close as two clients can make it.
        alice.send('timer_start', { durationSeconds: 300 + round, phase: `from-a-${round}` });
        bob.send('timer_start', { durationSeconds: 500 + round, phase: `from-b-${round}` });
        const lastStarted = (c: Client, from: number) =>
          c.frames
            .slice(from)
            .filter((f) => f.type === 'timer_started')
            .at(-1)?.payload;
        await waitUntil(
          'both pods showing the same timer',
          () => {
            const x = lastStarted(alice, marks[0]!);
            const y = lastStarted(bob, marks[1]!);
            return x !== undefined && JSON.stringify(x) === JSON.stringify(y);
          },
          WAIT,
        );
        const winner = lastStarted(alice, marks[0]!);
        const views = await Promise.all([a, b].map(async (pod, i) => (await (await connect(pod, `late-${i}`)).join(r)).payload.timer));
        expect(views[0]).toMatchObject({ running: true, phase: winner.phase, end_at: winner.end_at });
        expect(views[1]).toMatchObject({ running: true, phase: winner.phase, end_at: winner.end_at });
        // And a command afterwards applies to that one timer everywhere.
        const paused = await onAll([alice, bob], 'timer_paused', () => bob.send('timer_pause'));
        expect(paused.remaining_seconds).toBeLessThanOrEqual(winner.duration_seconds);
      }
    });

    it('outlives the pod that started it: after kill -9 of that pod, the others still tick and end', async () => {
      const owner = late ?? (late = await startPod(env));
      const r = room();
      const carol = await connect(owner, 'carol');
      const alice = await connect(a, 'alice');
      const bob = await connect(b, 'bob');
      for (const c of [carol, alice, bob]) await c.join(r);
      await waitUntil('everyone present', () => alice.of('participant_joined').length >= 1 && carol.of('participant_joined').length >= 2, WAIT);
      const survivors = [alice, bob];
      const marks = survivors.map((c) => c.frames.length);
      const started = await onAll([carol, ...survivors], 'timer_started', () => carol.send('timer_start', { durationSeconds: 6, phase: 'final' }));
      await owner.kill();
      const afterKill = survivors.map((c) => c.frames.length);

      // The state survived the crash: a newcomer still sees it.
      const dave = await connect(b, 'dave');
      expect((await dave.join(r)).payload.timer).toMatchObject({ phase: 'final', running: true, end_at: started.end_at });

      for (const [i, c] of survivors.entries()) {
        const ended = await c.next('timer_ended', () => true, WAIT, marks[i]);
        expect(ended.payload).toEqual({ phase: 'final' });
        const ticks = ticksOf(c, marks[i]);
        expectStrictlyDecreasing(ticks);
        expect(ticks.filter((t) => t <= 5)).toEqual([5, 4, 3, 2, 1]);
        // The last ticks came after the owner was gone.
        expect(ticksOf(c, afterKill[i])).toContain(1);
      }
    });

    it('validates timer commands: bad durations are bad_message, commands without a timer no_active_timer', async () => {
      const r = room();
      const alice = await connect(a, 'alice');
      alice.send('timer_start', { durationSeconds: 60 });
      expect((await alice.next('error', () => true, WAIT)).payload.code).toBe('not_in_room');
      await alice.join(r);
      const bad = [{ durationSeconds: 0 }, { durationSeconds: 86_401 }, { durationSeconds: 'x' }, { durationSeconds: 1.5 }, {}, undefined];
      const expected: string[] = ['not_in_room'];
      for (const p of bad) {
        alice.send('timer_start', p);
        expected.push('bad_message');
      }
      alice.send('timer_pause');
      alice.send('timer_resume');
      alice.send('timer_stop');
      alice.send('timer_add_time', { seconds: 10 });
      expected.push('no_active_timer', 'no_active_timer', 'no_active_timer', 'no_active_timer');
      alice.send('timer_add_time', { seconds: 0 });
      expected.push('bad_message');
      await waitUntil('every error', () => alice.of('error').length >= expected.length, WAIT);
      expect(alice.of('error').map((e) => e.payload.code)).toEqual(expected);

      // The socket is still open and no timer was started anywhere.
      expect((await alice.join(r)).payload.timer).toBeNull();
      const bob = await connect(b, 'bob');
      expect((await bob.join(r)).payload.timer).toBeNull();
      expect(alice.of('timer_started')).toHaveLength(0);
    });
  });
}
