/**
 * Overload without loss: a publisher floods pod A faster than PostgreSQL takes its events
 * (small ones, and 10 KB ones that go by reference through the large-payload table).
 * The pod stops reading from it while too much is unacknowledged (a low high-water mark
 * here, to get there quickly) instead of refusing its events: every event is acknowledged
 * and delivered, in order, memory stays bounded, and another socket on the pod still gets
 * its event through.
 */
import { readFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { ClientPool, metricValue, scrapeMetrics, startPod, uniqueBusPrefix, waitUntil, type Pod } from './support/pods.js';

const WAIT = 120_000;

/** Peak resident memory of a process, in MiB (VmHWM). */
function peakMiB(pod: Pod): number {
  const status = readFileSync(`/proc/${pod.proc.pid}/status`, 'utf8');
  const kb = Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? 0);
  return kb / 1024;
}

describe('backpressure over postgres', () => {
  const pods: Pod[] = [];
  const clients = new ClientPool();
  afterAll(async () => {
    clients.dropAll();
    await Promise.all(pods.map((p) => p.kill()));
  });

  it('a flooding publisher is slowed down, not refused: everything acked and delivered in order, memory bounded', { timeout: 180_000 }, async () => {
    const env = { BUS_TYPE: 'postgres', BUS_PREFIX: uniqueBusPrefix('bp'), BUS_HIGH_WATER_MESSAGES: '20' };
    const [a, b] = await Promise.all([startPod(env), startPod(env)]);
    pods.push(a, b);
    const r = `bp-${Date.now().toString(36)}`;
    const flooder = await clients.connect(a, 'flooder');
    const bystander = await clients.connect(a, 'bystander');
    const receiver = await clients.connect(b, 'receiver');
    for (const c of [flooder, bystander, receiver]) await c.join(r);
    const n = 3_000;
    const text = 'x'.repeat(2_000);
    for (let i = 0; i < n; i++) flooder.send('publish', { event: 'flood', data: { i, text }, id: `f${i}` });
    // Mid-flood, another socket of the same pod publishes: it is not starved.
    await waitUntil('the flood under way', () => receiver.of('event').length > 100, WAIT);
    bystander.send('publish', { event: 'hello', data: 1, id: 'b1' });
    await bystander.next('ack', (f) => f.payload.id === 'b1', WAIT);
    await receiver.next('event', (f) => f.payload.event === 'hello', WAIT);

    await waitUntil(`${n} acks`, () => flooder.of('ack').length === n, WAIT);
    await waitUntil(`${n} events on the other pod`, () => receiver.of('event').filter((e) => e.payload.event === 'flood').length === n, WAIT);
    expect(flooder.of('error')).toEqual([]); // never relay_failed while the broker is up
    const got = receiver.of('event').filter((e) => e.payload.event === 'flood');
    expect(got.map((e) => e.payload.data.i)).toEqual([...Array(n).keys()]);
    const offsets = got.map((e) => e.payload.offset as number);
    expect(offsets).toEqual([...offsets].sort((x, y) => x - y));
    // Backpressure did engage, and the pod never held the whole flood.
    expect(metricValue(await scrapeMetrics(a), 'retrotro_publishers_paused_total')).toBeGreaterThan(0);
    expect(peakMiB(a)).toBeLessThan(400);
  });

  it('10 KB events flooding over PostgreSQL go by reference: all acked, delivered whole and in order, none missing', {
    timeout: 180_000,
  }, async () => {
    const env = { BUS_TYPE: 'postgres', BUS_PREFIX: uniqueBusPrefix('bpl'), BUS_HIGH_WATER_MESSAGES: '20' };
    const [a, b] = await Promise.all([startPod(env), startPod(env)]);
    pods.push(a, b);
    const r = `bpl-${Date.now().toString(36)}`;
    const flooder = await clients.connect(a, 'flooder');
    const receiver = await clients.connect(b, 'receiver');
    for (const c of [flooder, receiver]) await c.join(r);
    const n = 1_000;
    const words = 'the team went well next sprint we could improve action item review'.split(' ');
    let text = '';
    for (let i = 0; text.length < 10_240; i++) text += `${words[(i * 31) % words.length]} `;
    for (let i = 0; i < n; i++) flooder.send('publish', { event: 'big', data: { i, text }, id: `l${i}` });
    await waitUntil(`${n} acks`, () => flooder.of('ack').length === n, WAIT);
    await waitUntil(`${n} events on the other pod`, () => receiver.of('event').filter((e) => e.payload.event === 'big').length === n, WAIT);
    expect(flooder.of('error')).toEqual([]);
    const got = receiver.of('event').filter((e) => e.payload.event === 'big');
    expect(got.map((e) => e.payload.data.i)).toEqual([...Array(n).keys()]);
    expect(got.every((e) => e.payload.data.text === text)).toBe(true);
    const stored = metricValue(await scrapeMetrics(a), 'retrotro_bus_large_payloads_total', { outcome: 'stored' });
    const onB = await scrapeMetrics(b);
    expect(stored).toBe(n);
    expect(metricValue(onB, 'retrotro_bus_large_payloads_total', { outcome: 'read' })).toBe(n);
    expect(metricValue(onB, 'retrotro_bus_large_payloads_total', { outcome: 'missing' })).toBe(0);
    expect(peakMiB(a)).toBeLessThan(400);
  });
});
