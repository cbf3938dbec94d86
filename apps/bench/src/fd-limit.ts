/**
 * File descriptors: 10,000+ client sockets live in the bench process, so its open-file limit
 * is raised where it can be (util-linux `prlimit` on our own pid: up to the hard limit, and
 * beyond it as root). Pods started afterwards inherit the limit.
 */
import { spawnSync } from 'node:child_process';

function current(): { soft: number; hard: number } | undefined {
  const r = spawnSync('prlimit', ['--pid', String(process.pid), '--nofile', '--output=SOFT,HARD', '--noheadings', '--raw'], { encoding: 'utf8' });
  if (r.status !== 0) return undefined;
  const [soft, hard] = r.stdout
    .trim()
    .split(/\s+/)
    .map((x) => (x === 'unlimited' ? Number.POSITIVE_INFINITY : Number(x)));
  return soft !== undefined && hard !== undefined ? { soft, hard } : undefined;
}

/** Raises the soft (and if allowed the hard) limit to `want`; returns the soft limit now in force (NaN if unknown). */
export function raiseFdLimit(want: number): number {
  const before = current();
  if (!before) return Number.NaN;
  if (before.soft >= want) return before.soft;
  for (const [soft, hard] of [
    [want, Math.max(want, before.hard)],
    [Math.min(want, before.hard), before.hard],
  ] as const) {
    const r = spawnSync('prlimit', ['--pid', String(process.pid), `--nofile=${soft}:${hard}`], { encoding: 'utf8' });
    if (r.status === 0) break;
  }
  return current()?.soft ?? before.soft;
}
