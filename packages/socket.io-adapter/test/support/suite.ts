/**
 * The cluster suite, run once per bus: three Socket.IO nodes as separate processes, real
 * clients, the way Socket.IO tests its own adapters.
 */
import { uniquePrefix } from '@retrotro/bus-core/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type BusKind, type TestClient, TestNode, connect, sleep, waitFor } from './cluster.js';

const HEARTBEAT_INTERVAL = 300;
const HEARTBEAT_TIMEOUT = 1_500;
const REQUESTS_TIMEOUT = 3_000;

export function describeCluster(bus: BusKind): void {
  describe(`Socket.IO cluster over ${bus}`, () => {
    const prefix = uniquePrefix(bus.slice(0, 2));
    let nodes: TestNode[] = [];
    let clients: TestClient[] = [];
    // Per node: one client in room "r1", one in "r2"; names `<node>-r1`, `<node>-r2`.
    const client = (name: string) => clients.find((c) => c.name === name)!;
    const clearEvents = () => {
      for (const c of clients) c.events.length = 0;
    };

    beforeAll(async () => {
      const options = { heartbeatInterval: HEARTBEAT_INTERVAL, heartbeatTimeout: HEARTBEAT_TIMEOUT, requestsTimeout: REQUESTS_TIMEOUT };
      nodes = await Promise.all(['a', 'b', 'c'].map((n) => TestNode.start(bus, prefix, n, options)));
      for (const node of nodes) {
        await waitFor(`${node.name} sees 3 servers`, async () => (await node.call<number>('serverCount')) === 3);
      }
      clients = (
        await Promise.all(nodes.flatMap((node) => [connect(node, `${node.name}-r1`, ['r1']), connect(node, `${node.name}-r2`, ['r2'])]))
      ).sort((x, y) => x.name.localeCompare(y.name));
    }, 60_000);

    afterAll(async () => {
      for (const c of clients) c.socket.disconnect();
      await Promise.all(nodes.map((n) => n.stop()));
    }, 30_000);

    const names = (list: TestClient[]) => list.map((c) => c.name).sort();
    const receivers = (event: string) => names(clients.filter((c) => c.of(event).length > 0));

    it('counts three servers', async () => {
      for (const node of nodes) expect(await node.call('serverCount')).toBe(3);
    });

    it('broadcasts to every client of every node', async () => {
      clearEvents();
      await nodes[0]!.call('emit', { event: 'all', args: [{ hello: 'world' }, 42] });
      await waitFor('6 clients', () => receivers('all').length === 6);
      for (const c of clients) expect(c.of('all')).toEqual([['all', { hello: 'world' }, 42]]);
    });

    it('broadcasts to a room only', async () => {
      clearEvents();
      await nodes[1]!.call('emit', { event: 'room', room: 'r1', args: ['x'] });
      await waitFor('r1 clients', () => receivers('room').length === 3);
      await sleep(200);
      expect(receivers('room')).toEqual(['a-r1', 'b-r1', 'c-r1']);
    });

    it('broadcasts with except', async () => {
      clearEvents();
      await nodes[2]!.call('emit', { event: 'except', except: 'r2', args: [1] });
      await waitFor('clients outside r2', () => receivers('except').length === 3);
      // except a single socket id, on another node
      const victim = client('a-r1').socket.id;
      await nodes[2]!.call('emit', { event: 'except-id', except: victim, args: [2] });
      await waitFor('all but one', () => receivers('except-id').length === 5);
      await sleep(200);
      expect(receivers('except')).toEqual(['a-r1', 'b-r1', 'c-r1']);
      expect(receivers('except-id')).not.toContain('a-r1');
    });

    it('broadcasts volatile packets', async () => {
      clearEvents();
      await nodes[0]!.call('emit', { event: 'vol', volatile: true, args: ['v'] });
      await waitFor('6 clients', () => receivers('vol').length === 6);
    });

    it('keeps binary attachments (Buffer, ArrayBuffer, typed arrays, nested)', async () => {
      clearEvents();
      await nodes[0]!.call('emitBinary', { event: 'bin' });
      await waitFor('6 clients', () => receivers('bin').length === 6);
      for (const name of ['a-r1', 'b-r1', 'c-r2']) {
        const [[, buf, obj]] = client(name).of('bin') as [[string, Buffer, { nested: Record<string, Buffer>; text: string }]];
        expect([...buf]).toEqual([1, 2, 3]);
        expect([...obj.nested.u8!]).toEqual([4, 5]);
        expect([...obj.nested.ab!]).toEqual([9, 8, 7, 6]);
        expect(Buffer.from(obj.nested.f32!).readFloatLE(0)).toBe(1.5);
        expect(obj.text).toBe('x');
      }
    });

    for (const bytes of [20_000, 200_000]) {
      it(`delivers a ${bytes / 1000} KB payload whole`, async () => {
        clearEvents();
        const event = `large${bytes}`;
        await nodes[1]!.call('emitLarge', { event, bytes });
        await waitFor('6 clients', () => receivers(event).length === 6, 15_000);
        const expected = client('b-r1').of(event)[0]![1];
        for (const c of clients) {
          const [[, got]] = c.of(event) as [[string, { text: string; bytes: number }]];
          expect(got).toEqual(expected);
          expect(Buffer.byteLength(got.text)).toBe(got.bytes);
        }
      });
    }

    it('collects acks from the clients of every node', async () => {
      const result = await nodes[0]!.call<{ responses?: string[]; error?: string }>('emitWithAck', { event: 'ask', args: ['q'], timeout: 2_000 });
      expect(result.error).toBeUndefined();
      expect(result.responses!.sort()).toEqual(names(clients).map((n) => `${n}:q`));
      const inRoom = await nodes[1]!.call<{ responses?: string[] }>('emitWithAck', { event: 'ask', args: ['r'], timeout: 2_000, room: 'r2' });
      expect(inRoom.responses!.sort()).toEqual(['a-r2:r', 'b-r2:r', 'c-r2:r']);
    });

    it('times out acks that do not come', async () => {
      // `silent` is not answered by the clients.
      const result = await nodes[2]!.call<{ error?: string }>('emitWithAck', { event: 'silent', timeout: 300 });
      expect(result.error).toMatch(/timed out/);
    });

    it('fetches the sockets of every node', async () => {
      const all = await nodes[0]!.call<{ id: string; rooms: string[]; data: { client: string; node: string } }[]>('fetchSockets');
      expect(all.map((s) => s.data.client)).toEqual(names(clients));
      const r2 = await nodes[1]!.call<{ id: string; rooms: string[]; data: { client: string; node: string } }[]>('fetchSockets', { room: 'r2' });
      expect(r2.map((s) => s.data.client)).toEqual(['a-r2', 'b-r2', 'c-r2']);
      expect(r2.find((s) => s.data.client === 'c-r2')).toMatchObject({ id: client('c-r2').socket.id, data: { node: 'c' } });
      expect(r2[0]!.rooms).toContain('r2');
    });

    it('makes sockets of every node join and leave rooms', async () => {
      await nodes[0]!.call('socketsJoin', { room: 'r1', join: 'extra' });
      await waitFor('r1 sockets in extra', async () => (await nodes[1]!.call<unknown[]>('fetchSockets', { room: 'extra' })).length === 3);
      clearEvents();
      await nodes[2]!.call('emit', { event: 'extra', room: 'extra' });
      await waitFor('3 clients in extra', () => receivers('extra').length === 3);
      expect(receivers('extra')).toEqual(['a-r1', 'b-r1', 'c-r1']);
      await nodes[1]!.call('socketsLeave', { room: 'extra', leave: 'extra' });
      await waitFor('extra empty', async () => (await nodes[0]!.call<unknown[]>('fetchSockets', { room: 'extra' })).length === 0);
    });

    it('emits to the other servers, without and with acks', async () => {
      for (const n of nodes) await n.call('serverSideReceived');
      await nodes[0]!.call('serverSideEmit', { event: 'hello', args: ['no-ack', 1] });
      const got: unknown[][] = [[], []];
      await waitFor('b and c received', async () => {
        for (const i of [0, 1]) got[i]!.push(...(await nodes[i + 1]!.call<unknown[]>('serverSideReceived')));
        return got.every((g) => g.length === 1);
      });
      await sleep(100);
      for (const i of [0, 1]) got[i]!.push(...(await nodes[i + 1]!.call<unknown[]>('serverSideReceived')));
      expect(got).toEqual([[['no-ack', 1]], [['no-ack', 1]]]);
      expect(await nodes[0]!.call<unknown[]>('serverSideReceived')).toEqual([]);
      const withAck = await nodes[1]!.call<{ responses?: string[]; error?: string }>('serverSideEmitWithAck', { event: 'hello', args: ['ack'] });
      expect(withAck.error).toBeUndefined();
      expect(withAck.responses!.sort()).toEqual(['a got ["ack"]', 'c got ["ack"]']);
    });

    it('gives up on serverSideEmit acks after requestsTimeout', async () => {
      const result = await nodes[0]!.call<{ error?: string; ms: number }>('serverSideEmitWithAck', { event: 'slow', args: [] });
      expect(result.error).toMatch(/timeout reached/);
      expect(result.ms).toBeGreaterThanOrEqual(REQUESTS_TIMEOUT - 50);
      expect(result.ms).toBeLessThan(REQUESTS_TIMEOUT + 1_500);
    });

    it("delivers one emitter's 500 broadcasts in order on another node", async () => {
      clearEvents();
      const count = 500;
      await nodes[0]!.call('emitSequence', { event: 'seq', count, room: 'r2' });
      await waitFor('500 on b-r2 and c-r2', () => client('b-r2').of('seq').length === count && client('c-r2').of('seq').length === count, 20_000);
      const expected = Array.from({ length: count }, (_, i) => ['seq', i]);
      expect(client('b-r2').of('seq')).toEqual(expected);
      expect(client('c-r2').of('seq')).toEqual(expected);
    });

    it('counts no malformed messages', async () => {
      for (const node of nodes) {
        const stats = await node.call<{ malformed: number; received: number }>('stats');
        expect(stats.malformed).toBe(0);
        expect(stats.received).toBeGreaterThan(0);
      }
    });

    it('disconnects sockets of every node', async () => {
      await nodes[1]!.call('disconnectSockets', { room: 'r2' });
      await waitFor('r2 clients disconnected', () => clients.filter((c) => c.name.endsWith('r2')).every((c) => !c.socket.connected));
      expect(clients.filter((c) => c.name.endsWith('r1')).every((c) => c.socket.connected)).toBe(true);
      expect(await nodes[2]!.call('localSockets')).toBe(1);
    });

    it('forgets a node that was killed, within the heartbeat timeout', async () => {
      const victim = nodes[2]!;
      await victim.kill();
      const killedAt = Date.now();
      // The base class looks for silent nodes once a second.
      const limit = HEARTBEAT_TIMEOUT + HEARTBEAT_INTERVAL + 1_000 + 500;
      await waitFor(
        'serverCount 2 on a and b',
        async () => (await nodes[0]!.call<number>('serverCount')) === 2 && (await nodes[1]!.call<number>('serverCount')) === 2,
        limit + 2_000,
      );
      expect(Date.now() - killedAt).toBeLessThan(limit);
      // Requests no longer wait for it.
      const all = await nodes[0]!.call<unknown[]>('fetchSockets');
      expect(all).toHaveLength(2);
      nodes = nodes.slice(0, 2);
    });
  });
}
