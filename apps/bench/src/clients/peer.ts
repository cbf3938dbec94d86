/**
 * Senders and receivers for the peer comparison, one interface over two servers: our pods
 * (WebSocket protocol of CONTRACT sections 4 and 8) and Socket.IO nodes (see ../sio/).
 *
 * Event data is `<seq>.<send time µs>.<padding>` on both, padded so that the frame a receiver
 * gets is about `eventBytes` long on the wire. Receivers never parse a whole frame (see ws.ts);
 * our receivers also read the event's history offset from the frame's tail.
 *
 * Our receiver recovers: when the server cuts it (1013, slow consumer) or the socket drops,
 * it reconnects to the same pod as the same user and joins with `since` = the last offset it
 * got and the room's epoch (CONTRACT section 8); what the replay brings counts as delivered
 * (and as recovered). With history off there is nothing to recover from: it rejoins, and what
 * it missed is lost.
 */
import { randomUUID } from 'node:crypto';
import WebSocket from 'ws';
import { nowUs, sleep } from '../clock.js';
import { podWsUrl } from '../pods.js';
import { issueToken } from '../token.js';
import { NOT_EVENT, parseEvent, parsedSentUs, PROBE } from './ws.js';
import { textPadding } from '../padding.js';

export type ServerKind = 'ours' | 'sio';

/** Where a client connects: plain data, so it can be handed to a worker thread. */
export interface PeerEndpoint {
  kind: ServerKind;
  name: string;
  port: number;
}

/** Called for every bench event a receiver gets (seq >= 0), and for probes (seq = PROBE). */
export type DeliveryHandler = (seq: number, sentUs: number) => void;

export interface Receiver {
  listen(handler: DeliveryHandler | undefined): void;
  /** Times the server closed or dropped this receiver. */
  readonly cuts: number;
  /** Rejoins answered `recovered: true`. */
  readonly recoveries: number;
  /** Events delivered by a replay after a rejoin (counted as delivered too). */
  readonly recoveredEvents: number;
  /** Close codes of the cuts (e.g. 1013). */
  readonly cutCodes: number[];
  close(): void;
}

export interface Sender {
  /** Sends event `seq` (padded) or a probe. */
  send(seq: number): void;
  probe(): void;
  /** Error frames the sender got, by code (ours: relay_failed...; Socket.IO tells nothing). */
  readonly errors: Record<string, number>;
  close(): void;
}

const JOIN_TIMEOUT_MS = 10_000;

/** The padding that makes `frameOverhead + data` about `eventBytes` long. */
export function padFor(eventBytes: number, frameOverhead: number): string {
  const header = 8 + 1 + 13 + 1; // typical "<seq>.<µs>."
  return textPadding(Math.max(1, eventBytes - frameOverhead - header));
}

/** Offset at the tail of an event frame (`..."offset":123}}`), or 0. */
export function tailOffset(buf: Buffer): number {
  let i = buf.length - 3; // before the closing `}}`
  let offset = 0;
  let scale = 1;
  while (i >= 0) {
    const c = buf[i]!;
    if (c < 0x30 || c > 0x39) break;
    offset += (c - 0x30) * scale;
    scale *= 10;
    i--;
  }
  return scale > 1 && buf[i] === 0x3a /* : */ ? offset : 0;
}

const ROOM_STATE = '{"type":"room_state"';
const ERROR = '{"type":"error"';

interface Position {
  offset: number;
  epoch: string;
}

/** One of our sockets that joined a room; reconnects with `since` when cut. */
export class OursReceiver implements Receiver {
  cuts = 0;
  recoveries = 0;
  notRecovered = 0;
  recoveredEvents = 0;
  cutCodes: number[] = [];
  private ws!: WebSocket;
  private handler: DeliveryHandler | undefined;
  private closing = false;
  /** Newest offset received, and the room's epoch (from room_state). */
  private last: Position | undefined;
  /** After a recovered rejoin: offsets up to this one are the replay. */
  private replayUpTo = 0;

  private constructor(
    private readonly endpoint: PeerEndpoint,
    private readonly roomId: string,
    private readonly name: string,
    private readonly userId: string,
  ) {}

  static async open(endpoint: PeerEndpoint, roomId: string, name: string): Promise<OursReceiver> {
    const r = new OursReceiver(endpoint, roomId, name, randomUUID());
    await r.connect();
    return r;
  }

  /** Newest position this receiver knows (undefined with history off). */
  get position(): Position | undefined {
    return this.last;
  }

