/**
 * The connections a transport runs on: one that LISTENs (and reads large payloads back),
 * one that publishes (NOTIFYs and history transactions), and, with history on, one that
 * reads history and sweeps expired events. They live and die together: if any is lost, the
 * whole session is dropped and rebuilt, so the transport has one state to report.
 */
import type { StreamKind } from '@retrotro/bus-core';
import type { Channels } from './channels.js';
import { PgConnection, type PgClientConfig } from './connection.js';
import { LargePayloadReader } from './large-payload-reader.js';
import type { LargePayloads } from './large-payloads.js';
import { listen } from './listener.js';

export interface SessionSettings {
  connectionString: string;
  clientConfig?: PgClientConfig | undefined;
  /** Identifies this transport's backends in pg_stat_activity. */
  instanceId: string;
  channels: Channels;
  /** Also open a connection for history reads. */
  history?: boolean;
  deliver: (stream: StreamKind, payload: string) => void;
  /** Payloads above the NOTIFY limit go by table: read references back. */
  large?: LargePayloads | undefined;
  /** Bounds each read and sweep of large payloads. */
  statementTimeoutMs: number;
  /** Rate-limited warnings (large payloads lost or unreadable). */
  warn: (detail: Record<string, unknown>, message: string) => void;
}

export class Session {
  readonly listener: PgConnection;
  readonly publisher: PgConnection;
  /** History reads and sweeps (only with history on). */
  readonly reader: PgConnection | undefined;
  private readonly largeReader: LargePayloadReader | undefined;
  private failure: Error | undefined;
  private onLost: ((error: Error) => void) | undefined;

  constructor(private readonly settings: SessionSettings) {
    const name = (role: string) => `retrotro-bus/${role}/${settings.instanceId}/${settings.channels.prefix}`;
    const report = (e: Error) => this.fail(e);
    const { connectionString, clientConfig } = settings;
    this.listener = new PgConnection({ connectionString, clientConfig, applicationName: name('listen') }, report);
    this.publisher = new PgConnection({ connectionString, clientConfig, applicationName: name('notify') }, report);
    this.reader = settings.history ? new PgConnection({ connectionString, clientConfig, applicationName: name('history') }, report) : undefined;
    const { large, deliver, statementTimeoutMs: timeoutMs, warn } = settings;
    this.largeReader = large ? new LargePayloadReader({ connection: this.listener, large, deliver, timeoutMs, warn }) : undefined;
  }

  /**
   * Connects all and LISTENs; on any failure all are dropped. Unbounded by itself: the
   * transport's lifecycle gives it a deadline and calls destroy() when it passes.
   */
  async open(): Promise<void> {
    try {
      await Promise.all([
        this.listener.open().then(() => listen(this.listener, this.settings.channels, this.settings.deliver, this.largeReader)),
        this.publisher.open(),
        this.reader?.open(),
      ]);
      this.listener.markOpen();
      this.publisher.markOpen();
      this.reader?.markOpen();
    } catch (e) {
      this.destroy();
      throw e;
    }
  }

  /** Registers the loss handler; called at once if the session already died. */
  watch(onLost: (error: Error) => void): void {
    this.onLost = onLost;
    if (this.failure) onLost(this.failure);
  }

  /**
   * Liveness of the connections; the publisher and the reader are skipped while a statement
   * is in flight on them (each statement has its own timeout).
   */
  async probe(timeoutMs: number, includePublisher: boolean, includeReader = true): Promise<void> {
    await Promise.all([
      this.listener.probe(timeoutMs),
      includePublisher ? this.publisher.probe(timeoutMs) : undefined,
      includeReader ? this.reader?.probe(timeoutMs) : undefined,
    ]);
  }

  /** Declares the session lost (first call wins) and drops both connections. */
  fail(error: Error): void {
    if (this.failure) return;
    this.failure = error;
    this.destroy();
    this.onLost?.(error);
  }

  /** Deletes large payloads past their retention, on the LISTEN connection (which reads them). */
  async sweepLarge(timeoutMs: number): Promise<void> {
    await this.settings.large?.sweep(this.listener, timeoutMs);
  }

  pids(): { listener?: number; publisher?: number; reader?: number } {
    const pids: { listener?: number; publisher?: number; reader?: number } = { listener: this.listener.pid, publisher: this.publisher.pid };
    if (this.reader) pids.reader = this.reader.pid;
    return pids;
  }

  destroy(): void {
    this.largeReader?.close();
    this.listener.destroy();
    this.publisher.destroy();
    this.reader?.destroy();
  }

  async close(): Promise<void> {
    this.largeReader?.close();
    await Promise.all([this.listener.close(), this.publisher.close(), this.reader?.close()]);
  }
}
