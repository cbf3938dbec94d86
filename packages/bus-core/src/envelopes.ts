/**
 * The bytes that cross the broker between pods (CONTRACT section 5). Room and presence
 * envelopes are exactly what the Go retrotro backend reads and writes; `seq` is our own
 * addition (Go ignores unknown fields). Control envelopes travel on a stream Go never
 * subscribes to. Decoding never throws: a bad envelope is a value.
 */
import type { Frame, Participant } from './types.js';

export interface RoomEnvelope {
  podId: string;
  roomId: string;
  message: Frame;
  /** Per-pod sequence number: keeps batched NOTIFY payloads distinct and reveals gaps. */
  seq?: number;
}

export interface PresenceEnvelope {
  podId: string;
  roomId: string;
  userId: string;
  userName?: string;
  action: 'join' | 'leave';
  seq?: number;
}

/** One replicated room-state entry with its last-writer-wins version. */
export interface StateEntry {
  roomId: string;
  key: string;
  /** `null` deletes the entry. */
  value: unknown;
  version: StateVersion;
}

/** Lamport counter, ties broken by pod id: every pod orders two writes the same way. */
export interface StateVersion {
  counter: number;
  podId: string;
}

export type ControlEnvelope =
  | { kind: 'heartbeat'; podId: string; seq?: number }
  | { kind: 'sync_request'; podId: string; target?: string; seq?: number }
  | {
      kind: 'sync';
      podId: string;
      /** This pod's complete local presence: [roomId, userId, userName]. */
      presence: Array<[string, string, string]>;
      state: StateEntry[];
      seq?: number;
    }
  | { kind: 'state'; podId: string; entry: StateEntry; seq?: number }
  | { kind: 'bye'; podId: string; seq?: number };

export type Decoded<T> = { ok: true; value: T } | { ok: false; reason: string } | { ok: 'ignored'; podId: string; seq?: number };

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);
const isString = (v: unknown): v is string => typeof v === 'string';
const nonEmpty = (v: unknown): v is string => typeof v === 'string' && v.length > 0;
const isSeq = (v: unknown) => v === undefined || (Number.isSafeInteger(v) && (v as number) >= 0);

function parse(payload: string): { ok: true; value: Record<string, unknown> } | { ok: false; reason: string } {
  let value: unknown;
  try {
    value = JSON.parse(payload);
  } catch {
    return { ok: false, reason: 'not JSON' };
  }
  if (!isObject(value)) return { ok: false, reason: 'not a JSON object' };
  if (!nonEmpty(value.podId)) return { ok: false, reason: 'missing podId' };
  if (!isSeq(value.seq)) return { ok: false, reason: 'bad seq' };
  return { ok: true, value };
}

export function decodeRoom(payload: string): Decoded<RoomEnvelope> {
  const p = parse(payload);
  if (!p.ok) return p;
  const v = p.value;
  if (!nonEmpty(v.roomId)) return { ok: false, reason: 'missing roomId' };
  if (!isObject(v.message) || !isString(v.message.type)) return { ok: false, reason: 'message is not a frame' };
  return { ok: true, value: v as unknown as RoomEnvelope };
}

/**
 * The frame's own JSON text inside a room envelope written the way our pods write it
 * (`{"podId":…,"roomId":…,"message":<frame>,"seq":N}`, built around JSON.stringify output),
 * or undefined for any other layout (a Go pod's, which has no `seq` and may escape `<`).
 * Call it on an envelope `decodeRoom` accepted: the receiving pod then sends its sockets the
 * bytes it got rather than serialising the frame again (36 µs for a 10 KB frame on Node 20).
 * A hand-made envelope that repeats a top-level key can pass these checks with a slice that
 * is not one value; only a writer with broker access can send one, and such a writer can
 * already send clients any frame it likes.
 */
