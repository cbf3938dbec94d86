/**
 * Membership over the in-memory broker: the TTL clock of pods learnt from a sync answer,
 * Go pods' users relayed to pods started later, and Go-style leaves for expired pods.
 */
import { describe, expect, it } from 'vitest';
import { decodePresence, type PresenceEnvelope } from '../src/envelopes.js';
import { MemoryBroker } from '../src/index.js';
import { sleep, waitFor } from '../src/testing/index.js';
import { FAST, inject, startPod, tap } from './support/memory-pods.js';

const goJoin = (roomId: string, userId: string, userName: string) => JSON.stringify({ podId: 'go-pod', roomId, userId, userName, action: 'join' });

describe('Membership: pods learnt from a sync answer', () => {
  // Regression: only a heartbeat started a pod's TTL clock. A pod that started between two
  // heartbeats of another learnt it from its sync answer; killed before its next heartbeat,
  // that pod's users stayed present on the new pod forever.
  it('expires a pod killed before its first periodic heartbeat was seen', async () => {
    const broker = new MemoryBroker();
    // A heartbeats rarely: after its start-up announce, nothing for 10 s.
    const a = await startPod(broker, { podId: 'pod-a', heartbeatMs: 10_000, ttlMs: 30_000, syncWindowMs: 50 });
    await a.bus.publishPresenceJoin('r', { userId: 'ua', userName: 'Ann' });
    await sleep(50); // A's start-up heartbeat is long gone when B starts
    const b = await startPod(broker, { podId: 'pod-b' });
    await waitFor('Ann on B, from A’s sync answer', () => b.bus.isUserInRoom('r', 'ua'));
    a.transport.freeze(); // SIGKILL: no heartbeat, no bye
    await waitFor('Ann gone on B', () => b.hub.left.length === 1, 5_000);
    expect(b.hub.left).toEqual([{ roomId: 'r', userId: 'ua' }]);
    expect(b.bus.stats.podsExpired).toBe(1);
  });
});

describe('Membership: Go pods', () => {
  it('a pod started after a Go user joined lists that user, and never expires them', async () => {
    const broker = new MemoryBroker();
    const a = await startPod(broker, { podId: 'pod-a' });
    inject(broker, 'presence', goJoin('r', 'g1', 'Gopher'));
    await waitFor('the Go user on A', () => a.bus.isUserInRoom('r', 'g1'));
    const b = await startPod(broker, { podId: 'pod-b' });
    await waitFor('the Go user on B, relayed by A', () => b.bus.isUserInRoom('r', 'g1'));
    expect(b.bus.getRoomClients('r')).toEqual([{ userId: 'g1', userName: 'Gopher' }]);
    // B relays them too: a third pod learns them even once A is gone.
    await a.bus.stop();
    const c = await startPod(broker, { podId: 'pod-c' });
    await waitFor('the Go user on C, relayed by B', () => c.bus.isUserInRoom('r', 'g1'));
    await sleep(FAST.ttlMs * 3);
    expect(b.bus.isUserInRoom('r', 'g1')).toBe(true);
    expect(c.bus.isUserInRoom('r', 'g1')).toBe(true);
    // Only the Go pod's own leave removes them, everywhere.
    inject(broker, 'presence', JSON.stringify({ podId: 'go-pod', roomId: 'r', userId: 'g1', action: 'leave' }));
    await waitFor('the Go user gone on B and C', () => !b.bus.isUserInRoom('r', 'g1') && !c.bus.isUserInRoom('r', 'g1'));
  });

  it('when a dead pod is expired, one surviving pod tells Go pods its users left, once', async () => {
    const broker = new MemoryBroker();
    const wire = await tap(broker);
    const a = await startPod(broker, { podId: 'pod-a' });
    const b = await startPod(broker, { podId: 'pod-b' });
    const c = await startPod(broker, { podId: 'pod-c' });
    await c.bus.publishPresenceJoin('r', { userId: 'u1', userName: 'One' });
    await c.bus.publishPresenceJoin('r', { userId: 'u2', userName: 'Two' });
    await b.bus.publishPresenceJoin('r', { userId: 'u2', userName: 'Two' }); // a second tab on B
    await waitFor('presence everywhere', () => a.bus.getRoomClients('r').length === 2 && b.bus.getRoomClients('r').length === 2);
    c.transport.freeze();
    await waitFor('C expired on A and B', () => a.bus.stats.podsExpired === 1 && b.bus.stats.podsExpired === 1, 5_000);
    await sleep(100);
    const leaves = wire.all
      .filter((m) => m.stream === 'presence')
      .flatMap((m) => {
        const d = decodePresence(m.payload);
        return d.ok === true && d.value.action === 'leave' ? [d.value] : [];
      });
    // u1 left the cluster with C; u2 is still held by B, so nobody says they left.
    expect(leaves.map((l: PresenceEnvelope) => [l.podId, l.roomId, l.userId])).toEqual([['pod-a', 'r', 'u1']]);
    expect(leaves[0]).not.toHaveProperty('userName');
    // Our pods are not misled by it: B still holds u2, and A and B agree.
    expect(a.bus.getRoomClients('r')).toEqual([{ userId: 'u2', userName: 'Two' }]);
    expect(b.bus.getRoomClients('r')).toEqual([{ userId: 'u2', userName: 'Two' }]);
  });
});

