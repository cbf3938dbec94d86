/**
 * RelayBus: the MessageBus written once, over any Transport. This file is the facade: the
 * MessageBus API and the wiring of the parts that do the work:
 *
 *   outbox      sequence numbers, chunking, publish outcomes        (sending)
 *   inbox       echo drop, decoding, reassembly, sequence checks    (receiving)
 *   membership  presence, heartbeats, expiry, sync, readiness
 *   state       replicated room state (last writer wins)
 *   codec       the bytes of our room envelopes
 *   history     the transport's store (offsets, acks, replay), when history is on
 */
import { randomUUID } from 'node:crypto';
import { Backpressure, type BackpressureOptions, type PressureListener } from './backpressure.js';
import { BusError, BusUnavailableError, PayloadTooLargeError, toError } from './errors.js';
import type { LocalHub } from './hub.js';
import { Inbox, type InboxEvent } from './inbox.js';
import { silentLogger, type Logger } from './logger.js';
import { Membership, type WhenReadyOptions } from './membership.js';
import type { BusStatus, MessageBus } from './message-bus.js';
import { Outbox } from './outbox.js';
import { PeerTable } from './peer-table.js';
import type { PresenceChange } from './presence-registry.js';
import { ReplicatedState } from './replicated-state.js';
import { RoomCodec } from './room-codec.js';
import { BusStats } from './stats.js';
import type { Transport, TransportState } from './transport.js';
import type { HistoryLimits, HistoryPage, HistoryPosition, HistoryStore } from './history.js';
import { historyEnvelope } from './room-codec.js';
import type { EventResult, Frame, Participant, PublishResult, RoomEvent, StreamKind } from './types.js';

export interface RelayBusOptions {
  transport: Transport;
  /** Unique per process: 1-128 of `[A-Za-z0-9._:-]`. Default: a random UUID. */
  podId?: string;
  /** How often this pod tells the others it is alive (PRESENCE_HEARTBEAT_MS). Default 5000. */
  heartbeatMs?: number;
  /** Silence after which a pod is declared dead (PRESENCE_TTL_MS); must exceed heartbeatMs. Default 15000. */
  ttlMs?: number;
  /** How long after (re)connecting we wait for other pods' presence before we call ourselves ready. Default min(heartbeatMs, 1000). */
  syncWindowMs?: number;
  /** pino-style logger. Default: silent. */
  logger?: Logger;
  /** Optional latency hook for metrics: seconds from publish call to broker acknowledgement. */
  observePublish?: (stream: StreamKind, seconds: number, ok: boolean) => void;
  /**
   * Room history (HISTORY_SIZE, HISTORY_TTL_S): kept by the transport's store, which must
   * exist. Default: off (no offsets, no recovery).
   */
  history?: HistoryLimits;
  /** When the bus says it is overloaded (see `overloaded`). Defaults: 8 MiB or 4000 messages unacknowledged. */
  backpressure?: BackpressureOptions;
  /** Optional latency hook for metrics: seconds a history write or read took. */
  observeHistory?: (operation: 'write' | 'read', seconds: number, ok: boolean) => void;
}

/** Failures a retry (with the same event id) can get past: the broker or store was busy or away. */
const RETRYABLE = new Set(['bus_unavailable', 'publish_failed', 'timeout', 'broker_unreachable', 'stopped']);
const isRetryable = (e: Error) => !(e instanceof BusError) || RETRYABLE.has(e.code);

const POD_ID = /^[A-Za-z0-9._:-]{1,128}$/;

export interface StopOptions {
  /**
   * Keep this pod's users present on the other pods this long (DISCONNECT_GRACE_MS): a
   * rolling restart, where they reconnect elsewhere without a leave. Default 0: they leave at once.
   */
  graceMs?: number;
}

export class RelayBus implements MessageBus {
  readonly podId: string;
  readonly stats = new BusStats();
  readonly transport: Transport;

  private readonly log: Logger;
  private readonly codec: RoomCodec;
  private readonly state: ReplicatedState;
  private readonly peers = new PeerTable();
  private readonly outbox: Outbox;
  private readonly inbox: Inbox;
  private readonly membership: Membership;
  private localHub: LocalHub | undefined;
  private readonly store: HistoryStore | undefined;
  private readonly backpressure: Backpressure;
  private readonly historyLimits: HistoryLimits | undefined;
  private readonly observeHistory: RelayBusOptions['observeHistory'];
  private phase: 'idle' | 'starting' | 'running' | 'stopped' = 'idle';
  private chunkSweep: NodeJS.Timeout | undefined;

