import { describe, expect, it } from 'vitest';
import {
  decodeControl,
  decodePresence,
  decodeRoom,
  type ControlEnvelope,
  type Decoded,
  type PresenceEnvelope,
  type RoomEnvelope,
} from '../src/envelopes.js';

/** The reason of a rejected envelope; fails the test if it was accepted or ignored. */
function reasonOf<T>(d: Decoded<T>): string {
  if (d.ok !== false) throw new Error(`expected a rejection, got ${JSON.stringify(d)}`);
  return d.reason;
}

function acceptedValue<T>(d: Decoded<T>): T {
  if (d.ok !== true) throw new Error(`expected an accepted envelope, got ${JSON.stringify(d)}`);
  return d.value;
}

const decoders = { room: decodeRoom, presence: decodePresence, control: decodeControl } as const;

describe('decodeRoom', () => {
  it('accepts a room envelope with a frame, with or without seq', () => {
    const v = acceptedValue(decodeRoom('{"podId":"p1","roomId":"r1","message":{"type":"event","payload":{"n":1}},"seq":7}'));
    expect(v).toEqual({ podId: 'p1', roomId: 'r1', message: { type: 'event', payload: { n: 1 } }, seq: 7 });
    expect(acceptedValue(decodeRoom('{"podId":"p1","roomId":"r1","message":{"type":"heartbeat"}}')).seq).toBeUndefined();
  });

  it("accepts exactly what Go's encoding/json writes (\\u003c \\u003e \\u0026 escapes, no seq)", () => {
    const go =
      '{"podId":"go-pod-1","roomId":"r","message":{"type":"event","payload":{"event":"note","data":"\\u003cb\\u003ehi\\u003c/b\\u003e \\u0026 bye","from":{"userId":"u1","userName":"A \\u0026 B"}}}}';
    const v = acceptedValue(decodeRoom(go));
    expect(v.seq).toBeUndefined();
    expect(v.message).toEqual({
      type: 'event',
      payload: { event: 'note', data: '<b>hi</b> & bye', from: { userId: 'u1', userName: 'A & B' } },
    });
  });

  it('rejects with a reason, never a throw', () => {
    expect(reasonOf(decodeRoom('not json'))).toBe('not JSON');
    expect(reasonOf(decodeRoom(''))).toBe('not JSON');
    expect(reasonOf(decodeRoom('{"podId":"p"'))).toBe('not JSON');
    expect(reasonOf(decodeRoom('[]'))).toBe('not a JSON object');
    expect(reasonOf(decodeRoom('[{"podId":"p","roomId":"r","message":{"type":"x"}}]'))).toBe('not a JSON object');
    expect(reasonOf(decodeRoom('null'))).toBe('not a JSON object');
    expect(reasonOf(decodeRoom('"str"'))).toBe('not a JSON object');
    expect(reasonOf(decodeRoom('42'))).toBe('not a JSON object');
    expect(reasonOf(decodeRoom('{"roomId":"r","message":{"type":"x"}}'))).toBe('missing podId');
    expect(reasonOf(decodeRoom('{"podId":"","roomId":"r","message":{"type":"x"}}'))).toBe('missing podId');
    expect(reasonOf(decodeRoom('{"podId":7,"roomId":"r","message":{"type":"x"}}'))).toBe('missing podId');
    expect(reasonOf(decodeRoom('{"podId":"p","message":{"type":"x"}}'))).toBe('missing roomId');
    expect(reasonOf(decodeRoom('{"podId":"p","roomId":"","message":{"type":"x"}}'))).toBe('missing roomId');
    expect(reasonOf(decodeRoom('{"podId":"p","roomId":"r"}'))).toBe('message is not a frame');
    expect(reasonOf(decodeRoom('{"podId":"p","roomId":"r","message":"str"}'))).toBe('message is not a frame');
    expect(reasonOf(decodeRoom('{"podId":"p","roomId":"r","message":[{"type":"x"}]}'))).toBe('message is not a frame');
    expect(reasonOf(decodeRoom('{"podId":"p","roomId":"r","message":{"payload":1}}'))).toBe('message is not a frame');
    expect(reasonOf(decodeRoom('{"podId":"p","roomId":"r","message":{"type":3}}'))).toBe('message is not a frame');
  });

  it('rejects a bad seq: negative, float, string, unsafe integer, null', () => {
    for (const seq of ['-1', '1.5', '"3"', '1e300', 'null', 'true', '{}']) {
      const payload = `{"podId":"p","roomId":"r","message":{"type":"x"},"seq":${seq}}`;
      expect(reasonOf(decodeRoom(payload)), payload).toBe('bad seq');
    }
    // 0 is a valid (if unusual) sequence number.
    expect(acceptedValue(decodeRoom('{"podId":"p","roomId":"r","message":{"type":"x"},"seq":0}')).seq).toBe(0);
  });
});

