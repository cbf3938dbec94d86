import { RelayBus, type RelayBusOptions } from '@retrotro/bus-core';
import { PgTransport, type PgTransportOptions } from './pg-transport.js';

/** Everything RelayBus takes except the transport, plus the PostgreSQL transport's options. */
export type PgBusOptions = Omit<RelayBusOptions, 'transport'> & PgTransportOptions;

/**
 * The cluster bus over PostgreSQL LISTEN/NOTIFY, built in one call:
 * `new PgBus({ hub, connectionString })`. All cluster logic is RelayBus's; this only
 * supplies the transport.
 */
export class PgBus extends RelayBus {
  declare readonly transport: PgTransport;

  constructor(options: PgBusOptions) {
    super({ ...options, transport: new PgTransport(options) });
  }
}
