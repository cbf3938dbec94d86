/**
 * `@retrotro/socket.io-adapter`: a Socket.IO v4 cluster adapter over PostgreSQL LISTEN/NOTIFY
 * or NATS, built on the retrotro-bus transports.
 *
 * ```ts
 * io.adapter(createAdapter({ bus: { type: 'postgres', connectionString, prefix } }));
 * ```
 */
import { silentLogger, validateBusPrefix, type Logger, type Transport } from '@retrotro/bus-core';
import { NatsTransport, type NatsTransportOptions } from '@retrotro/bus-nats';
import { PgTransport, type PgTransportOptions } from '@retrotro/bus-pg';
import { BusAdapter, type ClusterTimingOptions } from './adapter.js';
import { BusLink } from './link.js';

export { BusAdapter, type ClusterTimingOptions } from './adapter.js';
export type { LinkStats } from './link.js';
export { trackPresence, type TrackPresenceOptions } from './presence.js';

/** The suffix added to the bus prefix, so adapter traffic never meets a RelayBus's of the same prefix. */
export const PREFIX_SUFFIX = '_sio';

/** PostgreSQL LISTEN/NOTIFY. Channels are `<prefix>_sio_room` (and the transport's three others). */
export interface PostgresBusOptions extends Omit<PgTransportOptions, 'prefix' | 'logger'> {
  type: 'postgres';
  /** e.g. `postgres://user:password@host:5432/db`. */
  connectionString: string;
  /** Bus prefix (letters, digits, `_`; at most 36 characters here). Default `retrotro`. */
  prefix?: string;
}

/** Core NATS. Subjects are `<prefix>_sio.room` (and the transport's three others). */
export interface NatsBusOptions extends Omit<NatsTransportOptions, 'prefix' | 'logger' | 'roomSubjects'> {
  type: 'nats';
  /** Server URL(s); a comma-separated string is split. Default `nats://127.0.0.1:4222`. */
  servers?: string | string[];
  /** Bus prefix (letters, digits, `_`; at most 36 characters here). Default `retrotro`. */
  prefix?: string;
}

/**
 * A transport of your own (advanced): an unopened bus-core `Transport`, or a function making
 * one. A function is called once per Socket.IO server (and again if one is closed and
 * reused); an instance serves one server only. Give it a prefix of its own, not one a RelayBus uses.
 */
export interface CustomBusOptions {
  transport: Transport | (() => Transport);
}

export type BusOptions = PostgresBusOptions | NatsBusOptions | CustomBusOptions;

export interface AdapterOptions extends ClusterTimingOptions {
  bus: BusOptions;
  /**
   * A pino-style logger (`debug`/`info`/`warn`/`error(obj, msg)`). Default: warnings and
   * errors on the console (a lost broker, malformed messages, failed publishes; rate-limited).
   */
  logger?: Logger;
}

// biome-ignore lint/suspicious/noExplicitAny: Socket.IO passes its Namespace, typed any by socket.io-adapter
type NamespaceLike = any;

/**
 * Returns the adapter factory for `io.adapter(...)`. Nothing connects here: the connection
 * opens when Socket.IO creates the first adapter, and is retried in the background while the
 * broker is down. Options are checked at once (an invalid prefix throws).
 */
export function createAdapter(options: AdapterOptions): (nsp: NamespaceLike) => BusAdapter {
  const timing = checkTiming(options);
  const logger = options.logger ?? consoleLogger;
  const makeTransport = transportFactory(options.bus, logger);
  const links = new WeakMap<object, BusLink>();
  // A plain function, not an arrow: Socket.IO calls it with `new`.
  return function adapterFor(nsp: NamespaceLike): BusAdapter {
    // One link (one connection, one ordered publisher) per Socket.IO server.
    const server: object = nsp?.server ?? nsp;
    let link = links.get(server);
    if (!link || link.closed) {
      link = new BusLink(makeTransport(), { logger });
      links.set(server, link);
    }
    return new BusAdapter(nsp, timing, link);
  };
}

function checkTiming(options: AdapterOptions): ClusterTimingOptions {
  if (!options || typeof options !== 'object' || !options.bus) {
    throw new TypeError("createAdapter needs { bus: { type: 'postgres' | 'nats', ... } } or { bus: { transport } }");
  }
  const timing: ClusterTimingOptions = {
    heartbeatInterval: positive('heartbeatInterval', options.heartbeatInterval ?? 5_000),
    heartbeatTimeout: positive('heartbeatTimeout', options.heartbeatTimeout ?? 10_000),
    requestsTimeout: positive('requestsTimeout', options.requestsTimeout ?? 5_000),
  };
  if (timing.heartbeatTimeout! <= timing.heartbeatInterval!) {
    throw new RangeError(`heartbeatTimeout (${timing.heartbeatTimeout}) must exceed heartbeatInterval (${timing.heartbeatInterval})`);
  }
  return timing;
}

function positive(name: string, value: number): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    throw new RangeError(`${name} must be a positive number of milliseconds, got ${String(value)}`);
  }
  return value;
}

/** `<prefix>_sio`, checked with bus-core's prefix rule. */
export function adapterPrefix(prefix = 'retrotro'): string {
  validateBusPrefix(prefix);
  try {
    return validateBusPrefix(`${prefix}${PREFIX_SUFFIX}`);
  } catch {
    throw new Error(
      `bus prefix ${JSON.stringify(prefix)} is too long for the Socket.IO adapter: it adds "${PREFIX_SUFFIX}", ` +
        `so use at most ${40 - PREFIX_SUFFIX.length} characters`,
    );
  }
}

function transportFactory(bus: BusOptions, logger: Logger): () => Transport {
  if ('transport' in bus && bus.transport !== undefined) {
    const given = bus.transport;
    if (typeof given === 'function') return given;
    let used = false;
    return () => {
      if (used) throw new Error('this transport instance already serves a Socket.IO server: pass a function returning a new one');
      used = true;
      return given;
    };
  }
  const { type, prefix: userPrefix, ...rest } = bus as PostgresBusOptions | NatsBusOptions;
  const prefix = adapterPrefix(userPrefix);
  const transportLogger = logger === consoleLogger ? silentLogger : logger;
  if (type === 'postgres') {
    const pg = rest as Omit<PostgresBusOptions, 'type' | 'prefix'>;
    if (typeof pg.connectionString !== 'string' || pg.connectionString === '') {
      throw new TypeError("bus.connectionString is required for type 'postgres'");
    }
    return () => new PgTransport({ ...pg, prefix, logger: transportLogger });
  }
  if (type === 'nats') {
    const nats = rest as Omit<NatsBusOptions, 'type' | 'prefix'>;
    new NatsTransport({ ...nats, prefix }); // checks the server list now; connects nothing
    return () => new NatsTransport({ ...nats, prefix, logger: transportLogger });
  }
  throw new TypeError(`unknown bus type ${JSON.stringify(type)}: use 'postgres' or 'nats'`);
}

const consoleLogger: Logger = {
  debug() {},
  info() {},
  warn(obj, msg) {
    console.warn(`[@retrotro/socket.io-adapter] ${msg ?? ''}`, describe(obj));
  },
  error(obj, msg) {
    console.error(`[@retrotro/socket.io-adapter] ${msg ?? ''}`, describe(obj));
  },
};

function describe(obj: object): string {
  const { err, ...rest } = obj as { err?: unknown };
  const why = err instanceof Error ? err.message : err === undefined ? '' : String(err);
  const fields = Object.keys(rest).length ? JSON.stringify(rest) : '';
  return [why, fields].filter(Boolean).join(' ');
}
