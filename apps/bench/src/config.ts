/**
 * Where the brokers are, and the run's identity. Only loopback addresses: the bench must
 * never reach anything beyond this machine.
 */
export interface BenchTargets {
  databaseUrl: string;
  natsUrl: string;
}

function loopbackOnly(name: string, url: string): string {
  const host = new URL(url).hostname;
  if (host !== '127.0.0.1') throw new Error(`${name} must point at 127.0.0.1 (the bench only talks to loopback), got ${host}`);
  return url;
}

export function loadTargets(env: NodeJS.ProcessEnv = process.env): BenchTargets {
  return {
    databaseUrl: loopbackOnly('BENCH_DATABASE_URL', env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres'),
    natsUrl: loopbackOnly('BENCH_NATS_URL', env.BENCH_NATS_URL ?? 'nats://127.0.0.1:4222'),
  };
}

/** A prefix no other run shares: PG channels and NATS subjects are named after it (<= 40 chars for BUS_PREFIX). */
export function runPrefix(): string {
  return `bench_${Date.now().toString(36)}_${process.pid.toString(36)}`;
}

export type BusKind = 'postgres' | 'nats';
export const BUSES: readonly BusKind[] = ['postgres', 'nats'];
