/**
 * An in-process broker: many "pods" (RelayBus instances) in one process, for fast tests of
 * cluster logic and for BUS_TYPE=memory. Delivery is asynchronous and ordered, like a real
 * broker, and every subscriber (the sender included) gets each payload, so own-echo
 * filtering is exercised too. Faults can be injected per transport.
 */
import type { AppendItem, AppendOutcome, HistoryLimits, HistoryPage, HistoryPosition, HistoryStore } from './history.js';
import { MemoryHistory } from './memory-history.js';
import type { PublishOptions, Transport, TransportSink } from './transport.js';
import { TransportLifecycle } from './transport-lifecycle.js';
import type { StreamKind } from './types.js';

export class MemoryBroker {
  private readonly transports = new Set<MemoryTransport>();
  /** When true, new connections are refused (a broker that is down at start-up). */
  down = false;
  /** The room history of every pod on this broker. */
  readonly history = new MemoryHistory((stream, payload) => this.publish(stream, payload));

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
  /** Keep room history (on the broker, shared by its pods). Default false. */
  history?: boolean;
}

export class MemoryTransport implements Transport {
  readonly kind = 'memory';
  readonly target = 'memory://local';
  readonly maxPayloadBytes: number;
  readonly chunking: boolean;
  readonly history: HistoryStore | undefined;
  private readonly life: TransportLifecycle<MemoryBroker>;
  private queue: Array<[StreamKind, string]> = [];
  private draining = false;

  constructor(
    readonly broker: MemoryBroker = new MemoryBroker(),
    options: MemoryTransportOptions = {},
  ) {
    this.maxPayloadBytes = options.maxPayloadBytes ?? 1024 * 1024;
    this.chunking = options.chunking ?? false;
    this.history = options.history ? new GatedHistory(this.broker.history, this) : undefined;
    this.life = new TransportLifecycle<MemoryBroker>(
      {
        connect: async () => {
          this.broker.attach(this); // throws while broker.down
          return this.broker;
        },
        install: () => {},
        discard: (broker) => this.detach(broker),
        shutdown: () => this.detach(this.broker),
      },
      { name: 'memory transport', target: this.target },
    );
  }

  get connected(): boolean {
    return this.life.connected;
  }

  open(sink: TransportSink): Promise<void> {
    return this.life.open(sink);
  }

  publish(stream: StreamKind, payload: string, _options?: PublishOptions): Promise<void> {
    if (!this.life.connected) return this.life.refusePublish();
    this.broker.publish(stream, payload);
    return Promise.resolve();
  }

  publishBatch(stream: StreamKind, payloads: readonly string[], _options?: PublishOptions): Promise<void> {
    if (!this.life.connected) return this.life.refusePublish();
    for (const payload of payloads) this.broker.publish(stream, payload);
    return Promise.resolve();
  }

  close(): Promise<void> {
    return this.life.close();
  }

  /** Simulates losing the broker: nothing is delivered or accepted until `restore()`. */
  sever(): void {
    if (!this.life.connected) return;
    this.detach(this.broker);
    this.life.lost(new Error('connection severed'));
  }

  restore(): void {
    if (this.life.state !== 'reconnecting') return;
    this.broker.attach(this);
    this.life.regained();
  }

  /** Silences this transport completely without telling the relay (a frozen or killed pod). */
  freeze(): void {
    this.detach(this.broker);
    void this.life.close(); // close() never calls the sink: the relay is not told
  }

  /** @internal The rejection a publish gets now (closed or cut off). */
  refused(): Promise<never> {
    return this.life.refusePublish();
  }

  /** @internal */ enqueue(stream: StreamKind, payload: string): void {
    this.queue.push([stream, payload]);
    if (!this.draining) {
      this.draining = true;
      setImmediate(() => this.drain());
    }
  }

  private detach(broker: MemoryBroker): void {
    broker.detach(this);
    this.queue = [];
  }

  private drain(): void {
    this.draining = false;
    const batch = this.queue;
    this.queue = [];
    for (const [stream, payload] of batch) this.life.deliver(stream, payload);
  }
}

/** The broker's history as one pod sees it: unavailable while that pod is cut off. */
class GatedHistory implements HistoryStore {
  constructor(
    private readonly store: MemoryHistory,
    private readonly transport: MemoryTransport,
  ) {}

  open(limits: HistoryLimits): Promise<void> {
    return this.gate(() => this.store.open(limits));
  }
  append(items: readonly AppendItem[]): Promise<AppendOutcome[]> {
    return this.gate(() => this.store.append(items));
  }
  read(roomId: string, after: number, limit: number): Promise<HistoryPage> {
    return this.gate(() => this.store.read(roomId, after, limit));
  }
  position(roomId: string): Promise<HistoryPosition> {
    return this.gate(() => this.store.position(roomId));
  }

  private gate<T>(run: () => Promise<T>): Promise<T> {
    return this.transport.connected ? run() : this.transport.refused();
  }
}
