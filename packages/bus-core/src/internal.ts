/**
 * For transport authors and this project's own packages: the building blocks behind
 * RelayBus. Not a stable API: anything here may change in a minor release.
 */
export {
  decodeRoom,
  decodePresence,
  decodeControl,
  type RoomEnvelope,
  type PresenceEnvelope,
  type ControlEnvelope,
  type PresenceTuple,
  type RelayedTuple,
  type StateEntry,
  type StateVersion,
  type Decoded,
} from './envelopes.js';
export { RoomCodec, eventFrameJson, historyEnvelope, historyFrameJson } from './room-codec.js';
export type { AppendItem, AppendOutcome, HistoryStore } from './history.js';
export { PresenceRegistry, type PresenceChange } from './presence-registry.js';
export { RoomStateStore, compareVersions } from './room-state.js';
export { splitIntoChunks, parseChunk, ChunkAssembler } from './chunking.js';
export { RateLimitedLog } from './logger.js';
export { maskUrl } from './url.js';
export { Backoff, type BackoffOptions } from './backoff.js';
export { toError } from './errors.js';
export {
  TransportLifecycle,
  TransportConfigError,
  describeError,
  type TransportDriver,
  type TransportLifecycleOptions,
  type TransportLifecycleState,
} from './transport-lifecycle.js';
