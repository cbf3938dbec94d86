import { STREAMS, validateBusPrefix, type StreamKind } from '@retrotro/bus-core';

/**
 * The channel of each stream, and the way back for notifications: `<prefix>_<stream>`. The
 * prefix follows bus-core's one rule (`validateBusPrefix`: letters, digits, `_`, at most 40),
 * so every channel name is a valid, untruncated PostgreSQL identifier.
 */
export class Channels {
  readonly byStream: Readonly<Record<StreamKind, string>>;
  /** `<prefix>_large`: references to payloads too large for NOTIFY (large-payloads.ts). */
  readonly large: string;
  private readonly streams: ReadonlyMap<string, StreamKind>;

  constructor(readonly prefix: string) {
    validateBusPrefix(prefix);
    const byStream = {} as Record<StreamKind, string>;
    for (const s of STREAMS) byStream[s] = `${prefix}_${s}`;
    this.byStream = byStream;
    this.large = `${prefix}_large`;
    this.streams = new Map(STREAMS.map((s) => [byStream[s], s]));
  }

  /** The channels of the streams (the large channel is listened to only when it is in use). */
  get all(): string[] {
    return Object.values(this.byStream);
  }

  streamOf(channel: string): StreamKind | undefined {
    return this.streams.get(channel);
  }
}
