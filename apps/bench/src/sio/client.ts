/**
 * socket.io-client senders and receivers for the Socket.IO nodes (node.ts), with the same
 * interface as ours (../clients/peer.ts).
 *
 * Fair to the peer: our receivers never JSON-parse a whole frame, so neither do these. The
 * client's decoder is socket.io-parser's, except that an `event` packet of bench data
 * (`42["event","<seq>.<µs>.<x...>"]`, nothing to unescape) is cut out of the string instead
 * of parsed; every other packet goes through the stock decoder. The wire format is the
 * stock one: the nodes run an unmodified Socket.IO.
 */
import { io, type Socket } from 'socket.io-client';
import { Decoder, Encoder, PacketType } from 'socket.io-parser';
import { NOT_EVENT } from '../clients/ws.js';
import type { DeliveryHandler, PeerEndpoint, Receiver, Sender } from '../clients/peer.js';
import { padFor, parseData } from '../clients/peer.js';
import { nowUs } from '../clock.js';

const EVENT_HEAD = '42["event","';
const JOIN_TIMEOUT_MS = 10_000;

class BenchDecoder extends Decoder {
  override add(obj: unknown): void {
    if (typeof obj === 'string' && obj.startsWith(EVENT_HEAD) && obj.endsWith('"]')) {
      this.emitReserved('decoded', { type: PacketType.EVENT, nsp: '/', data: ['event', obj.slice(EVENT_HEAD.length, -2)] });
      return;
    }
    super.add(obj);
  }
}

const parser = { Encoder, Decoder: BenchDecoder };

function connect(endpoint: PeerEndpoint, roomId: string): Promise<Socket> {
  const socket = io(`http://127.0.0.1:${endpoint.port}`, {
    transports: ['websocket'],
    forceNew: true,
    parser, // the server has per-message deflate off, so nothing is compressed
  });
  return new Promise<Socket>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`socket.io: no join ack from ${endpoint.name} within ${JOIN_TIMEOUT_MS} ms`)), JOIN_TIMEOUT_MS);
    let first = true;
    // Joins on every (re)connect: a node forgets a socket's rooms when it drops.
    socket.on('connect', () => {
      socket.emit('join', roomId, () => {
        if (first) {
          first = false;
          clearTimeout(timer);
          resolve(socket);
        }
      });
    });
    socket.on('connect_error', (e) => {
      if (first) {
        clearTimeout(timer);
        socket.close();
        reject(e);
      }
    });
  });
}

export class SioReceiver implements Receiver {
  cuts = 0;
  readonly recoveries = 0;
  readonly recoveredEvents = 0;
  cutCodes: number[] = [];
  private handler: DeliveryHandler | undefined;

  private constructor(private readonly socket: Socket) {
    socket.on('event', (data: unknown) => {
      if (typeof data !== 'string') return;
      const { seq, sentUs } = parseData(data);
      if (seq !== NOT_EVENT) this.handler?.(seq, sentUs);
    });
    socket.on('disconnect', (reason) => {
      if (reason === 'io client disconnect') return;
      this.cuts++;
      this.cutCodes.push(0);
    });
  }

  static async open(endpoint: PeerEndpoint, roomId: string): Promise<SioReceiver> {
    return new SioReceiver(await connect(endpoint, roomId));
  }

  listen(handler: DeliveryHandler | undefined): void {
    this.handler = handler;
  }

  close(): void {
    this.socket.close();
  }
}

export class SioSender implements Sender {
  /** Socket.IO reports nothing to an emitter whose broadcast the adapter failed to relay. */
  readonly errors: Record<string, number> = {};
  private readonly pad: string;

  private constructor(
    private readonly socket: Socket,
    eventBytes: number,
  ) {
    this.pad = padFor(eventBytes, EVENT_HEAD.length + 2);
  }

  static async open(endpoint: PeerEndpoint, roomId: string, eventBytes: number): Promise<SioSender> {
    return new SioSender(await connect(endpoint, roomId), eventBytes);
  }

  send(seq: number): void {
    this.socket.emit('publish', `${seq}.${nowUs()}.${this.pad}`);
  }

  probe(): void {
    this.socket.emit('publish', 'probe');
  }

  close(): void {
    this.socket.close();
  }
}
