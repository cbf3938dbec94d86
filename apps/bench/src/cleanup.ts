/**
 * What a run leaves in the shared brokers, removed at its end: PostgreSQL tables and functions
 * whose names begin with the run's prefix (our history store, the Socket.IO attachment tables) and
 * JetStream streams whose names begin with it (our history streams). Only this run's prefix
 * is ever touched: other runs and other users of the brokers share them.
 */
import { connect } from '@nats-io/transport-node';
import pg from 'pg';
import type { BenchTargets } from './config.js';

export async function cleanUp(prefix: string, targets: BenchTargets): Promise<{ tables: number; streams: number }> {
  let tables = 0;
  let streams = 0;
  const client = new pg.Client({ connectionString: targets.databaseUrl, connectionTimeoutMillis: 5_000 });
  try {
    await client.connect();
    const like = `${prefix.toLowerCase().replace(/_/g, '\\_')}%`;
    const r = await client.query<{ name: string }>(
      `SELECT quote_ident(table_schema) || '.' || quote_ident(table_name) AS name FROM information_schema.tables WHERE table_name LIKE $1 AND table_type = 'BASE TABLE'`,
      [like],
    );
    for (const row of r.rows) {
      await client.query(`DROP TABLE IF EXISTS ${row.name} CASCADE`);
      tables++;
    }
    // The history store's functions (<prefix>_history_append...).
    const f = await client.query<{ name: string }>(`SELECT oid::regprocedure::text AS name FROM pg_proc WHERE proname LIKE $1`, [like]);
    for (const row of f.rows) await client.query(`DROP FUNCTION IF EXISTS ${row.name} CASCADE`);
  } catch {
    // best effort: the broker may be down; the names say which run left them
  } finally {
    await client.end().catch(() => undefined);
  }
  try {
    const nc = await connect({ servers: targets.natsUrl, timeout: 5_000 });
    try {
      const names: string[] = [];
      for (let offset = 0; ; ) {
        const res = await nc.request('$JS.API.STREAM.NAMES', JSON.stringify({ offset }), { timeout: 5_000 });
        const page = res.json<{ streams: string[] | null; total: number; limit: number }>();
        names.push(...(page.streams ?? []));
        offset += page.limit;
        if (!page.streams || offset >= page.total) break;
      }
      for (const name of names.filter((n) => n.startsWith(prefix))) {
        await nc.request(`$JS.API.STREAM.DELETE.${name}`, '', { timeout: 5_000 });
        streams++;
      }
    } finally {
      await nc.close();
    }
  } catch {
    // best effort, as above (a NATS without JetStream answers no stream names)
  }
  return { tables, streams };
}
