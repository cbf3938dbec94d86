import { describe, expect, it } from 'vitest';
import { PeerTable } from '../src/peer-table.js';

describe('PeerTable', () => {
  it('spots new pods, duplicates and gaps on presence/control', () => {
    const t = new PeerTable();
    expect(t.seen('p', 1, 'other', 0)).toEqual({ isNew: true, verdict: 'ok', missed: 0 });
    expect(t.seen('p', 2, 'other', 0)).toEqual({ isNew: false, verdict: 'ok', missed: 0 });
    expect(t.seen('p', 2, 'other', 0).verdict).toBe('duplicate');
    expect(t.seen('p', 5, 'other', 0)).toEqual({ isNew: false, verdict: 'gap', missed: 2 });
    expect(t.seen('p', 1, 'other', 0).verdict).toBe('ok'); // restarted under the same id
  });

  it('checks only duplicates on room frames, which have their own counter', () => {
    const t = new PeerTable();
    t.seen('p', 1, 'other', 0);
    expect(t.seen('p', 1, 'room', 0).verdict).toBe('ok');
    expect(t.seen('p', 7, 'room', 0).verdict).toBe('ok');
    expect(t.seen('p', 7, 'room', 0).verdict).toBe('duplicate');
    expect(t.seen('p', 2, 'other', 0).verdict).toBe('ok');
  });

  it('only pods that sent a sequence number go silent; credit and reset move their clocks', () => {
    const t = new PeerTable();
    t.seen('ours', 1, 'other', 1_000);
    t.seen('go', undefined, 'other', 1_000);
    expect(t.silentSince(2_000, 5_000)).toEqual([{ podId: 'ours', silentMs: 4_000 }]);
    t.credit(1_500);
    expect(t.silentSince(2_000, 5_000)).toEqual([]);
    t.resetClocks(10_000);
    expect(t.silentSince(9_000)).toEqual([]);
    t.forget('ours');
    expect(t.size).toBe(1);
  });

  it('starts the TTL clock with the first sequenced envelope, whatever its kind', () => {
    const t = new PeerTable();
    t.seen('synced', 1, 'other', 1_000); // learnt from its sync answer, no heartbeat yet
    t.seen('roomOnly', 3, 'room', 1_000);
    t.noteSilent('go', 1_000);
    t.seen('go', undefined, 'other', 1_000);
    expect(
      t
        .silentSince(2_000, 5_000)
        .map((p) => p.podId)
        .sort(),
    ).toEqual(['roomOnly', 'synced']);
    expect(t.silentPods()).toEqual(['go']);
    expect(t.expirablePods().sort()).toEqual(['roomOnly', 'synced']);
    expect(t.isExpirable('go')).toBe(false);
  });
});
