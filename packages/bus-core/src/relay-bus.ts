/**
 * RelayBus: the MessageBus written once, over any Transport. It owns everything that does
 * not depend on the broker: envelopes, dropping our own echoes, the presence registry,
 * heartbeats and expiry of silent pods, presence sync at start and after reconnects,
 * replicated room state, chunking of large payloads, and sequence checks.
 */
import { randomUUID } from 'node:crypto';
import { ChunkAssembler, parseChunk, splitIntoChunks } from './chunking.js';
import {
  decodeControl,
  decodePresence,
  decodeRoom,
  encodeControl,
  roomMessageJson,
  type ControlEnvelope,
  type Decoded,
  type PresenceEnvelope,
  type RoomEnvelope,
  type StateEntry,
} from './envelopes.js';
import { BusError, BusUnavailableError, PayloadTooLargeError, toError } from './errors.js';
import type { LocalHub } from './hub.js';
import { RateLimitedLog, silentLogger, type Logger } from './logger.js';
import type { MessageBus } from './message-bus.js';
import { PeerTable } from './peer-table.js';
import { PresenceRegistry, type PresenceChange } from './presence-registry.js';
import { RoomStateStore } from './room-state.js';
import { BusStats } from './stats.js';
import type { Transport, TransportState } from './transport.js';
import { OK, type Frame, type Participant, type PublishResult, type StreamKind } from './types.js';

export interface RelayBusOptions {
  transport: Transport;
  hub: LocalHub;
  /** Unique per process; a random UUID by default. */
  podId?: string;
  /** How often this pod tells the others it is alive (PRESENCE_HEARTBEAT_MS). */
  heartbeatMs?: number;
  /** Silence after which a heartbeating pod is declared dead (PRESENCE_TTL_MS). */
  ttlMs?: number;
  /** How long after (re)connecting we wait for other pods' presence before we call ourselves ready. */
  syncWindowMs?: number;
  logger?: Logger;
  /** Optional latency hook for metrics: seconds from publish call to broker acknowledgement. */
  observePublish?: (stream: StreamKind, seconds: number, ok: boolean) => void;
}

const POD_ID = /^[A-Za-z0-9._:-]{1,128}$/;

export class RelayBus implements MessageBus {
  readonly podId: string;
  readonly hub: LocalHub;
  readonly stats = new BusStats();
  readonly transport: Transport;

  private readonly registry = new PresenceRegistry();
  private readonly state = new RoomStateStore();
  private readonly chunks = new ChunkAssembler();
  private readonly peers = new PeerTable();
  private readonly watchers = new Map<string, Set<(roomId: string, value: unknown) => void>>();
  private readonly log: Logger;
  private readonly malformedLog: RateLimitedLog;
  private readonly heartbeatMs: number;
  private readonly ttlMs: number;
  private readonly syncWindowMs: number;
  /** How often silent pods are looked for: half a heartbeat. */
  private readonly sweepMs: number;
  private lastSweep = 0;
  private readonly observePublish: RelayBusOptions['observePublish'];

  /** Sequence numbers: one counter for room frames, one for presence and control. */
  private seq = 0;
  private roomSeq = 0;
  /** `podId` as JSON, and how our own room and presence envelopes begin. */
  private readonly podIdJson: string;
  private readonly echoPrefix: string;
  private msgIds = 0;
  private connected = false;
  private synced = false;
  private stopped = false;
  private timers: NodeJS.Timeout[] = [];
  private syncTimer: NodeJS.Timeout | undefined;
  private readyWaiters: Array<() => void> = [];

  constructor(options: RelayBusOptions) {
    this.transport = options.transport;
    this.hub = options.hub;
    this.podId = options.podId ?? randomUUID();
    if (!POD_ID.test(this.podId)) throw new Error(`invalid podId ${JSON.stringify(this.podId)}: use 1-128 of [A-Za-z0-9._:-]`);
    this.podIdJson = JSON.stringify(this.podId);
    this.echoPrefix = `{"podId":${this.podIdJson},`;
    this.heartbeatMs = options.heartbeatMs ?? 5_000;
    this.ttlMs = options.ttlMs ?? 15_000;
    if (this.ttlMs <= this.heartbeatMs) throw new Error(`ttlMs (${this.ttlMs}) must exceed heartbeatMs (${this.heartbeatMs})`);
    this.syncWindowMs = options.syncWindowMs ?? Math.min(this.heartbeatMs, 1_000);
    this.sweepMs = Math.max(25, Math.floor(this.heartbeatMs / 2));
    this.log = options.logger ?? silentLogger;
    this.malformedLog = new RateLimitedLog((o, m) => this.log.warn(o, m));
    this.observePublish = options.observePublish;
  }