describe('Membership: rolling restarts', () => {
  it('a pod stopped with a grace: its users stay present that long, and one who reconnects elsewhere never leaves', async () => {
    const broker = new MemoryBroker();
    const wire = await tap(broker);
    const a = await startPod(broker, { podId: 'pod-a' });
    const b = await startPod(broker, { podId: 'pod-b' });
    const c = await startPod(broker, { podId: 'pod-c' });
    await c.bus.publishPresenceJoin('r', { userId: 'back', userName: 'Back' });
    await c.bus.publishPresenceJoin('r', { userId: 'gone', userName: 'Gone' });
    await waitFor('both on A', () => a.bus.getRoomClients('r').length === 2);
    const joinedBefore = a.hub.joined.length;
    await c.bus.stop({ graceMs: 600 });
    await sleep(FAST.ttlMs * 2); // longer than the TTL: a stopped pod is silent on purpose
    expect(
      a.bus
        .getRoomClients('r')
        .map((p) => p.userId)
        .sort(),
    ).toEqual(['back', 'gone']);
    await b.bus.publishPresenceJoin('r', { userId: 'back', userName: 'Back' }); // reconnected to B
    await waitFor('the grace to end on A', () => a.hub.left.length === 1, 5_000);
    await sleep(100);
    expect(a.hub.left).toEqual([{ roomId: 'r', userId: 'gone' }]);
    expect(b.hub.left).toEqual([{ roomId: 'r', userId: 'gone' }]);
    expect(a.hub.joined.length).toBe(joinedBefore); // no second participant_joined for Back
    // Go pods hear of Gone once, from the lowest surviving pod, after the grace; C said no leave itself.
    const leaves = wire.all.flatMap((m) => {
      const d = m.stream === 'presence' ? decodePresence(m.payload) : undefined;
      return d?.ok === true && d.value.action === 'leave' ? [d.value] : [];
    });
    expect(leaves.map((l) => [l.podId, l.userId])).toEqual([['pod-a', 'gone']]);
  });

  it('without a grace, or as the last pod, a stopping pod says its users left at once', async () => {
    const broker = new MemoryBroker();
    const a = await startPod(broker, { podId: 'pod-a' });
    const b = await startPod(broker, { podId: 'pod-b' });
    await b.bus.publishPresenceJoin('r', { userId: 'u', userName: 'U' });
    await waitFor('U on A', () => a.bus.isUserInRoom('r', 'u'));
    await b.bus.stop();
    await waitFor('U gone on A at once', () => a.hub.left.length === 1, 1_000);
  });
});
