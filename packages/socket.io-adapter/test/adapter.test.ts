/**
 * In-process tests over bus-core's MemoryTransport: the codec, chunking, own echoes,
 * malformed messages, a broker down at start, a lost connection, and trackPresence.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { MemoryBroker, MemoryTransport, PresenceTracker, RelayBus, silentLogger, type Logger } from '@retrotro/bus-core';
import { RecordingHub } from '@retrotro/bus-core/testing';
import { Server } from 'socket.io';
import { io as connectClient, type Socket } from 'socket.io-client';
import { afterEach, describe, expect, it } from 'vitest';
import { decodeBody, encodeMessage, hasBinary, headerOf, parseHeader } from '../src/codec.js';
import { type BusAdapter, adapterPrefix, createAdapter, trackPresence } from '../src/index.js';
import { waitFor } from './support/cluster.js';

describe('codec', () => {
  const header = headerOf('node1', '*', encodeURIComponent('/chat room é'));

  it('sends plain JSON when there is no binary', () => {
    const message = { uid: 'u', nsp: '/chat room é', type: 3, data: { packet: { data: ['ev', { a: 1, d: new Date(0) }] } } };
    const payload = encodeMessage(header, message);
    expect(payload.split('\n')[0]).toBe('s1 node1 * %2Fchat%20room%20%C3%A9 j');
    const parsed = parseHeader(payload)!;
    expect(parsed).toMatchObject({ nodeId: 'node1', target: '*', namespace: '/chat room é', binary: false });
    expect(decodeBody(payload, parsed)).toEqual(JSON.parse(JSON.stringify(message)));
  });

  it('keeps Buffers, ArrayBuffers and typed arrays, nested, as Buffers', () => {
    const ab = new Uint8Array([7, 8]).buffer;
    const message = { data: [Buffer.from('hi'), { deep: [{ ab }, new Uint16Array([258])] }, 'text', null, 3] };
    expect(hasBinary(message)).toBe(true);
    const payload = encodeMessage(header, message);
    const decoded = decodeBody(payload, parseHeader(payload)!) as { data: [Buffer, { deep: [{ ab: Buffer }, Buffer] }, string, null, number] };
    expect(Buffer.isBuffer(decoded.data[0])).toBe(true);
    expect(decoded.data[0].toString()).toBe('hi');
    expect([...decoded.data[1].deep[0].ab]).toEqual([7, 8]);
    expect([...decoded.data[1].deep[1]]).toEqual([2, 1]);
    expect(decoded.data.slice(2)).toEqual(['text', null, 3]);
  });

  it('finds binary behind toJSON, like Socket.IO', () => {
    const wrapper = { toJSON: () => ({ b: Buffer.from([1]) }) };
    expect(hasBinary({ x: wrapper })).toBe(true);
    const payload = encodeMessage(header, { x: wrapper });
    expect([...(decodeBody(payload, parseHeader(payload)!) as { x: { b: Buffer } }).x.b]).toEqual([1]);
  });

  it('rejects what is not a header', () => {
    for (const bad of ['', 'garbage', 's1 a b\n{}', 's1 a * %E0%A4%A j\n{}', 's1 a * / x\n{}', `s1 a * ${'x'.repeat(2000)} j\n{}`]) {
      expect(parseHeader(bad)).toBeUndefined();
    }
  });

  it('adds _sio to the prefix, within the prefix rule', () => {
    expect(adapterPrefix('app')).toBe('app_sio');
    expect(adapterPrefix()).toBe('retrotro_sio');
    expect(() => adapterPrefix('x'.repeat(37))).toThrow(/at most 36/);
    expect(() => adapterPrefix('bad-prefix')).toThrow(/letters, digits or underscores/);
  });

  it('checks options up front', () => {
    expect(() => createAdapter({ bus: { type: 'postgres', connectionString: '' } })).toThrow(/connectionString/);
    // @ts-expect-error an unknown type
    expect(() => createAdapter({ bus: { type: 'redis' } })).toThrow(/unknown bus type/);
    expect(() => createAdapter({ bus: { type: 'nats' }, heartbeatInterval: 0 })).toThrow(/heartbeatInterval/);
    expect(() => createAdapter({ bus: { type: 'nats' }, heartbeatInterval: 5000, heartbeatTimeout: 5000 })).toThrow(/must exceed/);
    expect(typeof createAdapter({ bus: { type: 'nats', servers: ['nats://127.0.0.1:1'] } })).toBe('function');
  });
});

describe('over MemoryTransport', () => {
  const cleanups: (() => Promise<void> | void)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  interface MemNode {
    io: Server;
    port: number;
    transports: MemoryTransport[];
    adapter: () => BusAdapter;
  }

  const captured: string[] = [];
  const logger: Logger = { ...silentLogger, warn: (_o, m) => captured.push(m ?? ''), error: (_o, m) => captured.push(m ?? '') };

  async function node(broker: MemoryBroker, rightAway?: (io: Server) => void): Promise<MemNode> {
    const maxPayloadBytes = 7_999;
    const transports: MemoryTransport[] = [];
    const httpServer = createServer();
    const io = new Server(httpServer, { transports: ['websocket'] });
    io.adapter(
      createAdapter({
        bus: {
          transport: () => {
            const t = new MemoryTransport(broker, { maxPayloadBytes, chunking: true });
            transports.push(t);
            return t;
          },
        },
        heartbeatInterval: 100,
        heartbeatTimeout: 400,
        logger,
      }),
    );
    rightAway?.(io);
    await new Promise<void>((r) => httpServer.listen(0, '127.0.0.1', r));
    cleanups.push(() => io.close());
    return { io, port: (httpServer.address() as AddressInfo).port, transports, adapter: () => io.of('/').adapter as unknown as BusAdapter };
  }

  async function client(n: MemNode): Promise<{ socket: Socket; got: unknown[][] }> {
    const socket = connectClient(`http://127.0.0.1:${n.port}`, { transports: ['websocket'], forceNew: true, reconnection: false });
    const got: unknown[][] = [];
    socket.onAny((...args: unknown[]) => got.push(args));
    cleanups.push(() => void socket.disconnect());
    await new Promise<void>((r) => socket.once('connect', () => r()));
    return { socket, got };
  }

  const serverCount = (n: MemNode) => n.adapter().serverCount();

  it('chunks large messages and drops its own echoes before parsing', async () => {
    const broker = new MemoryBroker();
    const a = await node(broker);
    const b = await node(broker);
    await waitFor('2 servers', async () => (await serverCount(a)) === 2 && (await serverCount(b)) === 2);
    const c = await client(b);
    const text = 'é'.repeat(30_000); // 60 KB of UTF-8: 8 frames under 7999 bytes
    a.io.emit('big', text, Buffer.alloc(1_000, 1));
    await waitFor('big on b', () => c.got.length === 1);
    expect(c.got[0]![1]).toBe(text);
    expect((c.got[0]![2] as Buffer).length).toBe(1_000);
    expect(a.adapter().busStats.chunked).toBeGreaterThan(0);
    expect(a.adapter().busStats.ownEchoes).toBeGreaterThan(0);
    expect(b.adapter().busStats.malformed).toBe(0);
  });

  it('counts and ignores malformed messages', async () => {
    const broker = new MemoryBroker();
    const a = await node(broker);
    const b = await node(broker);
    await waitFor('2 servers', async () => (await serverCount(a)) === 2);
    const c = await client(b);
    const before = b.adapter().busStats.malformed;
    broker.publish('room', 'garbage');
    broker.publish('room', 's1 other * %2F j\n{not json');
    broker.publish('room', 's1 other * %2F j\n{"uid":"x","nsp":"/","type":3}'); // no data
    broker.publish('room', 's1 other * %2F j\n{"uid":"x","nsp":"/","type":3,"data":{}}'); // no packet: the base class throws
    broker.publish('room', 'c1 other 1 1 2 room\nabc'); // a chunk without its first part
    await waitFor('5 malformed', () => b.adapter().busStats.malformed - before === 5);
    a.io.emit('still', 'works');
    await waitFor('delivered after garbage', () => c.got.some((g) => g[0] === 'still'));
    expect(captured.some((m) => m.includes('malformed'))).toBe(true);
  });

  it('waits for a broker that is down at start, then connects by itself', async () => {
    const broker = new MemoryBroker();
    broker.down = true;
    const a = await node(broker);
    const initDone = a.adapter().init(); // resolves once the first attempt failed; never rejects
    await initDone;
    expect(a.adapter().connected).toBe(false);
    // Published while down and retrying: fails fast, locally still delivered.
    const c = await client(a);
    a.io.emit('local', 1);
    await waitFor('local delivery', () => c.got.length === 1);
    broker.down = false;
    await waitFor('connected', () => a.adapter().connected, 10_000);
    const b = await node(broker);
    await waitFor('2 servers', async () => (await serverCount(a)) === 2 && (await serverCount(b)) === 2);
  });

  it('holds messages published before the first connection and sends them in order', async () => {
    const broker = new MemoryBroker();
    const b = await node(broker);
    const cb = await client(b);
    let connectedThen = true;
    await node(broker, (io) => {
      // Synchronously after io.adapter(): nothing is connected yet, these wait for the connection.
      connectedThen = (io.of('/').adapter as unknown as BusAdapter).connected;
      for (let i = 0; i < 20; i++) io.emit('early', i);
    });
    expect(connectedThen).toBe(false);
    await waitFor('20 early on b', () => cb.got.length === 20);
    expect(cb.got.map((g) => g[1])).toEqual(Array.from({ length: 20 }, (_, i) => i));
  });

  it('forgets a silent node and finds it again after a lost connection', async () => {
    const broker = new MemoryBroker();
    const a = await node(broker);
    const b = await node(broker);
    await waitFor('2 servers', async () => (await serverCount(a)) === 2 && (await serverCount(b)) === 2);
    b.transports[0]!.sever();
    await waitFor('b forgotten by a', async () => (await serverCount(a)) === 1, 5_000);
    expect(captured.some((m) => m.includes('connection lost'))).toBe(true);
    b.transports[0]!.restore();
    await waitFor('b back', async () => (await serverCount(a)) === 2 && (await serverCount(b)) === 2, 5_000);
  });

  it('closes the transport with the last namespace, after its goodbye', async () => {
    const broker = new MemoryBroker();
    const a = await node(broker);
    const b = await node(broker);
    a.io.of('/other');
    await waitFor('2 servers', async () => (await serverCount(a)) === 2 && (await serverCount(b)) === 2);
    await b.io.close();
    // ADAPTER_CLOSE: forgotten at once, not after the heartbeat timeout.
    await waitFor('b forgotten at once', async () => (await serverCount(a)) === 1, 300);
    expect(b.transports).toHaveLength(1);
  });
});

describe('trackPresence (optional, over PresenceTracker and a memory RelayBus)', () => {
  it('counts users, not sockets: one join for two tabs, grace for a dropped connection, none for a deliberate one', async () => {
    const broker = new MemoryBroker();
    const hub = new RecordingHub();
    const bus = new RelayBus({ transport: new MemoryTransport(broker), heartbeatMs: 50, ttlMs: 200, syncWindowMs: 10 });
    await bus.start(hub);
    const tracker = new PresenceTracker({ bus, graceMs: 300 });
    const httpServer = createServer();
    const io = new Server(httpServer, { transports: ['websocket'] });
    trackPresence(io.of('/'), { tracker, participant: (s) => s.handshake.auth.user });
    io.on('connection', (socket) => socket.join('retro'));
    await new Promise<void>((r) => httpServer.listen(0, '127.0.0.1', r));
    const port = (httpServer.address() as AddressInfo).port;
    const open = async (userId: string) => {
      const s = connectClient(`http://127.0.0.1:${port}`, {
        transports: ['websocket'],
        forceNew: true,
        reconnection: false,
        auth: { user: { userId, userName: userId } },
      });
      await new Promise<void>((r) => s.once('connect', () => r()));
      return s;
    };
    try {
      const tab1 = await open('alice');
      const tab2 = await open('alice');
      await waitFor('alice present', () => bus.isUserInRoom('retro', 'alice'));
      expect(tracker.connections('retro', 'alice')).toBe(2);
      tab1.disconnect(); // deliberate, but she has another tab
      await waitFor('one tab left', () => tracker.connections('retro', 'alice') === 1);
      tab2.io.engine.close(); // a dropped connection: grace
      await waitFor('pending', () => tracker.isPending('retro', 'alice'));
      expect(bus.isUserInRoom('retro', 'alice')).toBe(true);
      await waitFor('gone after the grace', () => !bus.isUserInRoom('retro', 'alice'), 2_000);
      const bob = await open('bob');
      await waitFor('bob present', () => bus.isUserInRoom('retro', 'bob'));
      bob.disconnect(); // deliberate and last: at once
      await waitFor('bob gone at once', () => !bus.isUserInRoom('retro', 'bob') && !tracker.isPending('retro', 'bob'), 250);
      expect(hub.joined.map((j) => j.userId)).toEqual(['alice', 'bob']);
    } finally {
      await tracker.closeAll();
      await io.close();
      await bus.stop();
    }
  });
});
