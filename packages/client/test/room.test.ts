/**
 * A room: join, publishes and acks, re-sends after reconnecting, offsets (duplicates,
 * order, own events in a replay), reset, participants and timer. Fake WebSocket and timers.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { PublishResult, RoomEvent, RoomTimer } from '../src/index.js';
import { FakeSocket, flush, joined, makeClient, nextSocket, position, reconnect, roomState } from './support/fake.js';

beforeEach(() => {
  vi.useFakeTimers();
  FakeSocket.reset();
});
afterEach(() => {
  vi.useRealTimers();
});

const from = { userId: 'u2', userName: 'Bob' };
const event = (name: string, data: unknown, extra: Record<string, unknown> = {}) => ({ event: name, data, from, ...extra });

/** Collects a promise's outcome without leaving a rejection unhandled. */
function track<T>(p: Promise<T>) {
  const out: { value?: T; error?: any; settled: boolean } = { settled: false };
  p.then(
    (v) => Object.assign(out, { value: v, settled: true }),
    (e) => Object.assign(out, { error: e, settled: true }),
  );
  return out;
}

describe('join', () => {
  it('resolves with the room once room_state arrived, with participants, timer and position', async () => {
    const timer: RoomTimer = { phase: 'vote', running: true, remaining_seconds: 30, end_at: '2030-01-01T00:00:30.000Z' };
    const { client, ws, room } = await joined('team-a', { timer, position: position(7, 'ep') });
    expect(ws.of('join_room')).toEqual([{ type: 'join_room', payload: { roomId: 'team-a' } }]);
    expect(room.id).toBe('team-a');
    expect(room.participants).toEqual([{ userId: 'u1', userName: 'Ann' }]);
    expect(room.timer).toEqual(timer);
    expect(room.position).toEqual({ offset: 7, epoch: 'ep' });
    expect(client.room).toBe(room);
    expect(await client.join('team-a')).toBe(room);
    client.close();
  });

  it('rejects when refused, a bad id, or while in another room', async () => {
    const client = makeClient();
    const ws = await nextSocket();
    ws.open();
    const refused = client.join('secret');
    ws.receive('error', { code: 'forbidden', message: 'your token does not allow room secret' });
    await expect(refused).rejects.toMatchObject({ code: 'forbidden', name: 'RetrotroError' });
    expect(client.room).toBeUndefined();
    await expect(client.join('bad room!')).rejects.toMatchObject({ code: 'bad_room_id' });

    const ok = client.join('r1');
    ws.receive('room_state', roomState('r1'));
    await ok;
    await expect(client.join('r2')).rejects.toMatchObject({ code: 'one_room' });
    client.close();
  });

  it('ignores a room_state for another room (one left just before)', async () => {
    const { client, ws, room } = await joined('r1');
    await room.leave();
    const next = track(client.join('r2'));
    ws.receive('room_state', roomState('r1'));
    ws.receive('event', event('late', 1, { offset: 1 }));
    await flush();
    expect(next.settled).toBe(false);
    ws.receive('room_state', roomState('r2'));
    await flush();
    expect(next.value?.id).toBe('r2');
    expect(ws.frames.map((f) => f.type)).toEqual(['join_room', 'leave_room', 'join_room']);
    client.close();
  });
});

