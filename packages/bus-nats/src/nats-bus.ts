/** NatsBus: the shared relay (RelayBus) over a NatsTransport, built in one call. */
import { randomUUID } from 'node:crypto';
import { RelayBus, type RelayBusOptions } from '@retrotro/bus-core';
import { NatsTransport, type NatsTransportOptions } from './nats-transport.js';

export type NatsBusOptions = Omit<RelayBusOptions, 'transport'> & NatsTransportOptions;

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
      history: options.history,
    });
    super({ ...options, podId, transport });
  }
}
