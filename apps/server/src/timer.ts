/**
 * The room timer (CONTRACT section 4, DESIGN "Timer").
 *
 * A room's timer is replicated room state under the key 'timer' (`TimerState`). A command,
 * accepted on any pod, computes the next state from the current one and this pod's clock
 * and writes it with `bus.setRoomState`; only these changes cross the bus. Every pod, the
 * origin included (synchronously, inside `setRoomState`), sees the change through
 * `watchRoomState`, delivers the frame the state carries (`event`) to its own sockets and
 * derives the ticks and the end for them from the absolute `endAt`, with ONE local timeout
 * per room armed for the next tick instant. So a tick costs no bus traffic, and the timer
 * outlives the pod that started it. When nobody is left in the room anywhere, the bus
 * drops the state and the watcher gets `undefined`: the room's timeout is cancelled.
 *
 * Convergence: two pods taking commands at the same time each write a state computed from
 * what they saw; the bus keeps the write with the higher Lamport version (counter, podId)
 * on every pod (last writer wins), so all pods end with the same state. Sockets on the pod
 * whose write lost see its frame and then the winner's frame; elsewhere only the winner's.
 *
 * The end is derived, never written: once `endAt` has passed, a running state means "no
 * timer" (view() is null, pause/resume/stop/add answer no_active_timer, start starts a new
 * one). Instants are epoch ms from the writer's clock, so pods are assumed NTP-synchronised.
 */
import { OK, type Frame, type LocalHub, type MessageBus, type PublishResult } from '@retrotro/bus-core';
import { intIn, isObject } from './protocol.js';

export const TIMER_COMMANDS = ['timer_start', 'timer_pause', 'timer_resume', 'timer_stop', 'timer_add_time'] as const;
export type TimerCommandType = (typeof TIMER_COMMANDS)[number];

/** `room_state.timer`. */
export interface TimerView {
  phase: string;
  running: boolean;
  remaining_seconds: number;
  end_at: string | null;
}

export type TimerCommandResult = { ok: true; sent: Promise<PublishResult> } | { ok: false; code: 'bad_message' | 'no_active_timer'; message: string };

/** The replicated value (JSON). `event` is the client frame announcing this change. */
export type TimerState = { phase: string; durationSeconds: number; event: Frame } & (
  | { status: 'running'; endAt: number }
  | { status: 'paused'; remainingMs: number }
  | { status: 'stopped' }
);

export interface TimerServiceOptions {
  /** The pod's clock (epoch ms); `Date.now` by default. */
  now?: () => number;
  logger?: { warn(o: object, m?: string): void };
}

export const TIMER_STATE_KEY = 'timer';
const MAX_SECONDS = 86_400;
const MAX_PHASE_LENGTH = 64;
const DEFAULT_PHASE = 'timer';

/** A room this pod counts down for: running (with its pending timeout) or paused. */
interface LocalTimer {
  state: TimerState;
  timeout: NodeJS.Timeout | undefined;
}

const frame = (type: string, payload: object): Frame => ({ type, payload });
const iso = (ms: number) => new Date(ms).toISOString();
/** Whole seconds left as a countdown shows them: 23 000 ms is 23, 22 001 ms is 23 too. */
const seconds = (ms: number) => Math.max(0, Math.ceil(ms / 1000));

/**
 * The next tick strictly after now, as seconds before the end: a multiple of 5, or any of
 * the last 10; 0 is the end itself. Never the current instant (a 20 s timer's start is not
 * also its tick 20).
 */
function nextMark(remainingMs: number): number {
  const k = Math.ceil(remainingMs / 1000) - 1;
  return k > 10 ? k - (k % 5) : Math.max(k, 0);
}

/** A stored value read back (from this or another pod, maybe another version): checked, never trusted. */
function parseState(v: unknown): TimerState | undefined {
  if (!isObject(v) || typeof v.phase !== 'string' || typeof v.durationSeconds !== 'number') return undefined;
  if (!isObject(v.event) || typeof v.event.type !== 'string') return undefined;
  const ok =
    (v.status === 'running' && Number.isFinite(v.endAt)) || (v.status === 'paused' && Number.isFinite(v.remainingMs)) || v.status === 'stopped';
  return ok ? (v as unknown as TimerState) : undefined;
}

