import { describe, expect, it } from 'vitest';
import type { StateEntry } from '../src/envelopes.js';
import { RoomStateStore, compareVersions } from '../src/room-state.js';

const entry = (value: unknown, counter: number, podId: string, key = 'timer', roomId = 'room'): StateEntry => ({
  roomId,
  key,
  value,
  version: { counter, podId },
});

describe('compareVersions', () => {
  it('orders by counter, then by pod id', () => {
    expect(compareVersions({ counter: 2, podId: 'a' }, { counter: 1, podId: 'z' })).toBeGreaterThan(0);
    expect(compareVersions({ counter: 1, podId: 'z' }, { counter: 2, podId: 'a' })).toBeLessThan(0);
    expect(compareVersions({ counter: 3, podId: 'b' }, { counter: 3, podId: 'a' })).toBeGreaterThan(0);
    expect(compareVersions({ counter: 3, podId: 'a' }, { counter: 3, podId: 'b' })).toBeLessThan(0);
    expect(compareVersions({ counter: 3, podId: 'a' }, { counter: 3, podId: 'a' })).toBe(0);
  });
});

describe('RoomStateStore', () => {
  it('last writer wins by (counter, podId), whatever the arrival order', () => {
    const writes = [entry('a1', 1, 'a'), entry('b1', 1, 'b'), entry('a2', 2, 'a'), entry('c2', 2, 'c'), entry('b0', 0, 'b')];
    const orders = [writes, [...writes].reverse(), [writes[3]!, writes[0]!, writes[4]!, writes[2]!, writes[1]!]];
    for (const order of orders) {
      const s = new RoomStateStore();
      for (const w of order) s.apply(w);
      expect(s.get('room', 'timer')).toEqual(entry('c2', 2, 'c'));
    }
  });

  it('apply reports whether the store changed', () => {
    const s = new RoomStateStore();
    expect(s.apply(entry('x', 5, 'p'))).toBe(true);
    expect(s.apply(entry('x', 5, 'p'))).toBe(false); // same version: a duplicate
    expect(s.apply(entry('older', 4, 'z'))).toBe(false);
    expect(s.get('room', 'timer')?.value).toBe('x');
    expect(s.apply(entry('newer', 5, 'q'))).toBe(true);
    expect(s.get('room', 'timer')?.value).toBe('newer');
  });

  it('a tombstone (null) beats older writes that arrive later', () => {
    const s = new RoomStateStore();
    s.apply(entry({ phase: 'vote' }, 1, 'a'));
    expect(s.apply(entry(null, 3, 'b'))).toBe(true);
    expect(s.get('room', 'timer')).toEqual(entry(null, 3, 'b'));
    expect(s.apply(entry({ phase: 'late' }, 2, 'a'))).toBe(false);
    expect(s.get('room', 'timer')?.value).toBeNull();
    // A newer write resurrects the key.
    expect(s.apply(entry({ phase: 'again' }, 4, 'a'))).toBe(true);
    expect(s.get('room', 'timer')?.value).toEqual({ phase: 'again' });
  });

  it('nextVersion beats everything the store has seen, applied or not', () => {
    const s = new RoomStateStore();
    expect(s.nextVersion('p')).toEqual({ counter: 1, podId: 'p' });
    s.apply(entry('x', 41, 'zzz'));
    const v = s.nextVersion('a');
    expect(v.counter).toBe(42);
    expect(compareVersions(v, { counter: 41, podId: 'zzz' })).toBeGreaterThan(0);
    // A higher counter seen on another key counts too; an older entry never moves the clock back.
    s.apply(entry('y', 100, 'q', 'other'));
    expect(s.nextVersion('a').counter).toBe(101);
    s.apply(entry('stale', 3, 'q'));
    expect(s.nextVersion('a').counter).toBe(102);
    // Every new local write beats the previous one.
    const w1 = s.nextVersion('a');
    const w2 = s.nextVersion('a');
    expect(compareVersions(w2, w1)).toBeGreaterThan(0);
  });

  it('keys and rooms are independent', () => {
    const s = new RoomStateStore();
    s.apply(entry(1, 5, 'p', 'k1', 'r1'));
    s.apply(entry(2, 1, 'p', 'k2', 'r1'));
    s.apply(entry(3, 1, 'p', 'k1', 'r2'));
    expect(s.get('r1', 'k1')?.value).toBe(1);
    expect(s.get('r1', 'k2')?.value).toBe(2);
    expect(s.get('r2', 'k1')?.value).toBe(3);
    expect(s.get('r2', 'k2')).toBeUndefined();
    expect(s.roomCount).toBe(2);
    expect(s.all()).toHaveLength(3);
  });

  it('dropRoom forgets a room and returns the keys that had a value (not tombstones)', () => {
    const s = new RoomStateStore();
    s.apply(entry('v', 1, 'p', 'timer', 'r1'));
    s.apply(entry(null, 2, 'p', 'gone', 'r1'));
    s.apply(entry('w', 1, 'p', 'timer', 'r2'));
    expect(s.dropRoom('r1')).toEqual(['timer']);
    expect(s.get('r1', 'timer')).toBeUndefined();
    expect(s.get('r1', 'gone')).toBeUndefined();
    expect(s.get('r2', 'timer')?.value).toBe('w');
    expect(s.roomCount).toBe(1);
    expect(s.all()).toEqual([entry('w', 1, 'p', 'timer', 'r2')]);
    expect(s.dropRoom('r1')).toEqual([]);
    expect(s.dropRoom('never')).toEqual([]);
    // The clock survives: a write after the drop still beats what was seen before.
    expect(s.nextVersion('p').counter).toBe(3);
  });
});
