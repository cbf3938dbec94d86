import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from '@nats-io/transport-node';
import { BrokerUnreachableError, BusUnavailableError, PayloadTooLargeError } from '@retrotro/bus-core';
import { TransportConfigError } from '@retrotro/bus-core/internal';
import { RecordingHub, sleep, uniquePrefix, waitFor } from '@retrotro/bus-core/testing';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { NatsBus, NatsTransport, roomToken, type NatsBusOptions } from '../src/index.js';
import { makeAuthSetup } from './helpers/creds.js';
import { freePort, SHARED_NATS_URL, TestNatsServer } from './helpers/nats-server.js';

const servers: TestNatsServer[] = [];
const buses: NatsBus[] = [];
const tempDirs: string[] = [];

/** A started, ready bus with fast test timings and a recording hub. */
async function pod(options: Partial<NatsBusOptions> = {}) {
  const hub = new RecordingHub();
  const bus = new NatsBus({
    servers: SHARED_NATS_URL,
    heartbeatMs: 200,
    ttlMs: 1_000,
    syncWindowMs: 300,
    reconnectTimeWaitMs: 100,
    ...options,
  });
  buses.push(bus);
  await bus.start(hub);
  await bus.whenReady();
  return { bus, hub };
}

async function ownServer(config?: string) {
  const server = await TestNatsServer.start(config);
  servers.push(server);
  return server;
}

function tempFile(name: string, contents: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'bus-nats-test-'));
  tempDirs.push(dir);
  const path = join(dir, name);
  writeFileSync(path, contents);
  return path;
}

afterEach(async () => {
  await Promise.allSettled(buses.splice(0).map((b) => b.stop()));
});

afterAll(async () => {
  await Promise.allSettled(servers.map((s) => s.dispose()));
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
});

describe('configuration', () => {
  it("refuses a prefix that breaks bus-core's prefix rule (not one subject token, among others)", () => {
    for (const prefix of ['', 'a.b', 'a b', 'a*', '>', 'tab\there', 'my-app', 'a:b', 'p'.repeat(41)]) {
      expect(() => new NatsTransport({ prefix }), prefix).toThrow(/bus prefix/);
    }
    expect(new NatsTransport({ prefix: 'my_app_2' }).prefix).toBe('my_app_2');
  });

  it('uses the contract subjects and a masked target by default', () => {
    const t = new NatsTransport({ servers: 'nats://bob:hunter2@nats-1:4222, nats://nats-2:4222' });
    expect(t.kind).toBe('nats');
    expect(t.prefix).toBe('retrotro');
    expect(t.roomSubjects).toBe('flat');
    expect(t.chunking).toBe(false);
    expect(t.target).toBe('nats://bob:****@nats-1:4222,nats://nats-2:4222');
    expect(new NatsTransport().target).toBe('nats://127.0.0.1:4222');
  });

  it('encodes room ids as one subject token, one-to-one', () => {
    expect(roomToken('retro-42:team')).toBe('retro-42:team');
    expect(roomToken('team.alpha')).toBe('team_2Ealpha');
    expect(roomToken('team_alpha')).toBe('team_5Falpha');
    expect(roomToken('a*b>c d')).toBe('a_2Ab_3Ec_20d');
    const ids = ['a.b', 'a_b', 'a_2Eb', 'a__b', 'a._b', 'a_.b'];
    expect(new Set(ids.map(roomToken)).size).toBe(ids.length);
    for (const id of ids) expect(roomToken(id)).toMatch(/^[A-Za-z0-9:_-]+$/);
  });
});

