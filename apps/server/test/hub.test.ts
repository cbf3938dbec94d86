import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { OK, PresenceTracker } from '@retrotro/bus-core';
import { Client, Hub, type ClientSocket } from '../src/hub.js';

class FakeSocket implements ClientSocket {
  sent: string[] = [];
  closed: { code?: number; reason?: string } | undefined;
  bufferedAmount = 0;
  send(data: string | Buffer) {
    this.sent.push(data.toString());
  }
  close(code?: number, reason?: string) {
    this.closed = { code, reason };
  }
  frames() {
    return this.sent.map((s) => JSON.parse(s) as { type: string; payload?: any });
  }
}

const client = (userId: string) => new Client(new FakeSocket(), { userId, userName: userId.toUpperCase(), rooms: undefined, expiresAt: undefined });
const socket = (c: Client) => c.socket as FakeSocket;

describe('Hub', () => {
  let gone: Array<[string, string]>;
  let hub: Hub;
  beforeEach(() => {
    vi.useFakeTimers();
    gone = [];
    // The tracker publishes presence on a fake bus; its leaves are the users gone from this pod.
    const bus = {
      publishPresenceJoin: async () => OK,
      publishPresenceLeave: async (r: string, u: string) => {
        gone.push([r, u]);
        return OK;
      },
    };
    hub = new Hub({ presence: new PresenceTracker({ bus, graceMs: 1_000 }), maxBufferedBytes: 100 });
  });
  afterEach(() => vi.useRealTimers());

  it('reports a first local connection once per user and room', () => {
    const a1 = client('a');
    const a2 = client('a');
    hub.add(a1);
    hub.add(a2);
    expect(hub.join(a1, 'r')).toBe(true);
    expect(hub.join(a2, 'r')).toBe(false);
    expect(hub.join(client('b'), 'r')).toBe(true);
  });

  it('delivers to everyone in the room except the named client, serialising once', () => {
    const [a, b, c] = [client('a'), client('b'), client('c')];
    for (const x of [a, b, c]) hub.add(x);
    hub.join(a, 'r');
    hub.join(b, 'r');
    hub.join(c, 'other');
    const stringify = vi.spyOn(JSON, 'stringify');
    hub.deliverLocal('r', { type: 'event', payload: 1 }, { except: a.id });
    expect(stringify).toHaveBeenCalledTimes(1);
    stringify.mockRestore();
    expect(socket(a).sent).toEqual([]);
    expect(socket(b).frames()).toEqual([{ type: 'event', payload: 1 }]);
    expect(socket(c).sent).toEqual([]);
  });

  it('sends participant_joined and participant_left to the other users only', () => {
    const [a, a2, b] = [client('a'), client('a'), client('b')];
    for (const x of [a, a2, b]) {
      hub.add(x);
      hub.join(x, 'r');
    }
    hub.participantJoined('r', { userId: 'a', userName: 'A' });
    hub.participantLeft('r', 'b');
    expect(socket(a).frames()).toEqual([{ type: 'participant_left', payload: { userId: 'b' } }]);
    expect(socket(b).frames()).toEqual([{ type: 'participant_joined', payload: { userId: 'a', userName: 'A' } }]);
  });

  it('leave_room is immediate; a dropped socket waits out the grace period', () => {
    const [a, b] = [client('a'), client('b')];
    hub.add(a);
    hub.add(b);
    hub.join(a, 'r');
    hub.join(b, 'r');
    hub.leave(a, { grace: false });
    expect(gone).toEqual([['r', 'a']]);
    hub.remove(b);
    expect(gone).toHaveLength(1);
    vi.advanceTimersByTime(999);
    expect(gone).toHaveLength(1);
    vi.advanceTimersByTime(1);
    expect(gone).toEqual([
      ['r', 'a'],
      ['r', 'b'],
    ]);
    expect(hub.hasRoom('r')).toBe(false);
  });

  it('a reconnect within the grace period cancels the leave and is not a first connection', () => {
    const a = client('a');
    hub.add(a);
    hub.join(a, 'r');
    hub.remove(a);
    const again = client('a');
    hub.add(again);
    expect(hub.join(again, 'r')).toBe(false);
    vi.advanceTimersByTime(5_000);
    expect(gone).toEqual([]);
  });

  it('cancelPendingDisconnect ends a grace period at once (the user is on another pod)', () => {
    const a = client('a');
    hub.add(a);
    hub.join(a, 'r');
    hub.remove(a);
    hub.cancelPendingDisconnect('r', 'a');
    expect(gone).toEqual([['r', 'a']]);
    vi.advanceTimersByTime(5_000);
    expect(gone).toHaveLength(1);
    hub.cancelPendingDisconnect('r', 'a'); // nothing pending: no-op
    expect(gone).toHaveLength(1);
  });

  it('closes a slow consumer with 1013 instead of buffering for it', () => {
    const [a, b] = [client('a'), client('b')];
    hub.add(a);
    hub.add(b);
    hub.join(a, 'r');
    hub.join(b, 'r');
    socket(b).bufferedAmount = 101;
    hub.deliverLocal('r', { type: 'x' });
    expect(socket(b).closed).toEqual({ code: 1013, reason: 'too slow: send buffer full' });
    expect(socket(a).sent).toHaveLength(1);
    expect(hub.counters.slowConsumers).toBe(1);
  });

  it('knows when a client is the last connection of its room (switching frees the slot)', () => {
    const [a, a2, b] = [client('a'), client('a'), client('b')];
    for (const x of [a, a2, b]) hub.add(x);
    hub.join(a, 'r');
    expect(hub.isSoleMember(a)).toBe(true);
    hub.join(a2, 'r');
    expect(hub.isSoleMember(a)).toBe(false);
    hub.join(b, 'other');
    expect(hub.isSoleMember(b)).toBe(true);
    expect(hub.isSoleMember(client('c'))).toBe(false);
  });

  it('counts a slow consumer once and sends it nothing more', () => {
    const a = client('a');
    hub.add(a);
    hub.join(a, 'r');
    socket(a).bufferedAmount = 101;
    for (let i = 0; i < 5; i++) hub.deliverLocal('r', { type: 'x' });
    expect(hub.counters.slowConsumers).toBe(1);
    expect(socket(a).sent).toEqual([]);
  });

  it('uses the serialisation the bus already made, and sends one shared buffer to every socket', () => {
    const [a, b, c] = [client('a'), client('b'), client('c')];
    for (const x of [a, b, c]) {
      hub.add(x);
      hub.join(x, 'r');
    }
    const sends: unknown[] = [];
    for (const x of [b, c]) {
      const original = socket(x).send.bind(socket(x));
      socket(x).send = (data) => {
        sends.push(data);
        original(data);
      };
    }
    const stringify = vi.spyOn(JSON, 'stringify');
    hub.deliverLocal('r', { type: 'event' }, { except: a.id, json: '{"type":"event"}' });
    expect(stringify).not.toHaveBeenCalled();
    stringify.mockRestore();
    expect(sends).toHaveLength(2);
    expect(sends[0]).toBeInstanceOf(Buffer);
    expect(sends[0]).toBe(sends[1]);
    expect(socket(b).frames()).toEqual([{ type: 'event' }]);
  });

  it('corks each socket once per tick and uncorks it right after', async () => {
    vi.useRealTimers();
    const a = client('a');
    const s = socket(a) as FakeSocket & { cork(): void; uncork(): void; corks: number; uncorks: number };
    s.corks = 0;
    s.uncorks = 0;
    s.cork = () => void s.corks++;
    s.uncork = () => void s.uncorks++;
    hub.add(a);
    hub.join(a, 'r');
    for (let i = 0; i < 10; i++) hub.deliverLocal('r', { type: 'x', payload: i });
    expect([s.corks, s.uncorks, s.sent.length]).toEqual([1, 0, 10]);
    await new Promise((r) => process.nextTick(r));
    expect(s.uncorks).toBe(1);
    hub.deliverLocal('r', { type: 'y' });
    expect(s.corks).toBe(2);
  });

  it('closeAll closes every socket with 1001 and announces nobody (the bus says goodbye)', () => {
    const a = client('a');
    hub.add(a);
    hub.join(a, 'r');
    hub.closeAll();
    hub.remove(a);
    vi.advanceTimersByTime(5_000);
    expect(socket(a).closed?.code).toBe(1001);
    expect(gone).toEqual([]);
  });
});
