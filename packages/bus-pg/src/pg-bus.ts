import { RelayBus, type RelayBusOptions } from '@retrotro/bus-core';
import { PgTransport, type PgTransportOptions } from './pg-transport.js';

/**
 * Everything RelayBus takes except the transport, plus the PostgreSQL transport's options.
 * With `history: { size, ttlS }` (size > 0) the room history lives in tables of the same
 * database.
 */
export type PgBusOptions = Omit<RelayBusOptions, 'transport'> & Omit<PgTransportOptions, 'history'>;

/**
 * The cluster bus over PostgreSQL LISTEN/NOTIFY, built in one call:
 * `new PgBus({ connectionString })`, then `bus.start(hub)`. All cluster logic is RelayBus's;
 * this only supplies the transport.
 */
export class PgBus extends RelayBus {
  declare readonly transport: PgTransport;

  constructor(options: PgBusOptions) {
    super({ ...options, transport: new PgTransport({ ...options, history: (options.history?.size ?? 0) > 0 }) });
  }
}
