export type { Frame, Participant, PublishResult, StreamKind } from './types.js';
export { STREAMS, OK } from './types.js';
export type { Transport, TransportSink, TransportState, PublishOptions } from './transport.js';
export type { LocalHub } from './hub.js';
export type { MessageBus } from './message-bus.js';
export { RelayBus, type RelayBusOptions } from './relay-bus.js';
export { BusStats } from './stats.js';
export {
  decodeRoom,
  decodePresence,
  decodeControl,
  encodeRoom,
  encodePresence,
  encodeControl,
  roomMessageJson,
  type RoomEnvelope,
  type PresenceEnvelope,
  type ControlEnvelope,
  type StateEntry,
  type StateVersion,
  type Decoded,
} from './envelopes.js';
export { PresenceRegistry, type PresenceChange } from './presence-registry.js';
export { RoomStateStore, compareVersions } from './room-state.js';
export { splitIntoChunks, parseChunk, ChunkAssembler } from './chunking.js';
export { MemoryBroker, MemoryTransport, type MemoryTransportOptions } from './memory-transport.js';
export { BusError, BrokerUnreachableError, BusUnavailableError, PayloadTooLargeError } from './errors.js';
export { silentLogger, RateLimitedLog, type Logger } from './logger.js';
export { maskUrl } from './url.js';
export { validateBusPrefix, MAX_PREFIX_LENGTH } from './prefix.js';
export { Backoff, type BackoffOptions } from './backoff.js';
