/**
 * The servers of the peer comparison, one list: our pods (with and without history) and
 * Socket.IO 4 nodes with a cluster adapter, two processes each (A: sender, B: receivers).
 * Adding a peer is one more entry in `peerSpecs`; a peer whose processes cannot start (a
 * package not in the workspace yet, a store not landed) is reported as unavailable with the
 * reason, and the run goes on without it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { PeerEndpoint, ServerKind } from './clients/peer.js';
import type { BenchTargets, BusKind } from './config.js';
import { sleep } from './clock.js';
import { freePort, outputTail, startPod, stopProcess, track } from './pods.js';

export const SIO_NODE_MAIN = fileURLToPath(new URL('./sio/node.js', import.meta.url));

export interface PeerSpec {
  /** Short and unique: `ours-h1000`, `sio-pg`... */
  id: string;
  /** What the table says. */
  label: string;
  bus: BusKind;
  kind: ServerKind;
  /** Ours: HISTORY_SIZE of both pods. */
  historySize?: number;
  /** Socket.IO: SIO_ADAPTER of node.ts. */
  sioAdapter?: string;
  /** Ours: more environment for both pods. */
  env?: Record<string, string>;
  /** Measured only at event sizes of at least this (a variant that differs only for large events). */
  minEventBytes?: number;
}

export function peerSpecs(bus: BusKind): PeerSpec[] {
  const ours = (h: number): PeerSpec => ({ id: `ours-h${h}`, label: `ours, HISTORY_SIZE=${h}`, bus, kind: 'ours', historySize: h });
  const community: PeerSpec =
    bus === 'postgres'
      ? { id: 'sio-pg', label: 'Socket.IO + @socket.io/postgres-adapter', bus, kind: 'sio', sioAdapter: 'postgres' }
      : { id: 'sio-mickl', label: 'Socket.IO + @mickl/socket.io-nats-adapter', bus, kind: 'sio', sioAdapter: 'mickl-nats' };
  const retrotro: PeerSpec = {
    id: 'sio-retrotro',
    label: 'Socket.IO + @retrotro/socket.io-adapter',
    bus,
    kind: 'sio',
    sioAdapter: `retrotro-${bus}`,
  };
  // The large-payload path of before (chunk frames), beside the default (by table), at 10 KB only.
  const chunks = (h: number): PeerSpec => ({
    ...ours(h),
    id: `ours-h${h}-chunks`,
    label: `ours, HISTORY_SIZE=${h}, PG_LARGE_PAYLOADS=chunks`,
    env: { PG_LARGE_PAYLOADS: 'chunks' },
    minEventBytes: 8_000,
  });
  return bus === 'postgres' ? [ours(1000), ours(0), chunks(1000), chunks(0), community, retrotro] : [ours(1000), ours(0), community, retrotro];
}

/**
 * BENCH_PEER_POD_ENV=K=V,K=V: more environment for our pods in workload 6, e.g.
 * WS_MAX_BUFFERED_BYTES=16384 to see receivers cut as slow consumers and recover.
 */
function extraPodEnv(): Record<string, string> {
  const raw = process.env.BENCH_PEER_POD_ENV ?? '';
  return Object.fromEntries(
    raw
      .split(',')
      .filter((kv) => kv.includes('='))
      .map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]),
  );
}

export interface PeerProcess {
  endpoint: PeerEndpoint;
  proc: ChildProcess;
  pid: number;
  output: string[];
  httpUrl(path: string): string;
}

/** Adapter errors a Socket.IO node counted (its /stats); 0 for our pods (their senders are told). */
export async function adapterErrors(p: PeerProcess): Promise<number> {
  if (p.endpoint.kind !== 'sio') return 0;
  try {
    const res = await fetch(p.httpUrl('/stats'), { signal: AbortSignal.timeout(2_000) });
    return ((await res.json()) as { adapterErrors: number }).adapterErrors;
  } catch {
    return NaN;
  }
}

async function startSioNode(name: string, adapter: string, prefix: string, targets: BenchTargets): Promise<PeerProcess> {
  const port = await freePort();
  const proc = track(
    spawn(process.execPath, [...(process.env.BENCH_POD_NODE_ARGS?.split(' ').filter(Boolean) ?? []), SIO_NODE_MAIN], {
      env: {
        PATH: process.env.PATH ?? '',
        PORT: String(port),
        SIO_ADAPTER: adapter,
        SIO_PREFIX: prefix,
        DATABASE_URL: targets.databaseUrl,
        NATS_URL: targets.natsUrl,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    }),
  );
  const output = outputTail(proc);
  const node: PeerProcess = {
    endpoint: { kind: 'sio', name, port },
    proc,
    pid: proc.pid!,
    output,
    httpUrl: (path) => `http://127.0.0.1:${port}${path}`,
  };
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (proc.exitCode !== null || proc.signalCode !== null) {
      throw new Error(`Socket.IO node ${name} exited (${proc.exitCode ?? proc.signalCode}) before ready: ${output.join('\n')}`);
    }
    try {
      const res = await fetch(node.httpUrl('/healthz'), { signal: AbortSignal.timeout(1_000) });
      if (res.status === 200) return node;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await stopProcess(proc, 500);
      throw new Error(`Socket.IO node ${name} not ready within 20 s: ${output.join('\n')}`);
    }
    await sleep(50);
  }
}

/** Starts processes A and B of a peer, each group on its own prefix. */
export async function startPeerPair(spec: PeerSpec, prefix: string, targets: BenchTargets): Promise<[PeerProcess, PeerProcess]> {
  const names = [`${spec.id}-${spec.bus}-A`, `${spec.id}-${spec.bus}-B`] as const;
  const started = await Promise.allSettled(
    names.map(async (name): Promise<PeerProcess> => {
      if (spec.kind === 'sio') return startSioNode(name, spec.sioAdapter!, prefix, targets);
      const pod = await startPod(name, {
        busType: spec.bus,
        prefix,
        targets,
        historySize: spec.historySize ?? 0,
        env: { ...extraPodEnv(), ...spec.env },
      });
      return { endpoint: { kind: 'ours', name, port: pod.port }, proc: pod.proc, pid: pod.proc.pid!, output: pod.output, httpUrl: pod.httpUrl };
    }),
  );
  const ok = started.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
  const failed = started.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (failed) {
    await Promise.all(ok.map((p) => stopProcess(p.proc)));
    throw failed.reason;
  }
  return [ok[0]!, ok[1]!];
}

export async function stopPeerPair(pair: PeerProcess[]): Promise<void> {
  await Promise.all(pair.map((p) => stopProcess(p.proc)));
}
