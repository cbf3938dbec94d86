import { STREAMS, type StreamKind } from '@retrotro/bus-core';

/** PostgreSQL truncates identifiers to NAMEDATALEN - 1 = 63 bytes, and pg_notify refuses longer channel names. */
const MAX_CHANNEL_BYTES = 63;
const PREFIX = /^[A-Za-z0-9_]+$/;
const LONGEST_STREAM = Math.max(...STREAMS.map((s) => s.length));

/** Largest prefix whose longest channel (`<prefix>_presence`) still fits in 63 bytes. */
export const MAX_PREFIX_LENGTH = MAX_CHANNEL_BYTES - 1 - LONGEST_STREAM;

/** Throws a clear error for a prefix that would make invalid or truncated channel names. */
export function validatePrefix(prefix: string): void {
  if (!PREFIX.test(prefix)) {
    throw new Error(`invalid bus prefix ${JSON.stringify(prefix)}: use letters, digits and underscores only`);
  }
  if (prefix.length > MAX_PREFIX_LENGTH) {
    throw new Error(
      `bus prefix ${JSON.stringify(prefix)} is too long (${prefix.length} characters, at most ${MAX_PREFIX_LENGTH}): ` +
        `PostgreSQL channel names such as "${prefix}_presence" must stay under 64 bytes`,
    );
  }
}

/** The channel of each stream, and the way back for notifications: `<prefix>_<stream>`. */
export class Channels {
  readonly byStream: Readonly<Record<StreamKind, string>>;
  private readonly streams: ReadonlyMap<string, StreamKind>;

  constructor(readonly prefix: string) {
    validatePrefix(prefix);
    const byStream = {} as Record<StreamKind, string>;
    for (const s of STREAMS) byStream[s] = `${prefix}_${s}`;
    this.byStream = byStream;
    this.streams = new Map(STREAMS.map((s) => [byStream[s], s]));
  }

  get all(): string[] {
    return Object.values(this.byStream);
  }

  streamOf(channel: string): StreamKind | undefined {
    return this.streams.get(channel);
  }
}
