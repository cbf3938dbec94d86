/**
 * @retrotro/client: the browser and Node.js client of a retrotro server (CONTRACT
 * section 10). No runtime dependencies.
 * @packageDocumentation
 */
export { RetrotroClient, type ClientEvents } from './client.js';
export type { Room, RoomEvents } from './room.js';
export { RetrotroError, type ClientErrorCode } from './errors.js';
export type {
  ClientState,
  EventMap,
  Participant,
  Position,
  PublishResult,
  RetrotroClientOptions,
  RoomEvent,
  RoomTimer,
  WebSocketCloseEventLike,
  WebSocketConstructor,
  WebSocketHandler,
  WebSocketLike,
  WebSocketMessageEventLike,
} from './types.js';