  /** Connected to the broker and done with the start-up (or reconnect) presence sync. */
  get ready(): boolean {
    return this.connected && this.synced;
  }

  get isConnected(): boolean {
    return this.connected;
  }

  /** Resolves the next time the bus is ready (at once if it is). */
  whenReady(): Promise<void> {
    return this.ready ? Promise.resolve() : new Promise((resolve) => this.readyWaiters.push(resolve));
  }

  status() {
    return {
      podId: this.podId,
      transport: this.transport.kind,
      target: this.transport.target,
      connected: this.connected,
      ready: this.ready,
      peers: this.peers.size,
      rooms: this.registry.roomCount,
      presence: this.registry.presenceCount,
      localPresence: this.registry.entriesOf(this.podId).length,
      roomStates: this.state.roomCount,
    };
  }

  async start(): Promise<void> {
    if (this.stopped) throw new BusError('stopped', 'bus was stopped; create a new one');
    await this.transport.open({
      receive: (stream, payload) => this.receive(stream, payload),
      stateChanged: (state, error) => this.onTransportState(state, error),
    });
    this.connected = true;
    this.log.info({ podId: this.podId, transport: this.transport.kind, target: this.transport.target }, 'bus connected');
    const every = (ms: number, fn: () => void) => {
      const t = setInterval(fn, ms);
      t.unref();
      this.timers.push(t);
    };
    every(this.heartbeatMs, () => {
      if (this.connected) void this.sendControl({ kind: 'heartbeat', podId: this.podId });
    });
    this.lastSweep = Date.now();
    every(this.sweepMs, () => this.expireSilentPods());
    every(10_000, () => {
      const dropped = this.chunks.sweep();
      if (dropped > 0) {
        this.stats.malformed.chunk += dropped;
        this.malformedLog.write({ dropped }, 'dropped incomplete chunked messages');
      }
    });
    this.announce();
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    // Say goodbye while we still can: Go pods understand the leaves, ours also the bye.
    if (this.connected) {
      const leaves = this.registry
        .entriesOf(this.podId)
        .map(([roomId, userId]) => this.send('presence', { podId: this.podId, roomId, userId, action: 'leave' }));
      leaves.push(this.sendControl({ kind: 'bye', podId: this.podId }));
      await Promise.all(leaves);
    }
    this.stopped = true;
    this.connected = false;
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    clearTimeout(this.syncTimer);
    await this.transport.close();
  }

  // ---- MessageBus: rooms ---------------------------------------------------------------

  broadcastToRoom(roomId: string, frame: Frame): Promise<PublishResult> {
    const json = JSON.stringify(frame);
    this.hub.deliverLocal(roomId, frame, undefined, json);
    return this.publishRoom(roomId, json);
  }

  broadcastToRoomExcept(roomId: string, frame: Frame, exceptClientId: string): Promise<PublishResult> {
    const json = JSON.stringify(frame);
    this.hub.deliverLocal(roomId, frame, exceptClientId, json);
    return this.publishRoom(roomId, json);
  }

  publishToRemotePods(roomId: string, frame: Frame): Promise<PublishResult> {
    return this.publishRoom(roomId, JSON.stringify(frame));
  }

  /**
   * The room envelope built around the already serialised frame: the frame is serialised
   * once for local sockets and the wire. Same bytes as JSON.stringify of the envelope.
   */
  private publishRoom(roomId: string, frameJson: string): Promise<PublishResult> {
    const head = `{"podId":${this.podIdJson},"roomId":${JSON.stringify(roomId)},"message":${frameJson},"seq":`;
    return this.sendPayload('room', (seq) => `${head}${seq}}`, roomId);
  }

  // ---- MessageBus: presence ------------------------------------------------------------

  getRoomClients(roomId: string): Participant[] {
    return this.registry.participants(roomId);
  }

  isUserInRoom(roomId: string, userId: string): boolean {
    return this.registry.has(roomId, userId);
  }