describe('publish and ack', () => {
  it('sends a publish with a client-chosen id and resolves once with the ack offset', async () => {
    const { client, ws, room } = await joined('r1');
    const result = track(room.publish('card', { text: 'hi' }));
    const [frame] = ws.of('publish');
    expect(frame?.payload).toMatchObject({ event: 'card', data: { text: 'hi' } });
    const id: string = frame?.payload.id;
    expect(id).toMatch(/^[A-Za-z0-9._:-]{1,64}$/);
    await flush();
    expect(result.settled).toBe(false);
    ws.receive('ack', { id, offset: 3 });
    ws.receive('ack', { id, offset: 3 }); // a second ack (after a re-send) changes nothing
    await flush();
    expect(result.value).toEqual({ offset: 3 });
    expect(room.pendingCount).toBe(0);
    client.close();
  });

  it('gives every publish its own id', async () => {
    const { client, ws, room } = await joined('r1');
    for (let i = 0; i < 50; i++) void room.publish('n', i).catch(() => {});
    const ids = ws.of('publish').map((f) => f.payload.id as string);
    expect(new Set(ids).size).toBe(50);
    client.close();
  });

  it('acks with offset null (history off) resolve with offset null', async () => {
    const { client, ws, room } = await joined('r1', { position: null });
    const result = track(room.publish('card', 1));
    ws.receive('ack', { id: ws.of('publish')[0]?.payload.id, offset: null });
    await flush();
    expect(result.value).toEqual({ offset: null });
    client.close();
  });

  it('rejects on a non-retryable error for its id; a retryable one is re-sent after a backoff', async () => {
    const { client, ws, room } = await joined('r1', {}, { random: () => 0.5 });
    const fatal = track(room.publish('a', 1));
    const retried = track(room.publish('b', 2));
    const [a, b] = ws.of('publish').map((f) => f.payload.id as string);
    ws.receive('error', { id: a, code: 'bad_message', message: 'data too deep', retryable: false });
    ws.receive('error', { id: b, code: 'unavailable', message: 'history down', retryable: true });
    await flush();
    expect(fatal.error).toMatchObject({ code: 'bad_message', message: 'data too deep', id: a });
    expect(retried.settled).toBe(false);
    expect(ws.of('publish')).toHaveLength(2);
    await vi.advanceTimersByTimeAsync(500); // random 0.5 of the first ceiling (1 s)
    const resent = ws.of('publish');
    expect(resent).toHaveLength(3);
    expect(resent[2]?.payload).toEqual({ event: 'b', data: 2, id: b });
    ws.receive('ack', { id: b, offset: 9 });
    await flush();
    expect(retried.value).toEqual({ offset: 9 });
    client.close();
  });

  it('waits while disconnected and goes out after the room is rejoined', async () => {
    const { client, ws, room } = await joined('r1', { position: position(4) });
    ws.drop();
    const result = track(room.publish('card', 'offline'));
    const next = await nextSocket();
    next.open();
    expect(next.frames.map((f) => f.type)).toEqual(['join_room']);
    next.receive('room_state', roomState('r1', { position: position(4), recovered: true }));
    expect(next.frames.map((f) => f.type)).toEqual(['join_room', 'publish']);
    next.receive('ack', { id: next.of('publish')[0]?.payload.id, offset: 5 });
    await flush();
    expect(result.value).toEqual({ offset: 5 });
    client.close();
  });

  it('re-sends every unacked publish after a reconnect, with the same id, in order, after the rejoin', async () => {
    const { client, ws, room } = await joined('r1', { position: position(10) });
    const results = ['a', 'b', 'c', 'd'].map((e) => track(room.publish(e, e)));
    const ids = ws.of('publish').map((f) => f.payload.id as string);
    ws.receive('ack', { id: ids[1], offset: 11 }); // b acked; a, c, d not
    const next = await reconnect(ws, { position: position(12), recovered: true });
    expect(next.frames.map((f) => f.type)).toEqual(['join_room', 'publish', 'publish', 'publish']);
    expect(next.of('publish').map((f) => [f.payload.event, f.payload.id])).toEqual([
      ['a', ids[0]],
      ['c', ids[2]],
      ['d', ids[3]],
    ]);
    // The server recognises the ids and acks with the original offsets.
    next.receive('ack', { id: ids[0], offset: 12 });
    next.receive('ack', { id: ids[2], offset: 13 });
    next.receive('ack', { id: ids[3], offset: 14 });
    await flush();
    expect(results.map((r) => r.value)).toEqual([{ offset: 12 }, { offset: 11 }, { offset: 13 }, { offset: 14 }]);
    client.close();
  });

  it('survives several reconnects before the ack comes', async () => {
    const { client, ws, room } = await joined('r1', { position: position(1) });
    const result = track(room.publish('card', 1));
    const id = ws.of('publish')[0]?.payload.id;
    let current = ws;
    for (let i = 0; i < 3; i++) current = await reconnect(current, { position: position(1), recovered: true });
    expect(current.of('publish').map((f) => f.payload.id)).toEqual([id]);
    current.receive('ack', { id, offset: 2 });
    await flush();
    expect(result.value).toEqual({ offset: 2 });
    client.close();
  });

  it('bounds the queue: maxPending publishes wait, one more rejects with queue_full', async () => {
    const { client, ws, room } = await joined('r1', {}, { maxPending: 3 });
    ws.drop();
    const waiting = [1, 2, 3].map((n) => track(room.publish('n', n)));
    await expect(room.publish('n', 4)).rejects.toMatchObject({ code: 'queue_full' });
    expect(room.pendingCount).toBe(3);
    client.close();
    await flush();
    expect(waiting.map((w) => w.error?.code)).toEqual(['closed', 'closed', 'closed']);
  });

  it('the default limit is 1000', async () => {
    const { client, ws, room } = await joined('r1');
    ws.drop();
    for (let i = 0; i < 1000; i++) void room.publish('n', i).catch(() => {});
    await expect(room.publish('n', 1000)).rejects.toMatchObject({ code: 'queue_full' });
    client.close();
  });

  it('rejects a frame over maxFrameBytes (UTF-8) instead of sending it', async () => {
    const { client, ws, room } = await joined('r1', {}, { maxFrameBytes: 100 });
    await expect(room.publish('big', 'é'.repeat(40))).rejects.toMatchObject({ code: 'too_large' }); // 80 bytes + envelope
    void room.publish('small', 'é'.repeat(5)).catch(() => {});
    expect(ws.of('publish').map((f) => f.payload.event)).toEqual(['small']);
    await expect(room.publish('', 1)).rejects.toMatchObject({ code: 'bad_event' });
    client.close();
  });

  it('leave() sends leave_room and rejects what is still pending with code left', async () => {
    const { client, ws, room } = await joined('r1');
    const pending = track(room.publish('card', 1));
    const events: unknown[] = [];
    room.on('event', (e) => events.push(e));
    await room.leave();
    await flush();
    expect(ws.frames.at(-1)).toEqual({ type: 'leave_room' });
    expect(pending.error?.code).toBe('left');
    expect(client.room).toBeUndefined();
    ws.receive('event', event('late', 1));
    expect(events).toEqual([]);
    await expect(room.publish('again', 1)).rejects.toMatchObject({ code: 'left' });
    client.close();
  });

  it('an old server (no `position` in room_state) gets fire-and-forget publishes: resolved once sent', async () => {
    const { client, ws, room } = await joined('r1', { position: undefined });
    expect(room.position).toBeNull();
    const sent = track(room.publish('card', 1));
    await flush();
    expect(sent.value).toEqual({ offset: null });
    expect(room.pendingCount).toBe(0);
    ws.drop();
    const queued = track(room.publish('card', 2));
    const next = await reconnect(ws, {});
    await flush();
    expect(next.of('publish').map((f) => f.payload.data)).toEqual([2]); // not the first again
    expect(queued.value).toEqual({ offset: null });
    client.close();
  });
});

