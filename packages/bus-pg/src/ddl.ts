/**
 * Creating our tables when missing. Pods starting together would collide on CREATE ... IF
 * NOT EXISTS (it is not atomic against a concurrent create), so the DDL runs in one
 * transaction behind a transaction-level advisory lock named for what it creates.
 */
import { createHash } from 'node:crypto';

/** `BEGIN; <lock>; <ddl>; COMMIT;` as one simple-protocol script. */
export function lockedDdl(lockName: string, ddl: string): string {
  return `BEGIN; SELECT pg_advisory_xact_lock(${advisoryKey(lockName)}); ${ddl}\nCOMMIT;`;
}

/** A 64-bit advisory lock key from a name, as a SQL literal. */
function advisoryKey(name: string): string {
  return createHash('sha256').update(name).digest().readBigInt64BE(0).toString();
}
