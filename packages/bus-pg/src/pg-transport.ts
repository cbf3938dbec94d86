/**
 * PgTransport: the bus-core Transport over PostgreSQL LISTEN/NOTIFY. It only connects,
 * publishes, delivers and reports state; envelopes, presence and chunking live in RelayBus.
 *
 * Two connections per transport (see session.ts): a LISTEN connection watched by a
 * periodic `SELECT 1` probe, and a publishing connection that batches NOTIFYs. A lost
 * connection of either kind turns the state to `reconnecting` until both are back, retried
 * with capped, jittered backoff until close().
 */
import { randomBytes } from 'node:crypto';
import {
  BrokerUnreachableError,
  BusError,
  BusUnavailableError,
  silentLogger,
  type Logger,
  type PublishOptions,
  type StreamKind,
  type Transport,
  type TransportSink,
} from '@retrotro/bus-core';
import { Backoff, RateLimitedLog, type BackoffOptions } from '@retrotro/bus-core/internal';
import { Channels } from './channels.js';
import { NotifyPublisher, type PublisherStats } from './notify-publisher.js';
import { Session } from './session.js';
import { describeTarget } from './target.js';

export interface PgTransportOptions {
  /** e.g. `postgres://user:password@host:5432/db`. */
  connectionString: string;
  /** Channels are `<prefix>_room`, `_presence`, `_control`, `_chunk`. Letters, digits, `_`. Default `retrotro`. */
  prefix?: string;
  logger?: Logger;
  /** How often both connections are checked with `SELECT 1`. Default 5000. */
  probeIntervalMs?: number;
  /** A probe unanswered this long means the connection is dead. Default 3000. */
  probeTimeoutMs?: number;
  /** Budget for connecting both connections and LISTENing, at start and on each retry. Default 5000. */
  connectTimeoutMs?: number;
  /** A NOTIFY statement unanswered this long means the connection is dead. Default 10000. */
  publishTimeoutMs?: number;
  /** Most notifications per statement. Default 1000. */
  maxBatch?: number;
  /** Most payload bytes per statement. Default 4 MiB. */
  maxBatchBytes?: number;
  /** Most messages waiting to be sent; beyond it publish rejects at once. Default 10000. */
  maxQueuedMessages?: number;
  /** Most payload bytes waiting to be sent; beyond it publish rejects at once. Default 16 MiB. */
  maxQueuedBytes?: number;
  /** Delay between reconnect attempts. Default 100 ms doubling to 5 s, with jitter. */
  backoff?: BackoffOptions;
}

export interface PgTransportStats extends PublisherStats {
  /** Times a working session was lost. */
  losses: number;
  /** Times a lost session was rebuilt. */
  reconnects: number;
}

/** PostgreSQL refuses NOTIFY payloads of 8000 bytes or more. */
export const NOTIFY_MAX_PAYLOAD_BYTES = 7_999;

type State = 'idle' | 'opening' | 'connected' | 'reconnecting' | 'closed';

export class PgTransport implements Transport {
  readonly kind = 'postgres';
  readonly target: string;
  readonly maxPayloadBytes = NOTIFY_MAX_PAYLOAD_BYTES;
  readonly chunking = true;
  readonly channels: Channels;
  /** Names this transport's backends in pg_stat_activity (`retrotro-bus/<role>/<id>/<prefix>`). */
  readonly instanceId = randomBytes(4).toString('hex');

  private readonly connectionString: string;
  private readonly log: Logger;
  private readonly retryLog: RateLimitedLog;
  private readonly probeIntervalMs: number;
  private readonly probeTimeoutMs: number;
  private readonly connectTimeoutMs: number;
  private readonly publisher: NotifyPublisher;
  private readonly backoff: Backoff;
  private readonly what: string;

  private state: State = 'idle';
  private sink: TransportSink | undefined;
  private session: Session | undefined;
  /** A session being connected, so close() can abort it. */
  private pending: Session | undefined;
  private probeTimer: NodeJS.Timeout | undefined;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private probing = false;
  private losses = 0;
  private reconnects = 0;

