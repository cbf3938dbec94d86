/**
 * BusLink: one Socket.IO server's connection to the cluster, shared by all its namespaces.
 *
 * It owns one transport (PgTransport or NatsTransport, or the caller's), so one node has one
 * ordered publisher: everything this node sends reaches every other node in the order sent.
 * It opens the transport lazily and keeps trying until the broker answers; messages sent
 * before the first connection wait for it (bounded). After that the transport reconnects by
 * itself; meanwhile publishes fail fast (the base adapter delivers locally anyway).
 *
 * Messages larger than the transport's limit are cut into bus-core chunk frames and sent as
 * one batch (PostgreSQL: `publishBatch`, whole or not at all). Everything travels on the
 * transport's `room` stream, so chunk frames and whole messages of one node keep one order.
 */
import { randomBytes } from 'node:crypto';
import { BusUnavailableError, BusError, type Logger, type Transport, type TransportSink, type TransportState } from '@retrotro/bus-core';
import { Backoff, ChunkAssembler, RateLimitedLog, parseChunk, splitIntoChunks } from '@retrotro/bus-core/internal';
import { BROADCAST_TARGET, decodeBody, encodeMessage, headerOf, parseHeader } from './codec.js';

/** What the link needs from an adapter (implemented by BusAdapter). */
export interface LinkMember {
  readonly serverId: string;
  readonly namespace: string;
  /** A message for every node of this namespace. */
  receiveMessage(message: unknown): void;
  /** A response addressed to this adapter. */
  receiveResponse(response: unknown): void;
  /** The transport is connected again (or for the first time): announce this node. */
  linkUp(): void;
}

/** Counters of one link, for metrics and tests. */
export interface LinkStats {
  /** Payloads handed to the transport (a chunked message counts once). */
  published: number;
  /** Publishes that failed (broker down, refused, or queue full). */
  publishFailures: number;
  /** Messages sent as several chunk frames. */
  chunked: number;
  /** Payloads received, chunk frames included. */
  received: number;
  /** Own messages the broker echoed back (PostgreSQL), dropped before parsing. */
  ownEchoes: number;
  /** Responses addressed to another node, dropped before parsing. */
  notForUs: number;
  /** Payloads that could not be understood, dropped. */
  malformed: number;
}

export interface LinkOptions {
  logger: Logger;
  /** Most messages waiting for the first connection. */
  maxWaiting?: number;
  /** How long close() waits for the last messages to go out. */
  closeTimeoutMs?: number;
}

type LinkState = 'idle' | 'opening' | 'retrying' | 'open' | 'closed';

interface Waiting {
  payload: string;
  resolve: () => void;
  reject: (error: Error) => void;
}

const CHUNK_MAGIC = 'c1 ';
const SWEEP_MS = 10_000;

export class BusLink {
  /** Unique per link; the sender field of every message and chunk frame. */
  readonly nodeId = randomBytes(8).toString('hex');
  readonly stats: LinkStats = {
    published: 0,
    publishFailures: 0,
    chunked: 0,
    received: 0,
    ownEchoes: 0,
    notForUs: 0,
    malformed: 0,
  };

  private state: LinkState = 'idle';
  private connectedNow = false;
  private readonly members = new Map<string, LinkMember>();
  private readonly byUid = new Map<string, LinkMember>();
  private readonly waiting: Waiting[] = [];
  private readonly assembler = new ChunkAssembler();
  private readonly backoff = new Backoff({ initialMs: 200, maxMs: 5_000 });
  private readonly log: Logger;
  private readonly malformedLog: RateLimitedLog;
  private readonly failureLog: RateLimitedLog;
  private readonly maxWaiting: number;
  private readonly closeTimeoutMs: number;
  private readonly ownMessage: string;
  private readonly ownChunk: string;
  private retryTimer: NodeJS.Timeout | undefined;
  private sweepTimer: NodeJS.Timeout | undefined;
  private msgId = 0;
  /** The latest publish, settled: close() waits for it (publishes complete in order). */
  private last: Promise<void> = Promise.resolve();
  private firstAttemptDone!: () => void;
  /** Settles when the first connection attempt succeeded or failed; never rejects. */
  readonly firstAttempt = new Promise<void>((resolve) => (this.firstAttemptDone = resolve));
  private closing: Promise<void> | undefined;

  constructor(
    readonly transport: Transport,
    options: LinkOptions,
  ) {
    this.log = options.logger;
    this.malformedLog = new RateLimitedLog((o, m) => this.log.warn(o, m), 5, 60_000);
    this.failureLog = new RateLimitedLog((o, m) => this.log.warn(o, m), 5, 60_000);
    this.maxWaiting = options.maxWaiting ?? 10_000;
    this.closeTimeoutMs = options.closeTimeoutMs ?? 2_000;
    this.ownMessage = `s1 ${this.nodeId} `;
    this.ownChunk = `${CHUNK_MAGIC}${this.nodeId} `;
  }