  publishPresenceJoin(roomId: string, participant: Participant): Promise<PublishResult> {
    const firstHere = !this.holdsRoom(roomId);
    this.emit(this.registry.add(this.podId, roomId, participant.userId, participant.userName));
    if (firstHere) this.transport.setRoomInterest?.(roomId, true);
    return this.send('presence', {
      podId: this.podId,
      roomId,
      userId: participant.userId,
      userName: participant.userName,
      action: 'join',
    });
  }

  publishPresenceLeave(roomId: string, userId: string): Promise<PublishResult> {
    this.emit(this.registry.remove(this.podId, roomId, userId));
    if (!this.holdsRoom(roomId)) this.transport.setRoomInterest?.(roomId, false);
    return this.send('presence', { podId: this.podId, roomId, userId, action: 'leave' });
  }

  // ---- MessageBus: replicated room state -----------------------------------------------

  setRoomState(roomId: string, key: string, value: unknown): Promise<PublishResult> {
    const entry: StateEntry = { roomId, key, value: value ?? null, version: this.state.nextVersion(this.podId) };
    this.applyState(entry);
    return this.sendControl({ kind: 'state', podId: this.podId, entry });
  }

  getRoomState(roomId: string, key: string): unknown {
    return this.state.get(roomId, key)?.value ?? undefined;
  }

  watchRoomState(key: string, listener: (roomId: string, value: unknown) => void): () => void {
    let set = this.watchers.get(key);
    if (!set) this.watchers.set(key, (set = new Set()));
    set.add(listener);
    return () => set.delete(listener);
  }

  // ---- receiving -----------------------------------------------------------------------

  private receive(stream: StreamKind, payload: string): void {
    if (this.stopped) return;
    try {
      if (stream === 'chunk') return this.receiveChunk(payload);
      // Our own room and presence envelopes start with our podId: drop them unparsed.
      if (stream !== 'control' && payload.startsWith(this.echoPrefix)) {
        this.stats.ownEchoes++;
        return;
      }
      const decoded: Decoded<{ podId: string; seq?: number }> =
        stream === 'room' ? decodeRoom(payload) : stream === 'presence' ? decodePresence(payload) : decodeControl(payload);
      if (decoded.ok === false) return this.malformed(stream, decoded.reason, payload);
      if (decoded.ok === 'ignored') {
        // A newer pod's extension: skipped, but its sequence number still counts.
        if (decoded.podId !== this.podId) {
          this.stats.ignored++;
          this.checkSequence(decoded.podId, decoded.seq, 'other');
        }
        return;
      }
      const env = decoded.value;
      if (env.podId === this.podId) {
        this.stats.ownEchoes++;
        return;
      }
      const kind = stream === 'room' ? 'room' : stream === 'control' ? (env as ControlEnvelope).kind : 'other';
      if (!this.checkSequence(env.podId, env.seq, kind)) return;
      this.stats.received[stream]++;
      if (stream === 'room') {
        const room = env as RoomEnvelope;
        this.hub.deliverLocal(room.roomId, room.message, undefined, roomMessageJson(payload, room));
      } else if (stream === 'presence') {
        this.onPresence(env as PresenceEnvelope);
      } else {
        this.onControl(env as ControlEnvelope);
      }
    } catch (e) {
      // A bug in a hub callback must not kill the transport's receive loop.
      this.log.error({ err: toError(e), stream }, 'error while handling an envelope');
    }
  }

  private receiveChunk(frame: string): void {
    const chunk = parseChunk(frame);
    if (!chunk) return this.malformed('chunk', 'bad chunk header', frame);
    if (chunk.podId === this.podId) {
      this.stats.ownEchoes++;
      return;
    }
    const result = this.chunks.add(chunk);
    if (result.kind === 'malformed') return this.malformed('chunk', result.reason, frame);
    this.stats.received.chunk++;
    if (result.kind === 'complete') this.receive(result.stream, result.payload);
  }

  private malformed(stream: StreamKind, reason: string, payload: string): void {
    this.stats.malformed[stream]++;
    this.malformedLog.write(
      { stream, reason, bytes: payload.length, sample: payload.slice(0, 120) },
      'malformed envelope dropped',
    );
  }

