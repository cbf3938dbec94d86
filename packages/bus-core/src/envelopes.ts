/**
 * The bytes that cross the broker between pods (CONTRACT section 5). Room and presence
 * envelopes are exactly what the Go retrotro backend reads and writes; `seq` is our own
 * addition (Go ignores unknown fields). Control envelopes travel on a stream Go never
 * subscribes to. Decoding never throws: a bad envelope is a value.
 */
import type { Frame } from './types.js';

export interface RoomEnvelope {
  podId: string;
  roomId: string;
  message: Frame;
  /** Per-pod sequence number: keeps batched NOTIFY payloads distinct and reveals gaps. */
  seq?: number;
  /** A history event's offset (its frame carries it too); such envelopes have no `seq`. */
  offset?: number;
  /** A history event: the client the publishing pod skips (the sender). */
  except?: string;
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

/** [roomId, userId, userName] */
export type PresenceTuple = [string, string, string];
/** [podId, roomId, userId, userName] */
export type RelayedTuple = [string, string, string, string];

export type ControlEnvelope =
  /** `instance`: random per process, so two pods given the same podId find each other out. */
  | { kind: 'heartbeat'; podId: string; instance?: string; seq?: number }
  | { kind: 'sync_request'; podId: string; target?: string; seq?: number }
  | {
      kind: 'sync';
      podId: string;
      /** This pod's complete local presence: [roomId, userId, userName]. */
      presence: PresenceTuple[];
      /**
       * Users of pods that cannot sync themselves (Go pods never heartbeat nor answer a
       * sync_request): [podId, roomId, userId, userName]. Optional: older pods omit it.
       */
      relayed?: RelayedTuple[];
      state: StateEntry[];
      seq?: number;
    }
  | { kind: 'state'; podId: string; entry: StateEntry; seq?: number }
  /**
   * A pod stops. With `graceMs`, its users stay present elsewhere that long (a rolling
   * restart: they reconnect to another pod without a leave); without, they leave at once.
   */
  | { kind: 'bye'; podId: string; graceMs?: number; seq?: number };

export type Decoded<T> = { ok: true; value: T } | { ok: false; reason: string } | { ok: 'ignored'; podId: string; seq?: number };

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
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
  if (v.offset !== undefined && !(Number.isSafeInteger(v.offset) && (v.offset as number) >= 1)) return { ok: false, reason: 'bad offset' };
  if (v.except !== undefined && !nonEmpty(v.except)) return { ok: false, reason: 'bad except' };
  return { ok: true, value: v as unknown as RoomEnvelope };
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

function isPresenceTuple(v: unknown): v is PresenceTuple {
  return Array.isArray(v) && v.length === 3 && nonEmpty(v[0]) && nonEmpty(v[1]) && isString(v[2]);
}

function isRelayedTuple(v: unknown): v is RelayedTuple {
  return Array.isArray(v) && v.length === 4 && nonEmpty(v[0]) && isPresenceTuple(v.slice(1));
}

export function decodeControl(payload: string): Decoded<ControlEnvelope> {
  const p = parse(payload);
  if (!p.ok) return p;
  const v = p.value;
  switch (v.kind) {
    case 'heartbeat':
      if (v.instance !== undefined && !nonEmpty(v.instance)) return { ok: false, reason: 'bad instance' };
      break;
    case 'bye':
      if (v.graceMs !== undefined && !(Number.isSafeInteger(v.graceMs) && (v.graceMs as number) >= 0)) return { ok: false, reason: 'bad graceMs' };
      break;
    case 'sync_request':
      if (v.target !== undefined && !nonEmpty(v.target)) return { ok: false, reason: 'bad target' };
      break;
    case 'sync':
      if (!Array.isArray(v.presence) || !v.presence.every(isPresenceTuple)) return { ok: false, reason: 'bad presence list' };
      if (v.relayed !== undefined && (!Array.isArray(v.relayed) || !v.relayed.every(isRelayedTuple))) {
        return { ok: false, reason: 'bad relayed presence list' };
      }
      if (!Array.isArray(v.state) || !v.state.every(isStateEntry)) return { ok: false, reason: 'bad state list' };
      break;
    case 'state':
      if (!isStateEntry(v.entry)) return { ok: false, reason: 'bad state entry' };
      break;
    default:
      return isString(v.kind) ? { ok: 'ignored', podId: v.podId as string, seq: v.seq as number | undefined } : { ok: false, reason: 'missing kind' };
  }
  return { ok: true, value: v as unknown as ControlEnvelope };
}
