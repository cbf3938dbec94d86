/**
 * Replicated room state as the relay uses it: the last-writer-wins store plus the
 * listeners told of every change. Entries travel on the control stream (`state` for one
 * write, `sync` for everything a pod holds); a room's state is dropped on every pod once
 * nobody is present in it anywhere.
 */
import type { StateEntry } from './envelopes.js';
import { toError } from './errors.js';
import type { Logger } from './logger.js';
import { RoomStateStore } from './room-state.js';

export type StateListener = (roomId: string, value: unknown) => void;

export class ReplicatedState {
  private readonly store = new RoomStateStore();
  private readonly watchers = new Map<string, Set<StateListener>>();

  constructor(
    private readonly podId: string,
    private readonly log: Logger,
  ) {}

  get roomCount(): number {
    return this.store.roomCount;
  }

  /** A local write: applied here at once; the caller publishes the returned entry. */
  write(roomId: string, key: string, value: unknown): StateEntry {
    const entry: StateEntry = { roomId, key, value: value ?? null, version: this.store.nextVersion(this.podId) };
    this.apply(entry);
    return entry;
  }

  get(roomId: string, key: string): unknown {
    return this.store.get(roomId, key)?.value ?? undefined;
  }

  watch(key: string, listener: StateListener): () => void {
    let set = this.watchers.get(key);
    if (!set) this.watchers.set(key, (set = new Set()));
    set.add(listener);
    return () => set.delete(listener);
  }

  /** An entry from another pod (or our own write): kept if newer, listeners told. */
  apply(entry: StateEntry): void {
    if (this.store.apply(entry)) this.notify(entry.roomId, entry.key, entry.value ?? undefined);
  }

  /** Nobody is left in the room anywhere: forget its state, telling the listeners. */
  dropRoom(roomId: string): void {
    for (const key of this.store.dropRoom(roomId)) this.notify(roomId, key, undefined);
  }

  all(): StateEntry[] {
    return this.store.all();
  }

  private notify(roomId: string, key: string, value: unknown): void {
    for (const listener of this.watchers.get(key) ?? []) {
      try {
        listener(roomId, value === null ? undefined : value);
      } catch (e) {
        this.log.error({ err: toError(e), roomId, key }, 'room state listener failed');
      }
    }
  }
}
