/**
 * Room state replicated to every pod (the timer is the first user). Each entry is a value
 * with a Lamport version; the higher (counter, podId) wins everywhere, so concurrent writes
 * on two pods converge to the same value on every pod without coordination.
 */
import type { StateEntry, StateVersion } from './envelopes.js';

export function compareVersions(a: StateVersion, b: StateVersion): number {
  if (a.counter !== b.counter) return a.counter - b.counter;
  return a.podId < b.podId ? -1 : a.podId > b.podId ? 1 : 0;
}

export class RoomStateStore {
  /** roomId -> key -> entry */
  private readonly rooms = new Map<string, Map<string, StateEntry>>();
  private clock = 0;

  get(roomId: string, key: string): StateEntry | undefined {
    return this.rooms.get(roomId)?.get(key);
  }

  /** A fresh version that beats everything this pod has seen. */
  nextVersion(podId: string): StateVersion {
    return { counter: ++this.clock, podId };
  }

  /** Applies an entry if it is newer than what we hold. Returns true if it changed the store. */
  apply(entry: StateEntry): boolean {
    this.clock = Math.max(this.clock, entry.version.counter);
    const current = this.get(entry.roomId, entry.key);
    if (current && compareVersions(entry.version, current.version) <= 0) return false;
    let keys = this.rooms.get(entry.roomId);
    if (!keys) this.rooms.set(entry.roomId, (keys = new Map()));
    // A deletion keeps its version as a tombstone, so an older write arriving late loses.
    keys.set(entry.key, entry);
    return true;
  }

  /** Forgets a room entirely (nobody left in it anywhere). Returns the keys that had a value. */
  dropRoom(roomId: string): string[] {
    const keys = this.rooms.get(roomId);
    this.rooms.delete(roomId);
    return keys ? [...keys.values()].filter((e) => e.value !== null).map((e) => e.key) : [];
  }

  all(): StateEntry[] {
    const out: StateEntry[] = [];
    for (const keys of this.rooms.values()) out.push(...keys.values());
    return out;
  }

  get roomCount(): number {
    return this.rooms.size;
  }
}