  /**
   * Notes the sighting of a pod. Returns false for a duplicate. A gap on presence/control
   * means presence or state was lost, and a pod we know nothing about has presence we lack
   * (unless this is its snapshot): either way, ask that pod for a full sync.
   */
  private checkSequence(podId: string, seq: number | undefined, kind: string): boolean {
    const { isNew, verdict, missed } = this.peers.seen(podId, seq, kind);
    if (verdict === 'duplicate') return false;
    if (verdict === 'gap') {
      this.stats.gaps++;
      this.log.warn({ podId, missed }, 'messages from a pod were lost; requesting a presence sync');
    }
    if (verdict === 'gap' || (isNew && seq !== undefined && kind !== 'sync')) {
      void this.sendControl({ kind: 'sync_request', podId: this.podId, target: podId });
    }
    return true;
  }

  private onPresence(env: PresenceEnvelope): void {
    if (env.action === 'join') {
      this.emit(this.registry.add(env.podId, env.roomId, env.userId, env.userName ?? ''));
      if (this.registry.hasPod(this.podId, env.roomId, env.userId)) this.hub.cancelPendingDisconnect(env.roomId, env.userId);
    } else {
      this.emit(this.registry.remove(env.podId, env.roomId, env.userId));
    }
  }

  private onControl(env: ControlEnvelope): void {
    switch (env.kind) {
      case 'heartbeat':
        return;
      case 'sync_request':
        if (env.target === undefined || env.target === this.podId) void this.sendSnapshot();
        return;
      case 'sync':
        this.emit(this.registry.replacePod(env.podId, env.presence));
        for (const entry of env.state) if (!this.registry.roomIsEmpty(entry.roomId)) this.applyState(entry);
        return;
      case 'state':
        this.applyState(env.entry);
        return;
      case 'bye':
        this.forgetPod(env.podId);
        return;
    }
  }

  // ---- presence bookkeeping ------------------------------------------------------------

  /** Tells the hub about cluster-wide transitions and drops state of rooms nobody is in. */
  private emit(changes: PresenceChange[]): void {
    for (const c of changes) {
      if (c.kind === 'joined') {
        this.hub.participantJoined(c.roomId, { userId: c.userId, userName: c.userName });
      } else {
        this.hub.participantLeft(c.roomId, c.userId);
        if (this.registry.roomIsEmpty(c.roomId)) {
          for (const key of this.state.dropRoom(c.roomId)) this.notifyState(c.roomId, key, undefined);
        }
      }
    }
  }

  private forgetPod(podId: string): void {
    this.peers.forget(podId);
    this.chunks.forgetPod(podId);
    this.emit(this.registry.removePod(podId));
  }

  /**
   * Declares heartbeating pods silent for longer than the TTL dead. Two guards against
   * blaming others for our own stalls: a sweep that runs late (the event loop was blocked)
   * credits every peer with the lag, and the decision waits for setImmediate, so heartbeats
   * already waiting in our socket are read first.
   */
  private expireSilentPods(): void {
    if (!this.connected) return; // our own outage is not their death
    const now = Date.now();
    const lag = now - this.lastSweep - this.sweepMs;
    this.lastSweep = now;
    if (lag > this.heartbeatMs) this.peers.credit(lag);
    setImmediate(() => {
      if (!this.connected || this.stopped) return;
      for (const { podId, silentMs } of this.peers.silentSince(Date.now() - this.ttlMs)) {
        this.stats.podsExpired++;
        this.log.warn({ podId, silentMs }, 'pod declared dead; removing its users');
        this.forgetPod(podId);
      }
    });
  }

  private holdsRoom(roomId: string): boolean {
    return this.registry.podHoldsRoom(this.podId, roomId);
  }

  // ---- state ---------------------------------------------------------------------------

  private applyState(entry: StateEntry): void {
    if (this.state.apply(entry)) this.notifyState(entry.roomId, entry.key, entry.value ?? undefined);
  }

  private notifyState(roomId: string, key: string, value: unknown): void {
    for (const listener of this.watchers.get(key) ?? []) {
      try {
        listener(roomId, value === null ? undefined : value);
      } catch (e) {
        this.log.error({ err: toError(e), roomId, key }, 'room state listener failed');
      }
    }
  }

  // ---- connection lifecycle ------------------------------------------------------------

  private onTransportState(state: TransportState, error?: Error): void {
    if (this.stopped) return;
    if (state === 'reconnecting') {
      if (!this.connected) return;
      this.connected = false;
      this.synced = false;
      clearTimeout(this.syncTimer);
      this.log.warn({ transport: this.transport.kind, target: this.transport.target, err: error }, 'bus disconnected; reconnecting');
    } else if (state === 'connected') {
      if (this.connected) return;
      this.connected = true;
      this.stats.reconnects++;
      // The silence was our outage, not theirs: restart every pod's TTL clock.
      this.peers.resetClocks();
      this.log.info({ transport: this.transport.kind, target: this.transport.target }, 'bus reconnected; resyncing presence');
      this.announce();
    } else {
      this.connected = false;
      this.synced = false;
    }
  }

