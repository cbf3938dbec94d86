/** Builds the MessageBus that BUS_TYPE names (CONTRACT section 2). */
import { MemoryBroker, MemoryTransport, RelayBus, type Logger, type MessageBus, type RelayBusOptions } from '@retrotro/bus-core';
import { NatsBus } from '@retrotro/bus-nats';
import { PgBus } from '@retrotro/bus-pg';
import type { Config } from './config.js';

export function createBus(
  config: Config,
  logger: Logger,
  observePublish?: RelayBusOptions['observePublish'],
  observeHistory?: RelayBusOptions['observeHistory'],
): MessageBus {
  const history = config.historySize > 0 ? { size: config.historySize, ttlS: config.historyTtlS } : undefined;
  const common = {
    logger,
    backpressure: { highWaterBytes: config.highWaterBytes, highWaterMessages: config.highWaterMessages },
    ...(history ? { history } : {}),
    ...(observeHistory ? { observeHistory } : {}),
    heartbeatMs: config.presenceHeartbeatMs,
    ttlMs: config.presenceTtlMs,
    ...(observePublish ? { observePublish } : {}),
  };
  switch (config.busType) {
    case 'postgres':
      return new PgBus({ ...common, connectionString: config.databaseUrl, prefix: config.busPrefix, largePayloads: config.pgLargePayloads });
    case 'nats':
      return new NatsBus({
        ...common,
        servers: config.natsUrl,
        prefix: config.busPrefix,
        roomSubjects: config.natsRoomSubjects,
        ...(config.natsCredentials ? { credentialsFile: config.natsCredentials } : {}),
      });
    case 'memory':
      // One process, no relay: the same RelayBus over an in-process broker.
      return new RelayBus({ ...common, transport: new MemoryTransport(new MemoryBroker(), { history: history !== undefined }) });
  }
}