  constructor(options: PgTransportOptions) {
    this.channels = new Channels(options.prefix ?? 'retrotro');
    this.connectionString = options.connectionString;
    this.target = describeTarget(options.connectionString);
    this.what = `postgres transport (${this.target})`;
    this.log = options.logger ?? silentLogger;
    this.retryLog = new RateLimitedLog((o, m) => this.log.warn(o, m), 3, 60_000);
    this.probeIntervalMs = positive('probeIntervalMs', options.probeIntervalMs ?? 5_000);
    this.probeTimeoutMs = positive('probeTimeoutMs', options.probeTimeoutMs ?? 3_000);
    this.connectTimeoutMs = positive('connectTimeoutMs', options.connectTimeoutMs ?? 5_000);
    this.backoff = new Backoff(options.backoff);
    this.publisher = new NotifyPublisher(
      {
        maxPayloadBytes: this.maxPayloadBytes,
        maxBatch: positive('maxBatch', options.maxBatch ?? 1_000),
        maxBatchBytes: positive('maxBatchBytes', options.maxBatchBytes ?? 4 * 1024 * 1024),
        maxQueuedMessages: positive('maxQueuedMessages', options.maxQueuedMessages ?? 10_000),
        maxQueuedBytes: positive('maxQueuedBytes', options.maxQueuedBytes ?? 16 * 1024 * 1024),
        publishTimeoutMs: positive('publishTimeoutMs', options.publishTimeoutMs ?? 10_000),
      },
      this.what,
    );
  }

  get stats(): PgTransportStats {
    return { ...this.publisher.stats, losses: this.losses, reconnects: this.reconnects };
  }

  get connected(): boolean {
    return this.state === 'connected';
  }

  /** Messages waiting to be sent (bounded by maxQueuedMessages / maxQueuedBytes). */
  get queued(): { messages: number; bytes: number } {
    return this.publisher.queued;
  }

  /** Backend pids of the current connections (for diagnostics and fault-injection tests). */
  backendPids(): { listener?: number; publisher?: number } {
    return this.session?.pids() ?? {};
  }

  async open(sink: TransportSink): Promise<void> {
    if (this.state === 'closed') throw new BusError('stopped', `${this.what} was closed; create a new one`);
    if (this.state !== 'idle') throw new Error('PgTransport.open() was already called');
    this.state = 'opening';
    this.sink = sink;
    let session: Session;
    try {
      session = await this.connect();
    } catch (e) {
      if (this.isClosed()) throw new BusError('stopped', `${this.what} was closed while connecting`);
      this.state = 'idle';
      this.sink = undefined;
      throw new BrokerUnreachableError(this.target, explain(e));
    }
    if (this.isClosed()) {
      session.destroy();
      throw new BusError('stopped', `${this.what} was closed while connecting`);
    }
    this.install(session);
    this.probeTimer = setInterval(() => void this.probe(), this.probeIntervalMs);
    this.probeTimer.unref();
    this.log.info({ target: this.target, channels: this.channels.all }, 'postgres transport connected');
  }

  publish(stream: StreamKind, payload: string, _options?: PublishOptions): Promise<void> {
    if (this.state === 'connected') return this.publisher.publish(this.channels.byStream[stream], payload);
    if (this.state === 'closed') return Promise.reject(new BusError('stopped', `${this.what} is closed; message not sent`));
    return Promise.reject(new BusUnavailableError(this.what));
  }

  publishBatch(stream: StreamKind, payloads: readonly string[], _options?: PublishOptions): Promise<void> {
    if (this.state === 'connected') return this.publisher.publishAll(this.channels.byStream[stream], payloads);
    if (this.state === 'closed') return Promise.reject(new BusError('stopped', `${this.what} is closed; message not sent`));
    return Promise.reject(new BusUnavailableError(this.what));
  }

