/**
 * The lifecycle every transport shares, written once: a transport hands it a small driver
 * (connect, install, discard, shutdown) and keeps only what is broker-specific.
 *
 *   idle ──open()──▶ opening ──▶ connected ◀──▶ reconnecting
 *     ▲                 │            │               │
 *     └── open failed ──┘            └───────┬───────┘
 *                                close() / fail()  ──▶ closed (final)
 *
 * What it guarantees, for every transport alike:
 * - `open()` once. A second call rejects with `BusError('already_open')`; after `close()`
 *   with `BusError('stopped')`; after a failed open the transport is `idle` and may try again.
 * - The whole open has one deadline (`connectTimeoutMs`); past it, or on any connect error,
 *   open rejects with `BrokerUnreachableError` naming the masked target and a readable reason.
 * - `close()` during an open aborts it: the half-made connection is destroyed (the driver's
 *   `signal` fires, and a connection that still arrives is discarded) and open rejects with
 *   `BusError('stopped')`.
 * - Publish gating as rejected promises, never throws: closed → `BusError('stopped')`,
 *   otherwise not connected → `BusUnavailableError`.
 * - The sink is called through a wrapper: a throwing `receive` or `stateChanged` is caught
 *   and logged, never seen by the driver (a pg parser, a nats.js callback).
 * - The sink hears each state change exactly once, and nothing at all once `close()` was
 *   called (so certainly nothing after it resolves).
 */
import { BrokerUnreachableError, BusError, BusUnavailableError } from './errors.js';
import { RateLimitedLog, silentLogger, type Logger } from './logger.js';
import type { TransportSink, TransportState } from './transport.js';
import type { StreamKind } from './types.js';

export type TransportLifecycleState = 'idle' | 'opening' | 'connected' | 'reconnecting' | 'closed';

/** What a transport supplies: how to make, use and drop one broker connection `C`. */
export interface TransportDriver<C> {
  /**
   * Makes a connection and subscribes. `signal` aborts when the deadline passes or `close()`
   * is called: destroy whatever is half made (the attempt has already been given up on).
   * Throw anything on failure; it becomes a `BrokerUnreachableError` (a `BusError` or a
   * `TransportConfigError` is passed on as it is).
   */
  connect(signal: AbortSignal): Promise<C>;
  /**
   * Puts a new connection to use (attach publishers, watch for its loss). Runs synchronously,
   * with the state already `connected`, before `open()` resolves or, after a reconnect,
   * before the sink hears `connected`. `again` is false for the connection made by `open()`.
   */
  install(connection: C, again: boolean): void;
  /** Destroys a connection nobody wants: it arrived after the deadline or after `close()`. */
  discard(connection: C): void;
  /**
   * Ends what is installed and stops timers; called once, by `close()` or `fail()`.
   * `graceful` is true when the connection was up, so a polite goodbye (drain) is worth trying.
   */
  shutdown(graceful: boolean): Promise<void> | void;
}

export interface TransportLifecycleOptions {
  /** Names the transport in messages, e.g. `postgres transport`. */
  name: string;
  /** Where it connects, password masked; named by `BrokerUnreachableError`. */
  target: string;
  /** Deadline of `open()` (and of each `reconnect()`), in ms. Default 5000. */
  connectTimeoutMs?: number;
  logger?: Logger;
}

/**
 * A problem with the transport's own configuration, found while connecting (a credentials
 * file that cannot be read): reported as it is, never as an unreachable broker.
 */
export class TransportConfigError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'TransportConfigError';
  }
}

export class TransportLifecycle<C> {
  /** `<name> (<target>)`, as messages show it. */
  readonly what: string;
  readonly target: string;
  readonly connectTimeoutMs: number;
  private readonly log: Logger;
  private readonly sinkLog: RateLimitedLog;
  private current: TransportLifecycleState = 'idle';
  private sink: TransportSink | undefined;
  /** The last state the sink was told (open resolving counts as `connected`). */
  private reported: TransportState = 'connected';
  /** The connect attempt in flight (open or reconnect), so close() can abort it. */
  private pending: AbortController | undefined;
  private closing: Promise<void> | undefined;
  private installedOnce = false;

