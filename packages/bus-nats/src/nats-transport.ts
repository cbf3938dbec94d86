/**
 * NatsTransport: core NATS (no JetStream) through nats.js v3. Thin on purpose: connect,
 * publish text on `<prefix>.<stream>`, hand what arrives to the relay, report connection
 * state. Envelopes, presence, ordering checks and own-echo filtering live in RelayBus; the
 * states, the open deadline, close during open, publish gating and the guarded sink are
 * bus-core's TransportLifecycle. nats.js reconnects by itself; we only report it.
 */
import { connect, headers, type ConnectionOptions, type MsgHdrs, type NatsConnection, type Status, type Subscription } from '@nats-io/transport-node';
import {
  BusError,
  STREAMS,
  validateBusPrefix,
  silentLogger,
  type Logger,
  type PublishOptions,
  type StreamKind,
  type Transport,
  type TransportSink,
} from '@retrotro/bus-core';
import { TransportLifecycle, maskUrl } from '@retrotro/bus-core/internal';
import { loadCredentials } from './credentials.js';
import { HISTORY_COPY_HEADER, JetStreamHistory, type JetStreamHistoryOptions } from './jetstream-history.js';
import { roomSubject, streamSubject } from './subjects.js';

export interface NatsTransportOptions {
  /** Server URL(s); a comma-separated string is split. Default `nats://127.0.0.1:4222`. */
  servers?: string | string[];
  /** First token of every subject (BUS_PREFIX). Default `retrotro`; see `validateBusPrefix` (bus-core). */
  prefix?: string;
  /** Path to a `.creds` file (user JWT + nkey seed); re-read on every reconnect. */
  credentialsFile?: string;
  logger?: Logger;
  /** Connection name shown by the server's monitoring (`/connz`). */
  name?: string;
  /**
   * `flat` (default): all room traffic on `<prefix>.room`, as Go pods expect. `per-room`:
   * room traffic on `<prefix>.room.<room>`, received only by pods with members in that room.
   */
  roomSubjects?: 'flat' | 'per-room';
  /** `open()` gives up after this long. Default 5000. */
  connectTimeoutMs?: number;
  /** Pause between reconnect attempts (plus up to 100 ms of jitter). Default: nats.js's 2000. */
  reconnectTimeWaitMs?: number;
  /** Client PING interval; two unanswered PINGs count as a lost connection. Default 10000. */
  pingIntervalMs?: number;
  /**
   * Room history in JetStream (CONTRACT section 8): `true` or options make `history` a
   * `JetStreamHistory` (stream `<prefix>_history`). Off by default: core NATS only.
   */
  history?: boolean | JetStreamHistoryOptions;
  /**
   * Further nats.js connection options (TLS, user and password, token, an authenticator,
   * `maxPingOut`, ...), passed to `connect()` as they are. Default none. The ones the relay
   * depends on win over them: `servers`, `noEcho: true`, reconnecting for ever
   * (`maxReconnectAttempts: -1`), and the options above.
   */
  connectionOptions?: Omit<ConnectionOptions, 'servers' | 'noEcho' | 'maxReconnectAttempts'>;
}

const DEFAULT_SERVERS = 'nats://127.0.0.1:4222';
const DEFAULT_MAX_PAYLOAD = 1024 * 1024;
const DRAIN_TIMEOUT_MS = 2_000;
/** Room subjects remembered at most; beyond, the cache starts over. */
const ROOM_SUBJECT_CACHE = 10_000;

/** A connection as connect() hands it to install(): with its status events since the start. */
interface Connection {
  nc: NatsConnection;
  status: AsyncIterable<Status>;
}

export function parseServers(servers: string | string[] | undefined): string[] {
  const list = (Array.isArray(servers) ? servers : (servers ?? DEFAULT_SERVERS).split(',')).map((s) => s.trim()).filter((s) => s.length > 0);
  if (list.length === 0) throw new Error('no NATS server given: set servers (e.g. "nats://127.0.0.1:4222")');
  return list;
}

