/**
 * TimerService over a real RelayBus and MemoryTransport. Fake setTimeout/clearTimeout/Date
 * drive the timer; the memory broker's setImmediate stays real, so `flush()` lets bus
 * traffic between pods through without moving the clock.
 */
import { MemoryBroker, MemoryTransport, RelayBus, type DeliverOptions, type Frame, type PublishResult } from '@retrotro/bus-core';
import { RecordingHub } from '@retrotro/bus-core/testing';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { TIMER_STATE_KEY, TimerService, type TimerCommandResult, type TimerCommandType } from '../src/timer.js';

const T0 = Date.parse('2030-01-01T00:00:00.000Z');
const isoAt = (ms: number) => new Date(T0 + ms).toISOString();
const ROOM = 'room-1';

/** Records timer frames with the (fake) time since T0 at which they were delivered. */
class TimedHub extends RecordingHub {
  readonly timed: Array<{ at: number; frame: Frame }> = [];
  override deliverLocal(roomId: string, frame: Frame, options?: DeliverOptions): void {
    if (roomId === ROOM) this.timed.push({ at: Date.now() - T0, frame });
    super.deliverLocal(roomId, frame, options);
  }
  types(): string[] {
    return this.frames(ROOM).map((f) => f.type);
  }
  ticks(): Array<[number, number]> {
    return this.timed
      .filter((t) => t.frame.type === 'timer_tick')
      .map((t) => [t.at, (t.frame.payload as { remaining_seconds: number }).remaining_seconds]);
  }
  last(): Frame | undefined {
    return this.frames(ROOM).at(-1);
  }
}

interface Pod {
  bus: RelayBus;
  hub: TimedHub;
  timers: TimerService;
  warn: ReturnType<typeof vi.fn>;
}

let broker: MemoryBroker;
let pods: Pod[] = [];

async function pod(podId: string): Promise<Pod> {
  const hub = new TimedHub();
  // Heartbeats and expiry far away: the fake Date must never make a peer look dead.
  const bus = new RelayBus({ transport: new MemoryTransport(broker), podId, heartbeatMs: 1e8, ttlMs: 2e8, syncWindowMs: 0 });
  await bus.start(hub);
  vi.advanceTimersByTime(0); // the sync window
  await bus.whenReady();
  const warn = vi.fn();
  const timers = new TimerService(bus, hub, { now: () => Date.now(), logger: { warn } });
  const p = { bus, hub, timers, warn };
  pods.push(p);
  return p;
}

/** Lets the memory broker deliver (real setImmediate), without moving the fake clock. */
async function flush(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise<void>((r) => setImmediate(r));
}

function sent(r: TimerCommandResult): Promise<PublishResult> {
  if (!r.ok) throw new Error(`expected ok, got ${r.code}: ${r.message}`);
  return r.sent;
}

beforeEach(() => {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
  vi.setSystemTime(T0);
  broker = new MemoryBroker();
});

afterEach(async () => {
  for (const p of pods) p.timers.close();
  await Promise.all(pods.map((p) => p.bus.stop()));
  pods = [];
  vi.useRealTimers();
});

