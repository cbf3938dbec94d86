/**
 * BusAdapter: Socket.IO's ClusterAdapterWithHeartbeat over a retrotro-bus transport. The base
 * class speaks the cluster protocol (broadcasts, acks, fetchSockets, serverSideEmit,
 * heartbeats, forgetting dead nodes); this class only moves its messages through a BusLink.
 */
import { ClusterAdapterWithHeartbeat } from 'socket.io-adapter';
import type { BroadcastOptions, ClusterMessage, ClusterResponse, Offset, ServerId } from 'socket.io-adapter';
import { BROADCAST_TARGET, namespaceToken } from './codec.js';
import type { BusLink, LinkMember, LinkStats } from './link.js';

/** Timing options, with Socket.IO's names and defaults. */
export interface ClusterTimingOptions {
  /** Milliseconds between two heartbeats of this node. Default 5000. */
  heartbeatInterval?: number;
  /** Milliseconds without a message after which another node is forgotten. Default 10000. */
  heartbeatTimeout?: number;
  /** Milliseconds `fetchSockets()` and `serverSideEmit()` with an ack wait for the other nodes. Default 5000. */
  requestsTimeout?: number;
}

/** The base class's own wait for serverSideEmit acks (not configurable there). */
const BASE_REQUESTS_TIMEOUT = 5_000;

interface PendingRequest {
  resolve: (...args: unknown[]) => void;
  timeout: NodeJS.Timeout;
  missingUids: Set<string>;
  responses: unknown[];
}

export class BusAdapter extends ClusterAdapterWithHeartbeat implements LinkMember {
  readonly requestsTimeout: number;
  private readonly link: BusLink;
  private readonly token: string;
  private closing: Promise<void> | undefined;

  // biome-ignore lint/suspicious/noExplicitAny: Socket.IO types its namespace as any here too
  constructor(nsp: any, options: ClusterTimingOptions, link: BusLink) {
    super(nsp, {
      heartbeatInterval: options.heartbeatInterval ?? 5_000,
      heartbeatTimeout: options.heartbeatTimeout ?? 10_000,
    });
    this.requestsTimeout = options.requestsTimeout ?? BASE_REQUESTS_TIMEOUT;
    this.link = link;
    this.token = namespaceToken(this.nsp.name);
    link.attach(this);
  }

  /** This adapter's id in the cluster (Socket.IO's server uid, one per namespace and process). */
  get serverId(): string {
    return this.uid;
  }

  get namespace(): string {
    return this.nsp.name as string;
  }

  /** The link's counters (shared by all namespaces of this server). */
  get busStats(): Readonly<LinkStats> {
    return this.link.stats;
  }

  /** True while this node is connected to the broker. */
  get connected(): boolean {
    return this.link.connected;
  }

  /**
   * Called by Socket.IO once the adapter exists. Resolves once the first connection attempt is
   * over (it never rejects: a broker that is down is retried in the background). The initial
   * heartbeat goes out when connected (here, or on every (re)connection through `linkUp`).
   */
  override async init(): Promise<void> {
    if (this.link.connected) super.init();
    await this.link.firstAttempt;
  }

  /** @internal */
  linkUp(): void {
    super.init();
  }

  /** @internal */
  receiveMessage(message: unknown): void {
    this.onMessage(message as ClusterMessage);
  }

  /** @internal */
  receiveResponse(response: unknown): void {
    this.onResponse(response as ClusterResponse);
  }

  protected override doPublish(message: ClusterMessage): Promise<Offset> {
    // Connection state recovery across nodes is not supported: no offset.
    return this.link.publish(BROADCAST_TARGET, this.token, message).then(() => '');
  }

  protected override doPublishResponse(requesterUid: ServerId, response: ClusterResponse): Promise<void> {
    return this.link.publish(requesterUid, this.token, response);
  }

  override fetchSockets(opts: BroadcastOptions): Promise<unknown[]> {
    const timeout = opts.flags?.timeout ?? this.requestsTimeout;
    return super.fetchSockets({ ...opts, flags: { ...opts.flags, timeout } });
  }

  override serverSideEmit(packet: unknown[]): Promise<unknown> {
    const ack = packet[packet.length - 1];
    const result = super.serverSideEmit(packet);
    if (typeof ack === 'function' && this.requestsTimeout !== BASE_REQUESTS_TIMEOUT) this.retime(ack);
    return result;
  }

  /**
   * Closes this namespace's adapter: tells the others (ADAPTER_CLOSE, so they forget this node
   * at once), and closes the connection with the last namespace. Socket.IO awaits it in `io.close()`.
   */
  override close(): Promise<void> {
    this.closing ??= (async () => {
      super.close();
      await this.link.detach(this);
    })();
    return this.closing;
  }

  /**
   * The base class waits a fixed 5 s for serverSideEmit acks. Its request is registered
   * synchronously, so we find it and replace its timer with one of `requestsTimeout`.
   */
  private retime(ack: unknown): void {
    const requests = (this as unknown as { customRequests?: unknown }).customRequests;
    if (!(requests instanceof Map)) return;
    for (const [id, request] of requests as Map<string, PendingRequest>) {
      if (request.resolve !== ack) continue;
      clearTimeout(request.timeout);
      request.timeout = setTimeout(() => {
        if (requests.get(id) !== request) return;
        requests.delete(id);
        request.resolve(new Error(`timeout reached: missing ${request.missingUids.size} responses`), request.responses);
      }, this.requestsTimeout);
    }
  }
}