describe('decodePresence', () => {
  it('accepts join and leave as Go writes them (escaped name, no seq, no userName on leave)', () => {
    const join = acceptedValue(
      decodePresence('{"podId":"go-pod-1","roomId":"r","userId":"g1","userName":"Bob \\u003cGo\\u003e \\u0026 co","action":"join"}'),
    );
    expect(join).toEqual({ podId: 'go-pod-1', roomId: 'r', userId: 'g1', userName: 'Bob <Go> & co', action: 'join' });
    const leave = acceptedValue(decodePresence('{"podId":"go-pod-1","roomId":"r","userId":"g1","action":"leave"}'));
    expect(leave).toEqual({ podId: 'go-pod-1', roomId: 'r', userId: 'g1', action: 'leave' });
    expect(leave.userName).toBeUndefined();
    // Go without omitempty writes an empty string; some writers send null.
    expect(acceptedValue(decodePresence('{"podId":"g","roomId":"r","userId":"u","userName":"","action":"leave"}')).userName).toBe('');
    expect(decodePresence('{"podId":"g","roomId":"r","userId":"u","userName":null,"action":"leave"}').ok).toBe(true);
  });

  it('rejects with a reason', () => {
    expect(reasonOf(decodePresence('{'))).toBe('not JSON');
    expect(reasonOf(decodePresence('[1,2]'))).toBe('not a JSON object');
    expect(reasonOf(decodePresence('{"roomId":"r","userId":"u","action":"join"}'))).toBe('missing podId');
    expect(reasonOf(decodePresence('{"podId":"p","userId":"u","action":"join"}'))).toBe('missing roomId');
    expect(reasonOf(decodePresence('{"podId":"p","roomId":"r","action":"join"}'))).toBe('missing userId');
    expect(reasonOf(decodePresence('{"podId":"p","roomId":"r","userId":"","action":"join"}'))).toBe('missing userId');
    expect(reasonOf(decodePresence('{"podId":"p","roomId":"r","userId":5,"action":"join"}'))).toBe('missing userId');
    expect(reasonOf(decodePresence('{"podId":"p","roomId":"r","userId":"u","userName":5,"action":"join"}'))).toBe('userName is not a string');
    expect(reasonOf(decodePresence('{"podId":"p","roomId":"r","userId":"u"}'))).toBe('missing action');
    expect(reasonOf(decodePresence('{"podId":"p","roomId":"r","userId":"u","action":1}'))).toBe('missing action');
    expect(reasonOf(decodePresence('{"podId":"p","roomId":"r","userId":"u","action":"join","seq":-3}'))).toBe('bad seq');
    expect(reasonOf(decodePresence('{"podId":"p","roomId":"r","userId":"u","action":"join","seq":2.5}'))).toBe('bad seq');
    expect(reasonOf(decodePresence('{"podId":"p","roomId":"r","userId":"u","action":"join","seq":"2"}'))).toBe('bad seq');
  });

  it('an unknown action (a newer pod) is ignored, not malformed, and names the pod', () => {
    expect(decodePresence('{"podId":"p9","roomId":"r","userId":"u","action":"away"}')).toMatchObject({ ok: 'ignored', podId: 'p9' });
  });
});