export class NatsTransport implements Transport {
  readonly kind = 'nats';
  readonly target: string;
  /** NATS refuses oversized messages rather than splitting them: so does the relay. */
  readonly chunking = false;
  readonly prefix: string;
  readonly roomSubjects: 'flat' | 'per-room';
  /** The JetStream history store, when created with `history`; open it after `open()`. */
  readonly history: JetStreamHistory | undefined;

  private readonly servers: string[];
  private readonly options: NatsTransportOptions;
  private readonly log: Logger;
  private readonly life: TransportLifecycle<Connection>;
  private nc: NatsConnection | undefined;
  private maxPayload = DEFAULT_MAX_PAYLOAD;
  private statusLoop: Promise<void> | undefined;
  /** Rooms we want traffic of (per-room mode), with their subscription once connected. */
  private readonly rooms = new Map<string, Subscription | undefined>();
  /** Subjects computed once: per stream, and per room in per-room mode (bounded). */
  private readonly streamSubjects: Readonly<Record<StreamKind, string>>;
  private readonly roomSubjectCache = new Map<string, string>();

  constructor(options: NatsTransportOptions = {}) {
    this.options = options;
    this.servers = parseServers(options.servers);
    this.target = maskUrl(this.servers.join(','));
    this.prefix = validateBusPrefix(options.prefix ?? 'retrotro');
    this.roomSubjects = options.roomSubjects ?? 'flat';
    this.streamSubjects = Object.fromEntries(STREAMS.map((s) => [s, streamSubject(this.prefix, s)])) as Record<StreamKind, string>;
    if (this.roomSubjects !== 'flat' && this.roomSubjects !== 'per-room') {
      throw new Error(`invalid roomSubjects ${JSON.stringify(this.roomSubjects)}: use "flat" or "per-room"`);
    }
    this.log = options.logger ?? silentLogger;
    this.life = new TransportLifecycle<Connection>(
      {
        connect: () => this.connect(),
        install: (c) => this.install(c),
        // A connection that came too late: nobody wants it.
        discard: (c) => void c.nc.close().catch(() => {}),
        shutdown: (graceful) => this.shutdown(graceful),
      },
      { name: 'NATS transport', target: this.target, connectTimeoutMs: options.connectTimeoutMs ?? 5_000, logger: this.log },
    );
    this.history = options.history ? this.createHistory(options.history === true ? {} : options.history) : undefined;
  }

  /** The server's `max_payload` (1 MiB unless configured otherwise), kept across outages. */
  get maxPayloadBytes(): number {
    return this.maxPayload;
  }

  /** True while connected; publishes fail fast otherwise. */
  get connected(): boolean {
    return this.life.connected;
  }

  open(sink: TransportSink): Promise<void> {
    return this.life.open(sink);
  }

  publish(stream: StreamKind, payload: string, options?: PublishOptions): Promise<void> {
    const nc = this.nc;
    // While reconnecting nats.js would buffer without bound; the relay wants a fast failure.
    if (!this.life.connected || !nc) return this.life.refusePublish();
    const subject =
      stream === 'room' && this.roomSubjects === 'per-room' && options?.roomId !== undefined
        ? this.subjectOfRoom(options.roomId)
        : this.streamSubjects[stream];
    try {
      // Buffered: nats.js writes everything published in this tick in one socket write.
      nc.publish(subject, payload);
    } catch (e) {
      const why = e instanceof Error ? e.message : String(e);
      return Promise.reject(new BusError('publish_failed', `NATS publish on ${subject} failed: ${why}`, { cause: e }));
    }
    return Promise.resolve();
  }

