/** HS256 client tokens for the pods (the bench sets JWT_SECRET on every pod it starts). */
import { createHmac, randomUUID } from 'node:crypto';

/** One secret per run, shared with the bench's worker threads (they inherit process.env). */
export const BENCH_SECRET = (process.env.BENCH_RUN_SECRET ??= `bench-secret-${randomUUID()}`);

const b64url = (s: string) => Buffer.from(s).toString('base64url');

export function issueToken(name: string, userId: string = randomUUID()): string {
  const header = b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }));
  const claims = b64url(JSON.stringify({ sub: userId, name, iat: Math.floor(Date.now() / 1000) }));
  const signature = createHmac('sha256', BENCH_SECRET).update(`${header}.${claims}`).digest('base64url');
  return `${header}.${claims}.${signature}`;
}