  constructor(options: RelayBusOptions) {
    this.transport = options.transport;
    this.podId = options.podId ?? randomUUID();
    if (!POD_ID.test(this.podId)) throw new Error(`invalid podId ${JSON.stringify(this.podId)}: use 1-128 of [A-Za-z0-9._:-]`);
    const heartbeatMs = options.heartbeatMs ?? 5_000;
    const ttlMs = options.ttlMs ?? 15_000;
    if (ttlMs <= heartbeatMs) throw new Error(`ttlMs (${ttlMs}) must exceed heartbeatMs (${heartbeatMs})`);
    this.log = options.logger ?? silentLogger;
    if (options.history && options.history.size > 0) {
      if (!this.transport.history) {
        throw new Error(`the ${this.transport.kind} transport keeps no history: create it with history on, or set the history size to 0`);
      }
      this.store = this.transport.history;
      this.historyLimits = options.history;
    }
    this.observeHistory = options.observeHistory;
    this.backpressure = new Backpressure(options.backpressure);
    const { podId, stats, peers, log: logger } = this;
    this.codec = new RoomCodec(podId);
    const instance = randomUUID();
    this.state = new ReplicatedState(podId, logger);
    this.outbox = new Outbox({
      podId,
      transport: this.transport,
      stats,
      logger,
      observePublish: options.observePublish,
      backpressure: this.backpressure,
      unavailable: () => this.unavailable(),
    });
    this.membership = new Membership({
      podId,
      instance,
      peers,
      outbox: this.outbox,
      state: this.state,
      stats,
      logger,
      heartbeatMs,
      ttlMs,
      syncWindowMs: options.syncWindowMs ?? Math.min(heartbeatMs, 1_000),
      changed: (changes) => this.presenceChanged(changes),
      heldElsewhere: (roomId, userId) => this.localHub?.cancelPendingDisconnect(roomId, userId),
      forgotten: (id) => this.inbox.forgetPod(id),
    });
    this.inbox = new Inbox({ podId, instance, codec: this.codec, peers, stats, logger, requestSync: (id) => this.membership.requestSync(id) });
  }

  /** Why nothing can be sent right now, or undefined. */
  private unavailable(): Error | undefined {
    if (this.phase === 'stopped') return new BusError('stopped', 'bus is stopped');
    if (!this.membership.isConnected) return new BusUnavailableError(`${this.transport.kind} bus (${this.transport.target})`);
    return undefined;
  }

  get overloaded(): boolean {
    return this.backpressure.overloaded;
  }

  onPressure(listener: PressureListener): () => void {
    return this.backpressure.onChange(listener);
  }

  get hub(): LocalHub {
    if (!this.localHub) throw new BusError('not_started', 'the bus has no hub before start(hub)');
    return this.localHub;
  }

  get ready(): boolean {
    return this.phase === 'running' && this.membership.ready;
  }

  get isConnected(): boolean {
    return this.membership.isConnected;
  }

  whenReady(options?: WhenReadyOptions): Promise<void> {
    return this.membership.whenReady(options);
  }

  status(): BusStatus {
    const registry = this.membership.registry;
    return {
      podId: this.podId,
      transport: this.transport.kind,
      target: this.transport.target,
      connected: this.isConnected,
      ready: this.ready,
      peers: this.peers.size,
      rooms: registry.roomCount,
      presence: registry.presenceCount,
      localPresence: registry.entriesOf(this.podId).length,
      roomStates: this.state.roomCount,
    };
  }

  async start(hub: LocalHub): Promise<void> {
    if (this.phase === 'stopped') throw new BusError('stopped', 'bus was stopped; create a new one');
    if (this.phase !== 'idle') throw new BusError('already_started', 'start() was already called');
    this.phase = 'starting';
    this.localHub = hub;
    try {
      await this.transport.open({
        receive: (stream, payload) => this.receive(stream, payload),
        stateChanged: (state, error) => this.onTransportState(state, error),
      });
      if (this.store) await this.store.open(this.historyLimits!);
    } catch (e) {
      if (this.store) await this.transport.close().catch(() => undefined);
      if (this.phase === 'starting') this.phase = 'idle'; // start() may be tried again
      throw e;
    }
    this.phase = 'running';
    this.log.info({ podId: this.podId, transport: this.transport.kind, target: this.transport.target }, 'bus connected');
    this.chunkSweep = setInterval(() => this.inbox.sweep(), 10_000);
    this.chunkSweep.unref();
    this.membership.start();
  }

  async stop(options: StopOptions = {}): Promise<void> {
    if (this.phase === 'stopped') return;
    await this.membership.stop(options.graceMs);
    this.phase = 'stopped';
    clearInterval(this.chunkSweep);
    await this.transport.close();
  }

  // ---- rooms -------------------------------------------------------------------------------

  broadcastToRoom(roomId: string, frame: Frame): Promise<PublishResult> {
    return this.publishRoom(roomId, frame, true, undefined);
  }