  setRoomInterest(roomId: string, interested: boolean): void {
    if (this.roomSubjects !== 'per-room') return;
    if (interested) {
      if (this.rooms.has(roomId)) return;
      const nc = this.nc;
      // Before open() or after close() only the wish is recorded; open() subscribes.
      this.rooms.set(roomId, nc && !this.life.closed ? this.subscribeRoom(nc, roomId) : undefined);
    } else {
      const sub = this.rooms.get(roomId);
      this.rooms.delete(roomId);
      try {
        sub?.unsubscribe();
      } catch (e) {
        this.log.debug({ err: e, roomId }, 'NATS unsubscribe failed');
      }
    }
  }

  close(): Promise<void> {
    return this.life.close();
  }

  // ---- the driver TransportLifecycle runs -----------------------------------------------

  /**
   * One nats.js connect over the server list, subscribed, with the subscriptions confirmed
   * by a round trip: once open() resolves, what others publish reaches us. The lifecycle
   * bounds the whole of it and discards a connection that comes too late.
   */
  private async connect(): Promise<Connection> {
    const timeout = this.life.connectTimeoutMs;
    const authenticator = this.options.credentialsFile ? await loadCredentials(this.options.credentialsFile) : undefined;
    const nc = await connect({
      ...this.options.connectionOptions,
      servers: this.servers,
      // Per server for nats.js; the lifecycle's deadline bounds the whole list.
      timeout,
      maxReconnectAttempts: -1,
      // With -1 we reconnect forever, also past an auth error: a rotated creds file may fix it.
      ignoreAuthErrorAbort: true,
      pingInterval: this.options.pingIntervalMs ?? 10_000,
      // The server need not send our own messages back: the relay would only drop them.
      noEcho: true,
      ...(this.options.reconnectTimeWaitMs !== undefined && { reconnectTimeWait: this.options.reconnectTimeWaitMs }),
      ...(this.options.name !== undefined && { name: this.options.name }),
      ...(authenticator && { authenticator }),
    });
    // Created at once, so no status event is missed while we subscribe (the iterator queues).
    const status = nc.status();
    try {
      for (const stream of STREAMS) this.subscribe(nc, this.streamSubjects[stream], stream);
      for (const roomId of this.rooms.keys()) this.rooms.set(roomId, this.subscribeRoom(nc, roomId));
      await nc.flush();
    } catch (e) {
      void nc.close().catch(() => {});
      throw e;
    }
    return { nc, status };
  }

  /** Puts a subscribed connection to use: status events, the close watch, the payload limit. */
  private install({ nc, status }: Connection): void {
    this.nc = nc;
    this.maxPayload = nc.info?.max_payload ?? DEFAULT_MAX_PAYLOAD;
    this.statusLoop = this.watchStatus(nc, status);
    void nc.closed().then((err) => this.onClosed(nc, err));
    // Rooms wished for while connect() was subscribing.
    for (const [roomId, sub] of this.rooms) if (!sub) this.rooms.set(roomId, this.subscribeRoom(nc, roomId));
    this.log.debug({ target: this.target, server: nc.getServer(), maxPayload: this.maxPayload }, 'NATS connected');
  }

  private async shutdown(graceful: boolean): Promise<void> {
    await this.history?.stop();
    const nc = this.nc;
    this.nc = undefined;
    if (!nc) return;
    if (graceful) {
      // Drain so the last messages (leaves, bye) reach the server; bounded, as a dying server may never answer.
      let timer: NodeJS.Timeout | undefined;
      const giveUp = new Promise<void>((r) => (timer = setTimeout(r, DRAIN_TIMEOUT_MS)));
      await Promise.race([nc.drain().catch(() => {}), giveUp]);
      clearTimeout(timer);
    }
    if (!nc.isClosed()) await nc.close().catch(() => {});
    await this.statusLoop;
  }

  // ---- internals -----------------------------------------------------------------------

  /** `<prefix>.room.<token>`, cached: encoding a room id character by character costs ~0.5 µs per publish. */
  private subjectOfRoom(roomId: string): string {
    let subject = this.roomSubjectCache.get(roomId);
    if (subject === undefined) {
      if (this.roomSubjectCache.size >= ROOM_SUBJECT_CACHE) this.roomSubjectCache.clear();
      subject = roomSubject(this.prefix, roomId);
      this.roomSubjectCache.set(roomId, subject);
    }
    return subject;
  }