  constructor(
    private readonly driver: TransportDriver<C>,
    options: TransportLifecycleOptions,
  ) {
    this.target = options.target;
    this.what = `${options.name} (${options.target})`;
    const timeout = options.connectTimeoutMs ?? 5_000;
    if (!Number.isFinite(timeout) || timeout <= 0) {
      throw new Error(`${options.name}: connectTimeoutMs must be a positive number, got ${timeout}`);
    }
    this.connectTimeoutMs = timeout;
    this.log = options.logger ?? silentLogger;
    this.sinkLog = new RateLimitedLog((o, m) => this.log.error(o, m));
  }

  get state(): TransportLifecycleState {
    return this.current;
  }

  get connected(): boolean {
    return this.current === 'connected';
  }

  /** True once `close()` or `fail()` was called. */
  get closed(): boolean {
    return this.current === 'closed';
  }

  /** Connects through the driver within the deadline; see the class comment for the rules. */
  async open(sink: TransportSink): Promise<void> {
    if (this.current === 'closed') throw new BusError('stopped', `${this.what} was closed; create a new one`);
    if (this.current !== 'idle') {
      const how = this.current === 'opening' ? 'is already opening' : 'is already open';
      throw new BusError('already_open', `${this.what} ${how}: open() is called once per transport`);
    }
    this.current = 'opening';
    this.sink = sink;
    this.reported = 'connected';
    try {
      await this.attempt('opening');
    } catch (e) {
      if (this.current === 'opening') {
        this.current = 'idle'; // a later open() may try again
        this.sink = undefined;
      }
      throw e;
    }
  }

  /**
   * One reconnect attempt while `reconnecting`, for transports that reconnect by hand: connect
   * within the deadline, install, then tell the sink `connected`. Resolves false if there was
   * nothing to do (not reconnecting, or an attempt already in flight); rejects like `open()`.
   */
  async reconnect(): Promise<boolean> {
    if (this.current !== 'reconnecting' || this.pending) return false;
    await this.attempt('reconnecting');
    return true;
  }

  /** The connection was lost and the transport retries by itself: `connected` → `reconnecting`. */
  lost(error: Error): boolean {
    if (this.current !== 'connected') return false;
    this.current = 'reconnecting';
    this.report('reconnecting', error);
    return true;
  }

  /** The transport's client library got the connection back by itself: `reconnecting` → `connected`. */
  regained(): boolean {
    if (this.current !== 'reconnecting') return false;
    this.current = 'connected';
    this.report('connected');
    return true;
  }

  /** The broker connection is gone for good (not through close()): the sink hears `closed`. */
  fail(error: Error): void {
    if (this.current === 'closed') return;
    const wasOpen = this.current === 'connected' || this.current === 'reconnecting';
    this.current = 'closed';
    this.pending?.abort(new BusError('stopped', `${this.what} closed while connecting: ${error.message}`, { cause: error }));
    if (wasOpen) this.report('closed', error);
    this.sink = undefined;
    this.closing = this.shutdown(false);
  }

  /** Final. Idempotent: every call returns the same promise. No sink callback once called. */
  close(): Promise<void> {
    if (this.closing !== undefined) return this.closing;
    const graceful = this.current === 'connected';
    this.current = 'closed';
    this.sink = undefined;
    this.pending?.abort(new BusError('stopped', `${this.what} was closed while connecting`));
    this.closing = this.shutdown(graceful);
    return this.closing;
  }

  /** What `publish` returns when not connected: `BusError('stopped')` once closed, else `BusUnavailableError`. */
  refusePublish(): Promise<never> {
    return Promise.reject(
      this.current === 'closed' ? new BusError('stopped', `${this.what} is closed; message not sent`) : new BusUnavailableError(this.what),
    );
  }

  /** Hands a received payload to the sink; a throwing sink is logged, never rethrown. Dropped after close(). */
  deliver(stream: StreamKind, payload: string): void {
    const sink = this.sink;
    if (sink === undefined) return;
    try {
      sink.receive(stream, payload);
    } catch (e) {
      this.sinkLog.write({ err: e, stream, transport: this.what }, 'transport sink failed on a message');
    }
  }

  /** Any connect failure as the error `open()` rejects with. */
  normalize(error: unknown): Error {
    if (error instanceof BusError || error instanceof TransportConfigError) return error;
    if (error instanceof Error && error.name === 'TimeoutError') {
      return new BrokerUnreachableError(this.target, new Error(`no answer within ${this.connectTimeoutMs} ms`, { cause: error }));
    }
    return new BrokerUnreachableError(this.target, describeError(error));
  }

  // ---- internals -----------------------------------------------------------------------

