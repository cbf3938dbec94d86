export type BusErrorCode =
  | 'already_open'
  | 'broker_unreachable'
  | 'bus_unavailable'
  | 'payload_too_large'
  | 'publish_failed'
  | 'bad_argument'
  | 'pod_id_conflict'
  | 'not_started'
  | 'already_started'
  | 'timeout'
  | 'stopped';

/** Base class of every error the bus reports; `code` is stable for programs, `message` is for people. */
export class BusError extends Error {
  constructor(
    readonly code: BusErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'BusError';
  }
}

/** The broker could not be reached when the bus started. The message names the (masked) URL. */
export class BrokerUnreachableError extends BusError {
  constructor(url: string, cause?: unknown) {
    const why = cause instanceof Error ? cause.message : String(cause ?? 'unknown error');
    super('broker_unreachable', `cannot reach ${url}: ${why}`, { cause });
    this.name = 'BrokerUnreachableError';
  }
}

/** Publish attempted while the transport is disconnected: fails fast instead of queueing without bound. */
export class BusUnavailableError extends BusError {
  constructor(what: string) {
    super('bus_unavailable', `${what} is disconnected; message not sent`);
    this.name = 'BusUnavailableError';
  }
}

export class PayloadTooLargeError extends BusError {
  constructor(bytes: number, limit: number, what: string) {
    super('payload_too_large', `message of ${bytes} bytes exceeds the ${limit}-byte limit of ${what}`);
    this.name = 'PayloadTooLargeError';
  }
}

export function toError(e: unknown): Error {
  return e instanceof Error ? e : new Error(String(e));
}
