/** NatsBus: the shared relay (RelayBus) over a NatsTransport, built in one call. */
import { randomUUID } from 'node:crypto';
import { RelayBus, type RelayBusOptions } from '@retrotro/bus-core';
import type { JetStreamHistoryOptions } from './jetstream-history.js';
import { NatsTransport, type NatsTransportOptions } from './nats-transport.js';

/**
 * Everything RelayBus takes except the transport, plus the NATS transport's options. With
 * `history: { size, ttlS }` (size > 0) the room history lives in JetStream; `jetstream`
 * tunes that store.
 */
export type NatsBusOptions = Omit<RelayBusOptions, 'transport'> & Omit<NatsTransportOptions, 'history'> & { jetstream?: JetStreamHistoryOptions };

export class NatsBus extends RelayBus {
  declare readonly transport: NatsTransport;

  constructor(options: NatsBusOptions) {
    // Decide the pod id here so the connection can carry it as its name (server monitoring).
    const podId = options.podId ?? randomUUID();
    const transport = new NatsTransport({
      servers: options.servers,
      prefix: options.prefix,
      credentialsFile: options.credentialsFile,
      logger: options.logger,
      name: options.name ?? `${options.prefix ?? 'retrotro'}-${podId}`,
      roomSubjects: options.roomSubjects,
      connectTimeoutMs: options.connectTimeoutMs,
      reconnectTimeWaitMs: options.reconnectTimeWaitMs,
      pingIntervalMs: options.pingIntervalMs,
      ...(options.connectionOptions ? { connectionOptions: options.connectionOptions } : {}),
      history: (options.history?.size ?? 0) > 0 ? (options.jetstream ?? true) : false,
    });
    super({ ...options, podId, transport });
  }
}
