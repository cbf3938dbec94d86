/**
 * WebSocket clients of the pods: a sender that publishes numbered, timestamped events and
 * receivers that read them back without a full JSON parse (a 10 KB frame times 20 sockets
 * would otherwise cost the bench more than the server it measures).
 */
import { randomUUID } from 'node:crypto';
import WebSocket from 'ws';
import { nowUs } from '../clock.js';
import { podWsUrl, type PodEndpoint } from '../pods.js';
import { issueToken } from '../token.js';
import { textPadding } from '../padding.js';

const JOIN_TIMEOUT_MS = 10_000;

/** What `parseEvent` found in a frame. */
export const NOT_EVENT = -1;
export const PROBE = -2;

const EVENT_PREFIX = Buffer.from('{"type":"event"');
const DATA_KEY = Buffer.from('"data":"');
const DOT = 0x2e;
const P = 0x70;

/** Send time (µs, see clock.ts) of the last event `parseEvent` returned. */
export let parsedSentUs = 0;

/** Sequence number of an event frame from a bench sender, PROBE, or NOT_EVENT. */
export function parseEvent(buf: Buffer): number {
  if (buf.length < 40 || buf.compare(EVENT_PREFIX, 0, EVENT_PREFIX.length, 0, EVENT_PREFIX.length) !== 0) return NOT_EVENT;
  let i = buf.indexOf(DATA_KEY, EVENT_PREFIX.length);
  if (i < 0) return NOT_EVENT;
  i += DATA_KEY.length;
  if (buf[i] === P) return PROBE;
  let seq = 0;
  let c: number;
  while ((c = buf[i++]!) !== DOT) {
    if (c < 0x30 || c > 0x39) return NOT_EVENT;
    seq = seq * 10 + (c - 0x30);
  }
  let us = 0;
  while ((c = buf[i++]!) !== DOT) {
    if (c < 0x30 || c > 0x39) return NOT_EVENT;
    us = us * 10 + (c - 0x30);
  }
  parsedSentUs = us;
  return seq;
}

/** One connected, authenticated socket that has joined a room. */
export class RoomSocket {
  closeCode: number | undefined;
  private constructor(
    readonly ws: WebSocket,
    readonly name: string,
    readonly userId: string,
  ) {
    ws.on('close', (code) => (this.closeCode = code));
  }

  static async open(pod: PodEndpoint, roomId: string, name: string): Promise<RoomSocket> {
    const userId = randomUUID();
    const ws = new WebSocket(podWsUrl(pod, issueToken(name, userId)), { perMessageDeflate: false });
    const socket = new RoomSocket(ws, name, userId);
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${name}: no room_state from ${pod.name} within ${JOIN_TIMEOUT_MS} ms`)), JOIN_TIMEOUT_MS);
      ws.once('error', (e) => {
        clearTimeout(timer);
        reject(e);
      });
      ws.once('open', () => ws.send(JSON.stringify({ type: 'join_room', payload: { roomId } })));
      const onMessage = (data: Buffer) => {
        if (data.toString('utf8', 0, 40).startsWith('{"type":"room_state"')) {
          clearTimeout(timer);
          ws.off('message', onMessage);
          resolve();
        }
      };
      ws.on('message', onMessage);
    });
    ws.on('error', () => {}); // a socket dying mid-run shows up as loss, not as a crash
    return socket;
  }

  get bufferedAmount(): number {
    return this.ws.bufferedAmount;
  }

  close(): void {
    this.ws.terminate();
  }
}

/** Builds publish frames whose delivered event frame is about `eventBytes` long. */
export class EventWriter {
  private readonly pad: string;

  constructor(
    private readonly socket: RoomSocket,
    eventBytes: number,
  ) {
    // What receivers get: {"type":"event","payload":{"event":"b","data":"<data>","from":{...}}}
    const overhead = JSON.stringify({
      type: 'event',
      payload: { event: 'b', data: '', from: { userId: socket.userId, userName: socket.name } },
    }).length;
    const header = 8 + 1 + 13 + 1; // typical "<seq>.<µs>."
    this.pad = textPadding(Math.max(1, eventBytes - overhead - header));
  }

  send(seq: number): void {
    this.socket.ws.send(`{"type":"publish","payload":{"event":"b","data":"${seq}.${nowUs()}.${this.pad}"}}`);
  }

  probe(): void {
    this.socket.ws.send('{"type":"publish","payload":{"event":"b","data":"probe"}}');
  }
}

/** Opens `count` receivers on `pod` in `roomId`, a few at a time. */
export async function openReceivers(pod: PodEndpoint, roomId: string, count: number, label: string): Promise<RoomSocket[]> {
  const out: RoomSocket[] = [];
  for (let i = 0; i < count; i += 10) {
    const batch = Array.from({ length: Math.min(10, count - i) }, (_, j) => RoomSocket.open(pod, roomId, `${label}${i + j}`));
    out.push(...(await Promise.all(batch)));
  }
  return out;
}

export function closeAll(sockets: RoomSocket[]): void {
  for (const s of sockets) s.close();
}
