/**
 * What applications use: the MessageBus and its relay, the hub they implement, results,
 * errors and health. Tools for transport authors live in `@retrotro/bus-core/internal`.
 */
export type { EventResult, Frame, Participant, PublishResult, RoomEvent, StreamKind } from './types.js';
export { STREAMS, OK } from './types.js';
export type { DeliverOptions, LocalHub } from './hub.js';
export type { MessageBus, BusStatus } from './message-bus.js';
export type { WhenReadyOptions } from './membership.js';
export type { HistoryEvent, HistoryLimits, HistoryPage, HistoryPosition, StoredEvent } from './history.js';
export { RelayBus, type RelayBusOptions, type StopOptions } from './relay-bus.js';
export type { BackpressureOptions } from './backpressure.js';
export type { Transport, TransportSink, TransportState, PublishOptions } from './transport.js';
export { BusStats } from './stats.js';
export { MemoryBroker, MemoryTransport, type MemoryTransportOptions } from './memory-transport.js';
export {
  BusError,
  BrokerUnreachableError,
  BusUnavailableError,
  PayloadTooLargeError,
  type BusErrorCode,
} from './errors.js';
export { silentLogger, type Logger } from './logger.js';
export { validateBusPrefix, MAX_PREFIX_LENGTH } from './prefix.js';
export {
  PresenceTracker,
  type PresenceTrackerOptions,
  type PresencePublisher,
  type AttachOutcome,
  type DetachOutcome,
  type DetachOptions,
} from './presence-tracker.js';