describe('TimerService on one pod', () => {
  it('timer_start delivers timer_started with end_at to the room, sender included, and relays it', async () => {
    const { hub, timers, bus } = await pod('pod-a');
    const r = timers.command(ROOM, 'timer_start', { durationSeconds: 90, phase: 'vote' });
    // Synchronous: the local sockets have it before command() returns.
    expect(hub.frames(ROOM)).toEqual([{ type: 'timer_started', payload: { phase: 'vote', duration_seconds: 90, end_at: isoAt(90_000) } }]);
    await expect(sent(r)).resolves.toEqual({ ok: true });
    expect(bus.getRoomState(ROOM, TIMER_STATE_KEY)).toMatchObject({ status: 'running', phase: 'vote', endAt: T0 + 90_000 });
    expect(timers.view(ROOM)).toEqual({ phase: 'vote', running: true, remaining_seconds: 90, end_at: isoAt(90_000) });
    expect(timers.activeCount).toBe(1);

    timers.command('other', 'timer_start', { durationSeconds: 5 });
    expect(timers.view('other')).toMatchObject({ phase: 'timer', remaining_seconds: 5 });
    expect(timers.activeCount).toBe(2);
  });

  it('a 23 s timer ticks at 20, 15, 10, 9 ... 1 and ends once, with one timeout pending at a time', async () => {
    const { hub, timers } = await pod('pod-a');
    timers.command(ROOM, 'timer_start', { durationSeconds: 23, phase: 'discuss' });
    expect(vi.getTimerCount()).toBe(1);
    vi.advanceTimersByTime(3_000);
    expect(vi.getTimerCount()).toBe(1); // re-armed for the next tick, never an interval
    expect(timers.view(ROOM)?.remaining_seconds).toBe(20);
    vi.advanceTimersByTime(60_000);

    expect(hub.ticks()).toEqual([
      [3_000, 20],
      [8_000, 15],
      [13_000, 10],
      [14_000, 9],
      [15_000, 8],
      [16_000, 7],
      [17_000, 6],
      [18_000, 5],
      [19_000, 4],
      [20_000, 3],
      [21_000, 2],
      [22_000, 1],
    ]);
    expect(hub.frames(ROOM, 'timer_tick')[0]).toEqual({ type: 'timer_tick', payload: { remaining_seconds: 20, phase: 'discuss' } });
    const ended = hub.timed.filter((t) => t.frame.type === 'timer_ended');
    expect(ended).toEqual([{ at: 23_000, frame: { type: 'timer_ended', payload: { phase: 'discuss' } } }]);
    expect(vi.getTimerCount()).toBe(0);
    expect(timers.view(ROOM)).toBeNull();
    expect(timers.activeCount).toBe(0);
  });

  it("arms unref'd timeouts only (no intervals), so a timer never keeps the process alive", async () => {
    const { timers } = await pod('pod-a');
    const setTimeoutSpy = vi.spyOn(globalThis, 'setTimeout');
    const setIntervalSpy = vi.spyOn(globalThis, 'setInterval');
    timers.command(ROOM, 'timer_start', { durationSeconds: 23 });
    vi.advanceTimersByTime(23_000);
    expect(setIntervalSpy).not.toHaveBeenCalled();
    expect(setTimeoutSpy).toHaveBeenCalledTimes(13); // 12 ticks and the end
    for (const r of setTimeoutSpy.mock.results) expect((r.value as NodeJS.Timeout).hasRef()).toBe(false);
    vi.restoreAllMocks();
  });

  it('skips a tick it is more than a second late for (stalled process) and keeps the schedule', async () => {
    let stall = 0;
    const { hub, bus, timers: usual } = await pod('pod-a');
    usual.close();
    const timers = new TimerService(bus, hub, { now: () => Date.now() + stall });
    timers.command(ROOM, 'timer_start', { durationSeconds: 23 });
    stall = 2_500; // the 20 s tick fires when the pod's clock already says 17.5 s left
    vi.advanceTimersByTime(30_000);
    timers.close();
    expect(hub.ticks().map(([, k]) => k)).toEqual([15, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1]);
    expect(hub.frames(ROOM, 'timer_ended')).toHaveLength(1);
  });

  it("never ticks or ends before the instant on the pod's own clock (a timeout that fires early waits again)", async () => {
    let skew = 0;
    const { hub, bus, timers: usual } = await pod('pod-a');
    usual.close();
    const timers = new TimerService(bus, hub, { now: () => Date.now() + skew });
    timers.command(ROOM, 'timer_start', { durationSeconds: 23 });
    skew = -500; // the pod's clock fell 0.5 s behind the timeouts' clock
    vi.advanceTimersByTime(30_000);
    timers.close();
    expect(hub.ticks()[0]).toEqual([3_500, 20]);
    expect(hub.timed.filter((t) => t.frame.type === 'timer_ended').map((t) => t.at)).toEqual([23_500]);
  });

  it('a timer of exactly 20 s does not tick at its start instant', async () => {
    const { hub, timers } = await pod('pod-a');
    timers.command(ROOM, 'timer_start', { durationSeconds: 20 });
    vi.advanceTimersByTime(5_000);
    expect(hub.ticks()).toEqual([[5_000, 15]]);
  });

  it('pause and resume keep the remaining time to the millisecond', async () => {
    const { hub, timers } = await pod('pod-a');
    timers.command(ROOM, 'timer_start', { durationSeconds: 60 });
    vi.advanceTimersByTime(12_400); // 47.6 s left
    await expect(sent(timers.command(ROOM, 'timer_pause', undefined))).resolves.toEqual({ ok: true });
    expect(hub.last()).toEqual({ type: 'timer_paused', payload: { remaining_seconds: 48 } });
    expect(timers.view(ROOM)).toEqual({ phase: 'timer', running: false, remaining_seconds: 48, end_at: null });
    expect(vi.getTimerCount()).toBe(0);
    expect(timers.activeCount).toBe(1);

    const before = hub.deliveries.length;
    vi.advanceTimersByTime(100_000);
    expect(hub.deliveries.length).toBe(before); // no ticks while paused
    expect(timers.view(ROOM)?.remaining_seconds).toBe(48);

    const resumedAt = 112_400;
    timers.command(ROOM, 'timer_resume', undefined);
    expect(hub.last()).toEqual({ type: 'timer_resumed', payload: { remaining_seconds: 48, end_at: isoAt(resumedAt + 47_600) } });
    expect(timers.view(ROOM)).toEqual({ phase: 'timer', running: true, remaining_seconds: 48, end_at: isoAt(resumedAt + 47_600) });
    vi.advanceTimersByTime(60_000);
    const after = hub.ticks().filter(([at]) => at > resumedAt);
    expect(after[0]).toEqual([resumedAt + 2_600, 45]);
    expect(hub.timed.filter((t) => t.frame.type === 'timer_ended').map((t) => t.at)).toEqual([resumedAt + 47_600]);
  });

  it('timer_add_time extends a running timer and reschedules its ticks', async () => {
    const { hub, timers } = await pod('pod-a');
    timers.command(ROOM, 'timer_start', { durationSeconds: 30 });
    vi.advanceTimersByTime(5_000);
    timers.command(ROOM, 'timer_add_time', { seconds: 60 });
    expect(hub.last()).toEqual({
      type: 'timer_extended',
      payload: { added_seconds: 60, new_remaining: 85, new_end_at: isoAt(90_000) },
    });
    expect(timers.view(ROOM)).toMatchObject({ running: true, remaining_seconds: 85, end_at: isoAt(90_000) });
    expect(vi.getTimerCount()).toBe(1);
    vi.advanceTimersByTime(100_000);
    expect(hub.ticks().slice(0, 3)).toEqual([
      [5_000, 25], // the original schedule's first tick, at the instant of the add, before it
      [10_000, 80],
      [15_000, 75],
    ]);
    expect(hub.timed.filter((t) => t.frame.type === 'timer_ended').map((t) => t.at)).toEqual([90_000]);
  });

  it('timer_add_time extends a paused timer (new_end_at null) and it stays paused', async () => {
    const { hub, timers } = await pod('pod-a');
    timers.command(ROOM, 'timer_start', { durationSeconds: 30 });
    vi.advanceTimersByTime(10_500);
    timers.command(ROOM, 'timer_pause', undefined); // 19.5 s left
    timers.command(ROOM, 'timer_add_time', { seconds: 15 });
    expect(hub.last()).toEqual({ type: 'timer_extended', payload: { added_seconds: 15, new_remaining: 35, new_end_at: null } });
    expect(timers.view(ROOM)).toEqual({ phase: 'timer', running: false, remaining_seconds: 35, end_at: null });
    expect(vi.getTimerCount()).toBe(0);
    timers.command(ROOM, 'timer_resume', undefined);
    vi.advanceTimersByTime(40_000);
    expect(hub.timed.filter((t) => t.frame.type === 'timer_ended').map((t) => t.at)).toEqual([10_500 + 34_500]);
  });

  it('timer_stop sends timer_stopped, cancels the ticks and leaves no timer', async () => {
    const { hub, timers, bus } = await pod('pod-a');
    timers.command(ROOM, 'timer_start', { durationSeconds: 30, phase: 'p' });
    vi.advanceTimersByTime(4_000);
    await expect(sent(timers.command(ROOM, 'timer_stop', undefined))).resolves.toEqual({ ok: true });
    expect(hub.last()).toEqual({ type: 'timer_stopped', payload: {} });
    expect(bus.getRoomState(ROOM, TIMER_STATE_KEY)).toMatchObject({ status: 'stopped' });
    expect(timers.view(ROOM)).toBeNull();
    expect(timers.activeCount).toBe(0);
    expect(vi.getTimerCount()).toBe(0);
    vi.advanceTimersByTime(60_000);
    expect(hub.types()).toEqual(['timer_started', 'timer_stopped']);
  });

  it('rejects bad payloads with bad_message naming the field and range, and changes nothing', async () => {
    const { hub, timers, bus } = await pod('pod-a');
    const bad = (type: TimerCommandType, payload: unknown, field: RegExp) => {
      const r = timers.command(ROOM, type, payload);
      expect(r, JSON.stringify(payload)).toMatchObject({ ok: false, code: 'bad_message' });
      if (!r.ok) expect(r.message).toMatch(field);
    };
    const duration = /durationSeconds.*1 to 86400/;
    for (const durationSeconds of [0, -1, 86_401, 1.5, '10', null, Number.NaN, Infinity]) {
      bad('timer_start', { durationSeconds }, duration);
    }
    bad('timer_start', {}, duration);
    bad('timer_start', undefined, duration);
    bad('timer_start', 'x', duration);
    bad('timer_start', [30], duration);
    const phase = /phase.*1 to 64/;
    bad('timer_start', { durationSeconds: 10, phase: 'x'.repeat(65) }, phase);
    bad('timer_start', { durationSeconds: 10, phase: 42 }, phase);
    bad('timer_start', { durationSeconds: 10, phase: '' }, phase);
    const seconds = /seconds.*1 to 86400/;
    // Checked before whether a timer exists.
    for (const s of [0, 86_401, 2.5, '5', undefined]) bad('timer_add_time', { seconds: s }, seconds);
    bad('timer_add_time', undefined, seconds);
    expect(bus.getRoomState(ROOM, TIMER_STATE_KEY)).toBeUndefined();
    expect(hub.deliveries).toEqual([]);

    // The bounds themselves are fine.
    expect(timers.command(ROOM, 'timer_start', { durationSeconds: 1 }).ok).toBe(true);
    expect(timers.command(ROOM, 'timer_start', { durationSeconds: 86_400, phase: 'x'.repeat(64) }).ok).toBe(true);
    expect(timers.command(ROOM, 'timer_add_time', { seconds: 86_400 }).ok).toBe(true);
    expect(timers.command(ROOM, 'timer_start', { durationSeconds: 3, phase: null }).ok).toBe(true);
    expect(timers.view(ROOM)?.phase).toBe('timer');
  });

  it('answers no_active_timer without a timer, after a stop and after the end; start begins a new one', async () => {
    const { hub, timers } = await pod('pod-a');
    const commands: Array<[TimerCommandType, unknown]> = [
      ['timer_pause', undefined],
      ['timer_resume', undefined],
      ['timer_stop', undefined],
      ['timer_add_time', { seconds: 5 }],
    ];
    const expectNone = () => {
      for (const [type, payload] of commands) {
        expect(timers.command(ROOM, type, payload), type).toMatchObject({ ok: false, code: 'no_active_timer' });
      }
    };
    expectNone();

    timers.command(ROOM, 'timer_start', { durationSeconds: 10 });
    timers.command(ROOM, 'timer_stop', undefined);
    expectNone();

    timers.command(ROOM, 'timer_start', { durationSeconds: 10 });
    vi.advanceTimersByTime(9_999);
    expect(timers.view(ROOM)?.remaining_seconds).toBe(1);
    vi.advanceTimersByTime(1);
    expect(hub.last()).toEqual({ type: 'timer_ended', payload: { phase: 'timer' } });
    expectNone();

    const before = hub.deliveries.length;
    expect(hub.frames(ROOM, 'timer_ended')).toHaveLength(1);
    timers.command(ROOM, 'timer_start', { durationSeconds: 2 });
    expect(hub.deliveries.length).toBe(before + 1);
    vi.advanceTimersByTime(10_000);
    expect(hub.frames(ROOM, 'timer_ended')).toHaveLength(2); // the new timer ends once too
  });

  it('pause of a paused timer and resume of a running one are ok no-ops', async () => {
    const { hub, timers, bus } = await pod('pod-a');
    timers.command(ROOM, 'timer_start', { durationSeconds: 30 });
    const running = bus.getRoomState(ROOM, TIMER_STATE_KEY);
    await expect(sent(timers.command(ROOM, 'timer_resume', undefined))).resolves.toEqual({ ok: true });
    expect(bus.getRoomState(ROOM, TIMER_STATE_KEY)).toBe(running);
    timers.command(ROOM, 'timer_pause', undefined);
    const paused = bus.getRoomState(ROOM, TIMER_STATE_KEY);
    await expect(sent(timers.command(ROOM, 'timer_pause', undefined))).resolves.toEqual({ ok: true });
    expect(bus.getRoomState(ROOM, TIMER_STATE_KEY)).toBe(paused);
    expect(hub.types()).toEqual(['timer_started', 'timer_paused']);
  });

  it('view() in each status', async () => {
    const { timers } = await pod('pod-a');
    expect(timers.view(ROOM)).toBeNull();
    timers.command(ROOM, 'timer_start', { durationSeconds: 10, phase: 'retro' });
    vi.advanceTimersByTime(2_500);
    expect(timers.view(ROOM)).toEqual({ phase: 'retro', running: true, remaining_seconds: 8, end_at: isoAt(10_000) });
    timers.command(ROOM, 'timer_pause', undefined);
    expect(timers.view(ROOM)).toEqual({ phase: 'retro', running: false, remaining_seconds: 8, end_at: null });
    timers.command(ROOM, 'timer_stop', undefined);
    expect(timers.view(ROOM)).toBeNull();
    timers.command(ROOM, 'timer_start', { durationSeconds: 1 });
    vi.advanceTimersByTime(1_000);
    expect(timers.view(ROOM)).toBeNull(); // ended
  });

  it('the room emptied cluster-wide drops the timer and cancels its ticks', async () => {
    const { hub, timers, bus } = await pod('pod-a');
    await bus.publishPresenceJoin(ROOM, { userId: 'u1', userName: 'Ann' });
    timers.command(ROOM, 'timer_start', { durationSeconds: 30 });
    vi.advanceTimersByTime(5_000);
    await bus.publishPresenceLeave(ROOM, 'u1');
    expect(bus.getRoomState(ROOM, TIMER_STATE_KEY)).toBeUndefined();
    expect(vi.getTimerCount()).toBe(0);
    expect(timers.view(ROOM)).toBeNull();
    expect(timers.activeCount).toBe(0);
    const before = hub.deliveries.length;
    vi.advanceTimersByTime(60_000);
    expect(hub.deliveries.length).toBe(before);
  });

  it('ignores (and logs) a malformed timer state written by someone else', async () => {
    const { hub, timers, bus, warn } = await pod('pod-a');
    timers.command(ROOM, 'timer_start', { durationSeconds: 30 });
    await bus.setRoomState(ROOM, TIMER_STATE_KEY, { status: 'running', phase: 'x' });
    expect(warn).toHaveBeenCalledTimes(1);
    expect(timers.view(ROOM)).toBeNull();
    expect(vi.getTimerCount()).toBe(0);
    expect(hub.types()).toEqual(['timer_started']);
    expect(timers.command(ROOM, 'timer_pause', undefined)).toMatchObject({ code: 'no_active_timer' });
  });

  it('close() clears the timeouts and stops watching', async () => {
    const { hub, timers } = await pod('pod-a');
    timers.command(ROOM, 'timer_start', { durationSeconds: 30 });
    timers.close();
    expect(vi.getTimerCount()).toBe(0);
    vi.advanceTimersByTime(60_000);
    expect(hub.types()).toEqual(['timer_started']);
  });
});