describe('decodeControl', () => {
  const state = { roomId: 'r', key: 'timer', value: { phase: 'vote' }, version: { counter: 3, podId: 'p' } };

  it('accepts every kind', () => {
    expect(acceptedValue(decodeControl('{"kind":"heartbeat","podId":"p","seq":1}'))).toEqual({ kind: 'heartbeat', podId: 'p', seq: 1 });
    expect(acceptedValue(decodeControl('{"kind":"bye","podId":"p"}')).kind).toBe('bye');
    expect(acceptedValue(decodeControl('{"kind":"sync_request","podId":"p"}'))).toEqual({ kind: 'sync_request', podId: 'p' });
    expect(acceptedValue(decodeControl('{"kind":"sync_request","podId":"p","target":"q"}'))).toEqual({
      kind: 'sync_request',
      podId: 'p',
      target: 'q',
    });
    const sync = acceptedValue(
      decodeControl(
        JSON.stringify({
          kind: 'sync',
          podId: 'p',
          presence: [
            ['r', 'u', 'Alice'],
            ['r', 'v', ''],
          ],
          state: [state],
        }),
      ),
    );
    expect(sync).toEqual({
      kind: 'sync',
      podId: 'p',
      presence: [
        ['r', 'u', 'Alice'],
        ['r', 'v', ''],
      ],
      state: [state],
    });
    expect(acceptedValue(decodeControl(JSON.stringify({ kind: 'sync', podId: 'p', presence: [], state: [] }))).kind).toBe('sync');
    expect(acceptedValue(decodeControl(JSON.stringify({ kind: 'state', podId: 'p', entry: state })))).toEqual({
      kind: 'state',
      podId: 'p',
      entry: state,
    });
    // A tombstone: value null.
    expect(decodeControl(JSON.stringify({ kind: 'state', podId: 'p', entry: { ...state, value: null } })).ok).toBe(true);
  });

  it('rejects bad sync lists', () => {
    const sync = (presence: unknown, st: unknown) => decodeControl(JSON.stringify({ kind: 'sync', podId: 'p', presence, state: st }));
    expect(reasonOf(sync(undefined, []))).toBe('bad presence list');
    expect(reasonOf(sync({}, []))).toBe('bad presence list');
    expect(reasonOf(sync([['r', 'u']], []))).toBe('bad presence list');
    expect(reasonOf(sync([['r', 'u', 'n', 'extra']], []))).toBe('bad presence list');
    expect(reasonOf(sync([['', 'u', 'n']], []))).toBe('bad presence list');
    expect(reasonOf(sync([['r', '', 'n']], []))).toBe('bad presence list');
    expect(reasonOf(sync([['r', 'u', null]], []))).toBe('bad presence list');
    expect(reasonOf(sync([['r', 'u', 'n'], 'x'], []))).toBe('bad presence list');
    expect(reasonOf(sync([], undefined))).toBe('bad state list');
    expect(reasonOf(sync([], {}))).toBe('bad state list');
    expect(reasonOf(sync([], [state, { roomId: 'r' }]))).toBe('bad state list');
    const relayed = (list: unknown) => decodeControl(JSON.stringify({ kind: 'sync', podId: 'p', presence: [], relayed: list, state: [] }));
    expect(reasonOf(relayed({}))).toBe('bad relayed presence list');
    expect(reasonOf(relayed([['r', 'u', 'n']]))).toBe('bad relayed presence list');
    expect(reasonOf(relayed([['', 'r', 'u', 'n']]))).toBe('bad relayed presence list');
    expect(reasonOf(relayed([['go', 'r', '', 'n']]))).toBe('bad relayed presence list');
    expect(
      acceptedValue(decodeControl(JSON.stringify({ kind: 'sync', podId: 'p', presence: [], relayed: [['go', 'r', 'u', '']], state: [] }))).kind,
    ).toBe('sync');
  });

  it('rejects bad state entries', () => {
    const st = (entry: unknown) => decodeControl(JSON.stringify({ kind: 'state', podId: 'p', entry }));
    expect(reasonOf(st(undefined))).toBe('bad state entry');
    expect(reasonOf(st('x'))).toBe('bad state entry');
    expect(reasonOf(st({ ...state, roomId: '' }))).toBe('bad state entry');
    expect(reasonOf(st({ ...state, key: 7 }))).toBe('bad state entry');
    const { value: _value, ...noValue } = state;
    expect(reasonOf(st(noValue))).toBe('bad state entry');
    expect(reasonOf(st({ ...state, version: undefined }))).toBe('bad state entry');
    expect(reasonOf(st({ ...state, version: { counter: 1.5, podId: 'p' } }))).toBe('bad state entry');
    expect(reasonOf(st({ ...state, version: { counter: '1', podId: 'p' } }))).toBe('bad state entry');
    expect(reasonOf(st({ ...state, version: { counter: 1, podId: '' } }))).toBe('bad state entry');
    expect(reasonOf(st({ ...state, version: [1, 'p'] }))).toBe('bad state entry');
  });

  it('rejects other malformed control envelopes', () => {
    expect(reasonOf(decodeControl('nope'))).toBe('not JSON');
    expect(reasonOf(decodeControl('[]'))).toBe('not a JSON object');
    expect(reasonOf(decodeControl('{"kind":"heartbeat"}'))).toBe('missing podId');
    expect(reasonOf(decodeControl('{"podId":"p"}'))).toBe('missing kind');
    expect(reasonOf(decodeControl('{"podId":"p","kind":5}'))).toBe('missing kind');
    expect(reasonOf(decodeControl('{"kind":"heartbeat","podId":"p","seq":-1}'))).toBe('bad seq');
    expect(reasonOf(decodeControl('{"kind":"heartbeat","podId":"p","seq":0.1}'))).toBe('bad seq');
    expect(reasonOf(decodeControl('{"kind":"heartbeat","podId":"p","seq":"1"}'))).toBe('bad seq');
    expect(reasonOf(decodeControl('{"kind":"sync_request","podId":"p","target":""}'))).toBe('bad target');
    expect(reasonOf(decodeControl('{"kind":"sync_request","podId":"p","target":3}'))).toBe('bad target');
  });

  it('an unknown kind (a newer pod) is ignored and names the pod', () => {
    expect(decodeControl('{"kind":"rebalance","podId":"p7","seq":4}')).toMatchObject({ ok: 'ignored', podId: 'p7' });
  });
});

