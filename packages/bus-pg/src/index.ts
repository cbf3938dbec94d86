export { PgBus, type PgBusOptions } from './pg-bus.js';
export { PgTransport, NOTIFY_MAX_PAYLOAD_BYTES, type PgTransportOptions, type PgTransportStats } from './pg-transport.js';
export { Channels, validatePrefix, MAX_PREFIX_LENGTH } from './channels.js';
