import { describe, expect, it } from 'vitest';
import { PresenceRegistry } from '../src/presence-registry.js';

const joined = (roomId: string, userId: string, userName: string) => ({ roomId, userId, userName, kind: 'joined' });
const left = (roomId: string, userId: string, userName: string) => ({ roomId, userId, userName, kind: 'left' });

describe('PresenceRegistry', () => {
  it('add: joined only for the first pod; again on the same pod is a no-op', () => {
    const r = new PresenceRegistry();
    expect(r.add('p1', 'room', 'u1', 'Alice')).toEqual([joined('room', 'u1', 'Alice')]);
    expect(r.add('p1', 'room', 'u1', 'Alice')).toEqual([]);
    expect(r.add('p2', 'room', 'u1', 'Alice')).toEqual([]);
    expect(r.has('room', 'u1')).toBe(true);
    expect(r.hasPod('p1', 'room', 'u1')).toBe(true);
    expect(r.hasPod('p2', 'room', 'u1')).toBe(true);
    expect(r.hasPod('p3', 'room', 'u1')).toBe(false);
  });

  it('remove: left only after the last pod', () => {
    const r = new PresenceRegistry();
    r.add('p1', 'room', 'u1', 'Alice');
    r.add('p2', 'room', 'u1', 'Alice');
    expect(r.remove('p1', 'room', 'u1')).toEqual([]);
    expect(r.has('room', 'u1')).toBe(true);
    expect(r.participants('room')).toEqual([{ userId: 'u1', userName: 'Alice' }]);
    // Removing again from a pod that no longer holds the user changes nothing.
    expect(r.remove('p1', 'room', 'u1')).toEqual([]);
    expect(r.remove('p2', 'room', 'u1')).toEqual([left('room', 'u1', 'Alice')]);
    expect(r.has('room', 'u1')).toBe(false);
    expect(r.roomIsEmpty('room')).toBe(true);
    expect(r.remove('p2', 'room', 'u1')).toEqual([]);
    expect(r.remove('p1', 'nowhere', 'nobody')).toEqual([]);
  });

  it('a user in two rooms is tracked per room', () => {
    const r = new PresenceRegistry();
    r.add('p1', 'a', 'u1', 'Alice');
    expect(r.add('p1', 'b', 'u1', 'Alice')).toEqual([joined('b', 'u1', 'Alice')]);
    expect(r.remove('p1', 'a', 'u1')).toEqual([left('a', 'u1', 'Alice')]);
    expect(r.has('b', 'u1')).toBe(true);
  });

  it('keeps the latest non-empty name (Go leaves and some joins carry none)', () => {
    const r = new PresenceRegistry();
    r.add('go', 'room', 'u1', '');
    expect(r.participants('room')).toEqual([{ userId: 'u1', userName: '' }]);
    r.add('p1', 'room', 'u1', 'Alice');
    expect(r.participants('room')).toEqual([{ userId: 'u1', userName: 'Alice' }]);
    r.add('p2', 'room', 'u1', '');
    expect(r.participants('room')).toEqual([{ userId: 'u1', userName: 'Alice' }]);
  });

  it('participants lists each user once, whatever the number of pods holding them', () => {
    const r = new PresenceRegistry();
    r.add('p1', 'room', 'u1', 'Alice');
    r.add('p2', 'room', 'u1', 'Alice');
    r.add('p3', 'room', 'u1', 'Alice');
    r.add('p2', 'room', 'u2', 'Bob');
    r.add('p2', 'other', 'u3', 'Cy');
    const ps = r.participants('room');
    expect(ps).toHaveLength(2);
    expect(ps).toEqual(
      expect.arrayContaining([
        { userId: 'u1', userName: 'Alice' },
        { userId: 'u2', userName: 'Bob' },
      ]),
    );
    expect(r.participants('empty')).toEqual([]);
  });

  it('removePod reports left only for users no other pod holds', () => {
    const r = new PresenceRegistry();
    r.add('p1', 'room', 'u1', 'Alice');
    r.add('p2', 'room', 'u1', 'Alice');
    r.add('p1', 'room', 'u2', 'Bob');
    r.add('p1', 'other', 'u3', 'Cy');
    const changes = r.removePod('p1');
    expect(changes).toHaveLength(2);
    expect(changes).toEqual(expect.arrayContaining([left('room', 'u2', 'Bob'), left('other', 'u3', 'Cy')]));
    expect(r.participants('room')).toEqual([{ userId: 'u1', userName: 'Alice' }]);
    expect(r.entriesOf('p1')).toEqual([]);
    expect(r.pods()).toEqual(['p2']);
    expect(r.removePod('p1')).toEqual([]);
    expect(r.removePod('unknown')).toEqual([]);
  });

  it('replacePod makes a pod hold exactly a snapshot and returns the difference', () => {
    const r = new PresenceRegistry();
    r.add('p1', 'room', 'u1', 'Alice');
    r.add('p1', 'room', 'u2', 'Bob');
    r.add('p2', 'room', 'u4', 'Dee');
    r.add('p1', 'room', 'u4', 'Dee');
    const changes = r.replacePod('p1', [
      ['room', 'u2', 'Bob'],
      ['other', 'u3', 'Cy'],
    ]);
    // u1: only on p1 and not in the snapshot -> left. u4: still on p2 -> nothing. u3: new -> joined. u2: kept -> nothing.
    expect(changes).toHaveLength(2);
    expect(changes).toEqual(expect.arrayContaining([left('room', 'u1', 'Alice'), joined('other', 'u3', 'Cy')]));
    expect(r.entriesOf('p1')).toEqual(
      expect.arrayContaining([
        ['room', 'u2', 'Bob'],
        ['other', 'u3', 'Cy'],
      ]),
    );
    expect(r.entriesOf('p1')).toHaveLength(2);
    expect(r.has('room', 'u4')).toBe(true);
    // The same snapshot again changes nothing.
    expect(
      r.replacePod('p1', [
        ['room', 'u2', 'Bob'],
        ['other', 'u3', 'Cy'],
      ]),
    ).toEqual([]);
    // An empty snapshot removes everything the pod held.
    expect(r.replacePod('p1', [])).toEqual(expect.arrayContaining([left('room', 'u2', 'Bob'), left('other', 'u3', 'Cy')]));
    expect(r.entriesOf('p1')).toEqual([]);
  });

  it('entriesOf lists (room, user, name) for one pod only', () => {
    const r = new PresenceRegistry();
    r.add('p1', 'a', 'u1', 'Alice');
    r.add('p1', 'b', 'u2', 'Bob');
    r.add('p2', 'a', 'u3', 'Cy');
    expect(r.entriesOf('p1')).toEqual(
      expect.arrayContaining([
        ['a', 'u1', 'Alice'],
        ['b', 'u2', 'Bob'],
      ]),
    );
    expect(r.entriesOf('p1')).toHaveLength(2);
    expect(r.entriesOf('p2')).toEqual([['a', 'u3', 'Cy']]);
    expect(r.entriesOf('p3')).toEqual([]);
  });

  it("podHoldsRoom follows the pod's last user in the room", () => {
    const r = new PresenceRegistry();
    expect(r.podHoldsRoom('p1', 'room')).toBe(false);
    r.add('p1', 'room', 'u1', 'Alice');
    r.add('p1', 'room', 'u2', 'Bob');
    r.add('p2', 'room', 'u3', 'Cy');
    expect(r.podHoldsRoom('p1', 'room')).toBe(true);
    r.remove('p1', 'room', 'u1');
    expect(r.podHoldsRoom('p1', 'room')).toBe(true);
    r.remove('p1', 'room', 'u2');
    expect(r.podHoldsRoom('p1', 'room')).toBe(false);
    expect(r.podHoldsRoom('p2', 'room')).toBe(true);
  });

  it('counts rooms, (room, user) pairs and pods', () => {
    const r = new PresenceRegistry();
    expect([r.roomCount, r.presenceCount, r.pods()]).toEqual([0, 0, []]);
    r.add('p1', 'a', 'u1', 'Alice');
    r.add('p2', 'a', 'u1', 'Alice');
    r.add('p2', 'a', 'u2', 'Bob');
    r.add('p2', 'b', 'u1', 'Alice');
    expect(r.roomCount).toBe(2);
    expect(r.presenceCount).toBe(3);
    expect(r.pods().sort()).toEqual(['p1', 'p2']);
    r.removePod('p2');
    expect(r.roomCount).toBe(1);
    expect(r.presenceCount).toBe(1);
    expect(r.pods()).toEqual(['p1']);
    r.remove('p1', 'a', 'u1');
    expect([r.roomCount, r.presenceCount, r.pods()]).toEqual([0, 0, []]);
  });
});
