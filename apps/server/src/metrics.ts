/**
 * Prometheus metrics (GET /metrics). Counters live as plain numbers in the hub, handler and
 * bus (cheap on the hot path); this module reads them at scrape time.
 */
import { STREAMS, type MessageBus } from '@retrotro/bus-core';
import type { LargePayloadStats } from '@retrotro/bus-pg';
import client from 'prom-client';
import type { Handler } from './handler.js';
import type { Hub } from './hub.js';
import type { TimerService } from './timer.js';

export interface MetricsSources {
  hub: Hub;
  bus: MessageBus;
  handler: Handler;
  timers: TimerService;
  /** The postgres bus's large-payload counters (undefined on other buses, or with PG_LARGE_PAYLOADS=chunks). */
  largePayloads?: () => LargePayloadStats | undefined;
}

export class Metrics {
  readonly registry = new client.Registry();
  /** Fed by the bus's observePublish hook. */
  readonly publishLatency: client.Histogram<'transport' | 'stream' | 'outcome'>;
  /** Fed by the bus's observeHistory hook. */
  readonly historyLatency: client.Histogram<'operation' | 'outcome'>;
  private sources: MetricsSources | undefined;

  constructor() {
    client.collectDefaultMetrics({ register: this.registry });
    this.publishLatency = new client.Histogram({
      name: 'retrotro_bus_publish_seconds',
      help: 'Time from publish to broker acknowledgement',
      labelNames: ['transport', 'stream', 'outcome'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
      registers: [this.registry],
    });
    this.historyLatency = new client.Histogram({
      name: 'retrotro_history_seconds',
      help: 'Time a history write (store and hand to the broker) or read took',
      labelNames: ['operation', 'outcome'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
      registers: [this.registry],
    });
  }

  /** Connects the metrics to the running pieces (they are built after the metrics). */
  attach(sources: MetricsSources): void {
    this.sources = sources;
    const s = () => this.sources!;
    const gauge = (name: string, help: string, read: () => number) =>
      new client.Gauge({
        name,
        help,
        registers: [this.registry],
        collect() {
          this.set(read());
        },
      });
    // A counter whose value is read from a plain number at scrape time.
    const counter = (name: string, help: string, read: () => number) =>
      new client.Counter({
        name,
        help,
        registers: [this.registry],
        collect() {
          this.reset();
          this.inc(read());
        },
      });

    gauge('retrotro_sockets', 'WebSocket connections on this pod', () => s().hub.clientCount);
    gauge('retrotro_rooms_local', 'Rooms with sockets on this pod', () => s().hub.roomCount);
    gauge('retrotro_rooms_cluster', 'Rooms with someone present on any pod', () => s().bus.status().rooms);
    gauge('retrotro_users_present_local', 'Users this pod holds present, per room', () => s().bus.status().localPresence);
    gauge('retrotro_users_present_cluster', 'Users present on any pod, per room', () => s().bus.status().presence);
    gauge('retrotro_bus_connected', '1 while the bus is connected to its broker', () => (s().bus.isConnected ? 1 : 0));
    gauge('retrotro_bus_ready', '1 while connected and synced', () => (s().bus.ready ? 1 : 0));
    gauge('retrotro_bus_peers', 'Other pods heard from', () => s().bus.status().peers);
    gauge('retrotro_timers', 'Running or paused room timers', () => s().timers.activeCount);
    counter('retrotro_frames_in_total', 'Frames received from clients', () => s().handler.counters.framesIn);
    counter('retrotro_frames_out_total', 'Frames sent to clients', () => s().hub.counters.framesOut);
    counter('retrotro_bad_frames_total', 'Client frames answered with bad_message', () => s().handler.counters.badFrames);
    counter(
      'retrotro_publishers_paused_total',
      'Times a publishing socket was paused while the bus was overloaded',
      () => s().handler.counters.paused,
    );
    gauge('retrotro_bus_overloaded', '1 while the bus holds more unacknowledged publishes than its high-water mark', () =>
      s().bus.overloaded ? 1 : 0,
    );
    counter('retrotro_rate_limited_total', 'Client frames dropped by the rate limit', () => s().handler.counters.rateLimited);
    counter('retrotro_slow_consumer_disconnects_total', 'Sockets closed for not reading fast enough', () => s().hub.counters.slowConsumers);
    counter('retrotro_bus_publish_failures_total', 'Envelopes that could not be published', () => s().bus.stats.publishFailures);
    counter('retrotro_bus_reconnects_total', 'Broker reconnections', () => s().bus.stats.reconnects);
    counter('retrotro_bus_gaps_total', 'Sequence gaps seen from other pods', () => s().bus.stats.gaps);
    counter('retrotro_bus_pods_expired_total', 'Pods declared dead after the presence TTL', () => s().bus.stats.podsExpired);
    counter('retrotro_bus_own_echoes_total', 'Own envelopes dropped on the way back', () => s().bus.stats.ownEchoes);
    counter('retrotro_bus_chunked_messages_total', 'Messages split into chunk frames', () => s().bus.stats.chunkedMessages);
    new client.Counter({
      name: 'retrotro_bus_large_payloads_total',
      help: 'Messages above the NOTIFY limit sent by reference (postgres bus): stored by this pod, read back, missing (swept before read)',
      labelNames: ['outcome'],
      registers: [this.registry],
      collect() {
        this.reset();
        const stats = s().largePayloads?.();
        if (stats) for (const outcome of ['stored', 'read', 'missing'] as const) this.inc({ outcome }, stats[outcome]);
      },
    });
    counter('retrotro_history_writes_total', 'Events stored in room history', () => s().bus.stats.historyWrites);
    counter('retrotro_history_duplicates_total', 'Publishes recognised as retries of a stored event', () => s().bus.stats.historyDuplicates);
    counter('retrotro_history_write_failures_total', 'Events that could not be stored', () => s().bus.stats.historyFailures);
    counter('retrotro_history_replays_total', 'Joins answered with recovered: true', () => s().handler.rooms.counters.recovered);
    counter('retrotro_history_not_recovered_total', 'Joins with since answered with recovered: false', () => s().handler.rooms.counters.notRecovered);
    counter('retrotro_history_replayed_events_total', 'Events sent in replays', () => s().handler.rooms.counters.replayedEvents);
    counter(
      'retrotro_history_read_failures_total',
      'Joins answered without a position because history could not be read',
      () => s().handler.rooms.counters.historyErrors,
    );

    const perStream = (name: string, help: string, read: (stream: (typeof STREAMS)[number]) => number) =>
      new client.Counter({
        name,
        help,
        labelNames: ['transport', 'stream'],
        registers: [this.registry],
        collect() {
          this.reset();
          for (const stream of STREAMS) this.inc({ transport: s().bus.status().transport, stream }, read(stream));
        },
      });
    perStream('retrotro_bus_envelopes_published_total', 'Envelopes published', (st) => s().bus.stats.published[st]);
    perStream('retrotro_bus_envelopes_received_total', 'Envelopes from other pods', (st) => s().bus.stats.received[st]);
    perStream('retrotro_bus_envelopes_malformed_total', 'Malformed envelopes dropped', (st) => s().bus.stats.malformed[st]);
  }

  observeHistory(operation: string, seconds: number, ok: boolean): void {
    this.historyLatency.observe({ operation, outcome: ok ? 'ok' : 'error' }, seconds);
  }

  observePublish(transport: string, stream: string, seconds: number, ok: boolean): void {
    this.publishLatency.observe({ transport, stream, outcome: ok ? 'ok' : 'error' }, seconds);
  }

  async render(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}