describe('events and offsets', () => {
  it('emits each event once, in offset order: duplicates and older offsets are dropped', async () => {
    const { client, ws, room } = await joined('r1', { position: position(0) });
    const seen: Array<number | null> = [];
    room.on('event', (e) => seen.push(e.offset));
    for (const offset of [1, 2, 2, 1, 4, 3, 5, 5]) ws.receive('event', event('e', offset, { offset }));
    expect(seen).toEqual([1, 2, 4, 5]);
    expect(room.position).toEqual({ offset: 5, epoch: 'e1' });
    client.close();
  });

  it('drops events at or below the room_state position (replay and live overlap)', async () => {
    const { client, ws, room } = await joined('r1', { position: position(10) });
    const seen: unknown[] = [];
    room.on('event', (e) => seen.push(e.offset));
    ws.receive('event', event('old', 1, { offset: 10 }));
    ws.receive('event', event('new', 1, { offset: 11 }));
    expect(seen).toEqual([11]);
    client.close();
  });

  it('passes events without an offset (history off) through, each one', async () => {
    const { client, ws, room } = await joined('r1', { position: null });
    const seen: RoomEvent[] = [];
    room.on('event', (e) => seen.push(e));
    ws.receive('event', event('a', 1));
    ws.receive('event', event('a', 1));
    ws.receive('event', event('b', { x: 2 }, { id: 'other.1' }));
    expect(seen).toEqual([
      { event: 'a', data: 1, from, offset: null },
      { event: 'a', data: 1, from, offset: null },
      { event: 'b', data: { x: 2 }, from, offset: null, id: 'other.1' },
    ]);
    client.close();
  });

  it('typed event map: data typed by event name', async () => {
    type Events = { card: { text: string }; vote: number };
    const { client, ws, room } = await joined<Events>('r1');
    const texts: string[] = [];
    room.on('event', (e) => {
      if (e.event === 'card') texts.push(e.data.text);
      else texts.push(String(e.data + 1));
    });
    ws.receive('event', event('card', { text: 'hi' }, { offset: 1 }));
    ws.receive('event', event('vote', 41, { offset: 2 }));
    expect(texts).toEqual(['hi', '42']);
    const p: Promise<PublishResult> = room.publish('card', { text: 'typed' });
    // @ts-expect-error wrong data type for 'vote'
    void room.publish('vote', 'x').catch(() => {});
    // @ts-expect-error unknown event name
    void room.publish('nope', 1).catch(() => {});
    void p.catch(() => {});
    client.close();
  });

  it('rejoins with since = the last seen position; replays are emitted once, in order', async () => {
    const { client, ws, room } = await joined('r1', { position: position(3, 'ep1') });
    const seen: unknown[] = [];
    room.on('event', (e) => seen.push(e.data));
    ws.receive('event', event('e', 'four', { offset: 4 }));
    ws.drop();
    const next = await nextSocket();
    next.open();
    expect(next.of('join_room')[0]?.payload).toEqual({ roomId: 'r1', since: { offset: 4, epoch: 'ep1' } });
    next.receive('room_state', roomState('r1', { position: position(6, 'ep1'), recovered: true }));
    next.receive('event', event('e', 'five', { offset: 5 }));
    next.receive('event', event('e', 'six', { offset: 6 }));
    next.receive('event', event('e', 'six', { offset: 6 })); // live copy of the last replayed one
    next.receive('event', event('e', 'seven', { offset: 7 }));
    expect(seen).toEqual(['four', 'five', 'six', 'seven']);
    client.close();
  });

  it('own events in a replay are not emitted, but move the position; a pending one resolves', async () => {
    const { client, ws, room } = await joined('r1', { position: position(1) });
    const seen: unknown[] = [];
    room.on('event', (e) => seen.push(e.data));
    const acked = track(room.publish('mine', 'acked'));
    const unacked = track(room.publish('mine', 'unacked'));
    const [ackedId, unackedId] = ws.of('publish').map((f) => f.payload.id as string);
    ws.receive('ack', { id: ackedId, offset: 2 });
    ws.drop(); // the second one was stored at offset 4, but its ack was lost
    const next = await nextSocket();
    next.open();
    expect(next.of('join_room')[0]?.payload.since).toEqual({ offset: 1, epoch: 'e1' });
    next.receive('room_state', roomState('r1', { position: position(4), recovered: true }));
    next.receive('event', { ...event('mine', 'acked', { offset: 2, id: ackedId }), from: { userId: 'me', userName: 'Me' } });
    next.receive('event', event('theirs', 'three', { offset: 3 }));
    next.receive('event', { ...event('mine', 'unacked', { offset: 4, id: unackedId }), from: { userId: 'me', userName: 'Me' } });
    await flush();
    expect(seen).toEqual(['three']);
    expect(room.position).toEqual({ offset: 4, epoch: 'e1' });
    expect(acked.value).toEqual({ offset: 2 });
    expect(unacked.value).toEqual({ offset: 4 });
    next.receive('ack', { id: unackedId, offset: 4 }); // the re-send's ack: nothing more
    await flush();
    expect(room.pendingCount).toBe(0);
    client.close();
  });
});