export function roomMessageJson(payload: string, env: RoomEnvelope): string | undefined {
  if (env.seq === undefined) return undefined;
  // Tail `,"seq":<seq>}`: read the digits backwards instead of building the string.
  let i = payload.length - 1;
  if (payload.charCodeAt(i) !== 0x7d /* } */) return undefined;
  let seq = 0;
  for (let scale = 1, c = payload.charCodeAt(--i); c >= 0x30 && c <= 0x39; c = payload.charCodeAt(--i), scale *= 10) {
    seq += (c - 0x30) * scale;
  }
  const tailStart = i - SEQ_KEY.length + 1;
  if (seq !== env.seq || tailStart < 0 || !payload.startsWith(SEQ_KEY, tailStart)) return undefined;
  const head = roomHead(env.podId, env.roomId);
  // substring + === is several times faster than startsWith for a prefix this long (V8 12).
  if (tailStart <= head.length || payload.substring(0, head.length) !== head) return undefined;
  return payload.slice(head.length, tailStart);
}

const SEQ_KEY = ',"seq":';
/** Consecutive envelopes mostly share pod and room: keep the last head (V8 flattens it once). */
let lastHead = { podId: '', roomId: '', head: '' };
function roomHead(podId: string, roomId: string): string {
  if (lastHead.podId !== podId || lastHead.roomId !== roomId) {
    const head = `{"podId":${JSON.stringify(podId)},"roomId":${JSON.stringify(roomId)},"message":`;
    lastHead = { podId, roomId, head };
  }
  return lastHead.head;
}

export function decodePresence(payload: string): Decoded<PresenceEnvelope> {
  const p = parse(payload);
  if (!p.ok) return p;
  const v = p.value;
  if (!nonEmpty(v.roomId)) return { ok: false, reason: 'missing roomId' };
  if (!nonEmpty(v.userId)) return { ok: false, reason: 'missing userId' };
  if (v.userName !== undefined && v.userName !== null && !isString(v.userName)) {
    return { ok: false, reason: 'userName is not a string' };
  }
  if (!isString(v.action)) return { ok: false, reason: 'missing action' };
  // Other actions are allowed by the contract (a newer pod's extensions): skip, not malformed.
  if (v.action !== 'join' && v.action !== 'leave') return { ok: 'ignored', podId: v.podId as string, seq: v.seq as number | undefined };
  return { ok: true, value: v as unknown as PresenceEnvelope };
}

function isVersion(v: unknown): v is StateVersion {
  return isObject(v) && Number.isSafeInteger(v.counter) && nonEmpty(v.podId);
}

function isStateEntry(v: unknown): v is StateEntry {
  return isObject(v) && nonEmpty(v.roomId) && nonEmpty(v.key) && 'value' in v && isVersion(v.version);
}

function isPresenceTuple(v: unknown): v is [string, string, string] {
  return Array.isArray(v) && v.length === 3 && nonEmpty(v[0]) && nonEmpty(v[1]) && isString(v[2]);
}

export function decodeControl(payload: string): Decoded<ControlEnvelope> {
  const p = parse(payload);
  if (!p.ok) return p;
  const v = p.value;
  switch (v.kind) {
    case 'heartbeat':
    case 'bye':
      break;
    case 'sync_request':
      if (v.target !== undefined && !nonEmpty(v.target)) return { ok: false, reason: 'bad target' };
      break;
    case 'sync':
      if (!Array.isArray(v.presence) || !v.presence.every(isPresenceTuple)) return { ok: false, reason: 'bad presence list' };
      if (!Array.isArray(v.state) || !v.state.every(isStateEntry)) return { ok: false, reason: 'bad state list' };
      break;
    case 'state':
      if (!isStateEntry(v.entry)) return { ok: false, reason: 'bad state entry' };
      break;
    default:
      return isString(v.kind)
        ? { ok: 'ignored', podId: v.podId as string, seq: v.seq as number | undefined }
        : { ok: false, reason: 'missing kind' };
  }
  return { ok: true, value: v as unknown as ControlEnvelope };
}

export const encodeRoom = (e: RoomEnvelope): string => JSON.stringify(e);
export const encodePresence = (e: PresenceEnvelope): string => JSON.stringify(e);
export const encodeControl = (e: ControlEnvelope): string => JSON.stringify(e);

export function presenceTuple(roomId: string, p: Participant): [string, string, string] {
  return [roomId, p.userId, p.userName];
}
