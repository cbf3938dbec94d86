export { NatsBus, type NatsBusOptions } from './nats-bus.js';
export { NatsTransport, type NatsTransportOptions } from './nats-transport.js';
export { roomToken } from './subjects.js';
export {
  JetStreamHistory,
  HISTORY_COPY_HEADER,
  DEFAULT_DUPLICATE_WINDOW_S,
  type JetStreamHistoryOptions,
} from './jetstream-history.js';
export { historyStreamName, historySubject } from './subjects.js';