  /** True while the transport is connected. */
  get connected(): boolean {
    return this.connectedNow;
  }

  get closed(): boolean {
    return this.state === 'closed';
  }

  /** Adds an adapter and starts connecting if this is the first. */
  attach(member: LinkMember): void {
    if (this.state === 'closed') throw new BusError('stopped', 'this Socket.IO adapter was closed; create a new one');
    const previous = this.members.get(member.namespace);
    if (previous) this.byUid.delete(previous.serverId);
    this.members.set(member.namespace, member);
    this.byUid.set(member.serverId, member);
    if (this.state === 'idle') this.open();
  }

  /** Removes an adapter; the last one closes the transport (after its last messages went out). */
  detach(member: LinkMember): Promise<void> {
    if (this.members.get(member.namespace) === member) this.members.delete(member.namespace);
    this.byUid.delete(member.serverId);
    return this.members.size === 0 ? this.close() : Promise.resolve();
  }

  /** Sends one message to every node (`target` `*`) or to one adapter (its uid). */
  publish(target: string, namespaceToken: string, message: unknown): Promise<void> {
    let payload: string;
    try {
      payload = encodeMessage(headerOf(this.nodeId, target, namespaceToken), message);
    } catch (e) {
      this.stats.publishFailures++;
      this.failureLog.write({ err: e }, 'socket.io adapter: a message could not be encoded; not sent');
      return Promise.reject(e);
    }
    return this.send(payload);
  }

  /** Stops for good: rejects what waits, lets sent messages out (bounded), closes the transport. */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  // ---- sending ------------------------------------------------------------------------

  private send(payload: string): Promise<void> {
    switch (this.state) {
      case 'open':
        return this.sendNow(payload);
      case 'opening':
      case 'idle':
        if (this.waiting.length >= this.maxWaiting) return this.refuse(new BusUnavailableError(this.transport.target));
        return new Promise<void>((resolve, reject) => this.waiting.push({ payload, resolve, reject }));
      case 'retrying':
        return this.refuse(new BusUnavailableError(this.transport.target));
      default:
        return this.refuse(new BusError('stopped', 'this Socket.IO adapter was closed; message not sent'));
    }
  }

  private refuse(error: Error): Promise<void> {
    this.stats.publishFailures++;
    return Promise.reject(error);
  }

  /** Hands the payload to the transport now, cut into chunk frames if it is too large. */
  private sendNow(payload: string): Promise<void> {
    const t = this.transport;
    const max = t.maxPayloadBytes;
    let sent: Promise<void>;
    try {
      if (payload.length * 3 > max && Buffer.byteLength(payload) > max) {
        this.stats.chunked++;
        const frames = splitIntoChunks(this.nodeId, ++this.msgId, 'room', payload, max);
        sent = t.publishBatch ? t.publishBatch('room', frames) : Promise.all(frames.map((f) => t.publish('room', f))).then(() => undefined);
      } else {
        sent = t.publish('room', payload);
      }
    } catch (e) {
      sent = Promise.reject(e);
    }
    this.stats.published++;
    const settled = sent.then(
      () => {},
      (err: unknown) => {
        this.stats.publishFailures++;
        this.failureLog.write({ err, target: t.target }, 'socket.io adapter: publish failed');
        throw err;
      },
    );
    this.last = settled.catch(() => {});
    return settled;
  }

  // ---- connecting ---------------------------------------------------------------------

  private open(): void {
    if (this.state === 'closed') return;
    if (this.state === 'idle') this.state = 'opening';
    const sink: TransportSink = {
      receive: (_stream, payload) => this.receive(payload),
      stateChanged: (state, error) => this.stateChanged(state, error),
    };
    this.transport.open(sink).then(
      () => this.opened(),
      (err: unknown) => this.openFailed(err),
    );
  }

  private opened(): void {
    if (this.state === 'closed') return;
    const first = this.state === 'opening';
    this.state = 'open';
    this.connectedNow = true;
    this.backoff.reset();
    this.sweepTimer = setInterval(() => this.assembler.sweep(), SWEEP_MS);
    this.sweepTimer.unref();
    this.log.info({ target: this.transport.target, nodeId: this.nodeId }, 'socket.io adapter connected');
    // What waited goes out first, in order, before anything new.
    for (const w of this.waiting.splice(0)) this.sendNow(w.payload).then(w.resolve, w.reject);
    if (first) this.firstAttemptDone();
    this.announce();
  }

