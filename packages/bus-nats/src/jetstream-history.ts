/**
 * JetStreamHistory: room history (CONTRACT section 8) in one JetStream stream per bus prefix.
 *
 * - Stream `<prefix>_history`, subjects `<prefix>.history.<roomToken>` (one subject per room,
 *   so one room is read without scanning the others), limits from `open()`:
 *   `max_msgs_per_subject` = HISTORY_SIZE, `max_age` = HISTORY_TTL_S, discard old, file
 *   storage. Created or updated at every open.
 * - Offset of an event = the stream sequence of its message (increasing per room and
 *   cluster-wide, not consecutive). Epoch = a hash of the stream's name and `created`
 *   timestamp: it changes only when the stream was deleted and made again.
 * - append: one JetStream publish per event, pipelined (PubAcks come back on one inbox
 *   subscription, one timer per append call); body = the payload text, headers = what the
 *   live feed needs. An event with a client id carries `Nats-Msg-Id`, so a retry
 *   within the stream's duplicate window gets the original sequence back (`duplicate`).
 *   After the PubAck a marked copy goes to the core subject `<prefix>.room` for Go pods.
 * - Live feed: an ordered consumer over every room subject, from the stream's end at open,
 *   delivering history envelopes to the transport's sink in stream order.
 * - read: an ephemeral consumer filtered on the room's subject, fetched in batches.
 */
import { createHash } from 'node:crypto';
import {
  DeliverPolicy,
  DiscardPolicy,
  JetStreamApiError,
  RetentionPolicy,
  StorageType,
  jetstream,
  jetstreamManager,
  type Consumer,
  type ConsumerMessages,
  type JetStreamClient,
  type JetStreamManager,
  type JsMsg,
  type MsgRequest,
  type StoredMsg,
  type StreamInfo,
} from '@nats-io/jetstream';
import { createInbox, headers, nanos, type Msg, type MsgHdrs, type NatsConnection, type Subscription } from '@nats-io/transport-node';
import {
  BusError,
  type HistoryLimits,
  type HistoryPage,
  type HistoryPosition,
  type Logger,
  type StoredEvent,
  type StreamKind,
} from '@retrotro/bus-core';
import { RateLimitedLog, historyEnvelope, maskUrl, type AppendItem, type AppendOutcome, type HistoryStore } from '@retrotro/bus-core/internal';
import { historyStreamName, historySubject, historySubjects } from './subjects.js';

export interface JetStreamHistoryOptions {
  /**
   * Seconds in which a retried publish (same room, user and id) is recognised and acked with
   * its first offset: the stream's `duplicate_window`, capped at HISTORY_TTL_S. Default 7200.
   */
  duplicateWindowS?: number;
  /** How long an append waits for its PubAcks before it rejects (retryable). Default 5000. */
  ackTimeoutMs?: number;
  /** Replicas of the stream when this pod creates it (an existing stream keeps its own). Default 1. */
  replicas?: number;
}

/** What the store needs from its transport. */
export interface HistoryHost {
  readonly prefix: string;
  readonly target: string;
  readonly log: Logger;
  /** The transport's connection once it is open (nats.js keeps the object across reconnects). */
  connection(): NatsConnection | undefined;
  /** True while connected: appends and reads fail fast otherwise. */
  readonly connected: boolean;
  /** The transport's refusal while not connected (`BusUnavailableError`, or `stopped` once closed). */
  refuse(): Promise<never>;
  /** Hands one history envelope to the sink, as `receive('room', …)`. */
  deliver(envelope: string): void;
  /** Publishes one frame for Go pods on the core subject of `stream`, marked as a history copy. */
  publishCopy(stream: StreamKind, payload: string): void;
}

/** Header marking a core copy of a history event: our pods drop it (they have the live feed). */
export const HISTORY_COPY_HEADER = 'Retrotro-History';
const H_POD = 'Retrotro-Pod';
const H_ROOM = 'Retrotro-Room';
const H_USER = 'Retrotro-User';
const H_EXCEPT = 'Retrotro-Except';
/**
 * A room's genesis marker: an empty message written when a room is looked at empty (with an
 * expected last subject sequence of 0, so one pod's lands). JetStream keeps no record of
 * what it trimmed; while a room's oldest message is its marker, nothing of it was trimmed, so
 * a client that saw the room empty (since offset 0) can be told `recovered: true`. Every
 * event carries its room's marker sequence (`Retrotro-Genesis-Seq`), and the room's epoch is
 * the stream's plus that number: when a room's whole history aged out and a new marker was
 * written, its epoch changes, as it must. Markers are never events: reads and the feed skip them.
 */
