import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../src/config.js';

describe('loadConfig', () => {
  it('applies the contract defaults', () => {
    const c = loadConfig({});
    expect(c).toMatchObject({
      port: 8080,
      host: '0.0.0.0',
      busType: 'postgres',
      databaseUrl: 'postgres://postgres@127.0.0.1:5432/postgres',
      natsUrl: 'nats://127.0.0.1:4222',
      busPrefix: 'retrotro',
      jwtSecret: undefined,
      disconnectGraceMs: 10_000,
      presenceHeartbeatMs: 5_000,
      presenceTtlMs: 15_000,
      wsMaxPayload: 65_536,
      wsRateLimit: 0,
      natsRoomSubjects: 'flat',
      perMessageDeflate: false,
      apiKey: undefined,
      allowedOrigins: undefined,
    });
  });

  it('refuses an unknown BUS_TYPE naming the accepted values', () => {
    expect(() => loadConfig({ BUS_TYPE: 'redis' })).toThrow(ConfigError);
    expect(() => loadConfig({ BUS_TYPE: 'redis' })).toThrow(/postgres, nats, memory/);
  });

  it('accepts each bus type', () => {
    for (const t of ['postgres', 'nats', 'memory']) expect(loadConfig({ BUS_TYPE: t }).busType).toBe(t);
  });

  it('requires JWT_SECRET and ALLOWED_ORIGINS in production', () => {
    expect(() => loadConfig({ NODE_ENV: 'production', ALLOWED_ORIGINS: 'https://x' })).toThrow(/JWT_SECRET/);
    expect(() => loadConfig({ NODE_ENV: 'production', JWT_SECRET: 's' })).toThrow(/ALLOWED_ORIGINS/);
    const c = loadConfig({ NODE_ENV: 'production', JWT_SECRET: 's', ALLOWED_ORIGINS: 'https://a, https://b' });
    expect(c.allowedOrigins).toEqual(['https://a', 'https://b']);
    expect(c.production).toBe(true);
  });

  it('names the variable and the problem for bad numbers', () => {
    expect(() => loadConfig({ PORT: 'abc' })).toThrow(/PORT must be a whole number/);
    expect(() => loadConfig({ PORT: '70000' })).toThrow(/PORT must be between 0 and 65535/);
    expect(() => loadConfig({ WS_RATE_LIMIT: '-1' })).toThrow(/WS_RATE_LIMIT/);
    expect(() => loadConfig({ DISCONNECT_GRACE_MS: '1.5' })).toThrow(/DISCONNECT_GRACE_MS/);
  });

  it('requires the TTL to exceed the heartbeat', () => {
    expect(() => loadConfig({ PRESENCE_HEARTBEAT_MS: '5000', PRESENCE_TTL_MS: '5000' })).toThrow(/PRESENCE_TTL_MS/);
  });

  it('validates the prefix, NATS routing and booleans', () => {
    expect(() => loadConfig({ BUS_PREFIX: 'a b' })).toThrow(/BUS_PREFIX/);
    expect(() => loadConfig({ BUS_PREFIX: 'a.b' })).toThrow(/BUS_PREFIX/);
    expect(loadConfig({ BUS_PREFIX: 'team_1' }).busPrefix).toBe('team_1');
    // bus-core's one rule (validateBusPrefix): letters, digits and underscores, 1 to 40 characters.
    expect(() => loadConfig({ BUS_PREFIX: 'team-1' })).toThrow(/BUS_PREFIX: invalid bus prefix "team-1"/);
    expect(loadConfig({ BUS_PREFIX: 'p'.repeat(40) }).busPrefix).toBe('p'.repeat(40));
    expect(() => loadConfig({ BUS_PREFIX: 'p'.repeat(41) })).toThrow(/BUS_PREFIX: .*too long: 41 characters, at most 40/);
    expect(() => loadConfig({ NATS_ROOM_SUBJECTS: 'tree' })).toThrow(/flat or per-room/);
    expect(loadConfig({ WS_PER_MESSAGE_DEFLATE: 'true' }).perMessageDeflate).toBe(true);
    expect(() => loadConfig({ WS_PER_MESSAGE_DEFLATE: 'maybe' })).toThrow(/WS_PER_MESSAGE_DEFLATE/);
    expect(loadConfig({}).pgLargePayloads).toBe('table');
    expect(loadConfig({ PG_LARGE_PAYLOADS: 'chunks' }).pgLargePayloads).toBe('chunks');
    expect(() => loadConfig({ PG_LARGE_PAYLOADS: 'split' })).toThrow(/PG_LARGE_PAYLOADS must be one of table, chunks/);
  });
});