/** A running timer before its end, or a paused one. */
function isActive(state: TimerState | undefined, now: number): state is TimerState & { status: 'running' | 'paused' } {
  return state !== undefined && (state.status === 'paused' || (state.status === 'running' && state.endAt > now));
}

export class TimerService {
  private readonly rooms = new Map<string, LocalTimer>();
  private readonly now: () => number;
  private readonly log: TimerServiceOptions['logger'];
  private readonly unwatch: () => void;

  constructor(
    private readonly bus: Pick<MessageBus, 'getRoomState' | 'setRoomState' | 'watchRoomState'>,
    private readonly hub: Pick<LocalHub, 'deliverLocal'>,
    options: TimerServiceOptions = {},
  ) {
    this.now = options.now ?? Date.now;
    this.log = options.logger;
    this.unwatch = bus.watchRoomState(TIMER_STATE_KEY, (roomId, value) => this.onState(roomId, value));
  }

  /**
   * Validates and applies one command at once (this pod's sockets get the frame before this
   * returns); `sent` is the relay to the other pods. Rule for commands that change nothing:
   * pausing a paused timer and resuming a running one answer ok, write nothing and send no
   * frame (`sent` resolves OK); only a missing (never started, stopped or ended) timer is
   * `no_active_timer`.
   */
  command(roomId: string, type: TimerCommandType, payload: unknown): TimerCommandResult {
    const now = this.now();
    const stored = parseState(this.bus.getRoomState(roomId, TIMER_STATE_KEY));
    const current = isActive(stored, now) ? stored : undefined;
    const p = isObject(payload) ? payload : {};

    if (type === 'timer_start') {
      const duration = intIn(p.durationSeconds, 1, MAX_SECONDS);
      if (duration === undefined) return badMessage(`timer_start needs payload.durationSeconds: an integer from 1 to ${MAX_SECONDS}`);
      const phase = p.phase ?? DEFAULT_PHASE;
      if (typeof phase !== 'string' || phase.length === 0 || phase.length > MAX_PHASE_LENGTH) {
        return badMessage(`timer_start payload.phase, if given, must be a string of 1 to ${MAX_PHASE_LENGTH} characters`);
      }
      const endAt = now + duration * 1000;
      return this.write(roomId, {
        status: 'running',
        phase,
        durationSeconds: duration,
        endAt,
        event: frame('timer_started', { phase, duration_seconds: duration, end_at: iso(endAt) }),
      });
    }

    let added = 0;
    if (type === 'timer_add_time') {
      const s = intIn(p.seconds, 1, MAX_SECONDS);
      if (s === undefined) return badMessage(`timer_add_time needs payload.seconds: an integer from 1 to ${MAX_SECONDS}`);
      added = s;
    }
    if (!current) return { ok: false, code: 'no_active_timer', message: `${type}: the room has no running or paused timer` };
    const { phase, durationSeconds } = current;

    switch (type) {
      case 'timer_pause': {
        if (current.status === 'paused') return NO_CHANGE;
        const remainingMs = current.endAt - now;
        return this.write(roomId, {
          status: 'paused',
          phase,
          durationSeconds,
          remainingMs,
          event: frame('timer_paused', { remaining_seconds: seconds(remainingMs) }),
        });
      }
      case 'timer_resume': {
        if (current.status === 'running') return NO_CHANGE;
        const endAt = now + current.remainingMs;
        return this.write(roomId, {
          status: 'running',
          phase,
          durationSeconds,
          endAt,
          event: frame('timer_resumed', { remaining_seconds: seconds(current.remainingMs), end_at: iso(endAt) }),
        });
      }
      case 'timer_stop':
        return this.write(roomId, { status: 'stopped', phase, durationSeconds, event: frame('timer_stopped', {}) });
      case 'timer_add_time': {
        const addedMs = added * 1000;
        const extended = { added_seconds: added };
        if (current.status === 'running') {
          const endAt = current.endAt + addedMs;
          return this.write(roomId, {
            status: 'running',
            phase,
            durationSeconds: durationSeconds + added,
            endAt,
            event: frame('timer_extended', { ...extended, new_remaining: seconds(endAt - now), new_end_at: iso(endAt) }),
          });
        }
        const remainingMs = current.remainingMs + addedMs;
        return this.write(roomId, {
          status: 'paused',
          phase,
          durationSeconds: durationSeconds + added,
          remainingMs,
          event: frame('timer_extended', { ...extended, new_remaining: seconds(remainingMs), new_end_at: null }),
        });
      }
    }
  }

