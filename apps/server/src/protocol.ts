/**
 * The WebSocket protocol's frames (CONTRACT section 4) and their validation. A bad frame
 * is a value describing what is wrong, never an exception.
 */
import type { Frame } from '@retrotro/bus-core';

export const ROOM_ID = /^[A-Za-z0-9._:-]{1,128}$/;
/** A publish's client-chosen id (CONTRACT section 8). */
export const EVENT_ID = /^[A-Za-z0-9._:-]{1,64}$/;

export type ErrorCode =
  | 'bad_message'
  | 'not_in_room'
  | 'forbidden'
  | 'no_active_timer'
  | 'rate_limited'
  | 'room_full'
  | 'too_many_rooms'
  | 'relay_failed'
  | 'too_large'
  | 'history_unavailable';

/** An error frame; for a publish with an id it carries that id and whether a retry can succeed. */
export const errorFrame = (code: ErrorCode, message: string, about?: { id: string; retryable: boolean }): Frame => ({
  type: 'error',
  payload: about ? { code, message, id: about.id, retryable: about.retryable } : { code, message },
});

export type ClientFrame = { type: string; payload: unknown };

/** Parses one text frame into `{type, payload}` or a human-readable reason. */
export function parseClientFrame(text: string): { ok: true; frame: ClientFrame } | { ok: false; reason: string } {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { ok: false, reason: 'frame is not valid JSON' };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return { ok: false, reason: 'frame must be a JSON object {"type", "payload"?}' };
  }
  const { type, payload } = value as Record<string, unknown>;
  if (typeof type !== 'string' || type === '') return { ok: false, reason: 'frame has no "type" string' };
  return { ok: true, frame: { type, payload } };
}

export const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** An integer in [min, max], or undefined. */
export function intIn(v: unknown, min: number, max: number): number | undefined {
  return Number.isInteger(v) && (v as number) >= min && (v as number) <= max ? (v as number) : undefined;
}
