import { Emitter } from './emitter.js';
import { RetrotroError } from './errors.js';
import type { EventMap, Participant, Position, PublishResult, RoomEvent, RoomTimer } from './types.js';

/** Listeners of a {@link Room}. */
export type RoomEvents<E extends EventMap = EventMap> = {
  /** An event of the room, once, in offset order; never this client's own. */
  event: (e: RoomEvent<E>) => void;
  /** `room.participants` changed; `list` is the new value. */
  participants: (list: readonly Participant[]) => void;
  /**
   * `room.timer` changed (`timer` is the new value); `type` is the frame that changed it
   * (`timer_started`, `timer_tick`, ..., `timer_ended`, or `room_state` after a rejoin).
   */
  timer: (timer: RoomTimer | null, type: string) => void;
  /**
   * After a reconnection the server could not replay what this client missed (history
   * trimmed, epoch changed, or history off): events may have been lost. Reload your state
   * (e.g. `GET /api/rooms/{id}/history` or your own API); events emitted from now on follow
   * `room.position`.
   */
  reset: () => void;
};

/** @internal What a Room needs from its client. */
export interface RoomLink {
  /** Sends text if the socket is open; false if not. */
  send(text: string): boolean;
  nextId(): string;
  /** The backoff delay for the n-th consecutive retry. */
  delay(n: number): number;
  leave(room: Room): void;
  maxPending: number;
  maxFrameBytes: number;
}

interface Pending {
  id: string;
  text: string;
  sent: boolean;
  resolve(result: PublishResult): void;
  reject(err: RetrotroError): void;
}

/** Own acked ids remembered (to recognise them in a replay): as many as a default history. */
const MAX_ACKED = 1000;
const encoder = /* @__PURE__ */ new TextEncoder();

/** @internal A server frame's payload: untrusted JSON, each field checked before use. */
export type Payload = Readonly<Record<string, unknown>>;

const isObject = (v: unknown): v is Payload => typeof v === 'object' && v !== null;
const asOffset = (v: unknown): number | null => (typeof v === 'number' ? v : null);
const asString = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
const asNumber = (v: unknown): number | undefined => (typeof v === 'number' ? v : undefined);
const isParticipant = (v: unknown): v is Participant => isObject(v) && typeof v.userId === 'string' && typeof v.userName === 'string';
const isTimer = (v: unknown): v is RoomTimer =>
  isObject(v) &&
  typeof v.phase === 'string' &&
  typeof v.running === 'boolean' &&
  typeof v.remaining_seconds === 'number' &&
  (typeof v.end_at === 'string' || v.end_at === null);

/** The timer after a `timer_*` frame; undefined when `type` is not a timer frame. */
function nextTimer(t: RoomTimer | null, type: string, p: Payload): RoomTimer | null | undefined {
  const phase = t?.phase ?? 'timer';
  const remaining = t?.remaining_seconds ?? 0;
  switch (type) {
    case 'timer_started':
      return {
        phase: asString(p.phase) ?? phase,
        running: true,
        remaining_seconds: asNumber(p.duration_seconds) ?? 0,
        end_at: asString(p.end_at) ?? null,
      };
    case 'timer_tick':
      return {
        phase: asString(p.phase) ?? phase,
        running: t?.running ?? true,
        remaining_seconds: asNumber(p.remaining_seconds) ?? remaining,
        end_at: t?.end_at ?? null,
      };
    case 'timer_paused':
      return { phase, running: false, remaining_seconds: asNumber(p.remaining_seconds) ?? remaining, end_at: null };
    case 'timer_resumed':
      return { phase, running: true, remaining_seconds: asNumber(p.remaining_seconds) ?? remaining, end_at: asString(p.end_at) ?? null };
    case 'timer_extended': {
      const endAt = asString(p.new_end_at) ?? null;
      return { phase, running: endAt !== null, remaining_seconds: asNumber(p.new_remaining) ?? remaining, end_at: endAt };
    }
    case 'timer_stopped':
    case 'timer_ended':
      return null;
  }
  return undefined;
}

/**
 * A joined room, from `client.join(roomId)`. Its `participants`, `timer` and `position`
 * are kept current, across reconnections, until `leave()` or `client.close()`.
 * `E` maps event names to their data types.
 */
export class Room<E extends EventMap = EventMap> extends Emitter<RoomEvents<E>> {
  /** The room id. */
  readonly id: string;
  #link: RoomLink;
  #participants: readonly Participant[] = [];
  #timer: RoomTimer | null = null;
  #position: Position | null = null;
  /** room_state received on the current socket. */
  #joined = false;
  #everJoined = false;
  #left = false;
  /** The last join_room carried `since`. */
  #sentSince = false;
  /** The server predates acks (its room_state has no `position`): publishes resolve once sent. */
  #legacy = false;
  #pending: Pending[] = [];
  /** Own acked ids whose offset is above the position: a replay may still bring them. */
  #acked = new Map<string, number>();
  #retries = 0;
  #retryTimer: ReturnType<typeof setTimeout> | undefined;
  #resolveJoin!: () => void;
  #rejectJoin!: (err: RetrotroError) => void;
  /** @internal Settles when the first room_state arrives. */
  readonly _joined: Promise<Room<E>>;

