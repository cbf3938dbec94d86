/**
 * The MessageBus surface of RelayBus: start and stop, whenReady's settling, and arguments
 * that cannot be sent (never thrown: failures are values).
 */
import { describe, expect, it } from 'vitest';
import { BusError, MemoryBroker, MemoryTransport, RelayBus, type StreamKind } from '../src/index.js';
import { RecordingHub, waitFor } from '../src/testing/index.js';
import { FAST, cleanup, recordingLogger, startPod } from './support/memory-pods.js';

function idleBus(broker = new MemoryBroker()) {
  const bus = new RelayBus({ transport: new MemoryTransport(broker), ...FAST });
  cleanup.push(() => bus.stop());
  return bus;
}

const codeOf = (e: unknown) => (e instanceof BusError ? e.code : String(e));

describe('RelayBus: lifecycle', () => {
  it('has no hub before start(hub), and refuses a second start with a BusError', async () => {
    const bus = idleBus();
    expect(() => bus.hub).toThrow(BusError);
    const hub = new RecordingHub();
    await bus.start(hub);
    expect(bus.hub).toBe(hub);
    await expect(bus.start(hub)).rejects.toSatisfy((e) => codeOf(e) === 'already_started');
    await bus.stop();
    await expect(bus.start(hub)).rejects.toSatisfy((e) => codeOf(e) === 'stopped');
  });

  it('may be started again after the broker was down at the first start', async () => {
    const broker = new MemoryBroker();
    broker.down = true;
    const bus = idleBus(broker);
    await expect(bus.start(new RecordingHub())).rejects.toThrow(/cannot reach/);
    broker.down = false;
    await bus.start(new RecordingHub());
    await bus.whenReady();
    expect(bus.ready).toBe(true);
  });
});

describe('RelayBus: whenReady', () => {
  it('rejects waiters when the bus stops before it is ready, and after', async () => {
    const bus = idleBus();
    const waiting = bus.whenReady();
    await bus.stop();
    await expect(waiting).rejects.toSatisfy((e) => codeOf(e) === 'stopped');
    await expect(bus.whenReady()).rejects.toSatisfy((e) => codeOf(e) === 'stopped');
  });

  it('honours timeoutMs and an AbortSignal', async () => {
    const bus = idleBus();
    await expect(bus.whenReady({ timeoutMs: 20 })).rejects.toSatisfy((e) => codeOf(e) === 'timeout');
    const controller = new AbortController();
    const waiting = bus.whenReady({ signal: controller.signal });
    controller.abort(new Error('gave up'));
    await expect(waiting).rejects.toThrow('gave up');
    await expect(bus.whenReady({ signal: AbortSignal.abort(new Error('already')) })).rejects.toThrow('already');
  });

  it('resolves at once when ready, and a pending waiter resolves once the sync window ends', async () => {
    const bus = idleBus();
    const waiting = bus.whenReady({ timeoutMs: 5_000 });
    await bus.start(new RecordingHub());
    await waiting;
    await bus.whenReady();
    expect(bus.status()).toMatchObject({ ready: true, connected: true, transport: 'memory' });
  });
});

describe('RelayBus: arguments that cannot be sent', () => {
  it('a frame holding a BigInt or a cycle resolves {ok:false} and nothing is delivered', async () => {
    const { bus, hub } = await startPod(new MemoryBroker());
    const cyclic: Record<string, unknown> = { type: 'x' };
    cyclic.self = cyclic;
    for (const frame of [{ type: 'x', payload: { n: 1n } }, cyclic]) {
      const r = await bus.broadcastToRoom('r', frame as never);
      expect(r.ok).toBe(false);
      if (!r.ok) expect(codeOf(r.error)).toBe('bad_argument');
    }
    expect(hub.deliveries).toEqual([]);
  });

  it('empty room and user ids resolve {ok:false} instead of reaching the wire', async () => {
    const { bus } = await startPod(new MemoryBroker());
    const results = await Promise.all([
      bus.broadcastToRoom('', { type: 'x' }),
      bus.publishPresenceJoin('', { userId: 'u', userName: 'U' }),
      bus.publishPresenceJoin('r', { userId: '', userName: 'U' }),
      bus.publishPresenceLeave('r', ''),
      bus.setRoomState('', 'k', 1),
    ]);
    for (const r of results) {
      expect(r.ok).toBe(false);
      if (!r.ok) expect(codeOf(r.error)).toBe('bad_argument');
    }
    expect(bus.getRoomClients('r')).toEqual([]);
  });
});

describe('RelayBus: failures in the log', () => {
  it('logs refused publishes at a bounded rate, with a count and without a stack', async () => {
    const { logger, lines } = recordingLogger();
    const broker = new MemoryBroker();
    class RefusingTransport extends MemoryTransport {
      override async publish(stream: StreamKind, payload: string): Promise<void> {
        if (stream === 'room') throw new BusError('publish_failed', 'publish queue of postgres transport (postgres://db:5432) is full');
        return super.publish(stream, payload);
      }
    }
    const { bus } = await startPod(broker, { logger, makeTransport: (b) => new RefusingTransport(b) });
    const results = await Promise.all(Array.from({ length: 2_000 }, (_, i) => bus.broadcastToRoom('r', { type: 'm', payload: { i } })));
    expect(results.every((r) => !r.ok)).toBe(true);
    expect(bus.stats.publishFailures).toBe(2_000);
    const failures = lines.filter((l) => l.msg === 'publish failed');
    expect(failures.length).toBeGreaterThan(0);
    expect(failures.length).toBeLessThanOrEqual(5);
    for (const l of failures) expect(JSON.stringify(l.obj)).not.toMatch(/\bat \w|stack/);
  });
});

describe('RelayBus: two pods with one podId', () => {
  it('notices another process using its podId and says so', async () => {
    const { logger, lines } = recordingLogger();
    const broker = new MemoryBroker();
    const a = await startPod(broker, { podId: 'twin', logger });
    await startPod(broker, { podId: 'twin' });
    await waitFor('the conflict', () => a.bus.stats.podIdConflicts > 0, 2_000);
    expect(lines.some((l) => l.level === 'error' && /another pod uses this podId/.test(l.msg ?? ''))).toBe(true);
  });
});
