/**
 * Who is present in which room, on which pod. Presence is counted per (room, user, pod):
 * a user is in a room while at least one pod holds them there, so a user with tabs on two
 * pods stays present until the last one goes. Every mutation returns the cluster-wide
 * transitions it caused, which is exactly what clients are told.
 */
import type { Participant } from './types.js';

export interface PresenceChange {
  roomId: string;
  userId: string;
  userName: string;
  /** `joined`: first pod to hold the user in the room; `left`: last pod gone. */
  kind: 'joined' | 'left';
}

interface UserEntry {
  userName: string;
  pods: Set<string>;
}

export class PresenceRegistry {
  /** roomId -> userId -> entry */
  private readonly rooms = new Map<string, Map<string, UserEntry>>();
  /** podId -> roomId -> Set<userId>: lets a pod's presence be listed or dropped at once */
  private readonly byPod = new Map<string, Map<string, Set<string>>>();

  add(podId: string, roomId: string, userId: string, userName: string): PresenceChange[] {
    let users = this.rooms.get(roomId);
    if (!users) this.rooms.set(roomId, (users = new Map()));
    let entry = users.get(userId);
    const isNew = !entry;
    if (!entry) users.set(userId, (entry = { userName, pods: new Set() }));
    if (userName) entry.userName = userName;
    if (entry.pods.has(podId)) return [];
    entry.pods.add(podId);
    let podRooms = this.byPod.get(podId);
    if (!podRooms) this.byPod.set(podId, (podRooms = new Map()));
    let podUsers = podRooms.get(roomId);
    if (!podUsers) podRooms.set(roomId, (podUsers = new Set()));
    podUsers.add(userId);
    return isNew ? [{ roomId, userId, userName: entry.userName, kind: 'joined' }] : [];
  }

  remove(podId: string, roomId: string, userId: string): PresenceChange[] {
    const users = this.rooms.get(roomId);
    const entry = users?.get(userId);
    if (!users || !entry?.pods.delete(podId)) return [];
    const podRooms = this.byPod.get(podId);
    const podUsers = podRooms?.get(roomId);
    podUsers?.delete(userId);
    if (podUsers?.size === 0) podRooms!.delete(roomId);
    if (podRooms?.size === 0) this.byPod.delete(podId);
    if (entry.pods.size > 0) return [];
    users.delete(userId);
    if (users.size === 0) this.rooms.delete(roomId);
    return [{ roomId, userId, userName: entry.userName, kind: 'left' }];
  }

  /** Drops everything a pod held (it died or said goodbye). */
  removePod(podId: string): PresenceChange[] {
    const changes: PresenceChange[] = [];
    for (const [roomId, userId] of this.entriesOf(podId)) changes.push(...this.remove(podId, roomId, userId));
    return changes;
  }

  /** Makes a pod's entries exactly `entries` (a sync snapshot), returning the difference. */
  replacePod(podId: string, entries: Iterable<[string, string, string]>): PresenceChange[] {
    const wanted = new Map<string, [string, string, string]>();
    for (const e of entries) wanted.set(`${e[0]}\u0000${e[1]}`, e);
    const changes: PresenceChange[] = [];
    for (const [roomId, userId] of this.entriesOf(podId)) {
      if (!wanted.has(`${roomId}\u0000${userId}`)) changes.push(...this.remove(podId, roomId, userId));
    }
    for (const [roomId, userId, userName] of wanted.values()) changes.push(...this.add(podId, roomId, userId, userName));
    return changes;
  }

  /** Every (roomId, userId, userName) a pod holds. */
  entriesOf(podId: string): Array<[string, string, string]> {
    const out: Array<[string, string, string]> = [];
    for (const [roomId, userIds] of this.byPod.get(podId) ?? []) {
      for (const userId of userIds) out.push([roomId, userId, this.rooms.get(roomId)!.get(userId)!.userName]);
    }
    return out;
  }

  participants(roomId: string): Participant[] {
    return [...(this.rooms.get(roomId) ?? [])].map(([userId, e]) => ({ userId, userName: e.userName }));
  }

  has(roomId: string, userId: string): boolean {
    return this.rooms.get(roomId)?.has(userId) ?? false;
  }

  hasPod(podId: string, roomId: string, userId: string): boolean {
    return this.rooms.get(roomId)?.get(userId)?.pods.has(podId) ?? false;
  }

  podHoldsRoom(podId: string, roomId: string): boolean {
    return this.byPod.get(podId)?.has(roomId) ?? false;
  }

  roomIsEmpty(roomId: string): boolean {
    return !this.rooms.has(roomId);
  }

  get roomCount(): number {
    return this.rooms.size;
  }

  /** Number of distinct (room, user) pairs in the cluster. */
  get presenceCount(): number {
    let n = 0;
    for (const users of this.rooms.values()) n += users.size;
    return n;
  }

  pods(): string[] {
    return [...this.byPod.keys()];
  }
}
