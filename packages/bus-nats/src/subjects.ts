/**
 * NATS subject names. The flat subjects are the contract's (`<prefix>.room`,
 * `<prefix>.presence`), shared with Go pods; `control` and `chunk` are ours. Per-room
 * subjects (`<prefix>.room.<token>`) are an opt-in extension Go pods never see, and so are the
 * JetStream history subjects (`<prefix>.history.<token>`). The prefix
 * follows bus-core's one rule (`validateBusPrefix`), which keeps it a single subject token.
 */
import type { StreamKind } from '@retrotro/bus-core';

export function streamSubject(prefix: string, stream: StreamKind): string {
  return `${prefix}.${stream}`;
}

export function roomSubject(prefix: string, roomId: string): string {
  return `${prefix}.room.${roomToken(roomId)}`;
}

/** JetStream history of one room: `<prefix>.history.<token>` (one subject per room). */
export function historySubject(prefix: string, roomId: string): string {
  return `${prefix}.history.${roomToken(roomId)}`;
}

/** Every room's history subject: the history stream's one subject filter. */
export function historySubjects(prefix: string): string {
  return `${prefix}.history.*`;
}

/** The history stream of a prefix (stream names allow `[A-Za-z0-9_-]`; a prefix is `[A-Za-z0-9_]`). */
export function historyStreamName(prefix: string): string {
  return `${prefix}_history`;
}

// Characters kept as they are; everything else becomes `_` + two hex digits per UTF-8 byte.
// `_` is escaped too, so the mapping is one-to-one for any string.
const KEEP = /[A-Za-z0-9:-]/;

/**
 * Encodes a room id as one subject token. Room ids are `[A-Za-z0-9._:-]`, but `.` separates
 * subject tokens in NATS, so it is escaped: `team.alpha` becomes `team_2Ealpha`.
 */
export function roomToken(roomId: string): string {
  let out = '';
  for (const ch of roomId) {
    if (KEEP.test(ch)) {
      out += ch;
    } else {
      for (const byte of Buffer.from(ch, 'utf8')) out += `_${byte.toString(16).toUpperCase().padStart(2, '0')}`;
    }
  }
  return out;
}