  /**
   * After (re)connecting: tell everyone who we hold (they may have expired us or missed our
   * changes), ask everyone for theirs, and call ourselves ready once the answers are in.
   */
  private announce(): void {
    // Snapshot first: it introduces us, so the heartbeat that follows is not a stranger's.
    void this.sendSnapshot();
    void this.sendControl({ kind: 'heartbeat', podId: this.podId });
    void this.sendControl({ kind: 'sync_request', podId: this.podId });
    clearTimeout(this.syncTimer);
    this.syncTimer = setTimeout(() => {
      if (!this.connected) return;
      this.synced = true;
      const waiters = this.readyWaiters;
      this.readyWaiters = [];
      for (const w of waiters) w();
    }, this.syncWindowMs); // not unref'd: a script awaiting whenReady() must not exit early
  }

  private sendSnapshot(): Promise<PublishResult> {
    return this.sendControl({
      kind: 'sync',
      podId: this.podId,
      presence: this.registry.entriesOf(this.podId),
      state: this.state.all(),
    });
  }

  // ---- publishing ----------------------------------------------------------------------

  private sendControl(env: ControlEnvelope): Promise<PublishResult> {
    return this.send('control', env);
  }

  /** Stamps the next sequence number into an envelope object and publishes it. */
  private send(
    stream: Exclude<StreamKind, 'chunk' | 'room'>,
    env: PresenceEnvelope | ControlEnvelope,
  ): Promise<PublishResult> {
    return this.sendPayload(stream, (seq) => {
      env.seq = seq;
      return JSON.stringify(env);
    });
  }

  /**
   * Encodes with the next sequence number, chunks if needed, and hands the frames to the
   * transport synchronously (so publish order is call order).
   */
  private sendPayload(
    stream: Exclude<StreamKind, 'chunk'>,
    encode: (seq: number) => string,
    roomId?: string,
  ): Promise<PublishResult> {
    if (this.stopped) return this.fail(new BusError('stopped', 'bus is stopped'));
    if (!this.connected) return this.fail(new BusUnavailableError(`${this.transport.kind} bus (${this.transport.target})`));
    const isRoom = stream === 'room';
    const payload = encode(isRoom ? ++this.roomSeq : ++this.seq);
    const max = this.transport.maxPayloadBytes;
    // Cheap check first: a UTF-16 unit never takes more than 3 UTF-8 bytes.
    const bytes = payload.length * 3 <= max ? payload.length : Buffer.byteLength(payload, 'utf8');
    const started = this.observePublish ? performance.now() : 0;
    const options = roomId === undefined ? undefined : { roomId };
    let sent: Promise<unknown>;
    if (bytes <= max) {
      sent = this.transport.publish(stream, payload, options);
    } else if (this.transport.chunking) {
      let frames: string[];
      try {
        frames = splitIntoChunks(this.podId, ++this.msgIds, stream, payload, max);
      } catch (e) {
        return this.refuse(isRoom, toError(e));
      }
      this.stats.chunkedMessages++;
      sent = Promise.all(frames.map((f) => this.transport.publish('chunk', f, options)));
      this.stats.published.chunk += frames.length;
    } else {
      return this.refuse(isRoom, new PayloadTooLargeError(bytes, max, `the ${this.transport.kind} broker`));
    }
    this.stats.published[stream]++;
    return sent.then(
      () => {
        this.observePublish?.(stream, (performance.now() - started) / 1000, true);
        return OK;
      },
      (e: unknown) => {
        this.observePublish?.(stream, (performance.now() - started) / 1000, false);
        const error = toError(e);
        this.log.warn({ err: error, stream }, 'publish failed');
        return this.fail(error);
      },
    );
  }

  /** A refused message must not leave a hole in the sequence (others would resync for nothing). */
  private refuse(isRoom: boolean, error: Error): Promise<PublishResult> {
    if (isRoom) this.roomSeq--;
    else this.seq--;
    return this.fail(error);
  }

  private fail(error: Error): Promise<PublishResult> {
    this.stats.publishFailures++;
    return Promise.resolve({ ok: false, error });
  }
}