  /** `room_state.timer`: null when there is no timer, or it was stopped or has ended. */
  view(roomId: string): TimerView | null {
    const now = this.now();
    const state = parseState(this.bus.getRoomState(roomId, TIMER_STATE_KEY));
    if (!isActive(state, now)) return null;
    return state.status === 'running'
      ? { phase: state.phase, running: true, remaining_seconds: seconds(state.endAt - now), end_at: iso(state.endAt) }
      : { phase: state.phase, running: false, remaining_seconds: seconds(state.remainingMs), end_at: null };
  }

  /** Running or paused timers this pod counts down for (metrics). */
  get activeCount(): number {
    const now = this.now();
    let n = 0;
    for (const { state } of this.rooms.values()) if (isActive(state, now)) n++;
    return n;
  }

  close(): void {
    this.unwatch();
    for (const local of this.rooms.values()) clearTimeout(local.timeout);
    this.rooms.clear();
  }

  private write(roomId: string, next: TimerState): TimerCommandResult {
    // Applies here at once: onState runs (on this pod) before setRoomState returns.
    return { ok: true, sent: this.bus.setRoomState(roomId, TIMER_STATE_KEY, next) };
  }

  /** A change of a room's timer, on every pod. */
  private onState(roomId: string, value: unknown): void {
    const previous = this.rooms.get(roomId);
    if (previous) clearTimeout(previous.timeout);
    this.rooms.delete(roomId);
    if (value === undefined) return; // room emptied cluster-wide (or the state was deleted)

    const state = parseState(value);
    if (!state) {
      this.log?.warn({ roomId }, 'ignoring a malformed timer state');
      return;
    }
    const now = this.now();
    // A running timer whose end passed before we heard of it (late sync): nothing to show,
    // and no timer_ended either.
    if (state.status === 'running' && state.endAt <= now) return;

    this.hub.deliverLocal(roomId, state.event);
    if (state.status === 'stopped') return;
    const local: LocalTimer = { state, timeout: undefined };
    this.rooms.set(roomId, local);
    if (state.status === 'running') this.arm(roomId, local, nextMark(state.endAt - now));
  }

  /** Arms the room's single timeout for the instant `mark` seconds before the end. */
  private arm(roomId: string, local: LocalTimer, mark: number): void {
    if (local.state.status !== 'running') return;
    const at = local.state.endAt - mark * 1000;
    // At most 5 s away: there is a tick at every multiple of 5.
    local.timeout = setTimeout(() => this.onTimeout(roomId, local, mark), Math.max(at - this.now(), 0));
    local.timeout.unref();
  }

  private onTimeout(roomId: string, local: LocalTimer, mark: number): void {
    local.timeout = undefined;
    const { state } = local;
    if (this.rooms.get(roomId) !== local || state.status !== 'running') return; // superseded
    const now = this.now();
    const at = state.endAt - mark * 1000;
    if (now < at) return this.arm(roomId, local, mark); // fired early (clock granularity)

    if (mark === 0) {
      this.rooms.delete(roomId); // once per pod: nothing re-arms it, only a new state does
      this.hub.deliverLocal(roomId, frame('timer_ended', { phase: state.phase }));
      return;
    }
    // Skip a tick we are a second or more late for (event loop stall, suspended process).
    if (now < at + 1000) this.hub.deliverLocal(roomId, frame('timer_tick', { remaining_seconds: mark, phase: state.phase }));
    this.arm(roomId, local, nextMark(state.endAt - now));
  }
}

const NO_CHANGE: TimerCommandResult = { ok: true, sent: Promise.resolve(OK) };

function badMessage(message: string): TimerCommandResult {
  return { ok: false, code: 'bad_message', message };
}
