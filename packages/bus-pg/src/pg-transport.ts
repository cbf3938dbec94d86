/**
 * PgTransport: the bus-core Transport over PostgreSQL LISTEN/NOTIFY. It only connects,
 * publishes, delivers and reports state; envelopes, presence and chunking live in RelayBus.
 *
 * Two connections per transport (see session.ts): a LISTEN connection watched by a
 * periodic `SELECT 1` probe, and a publishing connection that batches NOTIFYs. Payloads
 * above NOTIFY's 8000 bytes go by reference through a table (large-payloads.ts), or, with
 * `largePayloads: 'chunks'`, as bus-core's chunk frames. A lost
 * connection of either kind turns the state to `reconnecting` until both are back, retried
 * with capped, jittered backoff until close(). The states themselves, the open deadline,
 * close during open, publish gating and the guarded sink are bus-core's TransportLifecycle.
 */
import { randomBytes } from 'node:crypto';
import {
  BusError,
  BusUnavailableError,
  silentLogger,
  type Logger,
  type PublishOptions,
  type StreamKind,
  type Transport,
  type TransportSink,
} from '@retrotro/bus-core';
import { Backoff, RateLimitedLog, TransportLifecycle, type BackoffOptions } from '@retrotro/bus-core/internal';
import { Channels } from './channels.js';
import type { PgClientConfig } from './connection.js';
import { LargePayloads, type LargePayloadStats } from './large-payloads.js';
import { NOTIFY_MAX_PAYLOAD_BYTES, NotifyPublisher, type PublisherStats } from './notify-publisher.js';
import { PgHistory } from './pg-history.js';
import { Session } from './session.js';
import { checkConnectionString, describeTarget } from './target.js';

export interface PgTransportOptions {
  /** e.g. `postgres://user:password@host:5432/db`. */
  connectionString: string;
  /**
   * pg client settings for every connection the transport opens (TLS `ssl`, a `password`
   * function, `statement_timeout`, ...), merged with the connection string (these win).
   * Default none. A pg.Pool cannot be used: LISTEN needs a connection of its own.
   */
  clientConfig?: PgClientConfig;
  /** Channels are `<prefix>_room`, `_presence`, `_control`, `_chunk`. Default `retrotro`; see `validateBusPrefix` (bus-core). */
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
  /**
   * How payloads above NOTIFY's limit (7999 bytes) travel. `table` (default): stored in the
   * UNLOGGED table `<prefix>_large` by the statement that notifies a reference to them; every
   * listener reads a batch of them back with one SELECT. `chunks`: cut into chunk frames by
   * the relay, several NOTIFYs each (what bus-pg 0.1 pods do: use it while a cluster
   * still runs such pods, which do not read the table).
   */
  largePayloads?: 'table' | 'chunks';
  /** Largest payload with `largePayloads: 'table'`. Default 16 MiB. */
  maxLargePayloadBytes?: number;
  /**
   * How long a large payload stays in the table: a listener further behind than this loses
   * it (counted in `stats.large.missing` and logged). Default 60000.
   */
  largePayloadRetentionMs?: number;
  /** Delay between reconnect attempts. Default 100 ms doubling to 5 s, with jitter. */
  backoff?: BackoffOptions;
  /**
   * Keep room history (CONTRACT section 8) in tables `<prefix>_history_rooms` and
   * `<prefix>_history_events` of this database: `history` is then a `PgHistory`, and the
   * transport opens a third connection for history reads. Default false (`history` undefined).
   */
  history?: boolean;
}

export interface PgTransportStats extends PublisherStats {
  /** Times a working session was lost. */
  losses: number;
  /** Times a lost session was rebuilt. */
  reconnects: number;
  /** Payloads sent and received by reference (`largePayloads: 'table'`), else undefined. */
  large: LargePayloadStats | undefined;
}

export { NOTIFY_MAX_PAYLOAD_BYTES };

export class PgTransport implements Transport {
  readonly kind = 'postgres';
  readonly target: string;
  readonly maxPayloadBytes: number;
  /** True with `largePayloads: 'chunks'`: the relay cuts larger payloads into chunk frames. */
  readonly chunking: boolean;
  readonly channels: Channels;
  /** Names this transport's backends in pg_stat_activity (`retrotro-bus/<role>/<id>/<prefix>`). */
  readonly instanceId = randomBytes(4).toString('hex');
  /** The room history in this database, when created with `history: true`. */
  readonly history: PgHistory | undefined;

