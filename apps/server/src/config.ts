/**
 * Configuration from the environment (CONTRACT section 2). Every value is validated here,
 * once, with a message that names the variable and what it accepts.
 */
import { validateBusPrefix } from '@retrotro/bus-core';

export type BusType = 'postgres' | 'nats' | 'memory';
export const BUS_TYPES: readonly BusType[] = ['postgres', 'nats', 'memory'];

export interface Config {
  port: number;
  host: string;
  busType: BusType;
  databaseUrl: string;
  natsUrl: string;
  natsCredentials: string | undefined;
  natsRoomSubjects: 'flat' | 'per-room';
  busPrefix: string;
  /** undefined: dev mode (tokens signed with a fixed, public dev secret). */
  jwtSecret: string | undefined;
  production: boolean;
  disconnectGraceMs: number;
  presenceHeartbeatMs: number;
  presenceTtlMs: number;
  wsMaxPayload: number;
  /** Frames per second per socket; 0 = unlimited. */
  wsRateLimit: number;
  /** A socket whose unsent data stays above this is closed with 1013. */
  wsMaxBufferedBytes: number;
  perMessageDeflate: boolean;
  apiKey: string | undefined;
  /** undefined: any origin (dev only). */
  allowedOrigins: string[] | undefined;
  maxRoomsPerPod: number;
  /** Newest events kept per room (HISTORY_SIZE); 0: history off. */
  historySize: number;
  /** Seconds an event stays in history (HISTORY_TTL_S). */
  historyTtlS: number;
  /** Unacknowledged publishes (bytes, messages) above which publishing sockets are paused (BUS_HIGH_WATER_BYTES / _MESSAGES). */
  highWaterBytes: number;
  highWaterMessages: number;
  maxParticipantsPerRoom: number;
  /** How the postgres bus carries payloads above NOTIFY's 8000 bytes (PG_LARGE_PAYLOADS). */
  pgLargePayloads: 'table' | 'chunks';
  logLevel: string;
}

export class ConfigError extends Error {
  override name = 'ConfigError';
}

type Env = Record<string, string | undefined>;

function int(env: Env, name: string, fallback: number, min: number, max = Number.MAX_SAFE_INTEGER): number {
  const raw = env[name]?.trim();
  if (raw === undefined || raw === '') return fallback;
  if (!/^-?\d+$/.test(raw)) throw new ConfigError(`${name} must be a whole number, got ${JSON.stringify(raw)}`);
  const n = Number(raw);
  if (n < min || n > max) throw new ConfigError(`${name} must be between ${min} and ${max}, got ${n}`);
  return n;
}

function str(env: Env, name: string, fallback: string): string {
  const raw = env[name]?.trim();
  return raw === undefined || raw === '' ? fallback : raw;
}

function optional(env: Env, name: string): string | undefined {
  const raw = env[name]?.trim();
  return raw === undefined || raw === '' ? undefined : raw;
}

function oneOf<T extends string>(env: Env, name: string, values: readonly T[], fallback: T): T {
  const raw = env[name]?.trim();
  if (raw === undefined || raw === '') return fallback;
  if (!(values as readonly string[]).includes(raw)) throw new ConfigError(`${name} must be one of ${values.join(', ')}; got ${JSON.stringify(raw)}`);
  return raw as T;
}

function bool(env: Env, name: string, fallback: boolean): boolean {
  const raw = env[name]?.trim().toLowerCase();
  if (raw === undefined || raw === '') return fallback;
  if (['1', 'true', 'yes', 'on'].includes(raw)) return true;
  if (['0', 'false', 'no', 'off'].includes(raw)) return false;
  throw new ConfigError(`${name} must be true or false, got ${JSON.stringify(env[name])}`);
}

