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

/**
 * Keeps `column` of `table` (an escaped identifier) in the row, compressed only when the row
 * would not fit in a page: STORAGE MAIN, toast_tuple_target 8160, lz4 where the server has
 * it (cheaper than the default pglz both ways). A 10 KB text event then costs one heap tuple
 * instead of a row plus TOAST chunks and their index entries (about twice the insert rate at
 * 10 KB in a micro-benchmark). Set only when not yet set, so a pod starting next to busy ones
 * takes no table lock.
 */
export function inlineCompressed(table: string, column: string): string {
  return `DO $$ BEGIN
  IF (SELECT attstorage FROM pg_attribute WHERE attrelid = '${table}'::regclass AND attname = '${column}') <> 'm' THEN
    ALTER TABLE ${table} ALTER COLUMN ${column} SET STORAGE MAIN;
    ALTER TABLE ${table} SET (toast_tuple_target = 8160);
    BEGIN
      ALTER TABLE ${table} ALTER COLUMN ${column} SET COMPRESSION lz4;
    EXCEPTION WHEN OTHERS THEN NULL; -- built without lz4: pglz
    END;
  END IF;
END $$;`;
}

/** A 64-bit advisory lock key from a name, as a SQL literal. */
function advisoryKey(name: string): string {
  return createHash('sha256').update(name).digest().readBigInt64BE(0).toString();
}
