import type { DeliverOptions, LocalHub } from '../hub.js';
import type { Frame, Participant } from '../types.js';

export interface Delivery {
  roomId: string;
  frame: Frame;
  exceptClientId?: string;
  offset?: number;
}

/** A LocalHub that records every call, for tests of the bus without sockets. */
export class RecordingHub implements LocalHub {
  readonly deliveries: Delivery[] = [];
  readonly joined: Array<{ roomId: string } & Participant> = [];
  readonly left: Array<{ roomId: string; userId: string }> = [];
  readonly cancelled: Array<{ roomId: string; userId: string }> = [];

  deliverLocal(roomId: string, frame: Frame, options: DeliverOptions = {}): void {
    const { except: exceptClientId, json, offset } = options;
    // A hub sends `json` as is when it is given: it must be the frame, byte for byte what
    // JSON.stringify would write, or sockets would see something other than the frame.
    if (json !== undefined && json !== JSON.stringify(frame)) {
      throw new Error(`deliverLocal: json does not match the frame: ${json.slice(0, 200)}`);
    }
    const d: Delivery = { roomId, frame };
    if (exceptClientId !== undefined) d.exceptClientId = exceptClientId;
    if (offset !== undefined) d.offset = offset;
    this.deliveries.push(d);
  }
  participantJoined(roomId: string, participant: Participant): void {
    this.joined.push({ roomId, ...participant });
  }
  participantLeft(roomId: string, userId: string): void {
    this.left.push({ roomId, userId });
  }
  cancelPendingDisconnect(roomId: string, userId: string): void {
    this.cancelled.push({ roomId, userId });
  }

  /** Frames of one type delivered to a room, in order. */
  frames(roomId: string, type?: string): Frame[] {
    return this.deliveries.filter((d) => d.roomId === roomId && (type === undefined || d.frame.type === type)).map((d) => d.frame);
  }
}

/** Polls `check` until it returns truthy or `timeoutMs` passes; the error says what was awaited. */
export async function waitFor<T>(what: string, check: () => T | undefined | false | null, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = check();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Resolves after `ms`. */
export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
