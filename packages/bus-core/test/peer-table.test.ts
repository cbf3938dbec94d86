import { describe, expect, it } from 'vitest';
import { PeerTable } from '../src/peer-table.js';

describe('PeerTable', () => {
  it('spots new pods, duplicates and gaps on presence/control', () => {
    const t = new PeerTable();
    expect(t.seen('p', 1, 'sync', 0)).toEqual({ isNew: true, verdict: 'ok', missed: 0 });
    expect(t.seen('p', 2, 'heartbeat', 0)).toEqual({ isNew: false, verdict: 'ok', missed: 0 });
    expect(t.seen('p', 2, 'state', 0).verdict).toBe('duplicate');
    expect(t.seen('p', 5, 'state', 0)).toEqual({ isNew: false, verdict: 'gap', missed: 2 });
    expect(t.seen('p', 1, 'sync', 0).verdict).toBe('ok'); // restarted under the same id
  });

  it('checks only duplicates on room frames, which have their own counter', () => {
    const t = new PeerTable();
    t.seen('p', 1, 'sync', 0);
    expect(t.seen('p', 1, 'room', 0).verdict).toBe('ok');
    expect(t.seen('p', 7, 'room', 0).verdict).toBe('ok');
    expect(t.seen('p', 7, 'room', 0).verdict).toBe('duplicate');
    expect(t.seen('p', 2, 'heartbeat', 0).verdict).toBe('ok');
  });

  it('only heartbeating pods go silent; credit and reset move their clocks', () => {
    const t = new PeerTable();
    t.seen('ours', 1, 'heartbeat', 1_000);
    t.seen('go', undefined, 'other', 1_000);
    expect(t.silentSince(2_000, 5_000)).toEqual([{ podId: 'ours', silentMs: 4_000 }]);
    t.credit(1_500);
    expect(t.silentSince(2_000, 5_000)).toEqual([]);
    t.resetClocks(10_000);
    expect(t.silentSince(9_000)).toEqual([]);
    t.forget('ours');
    expect(t.size).toBe(1);
  });
});
