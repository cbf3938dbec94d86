/**
 * An in-process broker: many "pods" (RelayBus instances) in one process, for fast tests of
 * cluster logic and for BUS_TYPE=memory. Delivery is asynchronous and ordered, like a real
 * broker, and every subscriber (the sender included) gets each payload, so own-echo
 * filtering is exercised too. Faults can be injected per transport.
 */
import { BrokerUnreachableError, BusUnavailableError } from './errors.js';
import type { PublishOptions, Transport, TransportSink, TransportState } from './transport.js';
import type { StreamKind } from './types.js';

export class MemoryBroker {
  private readonly transports = new Set<MemoryTransport>();
  /** When true, new connections are refused (a broker that is down at start-up). */
  down = false;

  /** @internal */ attach(t: MemoryTransport): void {
    if (this.down) throw new Error('connection refused');
    this.transports.add(t);
  }

  /** @internal */ detach(t: MemoryTransport): void {
    this.transports.delete(t);
  }

  /** Delivers to every attached transport, as raw bytes from nowhere (for garbage tests too). */
  publish(stream: StreamKind, payload: string): void {
    for (const t of this.transports) t.enqueue(stream, payload);
  }
}

export interface MemoryTransportOptions {
  /** Largest payload; default 1 MiB. Set it low to exercise chunking. */
  maxPayloadBytes?: number;
  /** Split larger payloads into chunks (like PostgreSQL) instead of refusing them. */
  chunking?: boolean;
}

export class MemoryTransport implements Transport {
  readonly kind = 'memory';
  readonly target = 'memory://local';
  readonly maxPayloadBytes: number;
  readonly chunking: boolean;
  private sink: TransportSink | undefined;
  private state: TransportState = 'closed';
  private queue: Array<[StreamKind, string]> = [];
  private draining = false;

  constructor(
    readonly broker: MemoryBroker = new MemoryBroker(),
    options: MemoryTransportOptions = {},
  ) {
    this.maxPayloadBytes = options.maxPayloadBytes ?? 1024 * 1024;
    this.chunking = options.chunking ?? false;
  }

  async open(sink: TransportSink): Promise<void> {
    try {
      this.broker.attach(this);
    } catch (e) {
      throw new BrokerUnreachableError(this.target, e);
    }
    this.sink = sink;
    this.state = 'connected';
  }

  async publish(stream: StreamKind, payload: string, _options?: PublishOptions): Promise<void> {
    if (this.state !== 'connected') throw new BusUnavailableError('memory transport');
    this.broker.publish(stream, payload);
  }

  async publishBatch(stream: StreamKind, payloads: readonly string[], _options?: PublishOptions): Promise<void> {
    if (this.state !== 'connected') throw new BusUnavailableError('memory transport');
    for (const payload of payloads) this.broker.publish(stream, payload);
  }

  async close(): Promise<void> {
    this.broker.detach(this);
    this.state = 'closed';
    this.sink = undefined;
    this.queue = [];
  }

  /** Simulates losing the broker: nothing is delivered or accepted until `restore()`. */
  sever(): void {
    if (this.state !== 'connected') return;
    this.broker.detach(this);
    this.queue = [];
    this.state = 'reconnecting';
    this.sink?.stateChanged('reconnecting', new Error('connection severed'));
  }

  restore(): void {
    if (this.state !== 'reconnecting') return;
    this.broker.attach(this);
    this.state = 'connected';
    this.sink?.stateChanged('connected');
  }

  /** Silences this transport completely without telling the relay (a frozen or killed pod). */
  freeze(): void {
    this.broker.detach(this);
    this.state = 'closed';
    this.queue = [];
  }

  /** @internal */ enqueue(stream: StreamKind, payload: string): void {
    this.queue.push([stream, payload]);
    if (!this.draining) {
      this.draining = true;
      setImmediate(() => this.drain());
    }
  }

  private drain(): void {
    this.draining = false;
    const batch = this.queue;
    this.queue = [];
    for (const [stream, payload] of batch) this.sink?.receive(stream, payload);
  }
}
