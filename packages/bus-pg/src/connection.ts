/**
 * One PostgreSQL connection with the failure handling pg leaves to us: a bounded connect,
 * a liveness probe with a timeout, forced teardown of a half-dead socket, and a single
 * "lost" report however the connection dies (error event, end event, failed probe).
 */
import { Client, DatabaseError, type ClientConfig } from 'pg';
import { parse } from 'pg-connection-string';

/** pg client settings given by the application (TLS, a password function, ...), beside the URL. */
export type PgClientConfig = Omit<ClientConfig, 'connectionString' | 'application_name'>;

/**
 * The URL's settings with the application's client config over them. pg itself lets the
 * URL win, even for what it leaves out (an absent user reads as ''), so parse it here.
 */
export function clientSettings(connectionString: string, clientConfig: PgClientConfig | undefined): ClientConfig {
  if (!clientConfig) return { connectionString };
  const fromUrl = Object.fromEntries(Object.entries(parse(connectionString)).filter(([, v]) => v !== '' && v !== null && v !== undefined));
  return { ...(fromUrl as ClientConfig), ...clientConfig };
}

export interface ConnectionSettings {
  connectionString: string;
  clientConfig?: PgClientConfig | undefined;
  /** Shown in pg_stat_activity, so operators (and tests) can find our backends. */
  applicationName: string;
}

/** How long a graceful `end()` may take before the socket is destroyed. */
const END_GRACE_MS = 1_000;

const noop = () => {};

export class PgConnection {
  readonly client: Client;
  private state: 'new' | 'open' | 'done' = 'new';
  private failure: Error | undefined;
  private destroyed = false;
  /** When the server last sent a notification: proof of life while a probe waits its turn. */
  private lastHeard = 0;

  /** `onLost` fires at most once, only after `markOpen()` and before `close()`/`destroy()`. */
  constructor(
    settings: ConnectionSettings,
    private readonly onLost: (error: Error) => void,
  ) {
    this.client = new Client({
      ...clientSettings(settings.connectionString, settings.clientConfig),
      application_name: settings.applicationName.slice(0, 63),
      keepAlive: true,
    });
    // Without an 'error' listener, a dropped socket would crash the process.
    this.client.on('error', (e) => this.lost(e));
    this.client.on('end', () => this.lost(new Error('connection ended')));
    this.client.on('notification', () => (this.lastHeard = Date.now()));
  }

  /** Connects; the caller bounds the time (the whole session shares one connect timeout). */
  async open(): Promise<void> {
    await this.client.connect();
  }

  /** Call once setup (e.g. LISTEN) is done: from now on a loss is reported. Throws if it died meanwhile. */
  markOpen(): void {
    if (this.failure) throw this.failure;
    if (this.state === 'new') this.state = 'open';
  }

  /** Backend process id (from the startup handshake), for pg_terminate_backend and diagnostics. */
  get pid(): number | undefined {
    const pid = (this.client as unknown as { processID?: number | null }).processID;
    return typeof pid === 'number' ? pid : undefined;
  }

  /**
   * Rejects if the server does not answer `SELECT 1` in time: TCP can stay "up" long after
   * the peer is gone. A connection busy delivering a flood of notifications is alive even if
   * the answer queues behind them, so each notification heard buys another `timeoutMs`.
   */
  async probe(timeoutMs: number): Promise<void> {
    const answer = this.client.query('SELECT 1');
    for (;;) {
      const asked = Date.now();
      try {
        await withTimeout(answer, timeoutMs, () => new ProbeTimeout(timeoutMs));
        return;
      } catch (e) {
        if (!(e instanceof ProbeTimeout) || this.lastHeard < asked) throw e;
      }
    }
  }

  /** Reports the connection lost (for failures pg cannot see, like a stalled statement) and drops it. */
  fail(error: Error): void {
    this.lost(error);
  }

  /** Drops the socket at once; for connections that are, or may be, dead. */
  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.state = 'done';
    this.client.removeAllListeners('notification');
    this.client.on('error', noop);
    this.client.connection.stream.destroy();
  }

  /** Ends politely (Terminate message), destroying the socket if the server does not answer soon. */
  async close(): Promise<void> {
    if (this.state !== 'open') return this.destroy();
    this.state = 'done';
    this.destroyed = true;
    this.client.removeAllListeners('notification');
    this.client.on('error', noop);
    const timer = setTimeout(() => this.client.connection.stream.destroy(), END_GRACE_MS);
    try {
      await this.client.end();
    } catch {
      // Already gone: nothing to end.
    } finally {
      clearTimeout(timer);
    }
  }

  private lost(error: Error): void {
    this.failure ??= error;
    if (this.state !== 'open') return;
    this.destroy();
    this.onLost(error);
  }
}

class ProbeTimeout extends Error {
  constructor(ms: number) {
    super(`liveness probe got no answer within ${ms} ms`);
  }
}

/**
 * Rejects with `onTimeout()` if `promise` has not settled within `ms`; a late rejection is
 * absorbed. The verdict waits for setImmediate: after a stalled event loop, timers run
 * before pending socket reads, and an answer already sitting in the buffer must win.
 */
export function withTimeout<T>(promise: Promise<T>, ms: number, onTimeout: () => Error): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => setImmediate(() => reject(onTimeout())), ms);
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (error: unknown) => {
        clearTimeout(timer);
        reject(error);
      },
    );
  });
}

/**
 * True when a failed statement means the connection itself is unusable (network error,
 * server shutdown, backend terminated), false for an error confined to that statement.
 */
export function isConnectionError(error: unknown): boolean {
  if (!(error instanceof DatabaseError)) return true;
  const code = error.code ?? '';
  return error.severity === 'FATAL' || error.severity === 'PANIC' || code.startsWith('08') || code.startsWith('57P');
}