describe('TimerService across pods', () => {
  it('every pod sees the same timer, ticks and ends it for its own sockets, and takes commands', async () => {
    const a = await pod('pod-a');
    const b = await pod('pod-b');
    a.timers.command(ROOM, 'timer_start', { durationSeconds: 23, phase: 'vote' });
    await flush();
    expect(b.hub.frames(ROOM)).toEqual(a.hub.frames(ROOM));
    expect(b.bus.getRoomState(ROOM, TIMER_STATE_KEY)).toEqual(a.bus.getRoomState(ROOM, TIMER_STATE_KEY));
    expect(b.timers.view(ROOM)).toEqual({ phase: 'vote', running: true, remaining_seconds: 23, end_at: isoAt(23_000) });
    expect(b.timers.view(ROOM)).toEqual(a.timers.view(ROOM));

    vi.advanceTimersByTime(10_000);
    // A command on the other pod: pause on B reaches A.
    b.timers.command(ROOM, 'timer_pause', undefined);
    await flush();
    expect(a.hub.last()).toEqual({ type: 'timer_paused', payload: { remaining_seconds: 13 } });
    expect(a.timers.view(ROOM)).toEqual(b.timers.view(ROOM));
    expect(a.timers.activeCount).toBe(1);

    a.timers.command(ROOM, 'timer_resume', undefined);
    await flush();
    vi.advanceTimersByTime(30_000);
    expect(a.hub.ticks()).toEqual(b.hub.ticks());
    expect(a.hub.types()).toEqual(b.hub.types());
    for (const p of [a, b]) {
      expect(p.hub.timed.filter((t) => t.frame.type === 'timer_ended').map((t) => t.at)).toEqual([23_000]);
    }
  });

  it('a timer outlives the pod that started it', async () => {
    const a = await pod('pod-a');
    const b = await pod('pod-b');
    await b.bus.publishPresenceJoin(ROOM, { userId: 'u2', userName: 'Bea' });
    a.timers.command(ROOM, 'timer_start', { durationSeconds: 12 });
    await flush();
    a.timers.close();
    await a.bus.stop();
    await flush();
    vi.advanceTimersByTime(12_000);
    expect(b.hub.types()).toEqual(['timer_started', ...Array<string>(10).fill('timer_tick'), 'timer_ended']);
  });

  it('concurrent commands on two pods converge to the same state everywhere (last writer wins)', async () => {
    const a = await pod('pod-a');
    const b = await pod('pod-b');
    a.timers.command(ROOM, 'timer_start', { durationSeconds: 60, phase: 'a' });
    b.timers.command(ROOM, 'timer_start', { durationSeconds: 120, phase: 'b' });
    await flush();
    const state = a.bus.getRoomState(ROOM, TIMER_STATE_KEY);
    expect(b.bus.getRoomState(ROOM, TIMER_STATE_KEY)).toEqual(state);
    expect(a.timers.view(ROOM)).toEqual(b.timers.view(ROOM));
    expect(a.hub.last()).toEqual(b.hub.last());

    // Then a pause on A racing an add on B.
    vi.advanceTimersByTime(5_000);
    a.timers.command(ROOM, 'timer_pause', undefined);
    b.timers.command(ROOM, 'timer_add_time', { seconds: 30 });
    await flush();
    expect(b.bus.getRoomState(ROOM, TIMER_STATE_KEY)).toEqual(a.bus.getRoomState(ROOM, TIMER_STATE_KEY));
    expect(a.timers.view(ROOM)).toEqual(b.timers.view(ROOM));
    expect(a.hub.last()).toEqual(b.hub.last());
    a.timers.command(ROOM, 'timer_stop', undefined);
    await flush();
    vi.advanceTimersByTime(200_000);
    for (const p of [a, b]) {
      expect(p.hub.frames(ROOM, 'timer_ended')).toEqual([]);
      expect(p.timers.view(ROOM)).toBeNull();
    }
  });

  it('the room emptied on another pod cancels the ticks here too', async () => {
    const a = await pod('pod-a');
    const b = await pod('pod-b');
    await a.bus.publishPresenceJoin(ROOM, { userId: 'u1', userName: 'Ann' });
    a.timers.command(ROOM, 'timer_start', { durationSeconds: 30 });
    await flush();
    expect(b.timers.activeCount).toBe(1);
    await a.bus.publishPresenceLeave(ROOM, 'u1');
    await flush();
    expect(b.bus.getRoomState(ROOM, TIMER_STATE_KEY)).toBeUndefined();
    expect(b.timers.activeCount).toBe(0);
    expect(vi.getTimerCount()).toBe(0);
    vi.advanceTimersByTime(60_000);
    expect(b.hub.types()).toEqual(['timer_started']);
  });

  it('a pod that starts mid-timer ticks and ends it in step; one that starts after the end shows nothing', async () => {
    const a = await pod('pod-a');
    await a.bus.publishPresenceJoin(ROOM, { userId: 'u1', userName: 'Ann' });
    a.timers.command(ROOM, 'timer_start', { durationSeconds: 23 });
    vi.advanceTimersByTime(9_000);
    const late = await pod('pod-late');
    await flush();
    expect(late.timers.view(ROOM)).toEqual(a.timers.view(ROOM));
    vi.advanceTimersByTime(20_000);
    expect(late.hub.ticks()).toEqual(a.hub.ticks().filter(([at]) => at > 9_000));
    expect(late.hub.timed.filter((t) => t.frame.type === 'timer_ended').map((t) => t.at)).toEqual([23_000]);

    // After the end: the state still says running, but it is over.
    const after = await pod('pod-after');
    await flush();
    expect(after.bus.getRoomState(ROOM, TIMER_STATE_KEY)).toMatchObject({ status: 'running' });
    vi.advanceTimersByTime(60_000);
    expect(after.hub.deliveries).toEqual([]);
    expect(after.timers.view(ROOM)).toBeNull();
    expect(after.timers.activeCount).toBe(0);
    expect(a.hub.frames(ROOM, 'timer_ended')).toHaveLength(1);
  });
});