  private report(state: TransportState, error?: Error): void {
    if (state === this.reported) return;
    this.reported = state;
    const sink = this.sink;
    if (sink === undefined) return;
    try {
      sink.stateChanged(state, error);
    } catch (e) {
      this.sinkLog.write({ err: e, state, transport: this.what }, 'transport sink failed on a state change');
    }
  }

  private async attempt(from: 'opening' | 'reconnecting'): Promise<void> {
    const controller = new AbortController();
    this.pending = controller;
    let connection: C;
    try {
      connection = await this.connectWithin(controller);
    } finally {
      if (this.pending === controller) this.pending = undefined;
    }
    if (this.current !== from) {
      // Only close()/fail() change the state under a pending attempt, and they abort it first.
      this.discardQuietly(connection);
      throw new BusError('stopped', `${this.what} was closed while connecting`);
    }
    this.current = 'connected';
    try {
      this.driver.install(connection, this.installedOnce);
    } catch (e) {
      this.discardQuietly(connection);
      if (this.current === 'connected') this.current = from;
      throw this.normalize(e);
    }
    this.installedOnce = true;
    // install() may already have reported the new connection lost: then stay quiet.
    if (from === 'reconnecting' && this.current === 'connected') this.report('connected');
  }

  /**
   * `driver.connect` raced against the deadline and against `controller` (close()). The
   * deadline's verdict waits for setImmediate: after a stalled event loop, timers run before
   * pending socket reads, and an answer already in the buffer must win.
   */
  private connectWithin(controller: AbortController): Promise<C> {
    const ms = this.connectTimeoutMs;
    return new Promise<C>((resolve, reject) => {
      let settled = false;
      const settle = (): boolean => {
        if (settled) return false;
        settled = true;
        clearTimeout(timer);
        controller.signal.removeEventListener('abort', onAbort);
        return true;
      };
      const onAbort = () => {
        if (settle()) reject(controller.signal.reason);
      };
      const timer = setTimeout(
        () =>
          setImmediate(() => {
            if (!settle()) return;
            const error = new BrokerUnreachableError(this.target, new Error(`no answer within ${ms} ms`));
            reject(error);
            controller.abort(error);
          }),
        ms,
      );
      controller.signal.addEventListener('abort', onAbort, { once: true });
      let attempt: Promise<C>;
      try {
        attempt = Promise.resolve(this.driver.connect(controller.signal));
      } catch (e) {
        attempt = Promise.reject(e);
      }
      attempt.then(
        (connection) => {
          if (settle()) resolve(connection);
          else this.discardQuietly(connection);
        },
        (error: unknown) => {
          if (settle()) reject(this.normalize(error));
          else this.log.debug({ err: error, target: this.target }, 'abandoned connect attempt failed');
        },
      );
    });
  }

  private discardQuietly(connection: C): void {
    try {
      this.driver.discard(connection);
    } catch (e) {
      this.log.debug({ err: e, target: this.target }, 'discarding an unwanted connection failed');
    }
  }

  private async shutdown(graceful: boolean): Promise<void> {
    try {
      await this.driver.shutdown(graceful);
    } catch (e) {
      this.log.warn({ err: e, target: this.target }, `${this.what}: error while closing`);
    }
  }
}

/**
 * One readable error for whatever a client library threw: a non-Error becomes one, Node's
 * AggregateError with an empty message ("localhost" refused on ::1 and 127.0.0.1) lists its
 * errors, an empty message falls back to the code or name, and a cause that says more is
 * appended. The original is kept as `cause`.
 */
export function describeError(error: unknown): Error {
  if (!(error instanceof Error)) return new Error(String(error));
  const message = readableMessage(error);
  return message === error.message ? error : new Error(message, { cause: error });
}

function readableMessage(error: Error, depth = 0): string {
  let message = error.message;
  if (depth > 4) return message;
  if (!message && error instanceof AggregateError && error.errors.length > 0) {
    const parts = error.errors.map((e: unknown) => (e instanceof Error ? readableMessage(e, depth + 1) : String(e)));
    message = [...new Set(parts)].join('; ');
  }
  if (!message) {
    const code = (error as { code?: unknown }).code;
    message = typeof code === 'string' && code ? code : error.name || 'unknown error';
  }
  if (error.cause instanceof Error) {
    const cause = readableMessage(error.cause, depth + 1);
    if (cause && !message.includes(cause)) message = `${message} (${cause})`;
  }
  return message;
}
