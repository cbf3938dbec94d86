import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { MemoryBroker, OK, type Participant, PresenceTracker, type PublishResult } from '../src/index.js';
import { RecordingHub } from '../src/testing/index.js';
import { startPod } from './support/memory-pods.js';

/** A MessageBus fake that records presence publishes in call order. */
class FakeBus {
  readonly calls: string[] = [];
  result: PublishResult = OK;
  publishPresenceJoin(roomId: string, p: Participant): Promise<PublishResult> {
    this.calls.push(`join ${roomId} ${p.userId}`);
    return Promise.resolve(this.result);
  }
  publishPresenceLeave(roomId: string, userId: string): Promise<PublishResult> {
    this.calls.push(`leave ${roomId} ${userId}`);
    return Promise.resolve(this.result);
  }
}

const alice: Participant = { userId: 'u1', userName: 'Alice' };
const bob: Participant = { userId: 'u2', userName: 'Bob' };
const GRACE = 5_000;

describe('PresenceTracker (fake bus, fake timers)', () => {
  let bus: FakeBus;
  let tracker: PresenceTracker;
  beforeEach(() => {
    vi.useFakeTimers();
    bus = new FakeBus();
    tracker = new PresenceTracker({ bus, graceMs: GRACE });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('publishes a join for the first connection only, and a leave after the last', () => {
    expect(tracker.attach('r', alice, 'c1')).toBe('joined');
    expect(tracker.attach('r', alice, 'c2')).toBe('added'); // second tab
    expect(tracker.attach('r', bob, 'c3')).toBe('joined');
    expect(tracker.connections('r', 'u1')).toBe(2);
    expect(tracker.detach('r', 'u1', 'c1')).toBe('remaining');
    expect(tracker.detach('r', 'u1', 'c2')).toBe('left');
    expect(bus.calls).toEqual(['join r u1', 'join r u2', 'leave r u1']);
    expect(tracker.participants('r')).toEqual([bob]);
  });

  it('keeps a dropped user present for the grace period, then leaves once', () => {
    tracker.attach('r', alice, 'c1');
    expect(tracker.detach('r', 'u1', 'c1', { grace: true })).toBe('grace');
    expect(tracker.isPending('r', 'u1')).toBe(true);
    vi.advanceTimersByTime(GRACE - 1);
    expect(bus.calls).toEqual(['join r u1']);
    vi.advanceTimersByTime(1);
    expect(bus.calls).toEqual(['join r u1', 'leave r u1']);
    expect(tracker.isPending('r', 'u1')).toBe(false);
    vi.advanceTimersByTime(GRACE * 2);
    expect(bus.calls).toHaveLength(2);
    expect(tracker.roomCount).toBe(0);
  });

  it('a reconnect within the grace publishes nothing', () => {
    tracker.attach('r', alice, 'c1');
    tracker.detach('r', 'u1', 'c1', { grace: true });
    vi.advanceTimersByTime(GRACE - 100);
    expect(tracker.attach('r', alice, 'c9')).toBe('resumed');
    vi.advanceTimersByTime(GRACE * 2);
    expect(bus.calls).toEqual(['join r u1']);
    expect(tracker.connections('r', 'u1')).toBe(1);
    // and leaving on purpose later is immediate
    expect(tracker.detach('r', 'u1', 'c9', { grace: false })).toBe('left');
    expect(bus.calls).toEqual(['join r u1', 'leave r u1']);
  });

  it('a reconnect after the grace is a new join', () => {
    tracker.attach('r', alice, 'c1');
    tracker.detach('r', 'u1', 'c1', { grace: true });
    vi.advanceTimersByTime(GRACE);
    expect(tracker.attach('r', alice, 'c2')).toBe('joined');
    expect(bus.calls).toEqual(['join r u1', 'leave r u1', 'join r u1']);
  });

  it('cancelPendingDisconnect ends a grace at once, with a leave, and only then', () => {
    tracker.attach('r', alice, 'c1');
    tracker.attach('r', bob, 'c2');
    expect(tracker.cancelPendingDisconnect('r', 'u2')).toBe(false); // live here: left alone
    expect(tracker.cancelPendingDisconnect('other', 'u1')).toBe(false);
    tracker.detach('r', 'u1', 'c1', { grace: true });
    expect(tracker.cancelPendingDisconnect('r', 'u1')).toBe(true);
    expect(bus.calls).toEqual(['join r u1', 'join r u2', 'leave r u1']);
    expect(tracker.cancelPendingDisconnect('r', 'u1')).toBe(false);
    vi.advanceTimersByTime(GRACE * 2);
    expect(bus.calls).toHaveLength(3); // the cancelled timer never fires
  });

  it('without graceMs (or with grace false) a last connection leaves at once', () => {
    const noGrace = new PresenceTracker({ bus });
    noGrace.attach('r', alice, 'c1');
    expect(noGrace.detach('r', 'u1', 'c1', { grace: true })).toBe('left');
    tracker.attach('r', bob, 'c2');
    expect(tracker.detach('r', 'u2', 'c2')).toBe('left');
    expect(bus.calls).toEqual(['join r u1', 'leave r u1', 'join r u2', 'leave r u2']);
  });

  it('ignores unknown and repeated detaches, and repeated attaches of one connection', () => {
    expect(tracker.detach('r', 'u1', 'c1')).toBe('unknown');
    tracker.attach('r', alice, 'c1');
    expect(tracker.attach('r', alice, 'c1')).toBe('added');
    expect(tracker.detach('r', 'u1', 'nope')).toBe('unknown');
    expect(tracker.detach('r', 'u1', 'c1')).toBe('left');
    expect(tracker.detach('r', 'u1', 'c1')).toBe('unknown');
    expect(bus.calls).toEqual(['join r u1', 'leave r u1']);
  });

  it('counts rooms separately: one connection may be in several', () => {
    tracker.attach('r1', alice, 'c1');
    tracker.attach('r2', alice, 'c1');
    tracker.detach('r1', 'u1', 'c1', { grace: true });
    vi.advanceTimersByTime(GRACE);
    expect(bus.calls).toEqual(['join r1 u1', 'join r2 u1', 'leave r1 u1']);
    expect(tracker.connections('r2', 'u1')).toBe(1);
  });

  it('closeAll cancels every grace and publishes nothing (RelayBus.stop() tells the cluster)', async () => {
    tracker.attach('r', alice, 'c1');
    tracker.attach('r', bob, 'c2');
    tracker.detach('r', 'u1', 'c1', { grace: true });
    await tracker.closeAll();
    vi.advanceTimersByTime(GRACE * 2);
    expect(bus.calls).toEqual(['join r u1', 'join r u2']);
    // Sockets closing during shutdown change nothing.
    expect(tracker.detach('r', 'u2', 'c2', { grace: true })).toBe('unknown');
    expect(tracker.attach('r', alice, 'c3')).toBe('closed');
    expect(bus.calls).toHaveLength(2);
  });

  it('closeAll({ publishLeaves: true }) publishes a leave for every user, pending ones too', async () => {
    tracker.attach('r', alice, 'c1');
    tracker.attach('s', bob, 'c2');
    tracker.detach('r', 'u1', 'c1', { grace: true });
    await tracker.closeAll({ publishLeaves: true });
    vi.advanceTimersByTime(GRACE * 2);
    expect(bus.calls).toEqual(['join r u1', 'join s u2', 'leave r u1', 'leave s u2']);
  });

  it('reports failed publishes and carries on', async () => {
    const warn = vi.fn();
    const published: string[] = [];
    const t = new PresenceTracker({
      bus,
      logger: { debug() {}, info() {}, error() {}, warn },
      onPublished: (action, roomId, userId, result) => published.push(`${action} ${roomId} ${userId} ${result.ok}`),
    });
    bus.result = { ok: false, error: new Error('broker down') };
    t.attach('r', alice, 'c1');
    t.detach('r', 'u1', 'c1');
    await vi.runAllTimersAsync();
    expect(published).toEqual(['join r u1 false', 'leave r u1 false']);
    expect(warn).toHaveBeenCalledTimes(2);
    expect(t.roomCount).toBe(0);
  });

  it('refuses a negative grace', () => {
    expect(() => new PresenceTracker({ bus, graceMs: -1 })).toThrow(RangeError);
  });
});

describe('PresenceTracker over RelayBus (memory broker)', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  /** Lets the memory broker deliver (setImmediate) while setTimeout is fake. */
  const deliver = async () => {
    for (let i = 0; i < 10; i++) await new Promise<void>((r) => setImmediate(r));
  };

  it('a user who drops on pod A and comes back on pod B never leaves the cluster', async () => {
    const broker = new MemoryBroker();
    const hubA = new RecordingHub();
    const hubB = new RecordingHub();
    const a = await startPod(broker, { podId: 'pod-a', hub: hubA });
    const b = await startPod(broker, { podId: 'pod-b', hub: hubB });
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const trackerA = new PresenceTracker({ bus: a.bus, graceMs: GRACE });
    const trackerB = new PresenceTracker({ bus: b.bus, graceMs: GRACE });
    // The LocalHub callback of the same name goes to the tracker.
    const recordA = hubA.cancelPendingDisconnect.bind(hubA);
    hubA.cancelPendingDisconnect = (roomId, userId) => {
      recordA(roomId, userId);
      trackerA.cancelPendingDisconnect(roomId, userId);
    };

    trackerA.attach('retro', alice, 'tab1');
    trackerA.attach('retro', alice, 'tab2');
    await deliver();
    expect(hubB.joined).toEqual([{ roomId: 'retro', ...alice }]);
    expect(b.bus.isUserInRoom('retro', 'u1')).toBe(true);

    // Both tabs drop on A; Alice comes back on B within the grace.
    trackerA.detach('retro', 'u1', 'tab1', { grace: true });
    trackerA.detach('retro', 'u1', 'tab2', { grace: true });
    expect(trackerA.isPending('retro', 'u1')).toBe(true);
    vi.advanceTimersByTime(1_000);
    expect(trackerB.attach('retro', alice, 'tab3')).toBe('joined');
    await deliver();
    // A heard that B holds her: its stale entry went at once, without anyone seeing a leave.
    expect(hubA.cancelled).toEqual([{ roomId: 'retro', userId: 'u1' }]);
    expect(trackerA.isPending('retro', 'u1')).toBe(false);
    vi.advanceTimersByTime(GRACE * 2);
    await deliver();
    expect(hubA.left).toEqual([]);
    expect(hubB.left).toEqual([]);
    expect(a.bus.getRoomClients('retro')).toEqual([alice]);
    expect(hubA.joined).toHaveLength(1);

    // Her last tab closes on purpose: now she leaves, everywhere.
    expect(trackerB.detach('retro', 'u1', 'tab3')).toBe('left');
    await deliver();
    expect(hubA.left).toEqual([{ roomId: 'retro', userId: 'u1' }]);
    expect(hubB.left).toEqual([{ roomId: 'retro', userId: 'u1' }]);
    expect(a.bus.isUserInRoom('retro', 'u1')).toBe(false);
  });

  it('the grace runs out: one leave, seen on every pod', async () => {
    const broker = new MemoryBroker();
    const hubB = new RecordingHub();
    const a = await startPod(broker, { podId: 'pod-a' });
    await startPod(broker, { podId: 'pod-b', hub: hubB });
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const tracker = new PresenceTracker({ bus: a.bus, graceMs: GRACE });
    tracker.attach('retro', bob, 'c1');
    await deliver();
    tracker.detach('retro', 'u2', 'c1', { grace: true });
    vi.advanceTimersByTime(GRACE - 1);
    await deliver();
    expect(hubB.left).toEqual([]);
    vi.advanceTimersByTime(1);
    await deliver();
    expect(hubB.left).toEqual([{ roomId: 'retro', userId: 'u2' }]);
  });
});
