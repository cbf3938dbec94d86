/**
 * Codes the client itself uses; a server `error` frame carries its own code
 * (`forbidden`, `rate_limited`, ...), passed through as is.
 * - `closed`: `client.close()` was called;
 * - `left`: `room.leave()` was called (a publish still waiting for its ack rejects with it:
 *   it may or may not have been delivered);
 * - `one_room`: the client is already in another room;
 * - `bad_room_id`, `bad_event`: invalid arguments;
 * - `queue_full`: `maxPending` publishes are already waiting;
 * - `too_large`: the publish frame exceeds `maxFrameBytes`;
 * - `token`: the `token` function threw or rejected;
 * - `token_expired`: the server closed the socket with 4001;
 * - `no_websocket`: no WebSocket class (pass `WebSocket`);
 * - `socket`: the WebSocket constructor threw (e.g. a malformed URL).
 */
export type ClientErrorCode =
  | 'closed'
  | 'left'
  | 'one_room'
  | 'bad_room_id'
  | 'bad_event'
  | 'queue_full'
  | 'too_large'
  | 'token'
  | 'token_expired'
  | 'no_websocket'
  | 'socket';

/** Every error the client rejects with or emits: a `code` and a message. */
export class RetrotroError extends Error {
  override name = 'RetrotroError';
  /** A {@link ClientErrorCode}, or the code of the server's `error` frame. */
  readonly code: ClientErrorCode | (string & {});
  /** The publish id of a server `error` frame that answered a publish. */
  readonly id: string | undefined;

  constructor(code: ClientErrorCode | (string & {}), message: string, id?: string, cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause });
    this.code = code;
    this.id = id;
  }
}
