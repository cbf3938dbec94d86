/** The receiving side: a dedicated connection that LISTENs on the channels of a prefix. */
import type { StreamKind } from '@retrotro/bus-core';
import { escapeIdentifier } from 'pg';
import type { Channels } from './channels.js';
import type { PgConnection } from './connection.js';
import type { LargePayloadReader } from './large-payload-reader.js';

/**
 * Subscribes `connection` to every channel and hands each notification to `deliver` by
 * stream. With `reader`, references on the large channel are read back first, and plain
 * notifications go through it so that order is kept.
 */
export async function listen(
  connection: PgConnection,
  channels: Channels,
  deliver: (stream: StreamKind, payload: string) => void,
  reader?: LargePayloadReader,
): Promise<void> {
  connection.client.on('notification', (n) => {
    if (reader && n.channel === channels.large) return reader.reference(n.payload ?? '');
    const stream = channels.streamOf(n.channel);
    if (stream === undefined) return;
    if (reader) reader.plain(stream, n.payload ?? '');
    else deliver(stream, n.payload ?? '');
  });
  const names = reader ? [...channels.all, channels.large] : channels.all;
  // Quoted: channel names keep their case, exactly as pg_notify() writes them.
  await connection.client.query(names.map((c) => `LISTEN ${escapeIdentifier(c)}`).join('; '));
}