describe('broker unreachable at start', () => {
  it('rejects with BrokerUnreachableError naming host:port, password masked', async () => {
    const port = await freePort(); // nothing listens there
    const bus = new NatsBus({ servers: `nats://alice:s3cret@127.0.0.1:${port}`, connectTimeoutMs: 3_000 });
    const started = Date.now();
    const error = await bus.start(new RecordingHub()).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(BrokerUnreachableError);
    const message = (error as Error).message;
    expect(message).toContain(`127.0.0.1:${port}`);
    expect(message).toContain('alice:****@');
    expect(message).not.toContain('s3cret');
    expect(message).toMatch(/refused/);
    expect(Date.now() - started).toBeLessThan(3_000 + 5_000);
  });

  it('gives up after connectTimeoutMs when the server accepts but never answers', async () => {
    const sockets: Socket[] = [];
    const silent: Server = createServer((s) => sockets.push(s));
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', () => r()));
    const port = (silent.address() as { port: number }).port;
    try {
      const t = new NatsTransport({ servers: `nats://127.0.0.1:${port}`, connectTimeoutMs: 1_000 });
      const started = Date.now();
      const error = await t.open({ receive() {}, stateChanged() {} }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(BrokerUnreachableError);
      expect((error as Error).message).toContain(`127.0.0.1:${port}`);
      expect((error as Error).message).toMatch(/no answer within 1000 ms/);
      expect(Date.now() - started).toBeLessThan(1_000 + 5_000);
    } finally {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => silent.close(() => r()));
    }
  });

  it('names every server of a comma-separated list', async () => {
    const [p1, p2] = [await freePort(), await freePort()];
    const t = new NatsTransport({ servers: `nats://127.0.0.1:${p1},nats://127.0.0.1:${p2}`, connectTimeoutMs: 3_000 });
    await expect(t.open({ receive() {}, stateChanged() {} })).rejects.toThrow(new RegExp(`127\\.0\\.0\\.1:${p1}.*127\\.0\\.0\\.1:${p2}`));
  });

  it('connects through a list in which only some servers are up', async () => {
    const dead = await freePort();
    const { bus } = await pod({ servers: `nats://127.0.0.1:${dead}, ${SHARED_NATS_URL}`, prefix: uniquePrefix('list') });
    expect(bus.ready).toBe(true);
  });
});

describe('lifecycle', () => {
  it('asks the server not to echo our own messages (the relay would only drop them)', async () => {
    const prefix = uniquePrefix('noecho');
    const received: string[] = [];
    const t = new NatsTransport({ prefix });
    await t.open({ receive: (_s, p) => received.push(p), stateChanged() {} });
    await t.publish('room', 'mine');
    const nc = await connect({ servers: SHARED_NATS_URL });
    nc.publish(`${prefix}.room`, 'theirs');
    await nc.flush();
    await waitFor("the other connection's message", () => received.length === 1);
    await sleep(300); // an echo of ours, if any, would be here by now
    await nc.close();
    await t.close();
    expect(received).toEqual(['theirs']);
  });

  it('fails publishes fast after close() and delivers nothing more', async () => {
    const prefix = uniquePrefix('close');
    const received: string[] = [];
    const t = new NatsTransport({ prefix });
    await t.open({ receive: (_s, p) => received.push(p), stateChanged() {} });
    expect(t.connected).toBe(true);
    const nc = await connect({ servers: SHARED_NATS_URL });
    nc.publish(`${prefix}.room`, 'one');
    await nc.flush();
    await waitFor('the first message', () => received.length === 1);
    await t.close();
    await expect(t.publish('room', 'two')).rejects.toMatchObject({ code: 'stopped' });
    nc.publish(`${prefix}.room`, 'three');
    await nc.flush();
    await nc.close();
    await sleep(200);
    expect(received).toEqual(['one']);
    await t.close(); // idempotent
    await expect(t.open({ receive() {}, stateChanged() {} })).rejects.toThrow(/create a new one/);
  });
});

describe('broker outage', () => {
  it('goes unready, fails publishes fast, and relays again once the server is back', { timeout: 60_000 }, async () => {
    const server = await ownServer();
    const prefix = uniquePrefix('outage');
    const a = await pod({ servers: server.url, prefix });
    const b = await pod({ servers: server.url, prefix });
    await a.bus.publishPresenceJoin('room', { userId: 'u1', userName: 'Alice' });
    await waitFor('Alice on B', () => b.bus.isUserInRoom('room', 'u1'));
    await a.bus.broadcastToRoom('room', { type: 'before' });
    await waitFor('frame before the outage', () => b.hub.frames('room', 'before').length === 1);

    await server.kill();
    await waitFor('both pods to notice', () => !a.bus.ready && !b.bus.ready, 20_000);
    expect(a.bus.isConnected).toBe(false);
    expect(a.bus.transport.connected).toBe(false);
    const during = await a.bus.broadcastToRoom('room', { type: 'during' });
    expect(during.ok).toBe(false);
    expect(!during.ok && during.error).toBeInstanceOf(BusUnavailableError);
    await expect(a.bus.transport.publish('room', '{}')).rejects.toBeInstanceOf(BusUnavailableError);

    await sleep(300); // an outage longer than one reconnect attempt
    await server.restart();
    await waitFor('both pods ready again', () => a.bus.ready && b.bus.ready, 30_000);
    expect(a.bus.stats.reconnects).toBeGreaterThanOrEqual(1);
    expect(b.bus.stats.reconnects).toBeGreaterThanOrEqual(1);

    await a.bus.broadcastToRoom('room', { type: 'after' });
    await b.bus.broadcastToRoom('room', { type: 'after-b' });
    await waitFor('frame after the outage on B', () => b.hub.frames('room', 'after').length === 1);
    await waitFor('frame after the outage on A', () => a.hub.frames('room', 'after-b').length === 1);
    expect(b.hub.frames('room', 'during')).toEqual([]);
    // Presence survives the outage (resynced if anything was missed).
    await waitFor('Alice still on B', () => b.bus.isUserInRoom('room', 'u1'));
  });
});