export function loadConfig(env: Env = process.env): Config {
  const production = env.NODE_ENV === 'production';
  const busType = str(env, 'BUS_TYPE', 'postgres');
  if (!(BUS_TYPES as readonly string[]).includes(busType)) {
    throw new ConfigError(`BUS_TYPE must be one of ${BUS_TYPES.join(', ')}; got ${JSON.stringify(busType)}`);
  }
  const busPrefix = str(env, 'BUS_PREFIX', 'retrotro');
  try {
    validateBusPrefix(busPrefix); // bus-core's rule, the one every transport applies
  } catch (e) {
    throw new ConfigError(`BUS_PREFIX: ${(e as Error).message}`);
  }
  const jwtSecret = optional(env, 'JWT_SECRET');
  if (production && !jwtSecret) throw new ConfigError('JWT_SECRET is required when NODE_ENV=production');
  const heartbeat = int(env, 'PRESENCE_HEARTBEAT_MS', 5_000, 50, 3_600_000);
  const ttl = int(env, 'PRESENCE_TTL_MS', 15_000, 100, 86_400_000);
  if (ttl <= heartbeat) {
    throw new ConfigError(`PRESENCE_TTL_MS (${ttl}) must be greater than PRESENCE_HEARTBEAT_MS (${heartbeat})`);
  }
  const origins = optional(env, 'ALLOWED_ORIGINS');
  // Browsers send `scheme://host[:port]`, lowercase, without a path: forgive a trailing slash
  // or capitals here, or the listed origin would never match.
  const allowedOrigins = origins
    ?.split(',')
    .map((o) => o.trim().replace(/\/+$/, '').toLowerCase())
    .filter(Boolean);
  if (production && !allowedOrigins) {
    throw new ConfigError('ALLOWED_ORIGINS is required when NODE_ENV=production (comma-separated origins, e.g. https://retro.example.com)');
  }
  const roomSubjects = str(env, 'NATS_ROOM_SUBJECTS', 'flat');
  if (roomSubjects !== 'flat' && roomSubjects !== 'per-room') {
    throw new ConfigError(`NATS_ROOM_SUBJECTS must be flat or per-room; got ${JSON.stringify(roomSubjects)}`);
  }
  return {
    port: int(env, 'PORT', 8080, 0, 65_535),
    host: str(env, 'HOST', '0.0.0.0'),
    busType: busType as BusType,
    databaseUrl: str(env, 'DATABASE_URL', 'postgres://postgres@127.0.0.1:5432/postgres'),
    natsUrl: str(env, 'NATS_URL', 'nats://127.0.0.1:4222'),
    natsCredentials: optional(env, 'NATS_CREDENTIALS'),
    natsRoomSubjects: roomSubjects,
    busPrefix,
    jwtSecret,
    production,
    disconnectGraceMs: int(env, 'DISCONNECT_GRACE_MS', 10_000, 0, 3_600_000),
    presenceHeartbeatMs: heartbeat,
    presenceTtlMs: ttl,
    wsMaxPayload: int(env, 'WS_MAX_PAYLOAD', 65_536, 256, 64 * 1024 * 1024),
    wsRateLimit: int(env, 'WS_RATE_LIMIT', 0, 0, 1_000_000),
    wsMaxBufferedBytes: int(env, 'WS_MAX_BUFFERED_BYTES', 1024 * 1024, 1024),
    perMessageDeflate: bool(env, 'WS_PER_MESSAGE_DEFLATE', false),
    apiKey: optional(env, 'API_KEY'),
    allowedOrigins,
    maxRoomsPerPod: int(env, 'MAX_ROOMS_PER_POD', 10_000, 1),
    historySize: int(env, 'HISTORY_SIZE', 1_000, 0, 1_000_000),
    historyTtlS: int(env, 'HISTORY_TTL_S', 86_400, 1, 365 * 86_400),
    highWaterBytes: int(env, 'BUS_HIGH_WATER_BYTES', 8 * 1024 * 1024, 1024),
    // Below PostgreSQL's publish queue of 10,000 messages, so backpressure comes before refusal.
    highWaterMessages: int(env, 'BUS_HIGH_WATER_MESSAGES', 4_000, 1, 9_000),
    maxParticipantsPerRoom: int(env, 'MAX_PARTICIPANTS_PER_ROOM', 1_000, 1),
    pgLargePayloads: oneOf(env, 'PG_LARGE_PAYLOADS', ['table', 'chunks'] as const, 'table'),
    logLevel: str(env, 'LOG_LEVEL', 'info'),
  };
}