  private readonly connectionString: string;
  private readonly clientConfig: PgClientConfig | undefined;
  private readonly log: Logger;
  private readonly retryLog: RateLimitedLog;
  private readonly probeIntervalMs: number;
  private readonly probeTimeoutMs: number;
  private readonly publisher: NotifyPublisher;
  private readonly backoff: Backoff;
  private readonly what: string;
  private readonly life: TransportLifecycle<Session>;
  private readonly large: LargePayloads | undefined;
  private readonly statementTimeoutMs: number;
  private readonly largeLog: RateLimitedLog;
  private sweepTimer: NodeJS.Timeout | undefined;
  private sweeping = false;

  private session: Session | undefined;
  private probeTimer: NodeJS.Timeout | undefined;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private probing = false;
  private losses = 0;
  private reconnects = 0;

  constructor(options: PgTransportOptions) {
    this.channels = new Channels(options.prefix ?? 'retrotro');
    checkConnectionString(options.connectionString);
    this.connectionString = options.connectionString;
    this.clientConfig = options.clientConfig;
    this.target = describeTarget(options.connectionString);
    this.log = options.logger ?? silentLogger;
    this.retryLog = new RateLimitedLog((o, m) => this.log.warn(o, m), 3, 60_000);
    this.probeIntervalMs = positive('probeIntervalMs', options.probeIntervalMs ?? 5_000);
    this.probeTimeoutMs = positive('probeTimeoutMs', options.probeTimeoutMs ?? 3_000);
    this.backoff = new Backoff(options.backoff);
    this.statementTimeoutMs = positive('publishTimeoutMs', options.publishTimeoutMs ?? 10_000);
    const mode = options.largePayloads ?? 'table';
    if (mode !== 'table' && mode !== 'chunks')
      throw new Error(`PgTransport option largePayloads must be 'table' or 'chunks', got ${JSON.stringify(mode)}`);
    this.chunking = mode === 'chunks';
    this.large = this.chunking
      ? undefined
      : new LargePayloads(this.channels.prefix, positive('largePayloadRetentionMs', options.largePayloadRetentionMs ?? 60_000));
    this.maxPayloadBytes = this.chunking
      ? NOTIFY_MAX_PAYLOAD_BYTES
      : positive('maxLargePayloadBytes', options.maxLargePayloadBytes ?? 16 * 1024 * 1024);
    this.largeLog = new RateLimitedLog((o, m) => this.log.warn(o, m), 5, 10_000);
    this.life = new TransportLifecycle<Session>(
      {
        connect: (signal) => this.connect(signal),
        install: (session, again) => this.install(session, again),
        discard: (session) => session.destroy(),
        shutdown: () => this.shutdown(),
      },
      {
        name: 'postgres transport',
        target: this.target,
        connectTimeoutMs: positive('connectTimeoutMs', options.connectTimeoutMs ?? 5_000),
        logger: this.log,
      },
    );
    this.what = this.life.what;
    this.publisher = new NotifyPublisher(
      {
        maxPayloadBytes: this.maxPayloadBytes,
        maxBatch: positive('maxBatch', options.maxBatch ?? 1_000),
        maxBatchBytes: positive('maxBatchBytes', options.maxBatchBytes ?? 4 * 1024 * 1024),
        maxQueuedMessages: positive('maxQueuedMessages', options.maxQueuedMessages ?? 10_000),
        maxQueuedBytes: positive('maxQueuedBytes', options.maxQueuedBytes ?? 16 * 1024 * 1024),
        publishTimeoutMs: this.statementTimeoutMs,
      },
      this.what,
      this.channels,
      this.large,
    );
    if (options.history) {
      const publisher = this.publisher;
      const life = this.life;
      this.history = new PgHistory({
        channels: this.channels,
        connectionString: this.connectionString,
        clientConfig: this.clientConfig,
        target: this.target,
        what: this.what,
        instanceId: this.instanceId,
        connectTimeoutMs: life.connectTimeoutMs,
        statementTimeoutMs: this.statementTimeoutMs,
        maxBatch: positive('maxBatch', options.maxBatch ?? 1_000),
        maxBatchBytes: positive('maxBatchBytes', options.maxBatchBytes ?? 4 * 1024 * 1024),
        publisher,
        log: this.log,
        reader: () => this.session?.reader,
        connected: () => life.connected,
        refuse: () => life.refusePublish(),
      });
    }
  }

  get stats(): PgTransportStats {
    return { ...this.publisher.stats, losses: this.losses, reconnects: this.reconnects, large: this.large ? { ...this.large.stats } : undefined };
  }

  get connected(): boolean {
    return this.life.connected;
  }

  /** Messages waiting to be sent (bounded by maxQueuedMessages / maxQueuedBytes). */
  get queued(): { messages: number; bytes: number } {
    return this.publisher.queued;
  }

  /** Backend pids of the current connections (for diagnostics and fault-injection tests). */
  backendPids(): { listener?: number; publisher?: number; reader?: number } {
    return this.session?.pids() ?? {};
  }

