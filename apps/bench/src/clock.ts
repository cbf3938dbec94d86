/**
 * One clock for every timestamp the bench takes: microseconds on the system's monotonic
 * clock (CLOCK_MONOTONIC under `process.hrtime`), so a time written in one process or thread
 * can be compared with a time read in another.
 */
export function nowUs(): number {
  return Number(process.hrtime.bigint() / 1000n);
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Polls `check` every 20 ms until it holds or `timeoutMs` has passed; returns whether it held. */
export async function waitFor(check: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) return false;
    await sleep(20);
  }
  return true;
}
