/**
 * Composition root: builds the pieces by hand in dependency order, starts them, and stops
 * them in reverse on SIGTERM/SIGINT (stop accepting, close sockets with 1001, tell the other
 * pods our users left, stop the bus, exit 0).
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { PresenceTracker } from '@retrotro/bus-core';
import { PgBus } from '@retrotro/bus-pg';
import { pino } from 'pino';
import { Authenticator } from './auth.js';
import { createBus } from './bus-factory.js';
import { ConfigError, loadConfig, type Config } from './config.js';
import { Handler } from './handler.js';
import { createRequestHandler } from './http.js';
import { Hub } from './hub.js';
import { Metrics } from './metrics.js';
import { TimerService } from './timer.js';
import { attachWebSockets } from './ws-gateway.js';

function fail(message: string): never {
  // One clear line on stderr, whatever the logger is configured to do.
  process.stderr.write(`retrotro-server: ${message}\n`);
  process.exit(1);
}

async function main(): Promise<void> {
  let config: Config;
  try {
    config = loadConfig();
  } catch (e) {
    if (e instanceof ConfigError) fail(`configuration error: ${e.message}`);
    throw e;
  }
  const log = pino({ level: config.logLevel, base: { service: 'retrotro-server' } });
  if (!config.jwtSecret) {
    log.warn(
      'JWT_SECRET is not set: DEV MODE. Tokens are signed with a public dev secret and /dev/token hands them out. Never run this in production.',
    );
  }

  const metrics = new Metrics();
  const bus = createBus(
    config,
    log,
    (stream, seconds, ok) => metrics.observePublish(config.busType, stream, seconds, ok),
    (operation, seconds, ok) => metrics.observeHistory(operation, seconds, ok),
  );
  // The tracker publishes our users' presence on the bus; the bus is handed the hub when it starts.
  const presence = new PresenceTracker({ bus, graceMs: config.disconnectGraceMs, logger: log });
  const hub = new Hub({ presence, maxBufferedBytes: config.wsMaxBufferedBytes });
  const timers = new TimerService(bus, hub, { logger: log });
  const auth = new Authenticator(config.jwtSecret);
  const handler = new Handler(
    hub,
    bus,
    timers,
    {
      rateLimit: config.wsRateLimit,
      maxRoomsPerPod: config.maxRoomsPerPod,
      maxParticipantsPerRoom: config.maxParticipantsPerRoom,
    },
    log,
  );
  metrics.attach({ hub, bus, handler, timers, largePayloads: () => (bus instanceof PgBus ? bus.transport.stats.large : undefined) });

  const startTimeout = setTimeout(() => fail(`bus did not connect within 15 s (${bus.status().target})`), 15_000);
  try {
    await bus.start(hub);
  } catch (e) {
    fail(`cannot start the ${config.busType} bus: ${(e as Error).message}`);
  }
  clearTimeout(startTimeout);

  const server = createServer(createRequestHandler({ config, bus, auth, metrics, log }));
  const wss = attachWebSockets(server, config, auth, handler, log);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.port, config.host, resolve);
  }).catch((e: Error) => fail(`cannot listen on ${config.host}:${config.port}: ${e.message}`));
  const { port } = server.address() as AddressInfo;
  log.info({ port, host: config.host, podId: bus.podId, bus: config.busType, target: bus.status().target }, 'listening');

  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down');
    const force = setTimeout(() => process.exit(1), 10_000);
    force.unref();
    server.close();
    hub.closeAll(1001, 'server shutting down');
    wss.close();
    timers.close();
    // A rolling restart: our users stay present elsewhere for their grace, as for a drop.
    await bus.stop({ graceMs: config.disconnectGraceMs });
    server.closeAllConnections();
    log.info('stopped');
    process.exit(0);
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));
}

main().catch((e: unknown) => fail(e instanceof Error ? (e.stack ?? e.message) : String(e)));
