/**
 * Server pods (apps/server) as child processes, and every other child the bench starts.
 * Every process is tracked: `stopAll()` ends them at the end of a run, and on any exit of
 * the bench (error, Ctrl-C) the survivors are killed.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { BenchTargets } from './config.js';
import { sleep } from './clock.js';
import { BENCH_SECRET } from './token.js';

/** The last 50 lines a child printed on stdout and stderr, kept for the error that says why it failed. */
export function outputTail(proc: ChildProcess): string[] {
  const output: string[] = [];
  const keep = (line: string) => {
    output.push(line);
    if (output.length > 50) output.shift();
  };
  createInterface({ input: proc.stdout! }).on('line', keep);
  createInterface({ input: proc.stderr! }).on('line', keep);
  return output;
}

export const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));
export const SERVER_MAIN = fileURLToPath(new URL('../../server/dist/main.js', import.meta.url));

const children = new Set<ChildProcess>();

/** Registers a child so it is stopped at the end, or killed if the bench dies. */
export function track(proc: ChildProcess): ChildProcess {
  children.add(proc);
  proc.once('exit', () => children.delete(proc));
  return proc;
}

/** Last resort: whatever is still running when the bench exits is killed. */
export function killAllNow(): void {
  for (const proc of children) {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
  }
}
process.once('exit', killAllNow);

/** SIGTERM every child, SIGKILL those still alive after `graceMs`. */
export async function stopAll(graceMs = 3_000): Promise<void> {
  await Promise.all([...children].map((p) => stopProcess(p, graceMs)));
}

export async function stopProcess(proc: ChildProcess, graceMs = 3_000): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  proc.kill('SIGTERM');
  const timer = setTimeout(() => proc.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

/**
 * apps/server is not a dependency of the bench (the root script builds `@retrotro/bench...`),
 * so build it here through turbo: a no-op when its cache is fresh.
 */
export function ensureServerBuilt(): void {
  const turbo = `${REPO_ROOT}node_modules/.bin/turbo`;
  const r = spawnSync(turbo, ['run', 'build', '--filter=@retrotro/server', '--output-logs=errors-only'], {
    cwd: REPO_ROOT,
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  if (r.status !== 0 || !existsSync(SERVER_MAIN)) {
    throw new Error(`could not build apps/server (turbo exit ${r.status}); run pnpm build and retry`);
  }
}

export interface PodOptions {
  busType: 'postgres' | 'nats' | 'memory';
  prefix: string;
  targets: BenchTargets;
  roomSubjects?: 'flat' | 'per-room';
  /**
   * HISTORY_SIZE of the pod, always set explicitly (the server's default is 1000): 0 keeps a
   * workload measuring the relay alone; > 0 on postgres/nats needs the history stores.
   */
  historySize: number;
  env?: Record<string, string>;
}

/** What a client needs to reach a pod: plain data, so it can be handed to a worker thread. */
export interface PodEndpoint {
  name: string;
  port: number;
}

export const podWsUrl = (pod: PodEndpoint, token: string) => `ws://127.0.0.1:${pod.port}/ws?token=${encodeURIComponent(token)}`;

export interface Pod extends PodEndpoint {
  proc: ChildProcess;
  /** Last lines of output, for error messages. */
  output: string[];
  httpUrl(path: string): string;
}

export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (!address || typeof address === 'string') throw new Error('no free port');
  return address.port;
}

/**
 * Starts one pod and waits until /readyz answers 200 (bounded). LOG_LEVEL=warn silences the
 * `listening` line, so the port is chosen here (a free loopback port) rather than PORT=0.
 */
export async function startPod(name: string, options: PodOptions, attempt = 1): Promise<Pod> {
  const port = await freePort();
  const proc = track(
    // BENCH_POD_NODE_ARGS (e.g. --cpu-prof) is for profiling the pods.
    spawn(process.execPath, [...(process.env.BENCH_POD_NODE_ARGS?.split(' ').filter(Boolean) ?? []), SERVER_MAIN], {
      env: {
        PATH: process.env.PATH ?? '',
        PORT: String(port),
        HOST: '127.0.0.1',
        JWT_SECRET: BENCH_SECRET,
        LOG_LEVEL: 'warn',
        WS_RATE_LIMIT: '0',
        DISCONNECT_GRACE_MS: '0',
        BUS_TYPE: options.busType,
        BUS_PREFIX: options.prefix,
        DATABASE_URL: options.targets.databaseUrl,
        NATS_URL: options.targets.natsUrl,
        NATS_ROOM_SUBJECTS: options.roomSubjects ?? 'flat',
        HISTORY_SIZE: String(options.historySize),
        ...options.env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    }),
  );
  const output = outputTail(proc);
  const pod: Pod = {
    name,
    port,
    proc,
    output,
    httpUrl: (path) => `http://127.0.0.1:${port}${path}`,
  };
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (proc.exitCode !== null || proc.signalCode !== null) {
      const text = output.join('\n');
      // Someone took the port between our probe and the pod's listen: try another.
      if (attempt < 3 && /EADDRINUSE|cannot listen/.test(text)) return startPod(name, options, attempt + 1);
      throw new Error(`pod ${name} exited (${proc.exitCode ?? proc.signalCode}) before ready:\n${text}`);
    }
    try {
      const res = await fetch(pod.httpUrl('/readyz'), { signal: AbortSignal.timeout(1_000) });
      if (res.status === 200) return pod;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await stopProcess(proc, 500);
      throw new Error(`pod ${name} not ready within 20 s:\n${output.join('\n')}`);
    }
    await sleep(50);
  }
}

export async function startPods(count: number, label: string, options: PodOptions): Promise<Pod[]> {
  return Promise.all(Array.from({ length: count }, (_, i) => startPod(`${label}-${i}`, options)));
}

export async function stopPods(pods: Pod[]): Promise<void> {
  await Promise.all(pods.map((p) => stopProcess(p.proc)));
}

/** Sum of a Prometheus counter's samples whose labels include all of `labels`. */
export async function readCounter(pod: Pod, name: string, labels: Record<string, string> = {}): Promise<number> {
  const res = await fetch(pod.httpUrl('/metrics'), { signal: AbortSignal.timeout(5_000) });
  const text = await res.text();
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const m = /^([a-zA-Z_:][\w:]*)(\{([^}]*)\})?\s+(\S+)/.exec(line);
    if (!m || m[1] !== name) continue;
    const got = Object.fromEntries([...(m[3] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]]));
    if (Object.entries(labels).every(([k, v]) => got[k] === v)) sum += Number(m[4]);
  }
  return sum;
}

/** CPU seconds the pod's process has used (prom-client's process_cpu_seconds_total). */
export function readCpuSeconds(pod: Pod): Promise<number> {
  return readCounter(pod, 'process_cpu_seconds_total');
}

/** Measures the CPU the given pods spend while `run` runs. */
export async function withPodCpu<T>(pods: Pod[], run: () => Promise<T>): Promise<{ result: T; cpuSeconds: number[] }> {
  const unique = [...new Set(pods)];
  const before = await Promise.all(unique.map(readCpuSeconds));
  const result = await run();
  const after = await Promise.all(unique.map(readCpuSeconds));
  const byPod = new Map(unique.map((p, i) => [p, after[i]! - before[i]!]));
  return { result, cpuSeconds: pods.map((p) => byPod.get(p)!) };
}