  private connect(): Promise<void> {
    const ws = new WebSocket(podWsUrl(this.endpoint, issueToken(this.name, this.userId)), { perMessageDeflate: false });
    this.ws = ws;
    const rejoin = this.last !== undefined;
    return new Promise<void>((resolve, reject) => {
      let joined = false;
      const timer = setTimeout(
        () => reject(new Error(`${this.name}: no room_state from ${this.endpoint.name} within ${JOIN_TIMEOUT_MS} ms`)),
        JOIN_TIMEOUT_MS,
      );
      ws.on('error', (e) => {
        if (!joined) {
          clearTimeout(timer);
          reject(e);
        }
      });
      ws.once('open', () => {
        const since = this.last && { offset: this.last.offset, epoch: this.last.epoch };
        ws.send(JSON.stringify({ type: 'join_room', payload: { roomId: this.roomId, ...(since && { since }) } }));
      });
      ws.on('message', (data: Buffer) => {
        const seq = parseEvent(data);
        if (seq !== NOT_EVENT) {
          if (seq >= 0 && this.last) {
            const offset = tailOffset(data);
            if (offset > 0) {
              if (offset <= this.replayUpTo) this.recoveredEvents++;
              this.last.offset = offset;
            }
          }
          this.handler?.(seq, parsedSentUs);
          return;
        }
        if (data.toString('latin1', 0, ROOM_STATE.length) === ROOM_STATE) {
          const payload = (JSON.parse(data.toString()) as { payload: { position?: Position | null; recovered?: boolean } }).payload;
          if (payload.recovered === true) {
            this.recoveries++;
            this.replayUpTo = payload.position?.offset ?? 0;
          } else if (rejoin) {
            this.notRecovered++;
          }
          if (payload.position) this.last = { offset: this.last?.offset ?? payload.position.offset, epoch: payload.position.epoch };
          if (!joined) {
            joined = true;
            clearTimeout(timer);
            resolve();
          }
        }
      });
      ws.on('close', (code) => {
        if (!joined) {
          clearTimeout(timer);
          reject(new Error(`${this.name}: closed (${code}) before room_state`));
          return;
        }
        if (this.closing) return;
        this.cuts++;
        this.cutCodes.push(code);
        void this.reconnect();
      });
    });
  }

  /** Back as the same user, asking for what it missed; retried (a pod may be busy) for about 10 s. */
  private async reconnect(): Promise<void> {
    for (let attempt = 0; attempt < 30 && !this.closing; attempt++) {
      try {
        await this.connect();
        return;
      } catch {
        await sleep(Math.min(500, 10 * 2 ** attempt));
      }
    }
  }

  listen(handler: DeliveryHandler | undefined): void {
    this.handler = handler;
  }

  close(): void {
    this.closing = true;
    this.ws.terminate();
  }
}

/** Our sender: publishes without ids (only failures are told) and counts error frames. */
export class OursSender implements Sender {
  errors: Record<string, number> = {};
  private readonly pad: string;
  private readonly head: string;

  private constructor(
    private readonly ws: WebSocket,
    readonly userId: string,
    eventBytes: number,
  ) {
    const overhead = JSON.stringify({ type: 'event', payload: { event: 'b', data: '', from: { userId, userName: 'sender' } } }).length;
    this.pad = padFor(eventBytes, overhead);
    this.head = '{"type":"publish","payload":{"event":"b","data":"';
    ws.on('message', (data: Buffer) => {
      if (data.toString('latin1', 0, ERROR.length) !== ERROR) return;
      const code = /"code":"([^"]+)"/.exec(data.toString())?.[1] ?? 'unknown';
      this.errors[code] = (this.errors[code] ?? 0) + 1;
    });
  }

  static async open(endpoint: PeerEndpoint, roomId: string, eventBytes: number): Promise<OursSender> {
    const userId = randomUUID();
    const ws = new WebSocket(podWsUrl(endpoint, issueToken('sender', userId)), { perMessageDeflate: false });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`sender: no room_state from ${endpoint.name} within ${JOIN_TIMEOUT_MS} ms`)), JOIN_TIMEOUT_MS);
      ws.once('error', (e) => {
        clearTimeout(timer);
        reject(e);
      });
      ws.once('open', () => ws.send(JSON.stringify({ type: 'join_room', payload: { roomId } })));
      const onMessage = (data: Buffer) => {
        if (data.toString('latin1', 0, ROOM_STATE.length) === ROOM_STATE) {
          clearTimeout(timer);
          ws.off('message', onMessage);
          resolve();
        }
      };
      ws.on('message', onMessage);
    });
    ws.on('error', () => {});
    return new OursSender(ws, userId, eventBytes);
  }

  send(seq: number): void {
    this.ws.send(`${this.head}${seq}.${nowUs()}.${this.pad}"}}`);
  }

  probe(): void {
    this.ws.send(`${this.head}probe"}}`);
  }

  close(): void {
    this.ws.terminate();
  }
}

/** Sequence number and send time from event data `<seq>.<µs>.<pad>` (or PROBE / NOT_EVENT). */
export function parseData(data: string): { seq: number; sentUs: number } {
  if (data.charCodeAt(0) === 0x70 /* p */) return { seq: PROBE, sentUs: 0 };
  const a = data.indexOf('.');
  const b = data.indexOf('.', a + 1);
  if (a <= 0 || b <= a) return { seq: NOT_EVENT, sentUs: 0 };
  return { seq: Number(data.slice(0, a)), sentUs: Number(data.slice(a + 1, b)) };
}