  /** @internal */
  constructor(id: string, link: RoomLink) {
    super();
    this.id = id;
    this.#link = link;
    this._joined = new Promise<Room<E>>((resolve, reject) => {
      this.#resolveJoin = () => resolve(this);
      this.#rejectJoin = reject;
    });
  }

  /** Everyone in the room on any pod, each user once, this client's user included. A new array on every change. */
  get participants(): readonly Participant[] {
    return this.#participants;
  }

  /** The room's timer, or null when there is none. `remaining_seconds` is as of the last timer frame: count down from `end_at`. */
  get timer(): RoomTimer | null {
    return this.#timer;
  }

  /**
   * The last position seen in the room's history (from `room_state` and every event's
   * offset); the next rejoin asks for what came after it. Null when the server keeps no
   * history.
   */
  get position(): Position | null {
    return this.#position && { ...this.#position };
  }

  /** Publishes waiting for their ack (queued or in flight). */
  get pendingCount(): number {
    return this.#pending.length;
  }

  /**
   * Publishes an event to every other client of the room. Resolves with its offset once the
   * server acknowledged it (stored in history when on). While disconnected it waits and is
   * sent after the reconnection; an unacknowledged publish is re-sent with the same id (the
   * server delivers it once). Rejects only on a non-retryable server error, or with codes
   * `left`, `closed`, `queue_full`, `too_large`, `bad_event`.
   */
  publish<K extends keyof E & string>(event: K, data: E[K]): Promise<PublishResult> {
    if (this.#left) return Promise.reject(new RetrotroError('left', `room ${this.id} was left`));
    if (typeof event !== 'string' || event === '') {
      return Promise.reject(new RetrotroError('bad_event', 'publish needs a non-empty event name'));
    }
    if (this.#pending.length >= this.#link.maxPending) {
      return Promise.reject(
        new RetrotroError('queue_full', `${this.#pending.length} publishes are waiting for their ack (maxPending); try again later`),
      );
    }
    const id = this.#link.nextId();
    const text = JSON.stringify({ type: 'publish', payload: { event, data, id } });
    const max = this.#link.maxFrameBytes;
    if (max > 0 && text.length > max / 3 && encoder.encode(text).length > max) {
      return Promise.reject(new RetrotroError('too_large', `the publish frame is larger than ${max} bytes (maxFrameBytes)`));
    }
    return new Promise<PublishResult>((resolve, reject) => {
      this.#pending.push({ id, text, sent: false, resolve, reject });
      this.#flush();
    });
  }

  /** Starts (or restarts) the room's timer. Returns false if not sent (not connected). */
  startTimer(durationSeconds: number, phase?: string): boolean {
    return this.#command('timer_start', phase === undefined ? { durationSeconds } : { durationSeconds, phase });
  }

  /** Pauses the room's timer. Returns false if not sent (not connected). */
  pauseTimer(): boolean {
    return this.#command('timer_pause');
  }

  /** Resumes the room's paused timer. Returns false if not sent (not connected). */
  resumeTimer(): boolean {
    return this.#command('timer_resume');
  }

  /** Stops the room's timer. Returns false if not sent (not connected). */
  stopTimer(): boolean {
    return this.#command('timer_stop');
  }

  /** Adds time to the running or paused timer. Returns false if not sent (not connected). */
  addTime(seconds: number): boolean {
    return this.#command('timer_add_time', { seconds });
  }

  /**
   * Leaves the room (others see `participant_left` at once). Publishes still waiting for
   * their ack reject with code `left`: await them first if you need their outcome.
   */
  async leave(): Promise<void> {
    if (!this.#left) this.#link.leave(this);
  }

  #command(type: string, payload?: object): boolean {
    return this.#joined && this.#link.send(JSON.stringify(payload ? { type, payload } : { type }));
  }

  /** Sends the publishes not yet sent on this socket, in order. */
  #flush(): void {
    if (!this.#joined) return;
    for (const p of [...this.#pending]) {
      if (p.sent) continue;
      if (!this.#link.send(p.text)) return;
      p.sent = true;
      if (this.#legacy) this.#settle(p.id)?.resolve({ offset: null });
    }
  }

  /** Removes a pending publish by id; returns it. */
  #settle(id: unknown): Pending | undefined {
    const i = this.#pending.findIndex((p) => p.id === id);
    return i < 0 ? undefined : this.#pending.splice(i, 1)[0];
  }

  /** Moves the position forward to `offset`; forgets own acked ids at or below it. */
  #advance(offset: number): void {
    this.#position!.offset = offset;
    for (const [id, o] of this.#acked) {
      if (o > offset) break;
      this.#acked.delete(id);
    }
  }

  /** @internal The join_room frame for the current socket. */
  _joinFrame(): string {
    const pos = this.#position;
    this.#sentSince = pos !== null;
    return JSON.stringify({ type: 'join_room', payload: pos ? { roomId: this.id, since: pos } : { roomId: this.id } });
  }

  /** @internal Whether this room is joined on the current socket. */
  get _isJoined(): boolean {
    return this.#joined;
  }

  /** @internal The first join has not completed yet. */
  get _isFirstJoin(): boolean {
    return !this.#everJoined;
  }

  /** @internal The socket was lost: everything pending goes out again after the rejoin. */
  _socketLost(): void {
    this.#joined = false;
    clearTimeout(this.#retryTimer);
    this.#retryTimer = undefined;
    for (const p of this.#pending) p.sent = false;
  }

  /** @internal Left or closed: rejects what is pending. */
  _close(err: RetrotroError): void {
    this.#left = true;
    this.#joined = false;
    clearTimeout(this.#retryTimer);
    this.#rejectJoin(err);
    this._joined.catch(() => {});
    for (const p of this.#pending.splice(0)) p.reject(err);
    this.#acked.clear();
  }

  /** @internal The first join was refused. */
  _joinRefused(err: RetrotroError): void {
    this._close(err);
  }

  /** @internal A room_state for this room; returns false if it is for another room. */
  _onRoomState(p: Payload): boolean {
    if (p.roomId !== this.id) return false;
    const first = !this.#everJoined;
    const pos = isObject(p.position) && typeof p.position.offset === 'number' ? { offset: p.position.offset, epoch: String(p.position.epoch) } : null;
    this.#legacy = !('position' in p);
    this.#participants = Array.isArray(p.participants) ? p.participants.filter(isParticipant) : [];
    this.#timer = isTimer(p.timer) ? p.timer : null;
    // Seamless only if we asked for `since` and the server replays from there.
    const recovered = this.#sentSince && p.recovered === true && pos !== null && pos.epoch === this.#position?.epoch;
    if (!recovered) {
      this.#position = pos;
      this.#acked.clear();
    }
    this.#joined = this.#everJoined = true;
    if (first) this.#resolveJoin();
    else {
      this.emit('participants', this.#participants);
      this.emit('timer', this.#timer, 'room_state');
      if (!recovered) this.emit('reset');
    }
    this.#flush();
    return true;
  }

  /** @internal An `ack` frame. */
  _onAck(p: Payload): void {
    const pending = this.#settle(p.id);
    if (!pending) return;
    const offset = asOffset(p.offset);
    this.#retries = 0;
    if (offset !== null && this.#position && offset > this.#position.offset) {
      this.#acked.set(pending.id, offset);
      if (this.#acked.size > MAX_ACKED) this.#acked.delete(this.#acked.keys().next().value!);
    }
    pending.resolve({ offset });
  }

  /** @internal An `error` frame with an id; returns false if the id is not a pending publish of this room. */
  _onPublishError(p: Payload): boolean {
    const pending = this.#pending.find((x) => x.id === p.id);
    if (!pending) return false;
    if (p.retryable === true) {
      pending.sent = false;
      this.#retryTimer ??= setTimeout(
        () => {
          this.#retryTimer = undefined;
          this.#flush();
        },
        this.#link.delay(this.#retries++),
      );
    } else {
      this.#settle(p.id);
      pending.reject(new RetrotroError(String(p.code), String(p.message ?? p.code), pending.id));
    }
    return true;
  }

  /** @internal Any other server frame while this room is the client's. */
  _onFrame(type: string, p: Payload): void {
    if (!this.#joined) return; // frames of a previous room, before our room_state
    if (type === 'event') return this.#onEvent(p);
    if (type === 'participant_joined') {
      if (!isParticipant(p) || this.#participants.some((x) => x.userId === p.userId)) return;
      this.#participants = [...this.#participants, { userId: p.userId, userName: p.userName }];
      return this.emit('participants', this.#participants);
    }
    if (type === 'participant_left') {
      const list = this.#participants.filter((x) => x.userId !== p.userId);
      if (list.length === this.#participants.length) return;
      this.#participants = list;
      return this.emit('participants', list);
    }
    const timer = nextTimer(this.#timer, type, p);
    if (timer !== undefined) {
      this.#timer = timer;
      this.emit('timer', timer, type);
    }
  }

  #onEvent(p: Payload): void {
    const offset = asOffset(p.offset);
    const pos = this.#position;
    if (offset !== null && pos && offset <= pos.offset) return; // seen already (replay and live overlap)
    const id = typeof p.id === 'string' ? p.id : undefined;
    // Our own event, brought by a replay: already known, only the position moves.
    const own = id !== undefined && (this.#acked.has(id) || this.#pending.some((x) => x.id === id));
    if (offset !== null && pos) this.#advance(offset);
    if (own) {
      this.#acked.delete(id!);
      return this.#settle(id)?.resolve({ offset });
    }
    const e = { event: p.event, data: p.data, from: p.from, offset } as RoomEvent<E>;
    if (id !== undefined) e.id = id;
    this.emit('event', e);
  }
}
