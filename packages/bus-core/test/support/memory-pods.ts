/**
 * Pods for tests of the relay over the in-memory broker. Pods are either real RelayBus
 * instances or "fake" pods: raw envelopes put on the broker with `inject`, exactly as a
 * foreign (Go, older, newer or broken) pod would. A "wire tap" is a bare MemoryTransport
 * whose sink records everything on the broker.
 */
import { afterEach } from 'vitest';
import { decodeControl, type ControlEnvelope } from '../../src/envelopes.js';
import { type MemoryBroker, MemoryTransport, RelayBus, type Logger, type MemoryTransportOptions, type StreamKind } from '../../src/index.js';
import { RecordingHub } from '../../src/testing/index.js';

export const FAST = { heartbeatMs: 50, ttlMs: 200, syncWindowMs: 50 } as const;

export const cleanup: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c().catch(() => undefined);
});

interface PodOptions {
  podId?: string;
  hub?: RecordingHub;
  heartbeatMs?: number;
  ttlMs?: number;
  syncWindowMs?: number;
  logger?: Logger;
  transport?: MemoryTransportOptions;
  makeTransport?: (broker: MemoryBroker) => MemoryTransport;
}

export async function startPod(broker: MemoryBroker, o: PodOptions = {}) {
  const transport = o.makeTransport?.(broker) ?? new MemoryTransport(broker, o.transport);
  const hub = o.hub ?? new RecordingHub();
  const bus = new RelayBus({
    transport,
    heartbeatMs: o.heartbeatMs ?? FAST.heartbeatMs,
    ttlMs: o.ttlMs ?? FAST.ttlMs,
    syncWindowMs: o.syncWindowMs ?? FAST.syncWindowMs,
    ...(o.podId === undefined ? {} : { podId: o.podId }),
    ...(o.logger === undefined ? {} : { logger: o.logger }),
  });
  cleanup.push(() => bus.stop());
  await bus.start(hub);
  await bus.whenReady();
  return { bus, hub, transport };
}

interface WireMessage {
  stream: StreamKind;
  payload: string;
}

/** Records everything published on the broker, by any pod. */
export async function tap(broker: MemoryBroker) {
  const all: WireMessage[] = [];
  const t = new MemoryTransport(broker);
  await t.open({ receive: (stream, payload) => all.push({ stream, payload }), stateChanged: () => undefined });
  cleanup.push(() => t.close());
  const controls = (from?: string): ControlEnvelope[] =>
    all
      .filter((m) => m.stream === 'control')
      .flatMap((m) => {
        const d = decodeControl(m.payload);
        return d.ok === true ? [d.value] : [];
      })
      .filter((c) => from === undefined || c.podId === from);
  const syncRequests = (from: string, target: string) => controls(from).filter((c) => c.kind === 'sync_request' && c.target === target).length;
  return { all, controls, syncRequests };
}

/** Puts a raw envelope on the broker as another pod would. */
export function inject(broker: MemoryBroker, stream: StreamKind, envelope: object | string): void {
  broker.publish(stream, typeof envelope === 'string' ? envelope : JSON.stringify(envelope));
}

export const roomEnv = (podId: string, seq: number | undefined, n: number, roomId = 'r') => ({
  podId,
  roomId,
  message: { type: 'm', payload: { n } },
  ...(seq === undefined ? {} : { seq }),
});

export const ns = (hub: RecordingHub, roomId = 'r') => hub.frames(roomId, 'm').map((f) => (f.payload as { n: number }).n);

export function recordingLogger() {
  const lines: Array<{ level: string; obj: object; msg: string | undefined }> = [];
  const at = (level: string) => (obj: object, msg?: string) => void lines.push({ level, obj, msg });
  const logger: Logger = { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
  return { logger, lines };
}