describe('decoders never throw', () => {
  const garbage = ['', ' ', 'null', 'undefined', '1e999', '{"podId":{}}', '{"__proto__":{"podId":"x"}}', '\u0000', '{"podId":"p","seq":1e400}'];
  for (const [name, decode] of Object.entries(decoders)) {
    it(`${name}: garbage gives a rejection value`, () => {
      for (const g of garbage) {
        const d = decode(g);
        expect(d.ok, g).toBe(false);
        expect(typeof (d as { reason: string }).reason).toBe('string');
      }
    });
  }
});

describe('encode -> decode round trip', () => {
  it('room', () => {
    const env: RoomEnvelope = { podId: 'p', roomId: 'r', message: { type: 'event', payload: { text: '<é€😀> & "q"' } }, seq: 3 };
    expect(acceptedValue(decodeRoom(JSON.stringify(env)))).toEqual(env);
  });

  it('presence', () => {
    const join: PresenceEnvelope = { podId: 'p', roomId: 'r', userId: 'u', userName: 'Zoë', action: 'join', seq: 1 };
    const leave: PresenceEnvelope = { podId: 'p', roomId: 'r', userId: 'u', action: 'leave' };
    expect(acceptedValue(decodePresence(JSON.stringify(join)))).toEqual(join);
    expect(acceptedValue(decodePresence(JSON.stringify(leave)))).toEqual(leave);
  });

  it('control, every kind', () => {
    const entry = { roomId: 'r', key: 'k', value: [1, { a: null }], version: { counter: 9, podId: 'p' } };
    const envs: ControlEnvelope[] = [
      { kind: 'heartbeat', podId: 'p', seq: 1 },
      { kind: 'sync_request', podId: 'p', seq: 2 },
      { kind: 'sync_request', podId: 'p', target: 'q', seq: 3 },
      { kind: 'sync', podId: 'p', presence: [['r', 'u', 'Ann']], state: [entry], seq: 4 },
      { kind: 'sync', podId: 'p', presence: [], relayed: [['go', 'r', 'u', 'Gopher']], state: [], seq: 5 },
      { kind: 'state', podId: 'p', entry, seq: 5 },
      { kind: 'state', podId: 'p', entry: { ...entry, value: null } },
      { kind: 'bye', podId: 'p', seq: 6 },
    ];
    for (const env of envs) expect(acceptedValue(decodeControl(JSON.stringify(env)))).toEqual(env);
  });
});