  private openFailed(err: unknown): void {
    if (this.state === 'closed') return;
    const first = this.state === 'opening';
    this.state = 'retrying';
    const delay = this.backoff.next();
    if (first) {
      this.log.error({ err, target: this.transport.target }, 'socket.io adapter: broker unreachable; retrying in the background');
      const error = err instanceof Error ? err : new Error(String(err));
      for (const w of this.waiting.splice(0)) {
        this.stats.publishFailures++;
        w.reject(error);
      }
      this.firstAttemptDone();
    } else {
      this.failureLog.write({ err, target: this.transport.target, retryInMs: delay }, 'socket.io adapter: broker still unreachable');
    }
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.open();
    }, delay);
    this.retryTimer.unref();
  }

  private stateChanged(state: TransportState, error?: Error): void {
    if (this.state !== 'open') return;
    if (state === 'reconnecting') {
      this.connectedNow = false;
      this.log.warn({ err: error, target: this.transport.target }, 'socket.io adapter: broker connection lost; reconnecting');
    } else if (state === 'connected') {
      this.connectedNow = true;
      this.log.info({ target: this.transport.target }, 'socket.io adapter: broker connection back');
      this.announce();
    } else {
      this.connectedNow = false;
      if (error) this.log.error({ err: error, target: this.transport.target }, 'socket.io adapter: broker connection closed for good');
    }
  }

  /** Each namespace says hello, so the others count it (and answer with their heartbeat) at once. */
  private announce(): void {
    for (const m of [...this.members.values()]) {
      try {
        m.linkUp();
      } catch (e) {
        this.log.error({ err: e }, 'socket.io adapter: announcing a namespace failed');
      }
    }
  }

  private async shutdown(): Promise<void> {
    const wasOpen = this.state === 'open';
    this.state = 'closed';
    this.connectedNow = false;
    clearTimeout(this.retryTimer);
    clearInterval(this.sweepTimer);
    const stopped = new BusError('stopped', 'this Socket.IO adapter was closed; message not sent');
    for (const w of this.waiting.splice(0)) w.reject(stopped);
    if (wasOpen) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([this.last, new Promise<void>((r) => (timer = setTimeout(r, this.closeTimeoutMs)))]);
      clearTimeout(timer);
    }
    try {
      await this.transport.close();
    } catch (e) {
      this.log.warn({ err: e }, 'socket.io adapter: closing the transport failed');
    }
  }

  // ---- receiving ----------------------------------------------------------------------

  private receive(payload: string): void {
    this.stats.received++;
    if (payload.startsWith(this.ownMessage) || payload.startsWith(this.ownChunk)) {
      this.stats.ownEchoes++;
      return;
    }
    if (payload.startsWith(CHUNK_MAGIC)) {
      const chunk = parseChunk(payload);
      if (!chunk) return this.malformed('bad chunk frame', payload);
      const result = this.assembler.add(chunk);
      if (result.kind === 'complete') this.handle(result.payload);
      else if (result.kind === 'malformed') this.malformed(result.reason, payload);
      return;
    }
    this.handle(payload);
  }

  /** One whole message, in arrival order, delivered synchronously. */
  private handle(payload: string): void {
    const header = parseHeader(payload);
    if (!header) return this.malformed('not a Socket.IO adapter message', payload);
    if (header.nodeId === this.nodeId) {
      this.stats.ownEchoes++;
      return;
    }
    const forAll = header.target === BROADCAST_TARGET;
    const member = forAll ? this.members.get(header.namespace) : this.byUid.get(header.target);
    if (!member || member.namespace !== header.namespace) {
      // A namespace this server does not have, or a response for another node.
      this.stats.notForUs++;
      return;
    }
    let message: unknown;
    try {
      message = decodeBody(payload, header);
    } catch {
      return this.malformed('invalid JSON', payload);
    }
    if (!isClusterMessage(message, header.namespace)) return this.malformed('not a cluster message', payload);
    try {
      if (forAll) member.receiveMessage(message);
      else member.receiveResponse(message);
    } catch (e) {
      this.malformed(`handling failed: ${e instanceof Error ? e.message : String(e)}`, payload);
    }
  }

  private malformed(reason: string, payload: string): void {
    this.stats.malformed++;
    this.malformedLog.write({ reason, sample: payload.slice(0, 120) }, 'socket.io adapter: malformed message ignored');
  }
}

/** Enough shape for the base class not to trip: uid, the namespace, a known type, data where needed. */
function isClusterMessage(m: unknown, namespace: string): boolean {
  if (m === null || typeof m !== 'object') return false;
  const { uid, nsp, type, data } = m as { uid?: unknown; nsp?: unknown; type?: unknown; data?: unknown };
  if (typeof uid !== 'string' || nsp !== namespace || typeof type !== 'number' || !Number.isInteger(type)) return false;
  if (type < 1 || type > 13) return false;
  const needsData = type !== 1 && type !== 2 && type !== 13;
  return !needsData || (data !== null && typeof data === 'object');
}