  broadcastToRoomExcept(roomId: string, frame: Frame, exceptClientId: string): Promise<PublishResult> {
    return this.publishRoom(roomId, frame, true, exceptClientId);
  }

  publishToRemotePods(roomId: string, frame: Frame): Promise<PublishResult> {
    return this.publishRoom(roomId, frame, false, undefined);
  }

  /** Serialises the frame once, for local sockets and the wire. */
  private publishRoom(roomId: string, frame: Frame, local: boolean, exceptClientId: string | undefined): Promise<PublishResult> {
    const bad = badId('roomId', roomId);
    if (bad) return this.refuse(bad);
    let json: string;
    try {
      json = JSON.stringify(frame);
    } catch (e) {
      return this.refuse(new BusError('bad_argument', `frame cannot be serialised: ${toError(e).message}`));
    }
    if (typeof json !== 'string' || !json.startsWith('{')) return this.refuse(new BusError('bad_argument', 'frame must be an object'));
    if (local) this.localHub?.deliverLocal(roomId, frame, { except: exceptClientId, json });
    return this.outbox.send('room', (seq) => this.codec.encode(roomId, json, seq), roomId);
  }

  // ---- events and history ------------------------------------------------------------------

  get historyEnabled(): boolean {
    return this.store !== undefined;
  }

  publishEvent(roomId: string, event: RoomEvent, exceptClientId?: string): Promise<EventResult> {
    const payloadObject = { event: event.event, data: event.data ?? null, from: event.from, ...(event.id === undefined ? {} : { id: event.id }) };
    const store = this.store;
    if (!store) {
      return this.publishRoom(roomId, { type: 'event', payload: payloadObject }, true, exceptClientId).then((r) =>
        r.ok ? { ok: true, offset: null, duplicate: false } : { ok: false, error: r.error, retryable: isRetryable(r.error) },
      );
    }
    const bad = badId('roomId', roomId) ?? badId('userId', event.from.userId);
    if (bad) return this.eventFailed(bad);
    let payload: string;
    try {
      payload = JSON.stringify(payloadObject);
    } catch (e) {
      return this.eventFailed(new BusError('bad_argument', `event cannot be serialised: ${toError(e).message}`));
    }
    const unavailable = this.unavailable();
    if (unavailable) return this.eventFailed(unavailable);
    const { podId } = this;
    const except = exceptClientId;
    const item = {
      roomId,
      userId: event.from.userId,
      ...(event.id === undefined ? {} : { id: event.id }),
      podId,
      ...(except === undefined ? {} : { except }),
      payload,
      frames: (offset: number) => this.outbox.framesOf('room', historyEnvelope({ roomId, podId, except, offset, payload })),
    };
    // Too large for this broker: refused before it is stored, not after. The cheap bound
    // (3 bytes per UTF-16 unit, plus the envelope's own fields) spares the common case the
    // envelope's construction.
    const envelopeBound = (payload.length + roomId.length + podId.length + (except?.length ?? 0)) * 3 + 128;
    if (!this.transport.chunking && envelopeBound > this.transport.maxPayloadBytes) {
      const longest = historyEnvelope({ roomId, podId, except, offset: Number.MAX_SAFE_INTEGER, payload });
      const bytes = Buffer.byteLength(longest, 'utf8');
      const max = this.transport.maxPayloadBytes;
      if (bytes > max) return this.eventFailed(new PayloadTooLargeError(bytes, max, `the ${this.transport.kind} broker`));
    }
    const started = performance.now();
    return this.backpressure.track(payload.length + 200, store.append([item])).then(
      ([outcome]) => {
        this.observeHistory?.('write', (performance.now() - started) / 1000, true);
        if (outcome!.duplicate) this.stats.historyDuplicates++;
        else {
          this.stats.historyWrites++;
          this.stats.published.room++; // the store published its room envelope
        }
        return { ok: true, offset: outcome!.offset, duplicate: outcome!.duplicate };
      },
      (e: unknown) => {
        this.observeHistory?.('write', (performance.now() - started) / 1000, false);
        return this.eventFailed(toError(e));
      },
    );
  }

  readHistory(roomId: string, after: number, limit: number): Promise<HistoryPage> {
    if (!this.store) return Promise.reject(new BusError('bad_argument', 'history is off'));
    return this.timedRead(this.store.read(roomId, after, limit));
  }

  historyPosition(roomId: string): Promise<HistoryPosition | null> {
    return this.store ? this.timedRead(this.store.position(roomId)) : Promise.resolve(null);
  }

  private timedRead<T>(read: Promise<T>): Promise<T> {
    const started = performance.now();
    return read.then(
      (value) => {
        this.observeHistory?.('read', (performance.now() - started) / 1000, true);
        return value;
      },
      (e: unknown) => {
        this.observeHistory?.('read', (performance.now() - started) / 1000, false);
        throw toError(e);
      },
    );
  }

