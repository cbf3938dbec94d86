import { describeTransportConformance } from '@retrotro/bus-core/testing/conformance';
import type { Client } from 'pg';
import { afterAll, beforeAll } from 'vitest';
import { Channels, PgTransport } from '../src/index.js';
import { adminClient, DATABASE_URL, terminate } from './helpers.js';

let admin: Client;
beforeAll(async () => {
  admin = await adminClient();
});
afterAll(async () => {
  await admin.end();
});

describeTransportConformance('postgres', {
  createTransport: (prefix) =>
    new PgTransport({
      connectionString: DATABASE_URL,
      prefix,
      probeIntervalMs: 500,
      probeTimeoutMs: 1_000,
      backoff: { initialMs: 50, maxMs: 500 },
    }),
  injectRaw: async (prefix, stream, payload) => {
    await admin.query('SELECT pg_notify($1, $2)', [new Channels(prefix).byStream[stream], payload]);
  },
  // Kill the LISTEN backend from outside, as an admin or a failover would.
  sever: async (transport) => terminate(admin, (transport as PgTransport).backendPids().listener),
});
