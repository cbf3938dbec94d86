/**
 * The pair of connections a transport runs on: one that LISTENs, one that publishes. They
 * live and die together: if either is lost, the whole session is dropped and rebuilt, so
 * the transport has one state to report.
 */
import type { StreamKind } from '@retrotro/bus-core';
import type { Channels } from './channels.js';
import { PgConnection } from './connection.js';
import { listen } from './listener.js';

export interface SessionSettings {
  connectionString: string;
  /** Identifies this transport's backends in pg_stat_activity. */
  instanceId: string;
  channels: Channels;
  deliver: (stream: StreamKind, payload: string) => void;
}

export class Session {
  readonly listener: PgConnection;
  readonly publisher: PgConnection;
  private failure: Error | undefined;
  private onLost: ((error: Error) => void) | undefined;

  constructor(private readonly settings: SessionSettings) {
    const name = (role: string) => `retrotro-bus/${role}/${settings.instanceId}/${settings.channels.prefix}`;
    const report = (e: Error) => this.fail(e);
    this.listener = new PgConnection({ connectionString: settings.connectionString, applicationName: name('listen') }, report);
    this.publisher = new PgConnection({ connectionString: settings.connectionString, applicationName: name('notify') }, report);
  }

  /**
   * Connects both and LISTENs; on any failure both are dropped. Unbounded by itself: the
   * transport's lifecycle gives it a deadline and calls destroy() when it passes.
   */
  async open(): Promise<void> {
    try {
      await Promise.all([
        this.listener.open().then(() => listen(this.listener, this.settings.channels, this.settings.deliver)),
        this.publisher.open(),
      ]);
      this.listener.markOpen();
      this.publisher.markOpen();
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

  /** Liveness of both connections; the publisher is skipped while a statement is in flight (it has its own timeout). */
  async probe(timeoutMs: number, includePublisher: boolean): Promise<void> {
    await Promise.all([this.listener.probe(timeoutMs), includePublisher ? this.publisher.probe(timeoutMs) : undefined]);
  }

  /** Declares the session lost (first call wins) and drops both connections. */
  fail(error: Error): void {
    if (this.failure) return;
    this.failure = error;
    this.destroy();
    this.onLost?.(error);
  }

  pids(): { listener?: number; publisher?: number } {
    return { listener: this.listener.pid, publisher: this.publisher.pid };
  }

  destroy(): void {
    this.listener.destroy();
    this.publisher.destroy();
  }

  async close(): Promise<void> {
    await Promise.all([this.listener.close(), this.publisher.close()]);
  }
}