describe('payload limit', () => {
  it("refuses a message over the server's max_payload with PayloadTooLargeError", async () => {
    const server = await ownServer('max_payload: 4096');
    const prefix = uniquePrefix('maxpayload');
    const a = await pod({ servers: server.url, prefix });
    const b = await pod({ servers: server.url, prefix });
    expect(a.bus.transport.maxPayloadBytes).toBe(4096);

    const big = await a.bus.broadcastToRoom('r', { type: 'big', payload: 'x'.repeat(5_000) });
    expect(big.ok).toBe(false);
    const error = !big.ok ? big.error : undefined;
    expect(error).toBeInstanceOf(PayloadTooLargeError);
    expect(error?.message).toMatch(/exceeds the 4096-byte limit/);
    // Counted in UTF-8 bytes: 1500 '€' are 4500 bytes, though only 1500 characters.
    const euro = await a.bus.broadcastToRoom('r', { type: 'euro', payload: '€'.repeat(1_500) });
    expect(!euro.ok && euro.error).toBeInstanceOf(PayloadTooLargeError);

    expect(await a.bus.broadcastToRoom('r', { type: 'small', payload: 'x'.repeat(3_000) })).toEqual({ ok: true });
    await waitFor('the small frame', () => b.hub.frames('r', 'small').length === 1);
    expect(b.hub.frames('r').map((f) => f.type)).toEqual(['small']);
    expect(a.bus.ready).toBe(true); // a refused message does not hurt the connection
  });
});

describe('room subjects', () => {
  /** Frames A sends, in order, to several rooms; then a marker in `markerRoom` B waits for. */
  async function sendAll(from: NatsBus, rooms: string[], markerRoom: string) {
    for (const roomId of rooms) await from.broadcastToRoom(roomId, { type: 'note', payload: { roomId } });
    await from.broadcastToRoom(markerRoom, { type: 'marker' });
  }

  it('per-room: a pod receives only the rooms it holds members of', async () => {
    const prefix = uniquePrefix('perroom');
    const a = await pod({ prefix, roomSubjects: 'per-room' });
    const b = await pod({ prefix, roomSubjects: 'per-room' });
    await b.bus.publishPresenceJoin('team.alpha', { userId: 'u2', userName: 'Bea' });
    // B's subscription precedes its presence on B's connection: once A sees the presence, B is subscribed.
    await waitFor('Bea on A', () => a.bus.isUserInRoom('team.alpha', 'u2'));

    await sendAll(a.bus, ['team.alpha', 'team_alpha', 'other', 'team.alpha'], 'team.alpha');
    await waitFor('the marker on B', () => b.hub.frames('team.alpha', 'marker').length === 1);
    await sleep(200);
    expect(b.hub.deliveries.map((d) => d.roomId)).toEqual(['team.alpha', 'team.alpha', 'team.alpha']);
    expect(b.bus.stats.received.room).toBe(3);

    // Interest also follows setRoomInterest directly, and ends with the last member.
    b.bus.transport.setRoomInterest('other', true);
    await b.bus.publishPresenceLeave('team.alpha', 'u2');
    await waitFor('Bea gone on A', () => !a.bus.isUserInRoom('team.alpha', 'u2'));
    await sendAll(a.bus, ['team.alpha'], 'other');
    await waitFor('the marker in the other room', () => b.hub.frames('other', 'marker').length === 1);
    await sleep(200);
    expect(b.hub.frames('team.alpha')).toHaveLength(3); // nothing new after the leave
    expect(b.bus.stats.received.room).toBe(4);
  });

  it('per-room: still hears room frames on the flat subject (Go pods)', async () => {
    const prefix = uniquePrefix('perroomgo');
    const a = await pod({ prefix, roomSubjects: 'per-room' });
    const nc = await connect({ servers: SHARED_NATS_URL });
    nc.publish(`${prefix}.room`, '{"podId":"go-pod","roomId":"r","message":{"type":"event","payload":{"x":1}}}');
    await nc.flush();
    await nc.close();
    await waitFor('the Go frame', () => a.hub.frames('r').length === 1);
  });

  it('flat (default): every pod receives every room', async () => {
    const prefix = uniquePrefix('flat');
    const a = await pod({ prefix });
    const b = await pod({ prefix });
    await b.bus.publishPresenceJoin('team.alpha', { userId: 'u2', userName: 'Bea' });
    await waitFor('Bea on A', () => a.bus.isUserInRoom('team.alpha', 'u2'));
    await sendAll(a.bus, ['team.alpha', 'team_alpha', 'other'], 'nobody-here');
    await waitFor('the marker on B', () => b.hub.frames('nobody-here', 'marker').length === 1);
    expect(b.hub.deliveries.map((d) => d.roomId)).toEqual(['team.alpha', 'team_alpha', 'other', 'nobody-here']);
    expect(b.bus.stats.received.room).toBe(4);
  });
});