  private subscribe(nc: NatsConnection, subject: string, stream: StreamKind): Subscription {
    // A callback (not an iterator) runs synchronously per message, in arrival order across
    // all subjects of this connection: one pod's publish order is kept.
    return nc.subscribe(subject, {
      callback: (err, msg) => {
        if (err) {
          this.log.error({ err, subject }, 'NATS subscription failed');
          return;
        }
        // A Go pod's copy of a history event: we have it (with its offset) from the live feed.
        if (msg.headers?.has(HISTORY_COPY_HEADER)) return;
        this.life.deliver(stream, msg.string());
      },
    });
  }

  private createHistory(options: JetStreamHistoryOptions): JetStreamHistory {
    const marker: MsgHdrs = headers();
    marker.set(HISTORY_COPY_HEADER, '1');
    const life = this.life;
    return new JetStreamHistory(
      {
        prefix: this.prefix,
        target: this.target,
        log: this.log,
        connection: () => this.nc,
        get connected() {
          return life.connected;
        },
        refuse: () => this.life.refusePublish(),
        deliver: (envelope) => this.life.deliver('room', envelope),
        publishCopy: (stream, payload) => {
          // Go pods listen on the flat subjects only; in per-room mode there are none.
          if (this.roomSubjects === 'per-room') return;
          const nc = this.nc;
          if (!nc || !this.life.connected) return;
          nc.publish(this.streamSubjects[stream], payload, { headers: marker });
        },
      },
      options,
    );
  }

  private subscribeRoom(nc: NatsConnection, roomId: string): Subscription | undefined {
    try {
      return this.subscribe(nc, roomSubject(this.prefix, roomId), 'room');
    } catch (e) {
      this.log.error({ err: e, roomId }, 'NATS subscribe to a room subject failed');
      return undefined;
    }
  }

  private async watchStatus(nc: NatsConnection, events: AsyncIterable<Status>): Promise<void> {
    for await (const s of events) {
      if (this.nc !== nc) continue; // closing: let the iterator end by itself
      switch (s.type) {
        case 'disconnect':
          this.lost(new Error(`lost connection to ${maskUrl(s.server)}`));
          break;
        case 'reconnecting':
          this.lost(new Error('reconnecting'));
          break;
        case 'staleConnection':
          this.log.warn({ target: this.target }, 'NATS server stopped answering pings; reconnecting');
          this.lost(new Error('server stopped answering pings'));
          break;
        case 'reconnect':
          this.regained(nc, s.server);
          break;
        case 'error':
          this.log.warn({ err: s.error, target: this.target }, 'NATS server reported an error');
          break;
        case 'ldm':
          this.log.info({ server: maskUrl(s.server) }, 'NATS server entering lame duck mode; it will close us and we reconnect elsewhere');
          break;
        default:
          break;
      }
    }
  }

  private lost(error: Error): void {
    this.life.lost(error);
    // PubAcks still awaited will not come over this connection: fail those appends now.
    this.history?.connectionLost();
  }

  private regained(nc: NatsConnection, server: string): void {
    if (this.life.state !== 'reconnecting') return;
    // Another server of the cluster may have another limit.
    this.maxPayload = nc.info?.max_payload ?? this.maxPayload;
    this.log.debug({ server: maskUrl(server) }, 'NATS reconnected');
    this.life.regained();
  }

  /** nats.js closed the connection by itself (not through close()): final. */
  // biome-ignore lint/suspicious/noConfusingVoidType: the type of nats.js closed(): Promise<void | Error>
  private onClosed(nc: NatsConnection, err: void | Error): void {
    if (this.nc !== nc || this.life.closed) return;
    const error = err ?? new Error('NATS connection closed');
    this.log.error({ err: error, target: this.target }, 'NATS connection closed for good');
    this.life.fail(error);
  }
}
