/**
 * Who is in the cluster and who is present where: this pod's heartbeats, expiry of silent
 * pods, the presence sync after (re)connecting (announce, then a short window for the
 * answers before we call ourselves ready), presence envelopes and goodbyes.
 *
 * Go pods never heartbeat, never sync and ignore our control stream. So their users are
 * relayed in our sync snapshots (a pod started after a Go user joined still lists them), and
 * when we expire a dead pod of ours, one surviving pod tells the Go pods, with Go-style
 * presence leaves, which of its users are gone.
 */
import { BusError, toError } from './errors.js';
import type { ControlEnvelope, PresenceEnvelope, RelayedTuple } from './envelopes.js';
import type { Logger } from './logger.js';
import type { Outbox } from './outbox.js';
import type { PeerTable } from './peer-table.js';
import { PresenceRegistry, type PresenceChange } from './presence-registry.js';
import type { ReplicatedState } from './replicated-state.js';
import type { BusStats } from './stats.js';
import type { Participant, PublishResult } from './types.js';

export interface MembershipOptions {
  podId: string;
  /** Random per process: tells our own heartbeats from those of a pod with the same podId. */
  instance: string;
  peers: PeerTable;
  outbox: Outbox;
  state: ReplicatedState;
  stats: BusStats;
  logger: Logger;
  heartbeatMs: number;
  ttlMs: number;
  syncWindowMs: number;
  /** Cluster-wide joins and leaves, to tell the local sockets. */
  changed: (changes: PresenceChange[]) => void;
  /** Another pod now holds a user this pod holds too: a pending disconnect grace can end. */
  heldElsewhere: (roomId: string, userId: string) => void;
  /** A pod is gone (expired or said goodbye): drop what else we keep of it. */
  forgotten: (podId: string) => void;
}

export interface WhenReadyOptions {
  /** Reject with a `BusError` code `timeout` after this long. */
  timeoutMs?: number;
  /** Reject with the signal's reason when it aborts. */
  signal?: AbortSignal;
}

interface Waiter {
  resolve: () => void;
  reject: (e: Error) => void;
}

export class Membership {
  readonly registry = new PresenceRegistry();
  private connected = false;
  private synced = false;
  private stopped = false;
  private timers: NodeJS.Timeout[] = [];
  private syncTimer: NodeJS.Timeout | undefined;
  private waiters = new Set<Waiter>();
  /** How often silent pods are looked for: half a heartbeat. */
  private readonly sweepMs: number;
  private lastSweep = 0;
  /** Pods that stopped with a grace, until it ends. */
  private readonly departing = new Map<string, NodeJS.Timeout>();

  constructor(private readonly o: MembershipOptions) {
    this.sweepMs = Math.max(25, Math.floor(o.heartbeatMs / 2));
  }

  get isConnected(): boolean {
    return this.connected;
  }

  get ready(): boolean {
    return this.connected && this.synced;
  }

