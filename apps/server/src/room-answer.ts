/**
 * Answers a join (CONTRACT sections 4 and 8): `room_state` with the room's position, then,
 * when the client came back with `since`, exactly the events it missed, then live events
 * with no gap and no duplicate.
 *
 * The race between reading history and live delivery is closed in the hub: the client is in
 * the room (and held) before history is read, so every live event that arrives meanwhile
 * waits; once room_state and the replay are out, the held frames follow, skipping events at
 * or below the last offset sent.
 */
import { eventFrameJson } from '@retrotro/bus-core/internal';
import type { HistoryPosition, MessageBus } from '@retrotro/bus-core';
import type { Logger } from 'pino';
import type { Client, Hub } from './hub.js';
import { errorFrame, isObject } from './protocol.js';
import type { TimerService } from './timer.js';

export interface Since {
  offset: number;
  epoch: string;
}

/** `since` as a client may send it, or a reason it is malformed. */
export function parseSince(v: unknown): { ok: true; since: Since | undefined } | { ok: false; reason: string } {
  if (v === undefined || v === null) return { ok: true, since: undefined };
  if (!isObject(v) || !Number.isSafeInteger(v.offset) || (v.offset as number) < 0 || typeof v.epoch !== 'string') {
    return { ok: false, reason: 'join_room payload.since must be {"offset": integer >= 0, "epoch": string}' };
  }
  return { ok: true, since: { offset: v.offset as number, epoch: v.epoch } };
}

export class RecoveryCounters {
  recovered = 0;
  notRecovered = 0;
  replayedEvents = 0;
  historyErrors = 0;
}

/** Most events replayed in one recovery, whatever HISTORY_SIZE says. */
const MAX_REPLAY = 100_000;
/** Events per history read: one read per page, and JetStream makes a consumer per read. */
const PAGE = 5_000;

export class RoomAnswer {
  readonly counters = new RecoveryCounters();

  constructor(
    private readonly hub: Hub,
    private readonly bus: MessageBus,
    private readonly timers: TimerService,
    private readonly log: Logger,
  ) {}

  /** Sends room_state (and the replay) to a client that is in `roomId`. */
  answer(client: Client, roomId: string, since: Since | undefined): void {
    if (!this.bus.historyEnabled) {
      this.hub.send(client, this.roomState(roomId, null, since === undefined ? undefined : false));
      return;
    }
    const joinSeq = client.joinSeq;
    // What it asks for is what it gets, even again (a rejoin of the same room).
    this.hub.hold(client, since?.offset ?? 0);
    void this.recover(roomId, since).then(
      ({ position, recovered, replay, floor }) => {
        if (client.joinSeq !== joinSeq || client.roomId !== roomId) return; // left or rejoined meanwhile
        this.hub.send(client, this.roomState(roomId, position, since === undefined ? undefined : recovered));
        for (const e of replay) this.hub.sendEvent(client, eventFrameJson(e.payload, e.offset), e.offset);
        this.hub.release(client, floor);
      },
      (e: unknown) => {
        this.counters.historyErrors++;
        this.log.warn({ err: e, roomId }, 'history unavailable while answering a join');
        if (client.joinSeq !== joinSeq || client.roomId !== roomId) return;
        // Live delivery goes on; the client is told its position is unknown and may rejoin.
        this.hub.send(client, this.roomState(roomId, null, since === undefined ? undefined : false));
        this.hub.send(client, errorFrame('history_unavailable', 'room history could not be read; live events continue'));
        this.hub.release(client, 0);
      },
    );
  }

  private async recover(roomId: string, since: Since | undefined) {
    if (since === undefined) {
      const position = (await this.bus.historyPosition(roomId)) as HistoryPosition;
      // Events up to the position are the past the client did not ask for.
      return { position, recovered: false, replay: [], floor: position.offset };
    }
    let page = await this.bus.readHistory(roomId, since.offset, PAGE);
    const recovered = page.epoch === since.epoch && page.complete && since.offset <= page.newest;
    if (!recovered) {
      this.counters.notRecovered++;
      return { position: { offset: page.newest, epoch: page.epoch }, recovered, replay: [], floor: page.newest };
    }
    const replay = [...page.events];
    while (page.events.length === PAGE && replay.length < MAX_REPLAY) {
      page = await this.bus.readHistory(roomId, replay.at(-1)!.offset, PAGE);
      replay.push(...page.events);
    }
    this.counters.recovered++;
    this.counters.replayedEvents += replay.length;
    // Live events after the last one replayed follow from the hold, even if `newest` was read
    // a little later than the events (a store read in several steps).
    const floor = replay.at(-1)?.offset ?? since.offset;
    return { position: { offset: Math.max(page.newest, floor), epoch: page.epoch }, recovered, replay, floor };
  }

  private roomState(roomId: string, position: HistoryPosition | null, recovered: boolean | undefined) {
    return {
      type: 'room_state',
      payload: {
        roomId,
        participants: this.bus.getRoomClients(roomId),
        timer: this.timers.view(roomId),
        position,
        ...(recovered === undefined ? {} : { recovered }),
      },
    };
  }
}
