export { PgBus, type PgBusOptions } from './pg-bus.js';
export type { PgClientConfig } from './connection.js';
export { PgTransport, NOTIFY_MAX_PAYLOAD_BYTES, type PgTransportOptions, type PgTransportStats } from './pg-transport.js';
export { Channels } from './channels.js';
export { PgHistory, type PgHistoryStats } from './pg-history.js';
export type { LargePayloadStats } from './large-payloads.js';