  whenReady(options: WhenReadyOptions = {}): Promise<void> {
    if (this.stopped) return Promise.reject(new BusError('stopped', 'bus is stopped'));
    if (this.ready) return Promise.resolve();
    const { signal, timeoutMs } = options;
    if (signal?.aborted) return Promise.reject(toError(signal.reason));
    return new Promise<void>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const onAbort = () => settle(() => reject(toError(signal!.reason)));
      const settle = (then: () => void) => {
        this.waiters.delete(waiter);
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        then();
      };
      const waiter: Waiter = { resolve: () => settle(resolve), reject: (e) => settle(() => reject(e)) };
      this.waiters.add(waiter);
      signal?.addEventListener('abort', onAbort, { once: true });
      if (timeoutMs !== undefined) {
        timer = setTimeout(() => waiter.reject(new BusError('timeout', `bus not ready within ${timeoutMs} ms`)), timeoutMs);
      }
    });
  }

  /** The transport is connected for the first time: heartbeats and expiry start. */
  start(): void {
    this.connected = true;
    const every = (ms: number, fn: () => void) => {
      const t = setInterval(fn, ms);
      t.unref();
      this.timers.push(t);
    };
    every(this.o.heartbeatMs, () => {
      if (this.connected) void this.sendControl({ kind: 'heartbeat', podId: this.o.podId, instance: this.o.instance });
    });
    this.lastSweep = Date.now();
    every(this.sweepMs, () => this.expireSilentPods());
    this.announce();
  }

  /**
   * Says goodbye while we still can, then stops. With `graceMs` the other pods keep our users
   * present that long (they reconnect elsewhere without a leave), and the one that speaks for
   * the survivors tells Go pods afterwards; without, or with no other pod of ours to do it,
   * our users leave at once, Go pods told by our own presence leaves.
   */
  async stop(graceMs = 0): Promise<void> {
    if (this.connected) {
      const { podId } = this.o;
      const handover = graceMs > 0 && this.o.peers.expirablePods().length > 0;
      const sent = handover
        ? []
        : this.registry
            .entriesOf(podId)
            .map(([roomId, userId]) => this.o.outbox.sendEnvelope('presence', { podId, roomId, userId, action: 'leave' }));
      sent.push(this.sendControl({ kind: 'bye', podId, ...(handover ? { graceMs } : {}) }));
      await Promise.all(sent);
    }
    for (const t of this.departing.values()) clearTimeout(t);
    this.departing.clear();
    this.stopped = true;
    this.connected = false;
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    clearTimeout(this.syncTimer);
    for (const w of [...this.waiters]) w.reject(new BusError('stopped', 'bus was stopped before it was ready'));
  }

  lost(): void {
    if (!this.connected) return;
    this.connected = false;
    this.synced = false;
    clearTimeout(this.syncTimer);
  }

  regained(): void {
    if (this.connected) return;
    this.connected = true;
    // The silence was our outage, not theirs: restart every pod's TTL clock.
    this.o.peers.resetClocks();
    this.announce();
  }

  // ---- this pod's users ----------------------------------------------------------------

  join(roomId: string, participant: Participant): Promise<PublishResult> {
    const { podId } = this.o;
    this.o.changed(this.registry.add(podId, roomId, participant.userId, participant.userName));
    const env: PresenceEnvelope = { podId, roomId, userId: participant.userId, userName: participant.userName, action: 'join' };
    return this.o.outbox.sendEnvelope('presence', env);
  }

  leave(roomId: string, userId: string): Promise<PublishResult> {
    const { podId } = this.o;
    this.o.changed(this.registry.remove(podId, roomId, userId));
    return this.o.outbox.sendEnvelope('presence', { podId, roomId, userId, action: 'leave' });
  }

  holdsRoom(roomId: string): boolean {
    return this.registry.podHoldsRoom(this.o.podId, roomId);
  }

  // ---- from other pods -----------------------------------------------------------------

  onPresence(env: PresenceEnvelope): void {
    if (env.action === 'join') {
      this.o.changed(this.registry.add(env.podId, env.roomId, env.userId, env.userName ?? ''));
      if (this.registry.hasPod(this.o.podId, env.roomId, env.userId)) this.o.heldElsewhere(env.roomId, env.userId);
    } else {
      this.o.changed(this.registry.remove(env.podId, env.roomId, env.userId));
    }
  }

  onControl(env: ControlEnvelope): void {
    switch (env.kind) {
      case 'heartbeat':
        return;
      case 'sync_request':
        if (env.target === undefined || env.target === this.o.podId) void this.sendSnapshot();
        return;
      case 'sync':
        this.o.changed(this.registry.replacePod(env.podId, env.presence));
        this.takeRelayed(env.relayed ?? []);
        for (const entry of env.state) if (!this.registry.roomIsEmpty(entry.roomId)) this.o.state.apply(entry);
        return;
      case 'state':
        this.o.state.apply(env.entry);
        return;
      case 'bye':
        if (env.graceMs) return this.depart(env.podId, env.graceMs);
        this.forget(env.podId);
        return;
    }
  }

  /** Users of Go pods as another pod knows them: added, never removed (only their pod's leave does that). */
  private takeRelayed(relayed: RelayedTuple[]): void {
    for (const [podId, roomId, userId, userName] of relayed) {
      if (podId === this.o.podId || this.o.peers.isExpirable(podId)) continue;
      this.o.peers.noteSilent(podId);
      this.o.changed(this.registry.add(podId, roomId, userId, userName));
    }
  }

  // ---- sync and expiry -----------------------------------------------------------------

  /**
   * After (re)connecting: tell everyone who we hold (they may have expired us or missed our
   * changes), ask everyone for theirs, and call ourselves ready once the answers are in.
   */
  private announce(): void {
    // Snapshot first: it introduces us, so the heartbeat that follows is not a stranger's.
    void this.sendSnapshot();
    void this.sendControl({ kind: 'heartbeat', podId: this.o.podId, instance: this.o.instance });
    void this.sendControl({ kind: 'sync_request', podId: this.o.podId });
    clearTimeout(this.syncTimer);
    this.syncTimer = setTimeout(() => {
      if (!this.connected) return;
      this.synced = true;
      for (const w of [...this.waiters]) w.resolve();
    }, this.o.syncWindowMs); // not unref'd: a script awaiting whenReady() must not exit early
  }

  requestSync(podId: string): void {
    void this.sendControl({ kind: 'sync_request', podId: this.o.podId, target: podId });
  }

  private sendSnapshot(): Promise<PublishResult> {
    const relayed: RelayedTuple[] = [];
    for (const podId of this.o.peers.silentPods()) {
      for (const [roomId, userId, userName] of this.registry.entriesOf(podId)) relayed.push([podId, roomId, userId, userName]);
    }
    return this.sendControl({
      kind: 'sync',
      podId: this.o.podId,
      presence: this.registry.entriesOf(this.o.podId),
      ...(relayed.length > 0 ? { relayed } : {}),
      state: this.o.state.all(),
    });
  }

  /**
   * Declares pods running our protocol silent for longer than the TTL dead. Two guards
   * against blaming others for our own stalls: a sweep that runs late (the event loop was
   * blocked) credits every peer with the lag, and the decision waits for setImmediate, so
   * heartbeats already waiting in our socket are read first.
   */
  private expireSilentPods(): void {
    if (!this.connected) return; // our own outage is not their death
    const now = Date.now();
    const lag = now - this.lastSweep - this.sweepMs;
    this.lastSweep = now;
    if (lag > this.o.heartbeatMs) this.o.peers.credit(lag);
    setImmediate(() => {
      if (!this.connected || this.stopped) return;
      for (const { podId, silentMs } of this.o.peers.silentSince(Date.now() - this.o.ttlMs)) {
        this.o.stats.podsExpired++;
        this.o.logger.warn({ podId, silentMs }, 'pod declared dead; removing its users');
        const gone = this.forget(podId);
        if (this.speaksForSurvivors()) this.tellGoPods(gone);
      }
    });
  }

  /**
   * A pod that stopped with a grace: never expired meanwhile (it is silent on purpose), its
   * users kept until the grace ends; those who reconnected elsewhere by then cause no leave.
   */
  private depart(podId: string, graceMs: number): void {
    this.o.peers.forget(podId);
    clearTimeout(this.departing.get(podId));
    const timer = setTimeout(() => {
      this.departing.delete(podId);
      const gone = this.forget(podId);
      if (this.speaksForSurvivors()) this.tellGoPods(gone);
    }, graceMs);
    timer.unref();
    this.departing.set(podId, timer);
  }

  /** Forgets a pod; returns the users that left the cluster with it. */
  private forget(podId: string): PresenceChange[] {
    this.o.peers.forget(podId);
    this.o.forgotten(podId);
    const changes = this.registry.removePod(podId);
    this.o.changed(changes);
    return changes;
  }

  /** The surviving pod with the lowest id speaks, so Go pods hear each leave once. */
  private speaksForSurvivors(): boolean {
    return this.o.peers.expirablePods().every((podId) => podId > this.o.podId);
  }

  /**
   * Go pods drop a remote user only on a presence leave, whoever sends it. We send it as
   * ours (no userName, as Go writes it); our pods ignore it, as we never held that user.
   */
  private tellGoPods(gone: PresenceChange[]): void {
    const { podId } = this.o;
    for (const c of gone) {
      if (c.kind !== 'left') continue;
      void this.o.outbox.sendEnvelope('presence', { podId, roomId: c.roomId, userId: c.userId, action: 'leave' });
    }
  }

  private sendControl(env: ControlEnvelope): Promise<PublishResult> {
    return this.o.outbox.sendEnvelope('control', env);
  }
}