describe('reset', () => {
  async function outcome(state: Record<string, unknown>, initial: Record<string, unknown> = { position: position(5) }) {
    const { client, ws, room } = await joined('r1', initial);
    let resets = 0;
    room.on('reset', () => resets++);
    const seen: unknown[] = [];
    room.on('event', (e) => seen.push(e.offset));
    const next = await reconnect(ws, state);
    const join = next.of('join_room')[0]?.payload;
    client.close();
    return { resets, room, join, next, seen };
  }

  it('on recovered: false', async () => {
    const { resets, room, join } = await outcome({ position: position(50), recovered: false });
    expect(join.since).toEqual({ offset: 5, epoch: 'e1' });
    expect(resets).toBe(1);
    expect(room.position).toEqual({ offset: 50, epoch: 'e1' }); // the new baseline
  });

  it('on another epoch, even if the server said recovered', async () => {
    const { resets, room } = await outcome({ position: position(2, 'e2'), recovered: true });
    expect(resets).toBe(1);
    expect(room.position).toEqual({ offset: 2, epoch: 'e2' });
  });

  it('with history off (position null): a reconnect may have lost events', async () => {
    const { resets, join, room } = await outcome({ position: null }, { position: null });
    expect(join).toEqual({ roomId: 'r1' });
    expect(resets).toBe(1);
    expect(room.position).toBeNull();
  });

  it('not on recovered: true with the same epoch; the position stays at since until the replay', async () => {
    const { resets, room } = await outcome({ position: position(9), recovered: true });
    expect(resets).toBe(0);
    expect(room.position).toEqual({ offset: 5, epoch: 'e1' });
  });

  it('after a reset, events above the new position are emitted, older ones not', async () => {
    const { client, ws, room } = await joined('r1', { position: position(5) });
    const seen: unknown[] = [];
    room.on('event', (e) => seen.push(e.offset));
    const order: string[] = [];
    room.on('reset', () => order.push('reset'));
    room.on('participants', () => order.push('participants'));
    const next = await reconnect(ws, { position: position(20), recovered: false });
    next.receive('event', event('e', 0, { offset: 20 }));
    next.receive('event', event('e', 0, { offset: 21 }));
    expect(seen).toEqual([21]);
    expect(order).toEqual(['participants', 'reset']);
    client.close();
  });
});

