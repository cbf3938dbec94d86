/**
 * Room history kept in the process, for the memory broker (BUS_TYPE=memory and tests): one
 * log per broker, shared by every "pod" on it. An append assigns the room's next offset and
 * publishes the event's frames on the broker in the same synchronous step, so every pod
 * receives a room's events in offset order, as with the real stores.
 */
import { randomUUID } from 'node:crypto';
import type { AppendItem, AppendOutcome, HistoryLimits, HistoryPage, HistoryPosition, HistoryStore, StoredEvent } from './history.js';
import type { StreamKind } from './types.js';

interface Entry extends StoredEvent {
  at: number;
  key: string | undefined;
}

interface RoomLog {
  last: number;
  /** Highest offset that left the history (trimmed by size or age). */
  trimmedThrough: number;
  events: Entry[];
  ids: Map<string, number>;
}

export class MemoryHistory implements HistoryStore {
  /** Names this broker's history: a new broker (a restarted process) is a new epoch. */
  readonly epoch = randomUUID();
  private readonly rooms = new Map<string, RoomLog>();
  private limits: HistoryLimits = { size: 1_000, ttlS: 86_400 };

  constructor(
    private readonly publish: (stream: StreamKind, payload: string) => void,
    private readonly now: () => number = Date.now,
  ) {}

  async open(limits: HistoryLimits): Promise<void> {
    this.limits = limits;
  }

  async append(items: readonly AppendItem[]): Promise<AppendOutcome[]> {
    return items.map((item) => this.appendOne(item));
  }

  async read(roomId: string, after: number, limit: number): Promise<HistoryPage> {
    const log = this.log(roomId);
    this.expire(log);
    const events = log.events.filter((e) => e.offset > after).slice(0, limit);
    return {
      epoch: this.epoch,
      newest: log.last,
      events: events.map(({ offset, payload }) => ({ offset, payload })),
      complete: after >= log.trimmedThrough,
    };
  }

  async position(roomId: string): Promise<HistoryPosition> {
    return { offset: this.rooms.get(roomId)?.last ?? 0, epoch: this.epoch };
  }

  private appendOne(item: AppendItem): AppendOutcome {
    const log = this.log(item.roomId);
    this.expire(log);
    const key = item.id === undefined ? undefined : `${item.userId}\u0000${item.id}`;
    const original = key === undefined ? undefined : log.ids.get(key);
    if (original !== undefined) return { offset: original, epoch: this.epoch, duplicate: true };
    const offset = ++log.last;
    log.events.push({ offset, payload: item.payload, at: this.now(), key });
    if (key !== undefined) log.ids.set(key, offset);
    while (log.events.length > this.limits.size) this.drop(log);
    for (const f of item.frames(offset)) this.publish(f.stream, f.payload);
    return { offset, epoch: this.epoch, duplicate: false };
  }

  private log(roomId: string): RoomLog {
    let log = this.rooms.get(roomId);
    if (!log) this.rooms.set(roomId, (log = { last: 0, trimmedThrough: 0, events: [], ids: new Map() }));
    return log;
  }

  private expire(log: RoomLog): void {
    const oldest = this.now() - this.limits.ttlS * 1000;
    while (log.events.length > 0 && log.events[0]!.at < oldest) this.drop(log);
  }

  private drop(log: RoomLog): void {
    const e = log.events.shift()!;
    log.trimmedThrough = e.offset;
    if (e.key !== undefined) log.ids.delete(e.key);
  }
}