  private eventFailed(error: Error): Promise<EventResult> {
    this.stats.historyFailures++;
    this.stats.publishFailures++;
    return Promise.resolve({ ok: false, error, retryable: isRetryable(error) });
  }

  // ---- presence ----------------------------------------------------------------------------

  getRoomClients(roomId: string): Participant[] {
    return this.membership.registry.participants(roomId);
  }

  isUserInRoom(roomId: string, userId: string): boolean {
    return this.membership.registry.has(roomId, userId);
  }

  publishPresenceJoin(roomId: string, participant: Participant): Promise<PublishResult> {
    const bad = badId('roomId', roomId) ?? badId('userId', participant.userId);
    if (bad) return this.refuse(bad);
    const firstHere = !this.membership.holdsRoom(roomId);
    const sent = this.membership.join(roomId, participant);
    if (firstHere) this.transport.setRoomInterest?.(roomId, true);
    return sent;
  }

  publishPresenceLeave(roomId: string, userId: string): Promise<PublishResult> {
    const bad = badId('roomId', roomId) ?? badId('userId', userId);
    if (bad) return this.refuse(bad);
    const sent = this.membership.leave(roomId, userId);
    if (!this.membership.holdsRoom(roomId)) this.transport.setRoomInterest?.(roomId, false);
    return sent;
  }

  // ---- replicated room state ---------------------------------------------------------------

  setRoomState(roomId: string, key: string, value: unknown): Promise<PublishResult> {
    const bad = badId('roomId', roomId) ?? badId('key', key);
    if (bad) return this.refuse(bad);
    const entry = this.state.write(roomId, key, value);
    return this.outbox.sendEnvelope('control', { kind: 'state', podId: this.podId, entry });
  }

  getRoomState(roomId: string, key: string): unknown {
    return this.state.get(roomId, key);
  }

  watchRoomState(key: string, listener: (roomId: string, value: unknown) => void): () => void {
    return this.state.watch(key, listener);
  }

  // ---- wiring ------------------------------------------------------------------------------

  private receive(stream: StreamKind, payload: string): void {
    if (this.phase === 'stopped') return;
    try {
      const event = this.inbox.receive(stream, payload);
      if (event) this.dispatch(event);
    } catch (e) {
      // A bug in a hub callback must not kill the transport's receive loop.
      this.log.error({ err: toError(e), stream }, 'error while handling an envelope');
    }
  }

  private dispatch(event: InboxEvent): void {
    switch (event.kind) {
      case 'room':
        this.localHub?.deliverLocal(event.env.roomId, event.env.message, { json: event.frameJson });
        return;
      case 'history': {
        // The sender is skipped on its own pod only (client ids are per pod).
        const except = event.env.podId === this.podId ? event.env.except : undefined;
        this.localHub?.deliverLocal(event.env.roomId, event.env.message, { except, json: event.frameJson, offset: event.env.offset });
        return;
      }
      case 'presence':
        return this.membership.onPresence(event.env);
      case 'control':
        return this.membership.onControl(event.env);
    }
  }

  /** Tells the hub about cluster-wide transitions and drops state of rooms nobody is in. */
  private presenceChanged(changes: PresenceChange[]): void {
    for (const c of changes) {
      if (c.kind === 'joined') {
        this.localHub?.participantJoined(c.roomId, { userId: c.userId, userName: c.userName });
      } else {
        this.localHub?.participantLeft(c.roomId, c.userId);
        if (this.membership.registry.roomIsEmpty(c.roomId)) this.state.dropRoom(c.roomId);
      }
    }
  }

  private onTransportState(state: TransportState, error?: Error): void {
    if (this.phase === 'stopped') return;
    const where = { transport: this.transport.kind, target: this.transport.target };
    if (state === 'reconnecting') {
      if (!this.membership.isConnected) return;
      this.membership.lost();
      this.log.warn({ ...where, err: error }, 'bus disconnected; reconnecting');
    } else if (state === 'connected') {
      if (this.membership.isConnected) return;
      this.stats.reconnects++;
      this.log.info(where, 'bus reconnected; resyncing presence');
      this.membership.regained();
    } else {
      this.membership.lost();
    }
  }

  private refuse(error: Error): Promise<PublishResult> {
    this.stats.publishFailures++;
    return Promise.resolve({ ok: false, error });
  }
}

/** Ids must be non-empty strings: an empty one would be dropped by every other pod as malformed. */
function badId(name: string, value: unknown): BusError | undefined {
  return typeof value === 'string' && value.length > 0 ? undefined : new BusError('bad_argument', `${name} must be a non-empty string`);
}
