/** The receiving side: a dedicated connection that LISTENs on the four channels of a prefix. */
import type { StreamKind } from '@retrotro/bus-core';
import { escapeIdentifier } from 'pg';
import type { Channels } from './channels.js';
import type { PgConnection } from './connection.js';

/** Subscribes `connection` to every channel and hands each notification to `deliver` by stream. */
export async function listen(connection: PgConnection, channels: Channels, deliver: (stream: StreamKind, payload: string) => void): Promise<void> {
  connection.client.on('notification', (n) => {
    const stream = channels.streamOf(n.channel);
    if (stream !== undefined) deliver(stream, n.payload ?? '');
  });
  // Quoted: channel names keep their case, exactly as pg_notify() writes them.
  await connection.client.query(channels.all.map((c) => `LISTEN ${escapeIdentifier(c)}`).join('; '));
}