describe('participants and timer', () => {
  it('keeps participants current from joined/left frames and every room_state', async () => {
    const { client, ws, room } = await joined('r1');
    const lists: string[][] = [];
    room.on('participants', (list) => lists.push(list.map((p) => p.userId)));
    const before = room.participants;
    ws.receive('participant_joined', { userId: 'u2', userName: 'Bob' });
    ws.receive('participant_joined', { userId: 'u2', userName: 'Bob' }); // known already
    ws.receive('participant_joined', { userId: 'u3', userName: 'Cy' });
    ws.receive('participant_left', { userId: 'u2' });
    ws.receive('participant_left', { userId: 'nobody' });
    expect(lists).toEqual([
      ['u1', 'u2'],
      ['u1', 'u2', 'u3'],
      ['u1', 'u3'],
    ]);
    expect(room.participants).toEqual([
      { userId: 'u1', userName: 'Ann' },
      { userId: 'u3', userName: 'Cy' },
    ]);
    expect(before).toEqual([{ userId: 'u1', userName: 'Ann' }]); // a new array on each change

    await reconnect(ws, { participants: [{ userId: 'u1', userName: 'Ann' }], position: position(0), recovered: true });
    expect(room.participants).toEqual([{ userId: 'u1', userName: 'Ann' }]);
    expect(lists.at(-1)).toEqual(['u1']);
    client.close();
  });

  it('keeps the timer current in room_state’s shape from every timer frame', async () => {
    const { client, ws, room } = await joined('r1');
    const changes: Array<[RoomTimer | null, string]> = [];
    room.on('timer', (t, type) => changes.push([t, type]));
    expect(room.timer).toBeNull();
    ws.receive('timer_started', { phase: 'vote', duration_seconds: 60, end_at: 'T60' });
    expect(room.timer).toEqual({ phase: 'vote', running: true, remaining_seconds: 60, end_at: 'T60' });
    ws.receive('timer_tick', { remaining_seconds: 55, phase: 'vote' });
    expect(room.timer).toEqual({ phase: 'vote', running: true, remaining_seconds: 55, end_at: 'T60' });
    ws.receive('timer_paused', { remaining_seconds: 52 });
    expect(room.timer).toEqual({ phase: 'vote', running: false, remaining_seconds: 52, end_at: null });
    ws.receive('timer_extended', { added_seconds: 8, new_remaining: 60, new_end_at: null });
    expect(room.timer).toEqual({ phase: 'vote', running: false, remaining_seconds: 60, end_at: null });
    ws.receive('timer_resumed', { remaining_seconds: 60, end_at: 'T120' });
    expect(room.timer).toEqual({ phase: 'vote', running: true, remaining_seconds: 60, end_at: 'T120' });
    ws.receive('timer_extended', { added_seconds: 10, new_remaining: 70, new_end_at: 'T130' });
    expect(room.timer).toEqual({ phase: 'vote', running: true, remaining_seconds: 70, end_at: 'T130' });
    ws.receive('timer_ended', { phase: 'vote' });
    expect(room.timer).toBeNull();
    ws.receive('timer_started', { phase: 'talk', duration_seconds: 5, end_at: 'T5' });
    ws.receive('timer_stopped', {});
    expect(room.timer).toBeNull();
    expect(changes.map(([, type]) => type)).toEqual([
      'timer_started',
      'timer_tick',
      'timer_paused',
      'timer_extended',
      'timer_resumed',
      'timer_extended',
      'timer_ended',
      'timer_started',
      'timer_stopped',
    ]);

    const running = { phase: 'x', running: true, remaining_seconds: 9, end_at: 'T9' };
    await reconnect(ws, { timer: running, position: position(0), recovered: true });
    expect(room.timer).toEqual(running);
    expect(changes.at(-1)).toEqual([running, 'room_state']);
    client.close();
  });

  it('sends timer commands while joined, and says false when it cannot', async () => {
    const { client, ws, room } = await joined('r1');
    expect(room.startTimer(60, 'vote')).toBe(true);
    expect(room.startTimer(30)).toBe(true);
    expect(room.pauseTimer()).toBe(true);
    expect(room.resumeTimer()).toBe(true);
    expect(room.addTime(15)).toBe(true);
    expect(room.stopTimer()).toBe(true);
    expect(ws.frames).toEqual([
      { type: 'join_room', payload: { roomId: 'r1' } },
      { type: 'timer_start', payload: { durationSeconds: 60, phase: 'vote' } },
      { type: 'timer_start', payload: { durationSeconds: 30 } },
      { type: 'timer_pause' },
      { type: 'timer_resume' },
      { type: 'timer_add_time', payload: { seconds: 15 } },
      { type: 'timer_stop' },
    ]);
    ws.drop();
    expect(room.stopTimer()).toBe(false);
    client.close();
  });
});