describe('credentials file', () => {
  it('an unreadable path is a clear error naming the file (a configuration error, not an unreachable broker)', async () => {
    const path = join(tmpdir(), 'no-such-dir-bus-nats', 'user.creds');
    const bus = new NatsBus({ credentialsFile: path });
    const error = await bus.start(new RecordingHub()).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TransportConfigError);
    expect((error as Error).message).toMatch(new RegExp(`^cannot read NATS credentials file ${path}`));
  });

  it('a file that is not a creds file is a clear error', async () => {
    const path = tempFile('bad.creds', 'this is not a creds file\n');
    const bus = new NatsBus({ credentialsFile: path });
    await expect(bus.start(new RecordingHub())).rejects.toThrow(`invalid NATS credentials file ${path}`);
  });

  it('authenticates with a .creds file against a server in operator mode', async () => {
    const auth = makeAuthSetup();
    const server = await ownServer(auth.serverConfig);
    const credentialsFile = tempFile('user.creds', auth.userCreds);
    const prefix = uniquePrefix('creds');
    const a = await pod({ servers: server.url, prefix, credentialsFile });
    const b = await pod({ servers: server.url, prefix, credentialsFile });
    await a.bus.broadcastToRoom('r', { type: 'authenticated' });
    await waitFor('the frame on B', () => b.hub.frames('r', 'authenticated').length === 1);

    // Without credentials, or with a user of an unknown account, the server says no.
    const anonymous = new NatsBus({ servers: server.url });
    await expect(anonymous.start(new RecordingHub())).rejects.toThrow(/Authorization Violation/);
    const strangerFile = tempFile('stranger.creds', auth.strangerCreds);
    const stranger = new NatsBus({ servers: server.url, credentialsFile: strangerFile });
    await expect(stranger.start(new RecordingHub())).rejects.toBeInstanceOf(BrokerUnreachableError);
  });
});

describe('connection options', () => {
  it('passes further nats.js options through (token auth), keeping the relay’s own', async () => {
    const server = await ownServer('authorization { token: "s3cret-token" }');
    const prefix = uniquePrefix('connopts');
    const a = await pod({ servers: server.url, prefix, connectionOptions: { token: 's3cret-token' } });
    const b = await pod({ servers: server.url, prefix, connectionOptions: { token: 's3cret-token' } });
    await a.bus.broadcastToRoom('r', { type: 'with-token' });
    await waitFor('the frame on B', () => b.hub.frames('r', 'with-token').length === 1);
    const anonymous = new NatsBus({ servers: server.url, prefix, connectTimeoutMs: 2_000 });
    buses.push(anonymous);
    await expect(anonymous.start(new RecordingHub())).rejects.toThrow(/Authorization Violation/);
  });
});
