import { describe, expect, it } from 'vitest';
import { Backpressure } from '../src/backpressure.js';
import { MemoryBroker, MemoryTransport, type StreamKind } from '../src/index.js';
import { startPod } from './support/memory-pods.js';

function deferred() {
  let resolve!: () => void;
  let reject!: (e: Error) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

describe('Backpressure', () => {
  it('turns overloaded at the high-water mark and back at half of it, telling its listeners once each way', async () => {
    const bp = new Backpressure({ highWaterBytes: 1_000, highWaterMessages: 100 });
    const seen: boolean[] = [];
    bp.onChange((high) => seen.push(high));
    const pending = Array.from({ length: 10 }, () => deferred());
    pending.forEach((d) => void bp.track(100, d.promise));
    expect(bp.overloaded).toBe(true);
    expect(bp.inFlight).toEqual({ messages: 10, bytes: 1_000 });
    for (const d of pending.slice(0, 4)) d.resolve();
    await Promise.resolve();
    await Promise.resolve();
    expect(bp.overloaded).toBe(true); // 600 bytes: above half
    pending[4]!.reject(new Error('refused')); // a failure settles it too
    await new Promise((r) => setTimeout(r, 0));
    expect(bp.overloaded).toBe(false);
    expect(seen).toEqual([true, false]);
  });

  it('counts messages as well as bytes', () => {
    const bp = new Backpressure({ highWaterBytes: 1e9, highWaterMessages: 3 });
    for (let i = 0; i < 3; i++) void bp.track(1, new Promise(() => {}));
    expect(bp.overloaded).toBe(true);
  });
});

describe('RelayBus: overloaded while the broker lags', () => {
  it('reports overloaded while publishes wait for the broker, and recovers once they are acknowledged', async () => {
    const gate = deferred();
    class SlowTransport extends MemoryTransport {
      override async publish(stream: StreamKind, payload: string): Promise<void> {
        if (stream === 'room') await gate.promise;
        return super.publish(stream, payload);
      }
    }
    const { bus } = await startPod(new MemoryBroker(), { makeTransport: (b) => new SlowTransport(b) });
    const changes: boolean[] = [];
    bus.onPressure((high) => changes.push(high));
    const sent = Array.from({ length: 5_000 }, (_, i) => bus.broadcastToRoom('r', { type: 'm', payload: { i } }));
    expect(bus.overloaded).toBe(true);
    gate.resolve();
    const results = await Promise.all(sent);
    expect(results.every((r) => r.ok)).toBe(true); // nothing refused: the caller was told to slow down
    await new Promise((r) => setTimeout(r, 0));
    expect(bus.overloaded).toBe(false);
    expect(changes).toEqual([true, false]);
  });
});
