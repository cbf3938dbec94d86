/**
 * CPU and memory of one child process from /proc, whatever program it runs (our pods, the
 * Socket.IO nodes): CPU from /proc/<pid>/stat, peak resident memory from VmHWM in
 * /proc/<pid>/status, reset before each trial by writing 5 to /proc/<pid>/clear_refs (Linux:
 * "reset the peak resident set size to the current value"). Where the reset is refused, the
 * peak is the largest VmRSS sampled every 50 ms instead (`peakSampler`).
 */
import { readFileSync, writeFileSync } from 'node:fs';

const USER_HZ = 100;

/** CPU seconds (user + system) the process has used; NaN once it is gone. */
export function pidCpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(rest[11]) + Number(rest[12])) / USER_HZ;
  } catch {
    return NaN;
  }
}

function statusKb(pid: number, field: 'VmHWM' | 'VmRSS'): number {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : NaN;
  } catch {
    return NaN;
  }
}

/** Resets the peak to the current resident size; false where the kernel refuses. */
export function resetPeak(pid: number): boolean {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
    return true;
  } catch {
    return false;
  }
}

/**
 * Peak resident memory (MiB) of each process while `run` runs: VmHWM after a reset, and
 * sampled VmRSS every 50 ms, whichever is larger (the sample covers a refused reset).
 */
export async function withPeakMemory<T>(
  pids: number[],
  run: () => Promise<T>,
): Promise<{ result: T; peakMiB: number[]; startMiB: number[]; hwmReset: boolean }> {
  const reset = pids.map(resetPeak).every(Boolean);
  const sampled = pids.map((p) => statusKb(p, 'VmRSS'));
  const startMiB = sampled.map((kb) => kb / 1024);
  const timer = setInterval(() => {
    pids.forEach((p, i) => {
      const v = statusKb(p, 'VmRSS');
      if (v > sampled[i]!) sampled[i] = v;
    });
  }, 50);
  try {
    const result = await run();
    const peak = pids.map((p, i) => {
      const hwm = reset ? statusKb(p, 'VmHWM') : NaN;
      return Math.max(Number.isFinite(hwm) ? hwm : 0, sampled[i]!) / 1024;
    });
    return { result, peakMiB: peak, startMiB, hwmReset: reset };
  } finally {
    clearInterval(timer);
  }
}

/** CPU seconds each process spends while `run` runs. */
export async function withPidCpu<T>(pids: number[], run: () => Promise<T>): Promise<{ result: T; cpuSeconds: number[] }> {
  const before = pids.map(pidCpuSeconds);
  const result = await run();
  return { result, cpuSeconds: pids.map((p, i) => pidCpuSeconds(p) - before[i]!) };
}
