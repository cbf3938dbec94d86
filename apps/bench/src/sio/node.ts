/**
 * One Socket.IO 4 node of the peer comparison, started by the bench as its own process
 * (`node dist/sio/node.js`), configured by the environment:
 *
 *   PORT          loopback port to listen on
 *   SIO_ADAPTER   postgres          @socket.io/postgres-adapter over a pg Pool
 *                 mickl-nats        @mickl/socket.io-nats-adapter over nats.js 2
 *                 retrotro-postgres @retrotro/socket.io-adapter, bus postgres
 *                 retrotro-nats     @retrotro/socket.io-adapter, bus nats
 *   DATABASE_URL, NATS_URL, SIO_PREFIX (channel prefix, subject key, attachment table name)
 *
 * What it serves is the same room fan-out our pods serve: a client emits `join` (room id,
 * acknowledged), then `publish` (data); every OTHER socket of the room, on every node,
 * receives `event` (data). `GET /healthz` answers 200 once the adapter is set up, `GET
 * /stats` the adapter errors counted so far (Socket.IO tells a sender nothing about them).
 */
import { createServer } from 'node:http';
import { Server } from 'socket.io';

const env = process.env;
const port = Number(env.PORT);
const kind = env.SIO_ADAPTER ?? '';
const prefix = env.SIO_PREFIX ?? 'bench_sio';
let adapterErrors = 0;
let lastError = '';
const onAdapterError = (e: unknown) => {
  adapterErrors++;
  lastError = e instanceof Error ? e.message : String(e);
};

async function makeAdapter(): Promise<{ adapter: unknown; close: () => Promise<void> }> {
  switch (kind) {
    case 'postgres': {
      const { default: pg } = await import('pg');
      const { createAdapter } = await import('@socket.io/postgres-adapter');
      const pool = new pg.Pool({ connectionString: env.DATABASE_URL });
      pool.on('error', onAdapterError);
      // The table the adapter needs for payloads over 8,000 bytes (its README); one per run.
      await pool.query(`CREATE TABLE IF NOT EXISTS ${prefix}_attachments (id bigserial UNIQUE, created_at timestamptz DEFAULT NOW(), payload bytea)`);
      const adapter = createAdapter(pool, { channelPrefix: prefix, tableName: `${prefix}_attachments`, errorHandler: onAdapterError });
      return { adapter, close: () => pool.end() };
    }
    case 'mickl-nats': {
      const { connect } = await import('nats');
      const { createAdapter } = await import('@mickl/socket.io-nats-adapter');
      const nc = await connect({ servers: env.NATS_URL });
      return { adapter: createAdapter(nc, { subjectKey: prefix }), close: () => nc.close() };
    }
    case 'retrotro-postgres':
    case 'retrotro-nats': {
      const { createAdapter } = await import('@retrotro/socket.io-adapter');
      const bus =
        kind === 'retrotro-postgres'
          ? { type: 'postgres' as const, connectionString: env.DATABASE_URL ?? '', prefix }
          : { type: 'nats' as const, servers: env.NATS_URL ?? '', prefix };
      return { adapter: createAdapter({ bus }), close: async () => {} };
    }
    default:
      throw new Error(`SIO_ADAPTER must be postgres, mickl-nats, retrotro-postgres or retrotro-nats; got ${JSON.stringify(kind)}`);
  }
}

async function main(): Promise<void> {
  const { adapter, close } = await makeAdapter();
  let ready = false;
  const http = createServer((req, res) => {
    if (req.url === '/healthz') {
      res.writeHead(ready ? 200 : 503).end();
    } else if (req.url === '/stats') {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ adapterErrors, lastError }));
    } else if (!req.url?.startsWith('/socket.io/')) {
      res.writeHead(404).end();
    }
  });
  const io = new Server(http, { transports: ['websocket'], serveClient: false, perMessageDeflate: false });
  io.adapter(adapter as Parameters<Server['adapter']>[0]);
  io.of('/').adapter.on('error', onAdapterError);
  io.on('connection', (socket) => {
    let room: string | undefined;
    socket.on('join', (roomId: unknown, ack?: () => void) => {
      if (typeof roomId !== 'string') return;
      if (room !== undefined) void socket.leave(room);
      room = roomId;
      void socket.join(roomId);
      ack?.();
    });
    socket.on('publish', (data: unknown) => {
      if (room !== undefined) socket.to(room).emit('event', data);
    });
  });
  await new Promise<void>((resolve) => http.listen(port, '127.0.0.1', resolve));
  ready = true;
  const stop = () => {
    void io.close();
    void close().finally(() => process.exit(0));
    setTimeout(() => process.exit(0), 1_000).unref();
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main().catch((e: unknown) => {
  process.stderr.write(`sio node (${kind}) failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exit(1);
});