  open(sink: TransportSink): Promise<void> {
    return this.life.open(sink);
  }

  publish(stream: StreamKind, payload: string, _options?: PublishOptions): Promise<void> {
    if (this.life.connected) return this.publisher.publish(this.channels.byStream[stream], payload);
    return this.life.refusePublish();
  }

  publishBatch(stream: StreamKind, payloads: readonly string[], _options?: PublishOptions): Promise<void> {
    if (this.life.connected) return this.publisher.publishAll(this.channels.byStream[stream], payloads);
    return this.life.refusePublish();
  }

  close(): Promise<void> {
    return this.life.close();
  }

  // ---- the driver TransportLifecycle runs -----------------------------------------------

  /** Both connections and the LISTEN; the lifecycle bounds the time and aborts through `signal`. */
  private async connect(signal: AbortSignal): Promise<Session> {
    const session = new Session({
      connectionString: this.connectionString,
      clientConfig: this.clientConfig,
      instanceId: this.instanceId,
      channels: this.channels,
      history: this.history !== undefined,
      deliver: (stream, payload) => this.life.deliver(stream, payload),
      large: this.large,
      statementTimeoutMs: this.statementTimeoutMs,
      warn: (detail, message) => this.largeLog.write({ ...detail, target: this.target }, message),
    });
    const abort = () => session.destroy();
    signal.addEventListener('abort', abort, { once: true });
    try {
      await session.open();
    } finally {
      signal.removeEventListener('abort', abort);
    }
    return session;
  }

  private install(session: Session, again: boolean): void {
    this.session = session;
    this.publisher.attach(session.publisher);
    if (again) {
      this.reconnects++;
      this.log.info({ target: this.target }, 'postgres transport reconnected');
    } else {
      this.probeTimer = setInterval(() => void this.probe(), this.probeIntervalMs);
      this.probeTimer.unref();
      if (this.large) {
        // Often enough that one sweep deletes little, so it never holds reads up for long.
        this.sweepTimer = setInterval(() => void this.sweepLarge(), Math.min(1_000, this.large.retentionMs / 4));
        this.sweepTimer.unref();
      }
      this.log.info({ target: this.target, channels: this.channels.all }, 'postgres transport connected');
    }
    session.watch((error) => this.onLost(session, error));
  }

  private async shutdown(): Promise<void> {
    clearInterval(this.probeTimer);
    clearInterval(this.sweepTimer);
    clearTimeout(this.reconnectTimer);
    this.history?.stop();
    this.publisher.detach(new BusError('stopped', `${this.what} was closed; message not sent`));
    const session = this.session;
    this.session = undefined;
    await session?.close();
  }

  // ---- reconnecting ---------------------------------------------------------------------

  private onLost(session: Session, error: Error): void {
    if (session !== this.session || !this.life.connected) return;
    this.session = undefined;
    this.losses++;
    // Fail what waits before anyone hears about it, so nothing new joins a dead queue.
    this.publisher.detach(new BusUnavailableError(this.what));
    this.large?.forgetOwn();
    this.log.warn({ err: error, target: this.target }, 'postgres connection lost; reconnecting');
    this.life.lost(error);
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
    try {
      await this.life.reconnect();
    } catch (e) {
      if (this.life.state !== 'reconnecting') return;
      this.retryLog.write({ err: e, target: this.target, attempt: this.backoff.attempts }, 'postgres reconnect failed; retrying');
      this.scheduleReconnect();
    }
  }

  private async sweepLarge(): Promise<void> {
    const session = this.session;
    if (!session || this.sweeping) return;
    this.sweeping = true;
    try {
      await session.sweepLarge(this.statementTimeoutMs);
    } catch (e) {
      // A dead connection shows in the probe; anything else is retried at the next tick.
      this.largeLog.write({ err: e, target: this.target }, 'sweep of large payloads failed; retrying');
    } finally {
      this.sweeping = false;
    }
  }

  /** `SELECT 1` on both connections: a dead peer can leave a socket open and silent for a long time. */
  private async probe(): Promise<void> {
    const session = this.session;
    if (!session || this.probing) return;
    this.probing = true;
    try {
      await session.probe(this.probeTimeoutMs, !this.publisher.busy, !this.history?.busy);
      // Only a session that stayed healthy resets the backoff, so a flapping server is not hammered.
      if (session === this.session) this.backoff.reset();
    } catch (e) {
      session.fail(e instanceof Error ? e : new Error(String(e)));
    } finally {
      this.probing = false;
    }
  }
}

function positive(name: string, value: number): number {
  if (!Number.isFinite(value) || value <= 0) throw new Error(`PgTransport option ${name} must be a positive number, got ${value}`);
  return value;
}