const H_GENESIS = 'Retrotro-Genesis';
const H_GENESIS_SEQ = 'Retrotro-Genesis-Seq';
const isGenesis = (h: MsgHdrs | undefined) => h?.get(H_GENESIS) === '1';
/** The marker sequence a message names: its own for a marker, its header for an event, 0 if none. */
const genesisSeqOf = (m: { seq: number; header?: MsgHdrs | undefined } | null) =>
  !m ? 0 : isGenesis(m.header) ? m.seq : Number(m.header?.get(H_GENESIS_SEQ) ?? 0) || 0;
/** Rooms whose marker sequence is remembered at most; beyond, the cache starts over. */
const GENESIS_CACHE = 10_000;
const H_MSG_ID = 'Nats-Msg-Id';

export const DEFAULT_DUPLICATE_WINDOW_S = 7_200;
const DEFAULT_ACK_TIMEOUT_MS = 5_000;
/** Messages per pull of a read (a read of more pulls again): one pull per page in practice. */
const READ_BATCH = 10_000;
/** A pull waits at most this long for messages it was told are there (trimmed meanwhile). */
const READ_EXPIRES_MS = 2_000;
/** position() may reuse the epoch read this recently (read() always asks the server). */
const EPOCH_CACHE_MS = 1_000;
const SUBJECT_CACHE = 10_000;

/**
 * Header values: printable ASCII without `%` as they are, anything else percent-encoded as
 * UTF-8 (nats.js trims values and refuses CR/LF). Decoding is unambiguous: raw values never
 * hold `%`.
 */