  async close(): Promise<void> {
    if (this.state === 'closed') return;
    this.state = 'closed';
    this.sink = undefined;
    clearInterval(this.probeTimer);
    clearTimeout(this.reconnectTimer);
    this.publisher.detach(new BusError('stopped', `${this.what} was closed; message not sent`));
    const { session, pending } = this;
    this.session = this.pending = undefined;
    pending?.destroy();
    await session?.close();
  }

  // ---- connection lifecycle ------------------------------------------------------------

  private isClosed(): boolean {
    return this.state === 'closed'; // a method, so TypeScript does not narrow it across awaits
  }

  private async connect(): Promise<Session> {
    const session = new Session({
      connectionString: this.connectionString,
      instanceId: this.instanceId,
      channels: this.channels,
      deliver: (stream, payload) => this.deliver(stream, payload),
    });
    this.pending = session;
    try {
      await session.open(this.connectTimeoutMs);
    } finally {
      if (this.pending === session) this.pending = undefined;
    }
    return session;
  }

  private deliver(stream: StreamKind, payload: string): void {
    try {
      this.sink?.receive(stream, payload);
    } catch (e) {
      // A throwing sink must not break pg's message parser (and with it the connection).
      this.log.error({ err: e, stream }, 'transport sink failed on a notification');
    }
  }

  private install(session: Session): void {
    this.session = session;
    this.state = 'connected';
    this.publisher.attach(session.publisher);
    session.watch((error) => this.onLost(session, error));
  }

  private onLost(session: Session, error: Error): void {
    if (session !== this.session || this.state !== 'connected') return;
    this.session = undefined;
    this.losses++;
    this.state = 'reconnecting';
    // Fail what waits before anyone hears about it, so nothing new joins a dead queue.
    this.publisher.detach(new BusUnavailableError(this.what));
    this.log.warn({ err: error, target: this.target }, 'postgres connection lost; reconnecting');
    this.sink?.stateChanged('reconnecting', error);
    this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    const delay = this.backoff.next();
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      void this.reconnect();
    }, delay);
  }

  private async reconnect(): Promise<void> {
    if (this.state !== 'reconnecting') return;
    let session: Session;
    try {
      session = await this.connect();
    } catch (e) {
      if (this.state !== 'reconnecting') return;
      this.retryLog.write({ err: e, target: this.target, attempt: this.backoff.attempts }, 'postgres reconnect failed; retrying');
      this.scheduleReconnect();
      return;
    }
    if (this.state !== 'reconnecting') {
      session.destroy();
      return;
    }
    this.reconnects++;
    this.install(session);
    this.log.info({ target: this.target }, 'postgres transport reconnected');
    this.sink?.stateChanged('connected');
  }

  /** `SELECT 1` on both connections: a dead peer can leave a socket open and silent for a long time. */
  private async probe(): Promise<void> {
    const session = this.session;
    if (!session || this.probing) return;
    this.probing = true;
    try {
      await session.probe(this.probeTimeoutMs, !this.publisher.busy);
      // Only a session that stayed healthy resets the backoff, so a flapping server is not hammered.
      if (session === this.session) this.backoff.reset();
    } catch (e) {
      session.fail(e instanceof Error ? e : new Error(String(e)));
    } finally {
      this.probing = false;
    }
  }
}

/** Node reports "localhost refused on ::1 and 127.0.0.1" as an AggregateError with an empty message. */
function explain(error: unknown): unknown {
  if (error instanceof AggregateError && !error.message && error.errors.length > 0) {
    return new Error(error.errors.map((e: unknown) => (e instanceof Error ? e.message : String(e))).join('; '), { cause: error });
  }
  return error;
}

function positive(name: string, value: number): number {
  if (!Number.isFinite(value) || value <= 0) throw new Error(`PgTransport option ${name} must be a positive number, got ${value}`);
  return value;
}
