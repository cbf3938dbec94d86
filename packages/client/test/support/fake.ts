/**
 * Test support: a fake WebSocket (browser-style API, driven by the test as the server)
 * and helpers to connect a client and join a room under fake timers.
 */
import { vi } from 'vitest';
import { RetrotroClient, type RetrotroClientOptions, type Room, type WebSocketLike } from '../../src/index.js';

export interface Frame {
  type: string;
  payload?: any;
}

export class FakeSocket implements WebSocketLike {
  static all: FakeSocket[] = [];
  static get last(): FakeSocket {
    const ws = FakeSocket.all.at(-1);
    if (!ws) throw new Error('no socket was created');
    return ws;
  }
  static reset(): void {
    FakeSocket.all = [];
  }

  readyState = 0;
  onopen: ((ev: any) => void) | null = null;
  onmessage: ((ev: any) => void) | null = null;
  onclose: ((ev: any) => void) | null = null;
  onerror: ((ev: any) => void) | null = null;
  readonly sent: string[] = [];
  closedWith: number | undefined;

  constructor(readonly url: string) {
    FakeSocket.all.push(this);
  }

  send(data: string): void {
    if (this.readyState !== 1) throw new Error('InvalidStateError: not open');
    this.sent.push(data);
  }

  close(code?: number): void {
    this.closedWith = code;
    this.readyState = 3;
  }

  // --- the server's side ---

  open(): void {
    this.readyState = 1;
    this.onopen?.({ type: 'open' });
  }

  receive(type: string, payload?: unknown): void {
    this.onmessage?.({ data: JSON.stringify(payload === undefined ? { type } : { type, payload }) });
  }

  /** The connection fails or the server closes it. */
  drop(code = 1006): void {
    this.readyState = 3;
    this.onerror?.({ type: 'error' });
    this.onclose?.({ code, reason: '' });
  }

  get frames(): Frame[] {
    return this.sent.map((s) => JSON.parse(s) as Frame);
  }

  of(type: string): Frame[] {
    return this.frames.filter((f) => f.type === type);
  }

  get token(): string | null {
    return new URL(this.url).searchParams.get('token');
  }
}

/** Lets pending promise callbacks (token functions, the connect microtask) run. */
export async function flush(): Promise<void> {
  for (let i = 0; i < 20; i++) await Promise.resolve();
}

export function makeClient(options: Partial<RetrotroClientOptions> = {}): RetrotroClient {
  return new RetrotroClient({
    url: 'ws://pod-a/ws',
    token: 'tok',
    WebSocket: FakeSocket,
    random: () => 0.5,
    heartbeatMs: 0,
    ...options,
  });
}

/** Waits for the client's next socket (after its backoff, if any) and opens it. */
export async function nextSocket(): Promise<FakeSocket> {
  const before = FakeSocket.all.length;
  await flush();
  for (let i = 0; FakeSocket.all.length === before && i < 100; i++) {
    await vi.advanceTimersByTimeAsync(100);
    await flush();
  }
  if (FakeSocket.all.length === before) throw new Error('the client opened no new socket within 10 s');
  return FakeSocket.last;
}

export const position = (offset: number, epoch = 'e1') => ({ offset, epoch });

export function roomState(roomId: string, extra: Record<string, unknown> = {}) {
  return { roomId, participants: [{ userId: 'u1', userName: 'Ann' }], timer: null, position: position(0), ...extra };
}

/** Connects a new client and joins `roomId`; room_state carries `extra`. */
export async function joined<E extends Record<string, unknown> = Record<string, unknown>>(
  roomId = 'r1',
  extra: Record<string, unknown> = {},
  options: Partial<RetrotroClientOptions> = {},
): Promise<{ client: RetrotroClient; ws: FakeSocket; room: Room<E> }> {
  const client = makeClient(options);
  const ws = await nextSocket();
  ws.open();
  const pending = client.join<E>(roomId);
  ws.receive('room_state', roomState(roomId, extra));
  const room = await pending;
  return { client, ws, room };
}

/** Drops the socket, waits for the reconnection, opens it and answers its join_room. */
export async function reconnect(ws: FakeSocket, state: Record<string, unknown>, code = 1006): Promise<FakeSocket> {
  ws.drop(code);
  const next = await nextSocket();
  next.open();
  const join = next.of('join_room')[0];
  if (!join) throw new Error('no join_room after reconnecting');
  next.receive('room_state', { roomId: join.payload.roomId, participants: [], timer: null, ...state });
  return next;
}