export function encodeHeaderValue(v: string): string {
  if (/^[\x21-\x24\x26-\x7e]*$/.test(v)) return v;
  let out = '';
  for (const ch of v) {
    if (/^[\x21-\x24\x26-\x7e]$/.test(ch)) out += ch;
    else for (const byte of Buffer.from(ch, 'utf8')) out += `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

export function decodeHeaderValue(v: string): string {
  if (!v.includes('%')) return v;
  try {
    return decodeURIComponent(v);
  } catch {
    return v;
  }
}

/** `Nats-Msg-Id` of an event with a client id: room, user and id, each encoded, `|`-separated. */
export function msgIdOf(roomId: string, userId: string, id: string): string {
  const enc = (s: string) => encodeHeaderValue(s).replace(/\|/g, '%7C');
  return `${enc(roomId)}|${enc(userId)}|${enc(id)}`;
}

/** The epoch of a stream: 16 hex digits of SHA-256 over its name and creation time. */
export function epochOf(info: Pick<StreamInfo, 'created'> & { config: { name: string } }): string {
  return createHash('sha256').update(`${info.config.name}\n${info.created}`).digest('hex').slice(0, 16);
}

/** What a PubAck says about one stored (or recognised) message. */
interface PubAck {
  seq: number;
  duplicate: boolean;
}

interface PendingAck {
  resolve(ack: PubAck): void;
  reject(error: Error): void;
}

/** No PubAck within the timeout: the message may or may not be stored. */
class AckTimeoutError extends Error {
  override readonly name = 'TimeoutError';
}

/** No stream took the message (nobody listens on the subject: the stream is gone). */
class NoStreamError extends Error {
  override readonly name = 'NoStreamError';
}

function errorName(e: unknown): string {
  return e instanceof Error ? e.name : '';
}

function why(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

function isApiError(e: unknown, code: number): boolean {
  return e instanceof JetStreamApiError && e.code === code;
}

const STREAM_NOT_FOUND = 10059;
const STREAM_NAME_IN_USE = 10058;
const JS_NOT_ENABLED_FOR_ACCOUNT = 10039;

export class JetStreamHistory implements HistoryStore {
  readonly streamName: string;
  private readonly duplicateWindowCapS: number;
  private readonly ackTimeoutMs: number;
  private readonly replicas: number;
  private readonly badLog: RateLimitedLog;
  private readonly subjectCache = new Map<string, string>();

  private js: JetStreamClient | undefined;
  /** roomId -> its genesis marker's sequence (0: the room has none we know of). */
  private readonly genesis = new Map<string, number>();
  private readonly genesisLookups = new Map<string, Promise<number>>();
  private readonly lostWaiters = new Set<(e: Error) => void>();
  /** PubAcks of our appends arrive on `<ackInbox>.<n>`, one subscription for all. */
  private ackInbox = '';
  private ackSub: Subscription | undefined;
  private readonly acks = new Map<number, PendingAck>();
  private ackCounter = 0;
  private jsm: JetStreamManager | undefined;
  private limits: HistoryLimits | undefined;
  private opening: Promise<void> | undefined;
  private stopped = false;
  private currentEpoch = '';
  private epochAt = 0;
  private resyncing: Promise<void> | undefined;

  // The live feed.
  private feed: { messages: ConsumerMessages; consumer: Consumer } | undefined;
  private feedGeneration = 0;
  private restartTimer: NodeJS.Timeout | undefined;
  /** Stream sequence of the last message handed to the sink (the feed resumes after it). */
  private lastDelivered = 0;

  constructor(
    private readonly host: HistoryHost,
    options: JetStreamHistoryOptions = {},
  ) {
    this.streamName = historyStreamName(host.prefix);
    this.duplicateWindowCapS = options.duplicateWindowS ?? DEFAULT_DUPLICATE_WINDOW_S;
    this.ackTimeoutMs = options.ackTimeoutMs ?? DEFAULT_ACK_TIMEOUT_MS;
    this.replicas = options.replicas ?? 1;
    if (!(this.duplicateWindowCapS > 0) || !Number.isFinite(this.duplicateWindowCapS)) {
      throw new Error(`history duplicateWindowS must be a positive number of seconds, got ${this.duplicateWindowCapS}`);
    }
    if (!(this.ackTimeoutMs > 0) || !Number.isFinite(this.ackTimeoutMs)) {
      throw new Error(`history ackTimeoutMs must be a positive number, got ${this.ackTimeoutMs}`);
    }
    if (!Number.isInteger(this.replicas) || this.replicas < 1 || this.replicas > 5) {
      throw new Error(`history replicas must be an integer from 1 to 5, got ${this.replicas}`);
    }
    this.badLog = new RateLimitedLog((o, m) => host.log.warn(o, m));
  }

  /** The current epoch ('' before open). */
  get epoch(): string {
    return this.currentEpoch;
  }

  /** The stream's duplicate window for these limits, in seconds. */
  duplicateWindowS(limits: HistoryLimits): number {
    return Math.min(limits.ttlS, this.duplicateWindowCapS);
  }

  // ---- HistoryStore ----------------------------------------------------------------------

  open(limits: HistoryLimits): Promise<void> {
    if (this.stopped) return Promise.reject(new BusError('stopped', `NATS history (${this.host.target}) was closed`));
    if (this.opening !== undefined) return this.opening;
    const opening = this.doOpen(limits);
    this.opening = opening;
    opening.catch(() => {
      if (this.opening === opening) this.opening = undefined; // a later open may try again
    });
    return opening;
  }

  async append(items: readonly AppendItem[]): Promise<AppendOutcome[]> {
    if (items.length === 0) return [];
    this.ready();
    if (!this.host.connected) return this.host.refuse();
    // Every event names its room's marker. Calls for one room wait on one lookup, in call order.
    const unknown = [...new Set(items.filter((i) => !this.genesis.has(i.roomId)).map((i) => i.roomId))];
    if (unknown.length > 0) await this.untilLost(Promise.all(unknown.map((r) => this.genesisFor(r))));
    const nc = this.host.connection();
    if (!nc || !this.host.connected) return this.host.refuse();
    const epoch = this.currentEpoch;
    // Pipelined: every publish is on the wire (written in one go by nats.js) before any PubAck.
    const ids: number[] = [];
    const pending: Array<Promise<PubAck>> = [];
    for (const item of items) {
      const id = ++this.ackCounter;
      ids.push(id);
      pending.push(new Promise<PubAck>((resolve, reject) => this.acks.set(id, { resolve, reject })));
      try {
        this.publishOne(nc, item, id);
      } catch (e) {
        this.failAcks(ids, e instanceof Error ? e : new Error(String(e)));
        break;
      }
    }
    const timer = setTimeout(() => this.failAcks(ids, new AckTimeoutError(`no PubAck within ${this.ackTimeoutMs} ms`)), this.ackTimeoutMs);
    const settled = await Promise.allSettled(pending);
    clearTimeout(timer);
    const outcomes: AppendOutcome[] = [];
    let failure: unknown;
    for (let i = 0; i < settled.length; i++) {
      const r = settled[i]!;
      if (r.status === 'rejected') {
        failure ??= r.reason;
        continue;
      }
      const ack = r.value;
      // Stored (and on its way to every pod's live feed): Go pods get their copy too.
      if (!ack.duplicate) this.publishCopies(items[i]!, ack.seq);
      outcomes.push({ offset: ack.seq, epoch: `${epoch}.${this.genesis.get(items[i]!.roomId) ?? 0}`, duplicate: ack.duplicate });
    }
    if (failure !== undefined || outcomes.length !== items.length) throw this.appendError(failure, items);
    return outcomes;
  }

  /**
   * The connection was lost: appends waiting for PubAcks fail now rather than at their
   * timeout (the acks of a dead connection never come). Retrying is safe for events with an id.
   */
  /** `work`, or a rejection as soon as the connection is lost (a request would wait for its timeout). */
  private untilLost<T>(work: Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const onLost = (e: Error) => reject(e);
      this.lostWaiters.add(onLost);
      work.then(resolve, reject).finally(() => this.lostWaiters.delete(onLost));
    });
  }

  connectionLost(): void {
    for (const w of [...this.lostWaiters]) w(new BusError('bus_unavailable', `lost the connection to ${this.host.target}; retry`));
    this.lostWaiters.clear();
    if (this.acks.size === 0) return;
    const error = new BusError('bus_unavailable', `lost the connection to ${this.host.target} before JetStream acknowledged; retry`);
    const pending = [...this.acks.values()];
    this.acks.clear();
    for (const p of pending) p.reject(error);
  }

  async read(roomId: string, after: number, limit: number): Promise<HistoryPage> {
    if (!Number.isInteger(after) || after < 0) throw new BusError('bad_argument', `history read: after must be an integer >= 0, got ${after}`);
    if (!Number.isInteger(limit) || limit < 0) throw new BusError('bad_argument', `history read: limit must be an integer >= 0, got ${limit}`);
    for (let attempt = 0; ; attempt++) {
      const page = await this.readOnce(roomId, after, limit);
      if (page) return page;
      // The stream was replaced during the read: once more, on the new one.
      if (attempt >= 1) throw new BusError('publish_failed', `history stream ${this.streamName} was replaced during a read; retry`);
    }
  }

  async position(roomId: string): Promise<HistoryPosition> {
    this.readyManager();
    if (!this.host.connected) return this.host.refuse();
    try {
      const [last, epoch] = await Promise.all([this.newestMessage(roomId), this.freshEpoch(EPOCH_CACHE_MS)]);
      return { offset: last && !isGenesis(last.header) ? last.seq : 0, epoch: `${epoch}.${genesisSeqOf(last)}` };
    } catch (e) {
      throw this.requestError(e, `read the position of room ${JSON.stringify(roomId)}`);
    }
  }

  /** The room's newest message; a room with none gets its genesis marker first. Remembers the marker. */
  private async newestMessage(roomId: string): Promise<StoredMsg | null> {
    const jsm = this.readyManager();
    const subject = this.subjectOf(roomId);
    let last = await jsm.streams.getMessage(this.streamName, { last_by_subj: subject });
    if (!last) {
      const h = headers();
      h.set(H_GENESIS, '1');
      h.set(H_ROOM, encodeHeaderValue(roomId));
      try {
        await this.ready().publish(subject, '', { headers: h, expect: { lastSubjectSequence: 0 } });
      } catch {
        // Another pod's marker or a first event came first: either way the room is not empty now.
      }
      last = await jsm.streams.getMessage(this.streamName, { last_by_subj: subject });
    }
    this.rememberGenesis(roomId, genesisSeqOf(last));
    return last;
  }

  private rememberGenesis(roomId: string, seq: number): void {
    if (this.genesis.size >= GENESIS_CACHE && !this.genesis.has(roomId)) this.genesis.clear();
    this.genesis.set(roomId, seq);
  }

  /** The room's marker sequence, looked up (one lookup at a time per room) when not known. */
  private genesisFor(roomId: string): Promise<number> {
    const known = this.genesis.get(roomId);
    if (known !== undefined) return Promise.resolve(known);
    let lookup = this.genesisLookups.get(roomId);
    if (!lookup) {
      lookup = this.newestMessage(roomId)
        .then(genesisSeqOf, () => 0)
        .finally(() => this.genesisLookups.delete(roomId));
      this.genesisLookups.set(roomId, lookup);
    }
    return lookup;
  }

  /** Stops the live feed (the transport calls it before closing the connection). */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.restartTimer);
    const pending = [...this.acks.values()];
    this.acks.clear();
    for (const p of pending) p.reject(new BusError('stopped', `NATS history (${this.host.target}) was closed before JetStream acknowledged`));
    try {
      this.ackSub?.unsubscribe();
    } catch {
      // closed already
    }
    this.feedGeneration++;
    this.endFeed();
  }

  // ---- open ------------------------------------------------------------------------------

  private async doOpen(limits: HistoryLimits): Promise<void> {
    if (!Number.isInteger(limits.size) || limits.size < 1) {
      throw new BusError('bad_argument', `history size must be an integer >= 1 (HISTORY_SIZE=0 turns history off), got ${limits.size}`);
    }
    if (!(limits.ttlS > 0) || !Number.isFinite(limits.ttlS)) {
      throw new BusError('bad_argument', `history ttl must be a positive number of seconds, got ${limits.ttlS}`);
    }
    const nc = this.host.connection();
    if (!nc) throw new BusError('not_started', `open the NATS transport (${this.host.target}) before its history`);
    if (!this.host.connected) return this.host.refuse();
    const server = maskUrl(`nats://${nc.getServer()}`);
    let jsm: JetStreamManager;
    try {
      // Asks the server for the account's JetStream info: fails without JetStream.
      jsm = await jetstreamManager(nc, { timeout: this.ackTimeoutMs });
    } catch (e) {
      if (errorName(e) === 'JetStreamNotEnabled' || isApiError(e, JS_NOT_ENABLED_FOR_ACCOUNT)) {
        throw new BusError(
          'broker_unreachable',
          `the NATS server at ${server} has no JetStream: enable it (nats-server -js) or set HISTORY_SIZE=0 to run without history`,
          { cause: e },
        );
      }
      throw new BusError('broker_unreachable', `cannot use JetStream on the NATS server at ${server}: ${why(e)}`, { cause: e });
    }
    this.jsm = jsm;
    this.js = jetstream(nc, { timeout: this.ackTimeoutMs });
    this.limits = limits;
    if (!this.ackSub) {
      this.ackInbox = createInbox();
      this.ackSub = nc.subscribe(`${this.ackInbox}.*`, { callback: (_err, m) => this.onAck(m) });
    }
    let info: StreamInfo;
    try {
      info = await this.ensureStream(jsm, limits);
    } catch (e) {
      throw new BusError('broker_unreachable', `cannot create or update the history stream ${this.streamName} on ${server}: ${why(e)}`, { cause: e });
    }
    this.setEpoch(info);
    try {
      await this.startFeed(info.state.last_seq + 1);
    } catch (e) {
      throw new BusError('broker_unreachable', `cannot start the history live feed on stream ${this.streamName} (${server}): ${why(e)}`, {
        cause: e,
      });
    }
    this.host.log.debug(
      { stream: this.streamName, epoch: this.currentEpoch, size: limits.size, ttlS: limits.ttlS, duplicateWindowS: this.duplicateWindowS(limits) },
      'NATS history open',
    );
  }

  /**
   * Creates the stream, or updates its limits, however many pods do the same at once: a
   * create that loses the race (name in use) reads and updates instead.
   */
  private async ensureStream(jsm: JetStreamManager, limits: HistoryLimits): Promise<StreamInfo> {
    const subjects = historySubjects(this.host.prefix);
    const wanted = {
      max_msgs_per_subject: limits.size,
      max_age: nanos(limits.ttlS * 1_000),
      duplicate_window: nanos(this.duplicateWindowS(limits) * 1_000),
      discard: DiscardPolicy.Old,
    };
    let lastError: unknown;
    for (let attempt = 0; attempt < 5; attempt++) {
      let info: StreamInfo;
      try {
        info = await jsm.streams.info(this.streamName);
      } catch (e) {
        if (!isApiError(e, STREAM_NOT_FOUND)) throw e;
        try {
          return await jsm.streams.add({
            name: this.streamName,
            description: 'retrotro-bus room history: one subject per room, offsets are stream sequences',
            subjects: [subjects],
            retention: RetentionPolicy.Limits,
            storage: StorageType.File,
            num_replicas: this.replicas,
            max_msgs: -1,
            max_bytes: -1,
            ...wanted,
          });
        } catch (e2) {
          // Another pod created it first (with other limits): read it and update.
          if (isApiError(e2, STREAM_NAME_IN_USE)) {
            lastError = e2;
            continue;
          }
          throw e2;
        }
      }
      const c = info.config;
      const hasSubject = c.subjects?.includes(subjects) ?? false;
      if (
        hasSubject &&
        c.max_msgs_per_subject === wanted.max_msgs_per_subject &&
        c.max_age === wanted.max_age &&
        c.duplicate_window === wanted.duplicate_window &&
        c.discard === wanted.discard
      ) {
        return info;
      }
      try {
        return await jsm.streams.update(this.streamName, { ...wanted, subjects: hasSubject ? c.subjects : [...(c.subjects ?? []), subjects] });
      } catch (e) {
        // Deleted meanwhile, or a concurrent update: look again.
        if (isApiError(e, STREAM_NOT_FOUND)) {
          lastError = e;
          continue;
        }
        throw e;
      }
    }
    throw lastError instanceof Error ? lastError : new Error(String(lastError));
  }

  private setEpoch(info: StreamInfo): void {
    if (epochOf(info) !== this.currentEpoch) this.genesis.clear(); // a new stream: new markers
    this.currentEpoch = epochOf(info);
    this.epochAt = Date.now();
  }

  // ---- append ----------------------------------------------------------------------------

  private publishOne(nc: NatsConnection, item: AppendItem, ackId: number): void {
    const h: MsgHdrs = headers();
    h.set(H_POD, encodeHeaderValue(item.podId));
    h.set(H_ROOM, encodeHeaderValue(item.roomId));
    h.set(H_USER, encodeHeaderValue(item.userId));
    if (item.except !== undefined) h.set(H_EXCEPT, encodeHeaderValue(item.except));
    if (item.id !== undefined) h.set(H_MSG_ID, msgIdOf(item.roomId, item.userId, item.id));
    h.set(H_GENESIS_SEQ, String(this.genesis.get(item.roomId) ?? 0));
    nc.publish(this.subjectOf(item.roomId), item.payload, { headers: h, reply: `${this.ackInbox}.${ackId}` });
  }

  /** One PubAck (or JetStream error, or no-responders status) for one of our publishes. */
  private onAck(m: Msg): void {
    const id = Number(m.subject.slice(this.ackInbox.length + 1));
    const p = this.acks.get(id);
    if (!p) return; // timed out or failed already
    this.acks.delete(id);
    if (m.data.length === 0 && m.headers?.code === 503) {
      p.reject(new NoStreamError('no JetStream stream listens on the subject'));
      return;
    }
    let r: { seq?: unknown; duplicate?: unknown; error?: { description?: string; err_code?: number } };
    try {
      r = JSON.parse(m.string()) as typeof r;
    } catch (e) {
      p.reject(new Error(`unreadable PubAck: ${why(e)}`));
      return;
    }
    if (r.error) p.reject(new Error(`${r.error.description ?? 'JetStream error'} (JetStream error ${r.error.err_code ?? '?'})`));
    else if (typeof r.seq !== 'number' || r.seq < 1) p.reject(new Error('PubAck without a sequence'));
    else p.resolve({ seq: r.seq, duplicate: r.duplicate === true });
  }

  private failAcks(ids: readonly number[], error: Error): void {
    for (const id of ids) {
      const p = this.acks.get(id);
      if (!p) continue;
      this.acks.delete(id);
      p.reject(error);
    }
  }

  private publishCopies(item: AppendItem, offset: number): void {
    let frames: Array<{ stream: StreamKind; payload: string }>;
    try {
      frames = item.frames(offset);
    } catch (e) {
      this.badLog.write({ err: e, roomId: item.roomId }, 'history: building the Go copy of an event failed');
      return;
    }
    for (const f of frames) {
      try {
        this.host.publishCopy(f.stream, f.payload);
      } catch (e) {
        // Best effort: the event is stored and reaches our pods through the live feed.
        this.badLog.write({ err: e, roomId: item.roomId }, 'history: publishing the Go copy of an event failed');
      }
    }
  }

  private appendError(e: unknown, items: readonly AppendItem[]): BusError {
    const n = items.length === 1 ? 'an event' : `${items.length} events`;
    const retry = 'retry (events with an id are not stored twice)';
    if (e instanceof BusError) return e;
    if (e === undefined) return new BusError('publish_failed', `JetStream append of ${n} to stream ${this.streamName} failed; ${retry}`);
    if (errorName(e) === 'TimeoutError') {
      return new BusError(
        'timeout',
        `JetStream (${this.host.target}) did not acknowledge ${n} of stream ${this.streamName} within ${this.ackTimeoutMs} ms; ${retry}`,
        { cause: e },
      );
    }
    if (errorName(e) === 'NoStreamError') {
      // No stream listens on the subject any more (deleted?): make it again, with a new epoch.
      void this.resync('an append found no stream');
      return new BusError('publish_failed', `no JetStream stream took ${n} (stream ${this.streamName} missing on ${this.host.target}); ${retry}`, {
        cause: e,
      });
    }
    return new BusError('publish_failed', `JetStream append of ${n} to stream ${this.streamName} failed: ${why(e)}; ${retry}`, { cause: e });
  }

  // ---- read ------------------------------------------------------------------------------

  /** One read; undefined when the stream was replaced meanwhile (the caller tries again). */
  private async readOnce(roomId: string, after: number, limit: number): Promise<HistoryPage | undefined> {
    const jsm = this.readyManager();
    const js = this.ready();
    if (!this.host.connected) return this.host.refuse();
    const subject = this.subjectOf(roomId);
    try {
      const [before, newestMsg, events] = await Promise.all([
        this.info(jsm),
        this.newestMessage(roomId),
        limit > 0 ? this.readEvents(jsm, js, subject, after, limit) : Promise.resolve([]),
      ]);
      // Completeness is judged after the events were read: trimming only ever removes a
      // subject's oldest messages, so if `after` is still there now, nothing after it was
      // removed before or while we read.
      const [later, atAfter] = await Promise.all([
        this.info(jsm),
        // After 0: the room's oldest message, which is its genesis marker while nothing was trimmed.
        // (nats.js types no next_by_subj for the stream API, which the server has had since 2.9.)
        jsm.streams.getMessage(this.streamName, after > 0 ? { seq: after } : ({ seq: 1, next_by_subj: subject } as unknown as MsgRequest)),
      ]);
      if (epochOf(before) !== epochOf(later)) return undefined;
      const genesis = genesisSeqOf(newestMsg);
      const epoch = `${epochOf(later)}.${genesis}`;
      const newest = newestMsg && !isGenesis(newestMsg.header) ? newestMsg.seq : 0;
      const complete =
        after > 0
          ? atAfter !== null && atAfter.subject === subject
          : // From the beginning: only while the room's oldest message is its own marker.
            atAfter !== null && isGenesis(atAfter.header) && atAfter.seq === genesis;
      const last = events.length > 0 ? events[events.length - 1]!.offset : 0;
      return { epoch, newest: Math.max(newest, last), events, complete };
    } catch (e) {
      throw this.requestError(e, `read the history of room ${JSON.stringify(roomId)}`);
    }
  }

  /** The room's messages after `after`: an ephemeral consumer on the room's subject, pulled in batches. */
  private async readEvents(jsm: JetStreamManager, js: JetStreamClient, subject: string, after: number, limit: number): Promise<StoredEvent[]> {
    const ci = await jsm.consumers.add(this.streamName, {
      filter_subject: subject,
      deliver_policy: DeliverPolicy.StartSequence,
      opt_start_seq: after + 1,
      ack_policy: 'none',
      mem_storage: true,
      num_replicas: 1,
      inactive_threshold: nanos(30_000),
    });
    try {
      const want = Math.min(limit, ci.num_pending);
      const out: StoredEvent[] = [];
      if (want === 0) return out;
      const consumer = js.consumers.getConsumerFromInfo(ci);
      let delivered = 0;
      while (out.length < want) {
        const batch = Math.min(want - out.length, READ_BATCH);
        const messages = await consumer.fetch({ max_messages: batch, expires: READ_EXPIRES_MS });
        let got = 0;
        let pending = -1;
        for await (const m of messages) {
          if (m.info.deliverySequence !== ++delivered) {
            messages.stop();
            throw new Error(`history read of ${subject} lost messages in transit (delivery ${m.info.deliverySequence}, expected ${delivered})`);
          }
          if (!isGenesis(m.headers)) out.push({ offset: m.seq, payload: m.string() });
          got++;
          pending = m.info.pending;
          if (out.length >= want || pending === 0) {
            messages.stop();
            break;
          }
        }
        // Fewer than announced (trimmed meanwhile) or nothing after: done.
        if (got === 0 || pending === 0) break;
      }
      return out;
    } finally {
      jsm.consumers.delete(this.streamName, ci.name).catch(() => {});
    }
  }

  /** Stream info; a missing stream is made again (new epoch). Notices a replaced stream. */
  private async info(jsm: JetStreamManager): Promise<StreamInfo> {
    let info: StreamInfo;
    try {
      info = await jsm.streams.info(this.streamName);
    } catch (e) {
      if (!isApiError(e, STREAM_NOT_FOUND)) throw e;
      await this.resync('the stream is missing');
      info = await jsm.streams.info(this.streamName);
    }
    if (epochOf(info) !== this.currentEpoch) void this.resync('the stream was replaced');
    else this.epochAt = Date.now();
    return info;
  }

  private async freshEpoch(maxAgeMs: number): Promise<string> {
    if (Date.now() - this.epochAt < maxAgeMs) return this.currentEpoch;
    return epochOf(await this.info(this.readyManager()));
  }

  private requestError(e: unknown, what: string): BusError {
    if (e instanceof BusError) return e;
    const code = errorName(e) === 'TimeoutError' ? 'timeout' : 'publish_failed';
    return new BusError(code, `cannot ${what} from JetStream stream ${this.streamName} (${this.host.target}): ${why(e)}`, { cause: e });
  }

  // ---- the live feed ---------------------------------------------------------------------

  /**
   * An ordered consumer on every room subject from `startSeq`: it exists once this resolves,
   * so every event stored later reaches the sink. nats.js re-creates it after a reconnect or
   * a gap, resuming after the last message it delivered.
   */
  private async startFeed(startSeq: number): Promise<void> {
    const js = this.ready();
    const generation = ++this.feedGeneration;
    clearTimeout(this.restartTimer);
    this.endFeed();
    this.lastDelivered = startSeq - 1;
    const consumer = await js.consumers.get(this.streamName, {
      filter_subjects: historySubjects(this.host.prefix),
      deliver_policy: DeliverPolicy.StartSequence,
      opt_start_seq: startSeq,
      inactive_threshold: 60_000,
    });
    if (generation !== this.feedGeneration || this.stopped) {
      consumer.delete().catch(() => {});
      return;
    }
    const feed = await consumer.consume({
      callback: (m) => this.onLive(m, generation),
      max_messages: 2_000,
      // Short pulls: a pull that found the server gone is renewed within seconds.
      expires: 5_000,
    });
    this.feed = { messages: feed, consumer };
    void this.watchFeed(feed, generation);
  }

  /** Stops the live feed and deletes its consumer (best effort: the server drops it when idle anyway). */
  private endFeed(): void {
    const feed = this.feed;
    this.feed = undefined;
    if (!feed) return;
    try {
      feed.messages.stop();
    } catch {
      // already stopped
    }
    feed.consumer.delete().catch(() => {});
  }

  private async watchFeed(feed: ConsumerMessages, generation: number): Promise<void> {
    const log = this.host.log;
    void (async () => {
      for await (const s of feed.status()) {
        if (generation !== this.feedGeneration) return;
        switch (s.type) {
          case 'heartbeats_missed':
            log.debug({ stream: this.streamName, count: s.count }, 'history live feed: heartbeats missed');
            break;
          case 'ordered_consumer_recreated':
            log.debug({ stream: this.streamName, consumer: s.name, after: this.lastDelivered }, 'history live feed re-created');
            break;
          case 'stream_not_found':
            void this.resync('the live feed found no stream');
            break;
          default:
            break;
        }
      }
    })().catch(() => {});
    const err = await feed.closed();
    if (generation !== this.feedGeneration || this.stopped) return;
    // Ended by itself (e.g. it could not be re-created for a long time): start over after the last event.
    log.warn({ err, stream: this.streamName, after: this.lastDelivered }, 'history live feed ended; restarting it');
    this.scheduleFeedRestart(1_000);
  }

  private scheduleFeedRestart(delayMs: number): void {
    clearTimeout(this.restartTimer);
    this.restartTimer = setTimeout(() => {
      if (this.stopped) return;
      this.startFeed(this.lastDelivered + 1).catch((e: unknown) => {
        this.host.log.warn({ err: e, stream: this.streamName }, 'history live feed restart failed; trying again');
        this.scheduleFeedRestart(Math.min(delayMs * 2, 30_000));
      });
    }, delayMs);
  }

  private onLive(m: JsMsg, generation: number): void {
    // A feed being replaced: its successor starts after the last message handed on.
    if (generation !== this.feedGeneration) return;
    const seq = m.seq;
    if (seq <= this.lastDelivered) return; // already handed on (a re-created consumer overlapping)
    this.lastDelivered = seq;
    const h = m.headers;
    const markedRoom = h?.get(H_ROOM);
    if (isGenesis(h)) {
      if (markedRoom) this.rememberGenesis(decodeHeaderValue(markedRoom), seq);
      return;
    }
    const named = Number(h?.get(H_GENESIS_SEQ) ?? 0);
    if (markedRoom && named > 0) this.rememberGenesis(decodeHeaderValue(markedRoom), named);
    const podId = h?.get(H_POD) ?? '';
    const roomId = h?.get(H_ROOM) ?? '';
    if (podId === '' || roomId === '') {
      this.badLog.write({ seq, subject: m.subject }, 'history message without retrotro headers ignored');
      return;
    }
    const except = h?.get(H_EXCEPT) ?? '';
    this.host.deliver(
      historyEnvelope({
        roomId: decodeHeaderValue(roomId),
        podId: decodeHeaderValue(podId),
        offset: seq,
        payload: m.string(),
        ...(except !== '' && { except: decodeHeaderValue(except) }),
      }),
    );
  }

  /**
   * The stream went missing or was replaced (deleted and made again): make it again if need
   * be, take its epoch and restart the live feed at its end. One at a time.
   */
  private resync(reason: string): Promise<void> {
    if (this.resyncing !== undefined) return this.resyncing;
    const run = (async () => {
      const jsm = this.jsm;
      const limits = this.limits;
      if (!jsm || !limits || this.stopped) return;
      try {
        const info = await this.ensureStream(jsm, limits);
        const epoch = epochOf(info);
        if (epoch === this.currentEpoch) return;
        this.host.log.warn(
          { stream: this.streamName, reason, oldEpoch: this.currentEpoch, epoch },
          'history stream was replaced: new epoch, live feed restarts at its end',
        );
        this.setEpoch(info);
        await this.startFeed(info.state.last_seq + 1);
      } catch (e) {
        this.host.log.warn({ err: e, stream: this.streamName, reason }, 'history stream check failed');
      }
    })();
    this.resyncing = run;
    void run.finally(() => {
      if (this.resyncing === run) this.resyncing = undefined;
    });
    return run;
  }

  // ---- internals -------------------------------------------------------------------------

  private ready(): JetStreamClient {
    if (this.stopped) throw new BusError('stopped', `NATS history (${this.host.target}) was closed`);
    if (!this.js) throw new BusError('not_started', 'NATS history is not open: call open() first');
    return this.js;
  }

  private readyManager(): JetStreamManager {
    this.ready();
    return this.jsm!;
  }

  private subjectOf(roomId: string): string {
    let subject = this.subjectCache.get(roomId);
    if (subject === undefined) {
      if (this.subjectCache.size >= SUBJECT_CACHE) this.subjectCache.clear();
      subject = historySubject(this.host.prefix, roomId);
      this.subjectCache.set(roomId, subject);
    }
    return subject;
  }
}
