/**
 * Broker faults and foreign traffic against real pods (issue 3), run per bus type:
 * payloads over PostgreSQL's NOTIFY limit, envelopes written by a Go pod, garbage on the
 * channels, a pod losing its broker and coming back (resync), and a broker that is down
 * at start-up. Faults are injected without touching the shared services: pod A reaches its
 * broker through a TCP proxy the test controls; PostgreSQL backends are killed with
 * pg_terminate_backend; raw traffic is injected with pg_notify or a raw NATS PUB.
 */
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { createRequire } from 'node:module';
import { connect as tcpConnect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAIN, TEST_SECRET, metricValue, names, scrapeMetrics, sleep, startPod, uniqueBusPrefix, waitUntil, type Pod, ClientPool } from './pods.js';
import { TcpProxy } from '@retrotro/bus-core/testing';

export const DATABASE_URL = process.env.TEST_DATABASE_URL ?? process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
export const NATS_URL = process.env.NATS_URL?.split(',')[0] ?? 'nats://127.0.0.1:4222';

const WAIT = 20_000;
type Stream = 'room' | 'presence' | 'control' | 'chunk';
const STREAMS: Stream[] = ['room', 'presence', 'control', 'chunk'];

// ---- PostgreSQL from the outside (the server app has no direct dependency on pg) ----------

interface PgClient {
  connect(): Promise<void>;
  query(sql: string, params?: unknown[]): Promise<{ rows: Array<Record<string, any>> }>;
  end(): Promise<void>;
  on(event: 'error', listener: (e: Error) => void): void;
}
const requireFromBusPg = createRequire(new URL('../../../../packages/bus-pg/package.json', import.meta.url));
const pg = requireFromBusPg('pg') as { Client: new (o: { connectionString: string; application_name?: string }) => PgClient };

async function pgAdmin(): Promise<PgClient> {
  const c = new pg.Client({ connectionString: DATABASE_URL, application_name: 'retrotro-server-faults-test' });
  c.on('error', () => {});
  await c.connect();
  return c;
}

/** `url` with host and port replaced by a local proxy's. */
function viaProxy(url: string, proxy: TcpProxy): string {
  const u = new URL(url);
  u.hostname = '127.0.0.1';
  u.port = String(proxy.port);
  return u.toString();
}

// ---- NATS from the outside: the raw text protocol, as any foreign publisher speaks it ------

class RawNats {
  private buffer = '';
  private pongs: Array<{ resolve: () => void; reject: (e: Error) => void }> = [];
  private error: Error | undefined;

  private constructor(private readonly socket: Socket) {
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => this.read(d));
    socket.on('error', (e) => this.die(e));
    socket.on('close', () => this.die(new Error('NATS connection closed')));
  }

  static async connect(url: string): Promise<RawNats> {
    const u = new URL(url);
    const socket = tcpConnect({ host: u.hostname, port: Number(u.port || 4222) });
    const nats = new RawNats(socket);
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    socket.write(`CONNECT ${JSON.stringify({ verbose: false, pedantic: false, name: 'faults-test-raw', lang: 'raw', version: '0' })}\r\n`);
    await nats.flush();
    return nats;
  }

  publish(subject: string, payload: string): void {
    this.socket.write(`PUB ${subject} ${Buffer.byteLength(payload, 'utf8')}\r\n${payload}\r\n`);
  }

  /** PING/PONG round trip: everything published before has been processed by the server. */
  flush(): Promise<void> {
    if (this.error) return Promise.reject(this.error);
    return new Promise((resolve, reject) => {
      this.pongs.push({ resolve, reject });
      this.socket.write('PING\r\n');
    });
  }

  close(): void {
    this.socket.destroy();
  }

  private read(data: string): void {
    this.buffer += data;
    let nl: number;
    while ((nl = this.buffer.indexOf('\r\n')) >= 0) {
      const line = this.buffer.slice(0, nl);
      this.buffer = this.buffer.slice(nl + 2);
      if (line === 'PONG') this.pongs.shift()?.resolve();
      else if (line === 'PING') this.socket.write('PONG\r\n');
      else if (line.startsWith('-ERR')) this.die(new Error(`NATS: ${line}`));
    }
  }

  private die(e: Error): void {
    this.error ??= e;
    for (const p of this.pongs.splice(0)) p.reject(e);
  }
}

/** What Go's encoding/json writes: `<`, `>` and `&` escaped as \u003c, \u003e, \u0026. */
const goJson = (v: unknown) => JSON.stringify(v).replace(/</g, '\\u003c').replace(/>/g, '\\u003e').replace(/&/g, '\\u0026');

let rooms = 0;
const room = () => `fault-room-${rooms++}`;

const malformed = (text: string, stream: Stream) => metricValue(text, 'retrotro_bus_envelopes_malformed_total', { stream });

export function describeBrokerFaults(busType: 'postgres' | 'nats') {
  describe(`broker faults and foreign traffic over ${busType}`, () => {
    const prefix = uniqueBusPrefix(`${busType}_flt`);
    // History off: these cases are about the relay itself (history-suite covers faults with history on).
    const env = { BUS_TYPE: busType, BUS_PREFIX: prefix, HISTORY_SIZE: '0' };
    const brokerUrl = busType === 'postgres' ? DATABASE_URL : NATS_URL;
    const urlVar = busType === 'postgres' ? 'DATABASE_URL' : 'NATS_URL';
    /** Pod A reaches the broker through `proxy`; pod B directly. */
    let a: Pod;
    let b: Pod;
    let proxy: TcpProxy;
    let admin: PgClient | undefined;
    let raw: RawNats | undefined;
    const clients = new ClientPool();
    const connect = clients.connect;
    const pair = async (r = room()) => {
      // User ids equal to the names, so participant_left ({userId}) can be matched.
      const alice = await connect(a, `alice-${r}`, { userId: `alice-${r}` });
      const bob = await connect(b, `bob-${r}`, { userId: `bob-${r}` });
      await alice.join(r);
      await bob.join(r);
      await alice.next('participant_joined', (f) => f.payload.userName === `bob-${r}`, WAIT);
      return { r, alice, bob };
    };
    /** Publishes raw text on a stream's channel/subject, as any other process on the broker could. */
    const inject = async (stream: Stream, payloads: string[]) => {
      if (admin) {
        for (const p of payloads) await admin.query('SELECT pg_notify($1, $2)', [`${prefix}_${stream}`, p]);
      } else {
        for (const p of payloads) raw!.publish(`${prefix}.${stream}`, p);
        await raw!.flush();
      }
    };

    beforeAll(async () => {
      const target = new URL(brokerUrl);
      proxy = await TcpProxy.start(Number(target.port || (busType === 'postgres' ? 5432 : 4222)), target.hostname);
      [a, b] = await Promise.all([startPod({ ...env, [urlVar]: viaProxy(brokerUrl, proxy) }), startPod({ ...env, [urlVar]: brokerUrl })]);
      if (busType === 'postgres') admin = await pgAdmin();
      else raw = await RawNats.connect(NATS_URL);
    });
    afterAll(async () => {
      clients.dropAll();
      await Promise.all([a?.stop(), b?.stop()]);
      await admin?.end().catch(() => {});
      raw?.close();
      await proxy?.close();
    });

    it('relays a 40 KB multi-byte message intact and in order between two small ones, both ways', async () => {
      const { alice, bob } = await pair();
      let text = '';
      for (let i = 0; Buffer.byteLength(text) < 40_000; i++) text += `${i}: Grüße aus Köln, 日本語のテキスト, emoji 😀🎉 — `;
      const bigFrame = JSON.stringify({ type: 'publish', payload: { event: 'big', data: { text } } });
      expect(Buffer.byteLength(bigFrame)).toBeGreaterThan(8_000 * 4);
      expect(Buffer.byteLength(bigFrame)).toBeLessThan(65_536); // under WS_MAX_PAYLOAD
      const storedBefore = metricValue(await scrapeMetrics(a), 'retrotro_bus_large_payloads_total', { outcome: 'stored' });

      for (const [from, to, tag] of [
        [alice, bob, 'a'],
        [bob, alice, 'b'],
      ] as const) {
        const mark = to.frames.length;
        from.send('publish', { event: 'small', data: { n: `${tag}1` } });
        from.sendRaw(bigFrame);
        from.send('publish', { event: 'small', data: { n: `${tag}2` } });
        await waitUntil('three events', () => to.frames.slice(mark).filter((f) => f.type === 'event').length >= 3, WAIT);
        await sleep(200); // room for a duplicate to show up
        const events = to.frames.slice(mark).filter((f) => f.type === 'event');
        expect(events.map((e) => e.payload.event)).toEqual(['small', 'big', 'small']);
        expect(events[0]!.payload.data).toEqual({ n: `${tag}1` });
        expect(events[2]!.payload.data).toEqual({ n: `${tag}2` });
        expect(events[1]!.payload.data.text).toBe(text);
        expect(from.of('error')).toEqual([]);
      }
      if (busType === 'postgres') {
        // It did cross the 8000-byte NOTIFY limit, by reference (the large-payload table).
        expect(metricValue(await scrapeMetrics(a), 'retrotro_bus_large_payloads_total', { outcome: 'stored' })).toBeGreaterThan(storedBefore);
        expect(metricValue(await scrapeMetrics(b), 'retrotro_bus_large_payloads_total', { outcome: 'read' })).toBeGreaterThan(0);
      }
    });

    it('accepts presence and room envelopes exactly as a Go pod writes them', async () => {
      const { r, alice, bob } = await pair();
      const goPod = `go-${randomUUID()}`;
      const gopher = { userId: `go-user-${r}`, userName: 'Gopher <&> Go' };

      const join = goJson({ podId: goPod, roomId: r, userId: gopher.userId, userName: gopher.userName, action: 'join' });
      expect(join).toContain('Gopher \\u003c\\u0026\\u003e Go');
      await inject('presence', [join]);
      for (const c of [alice, bob]) {
        const joined = await c.next('participant_joined', (f) => f.payload.userId === gopher.userId, WAIT);
        expect(joined.payload).toEqual(gopher);
      }

      const message = { type: 'event', payload: { event: 'note', data: { html: '<b>Tom & Jerry</b>', n: 1 }, from: gopher } };
      const envelope = goJson({ podId: goPod, roomId: r, message });
      expect(envelope).not.toMatch(/[<>&]/);
      expect(envelope).not.toContain('"seq"');
      await inject('room', [envelope]);
      for (const c of [alice, bob]) {
        const event = await c.next('event', (f) => f.payload.event === 'note', WAIT);
        expect(event.payload).toEqual(message.payload);
      }

      const carol = await connect(a, 'carol');
      expect(names((await carol.join(r)).payload.participants)).toEqual(
        names([{ userName: `alice-${r}` }, { userName: `bob-${r}` }, { userName: 'carol' }, gopher]),
      );

      // A Go pod never heartbeats: it is never expired (PRESENCE_TTL_MS is 2000 in these pods).
      await sleep(3_500);
      const dave = await connect(b, 'dave');
      expect(names((await dave.join(r)).payload.participants)).toContain(gopher.userName);
      expect(alice.of('participant_left').filter((f) => f.payload.userId === gopher.userId)).toEqual([]);

      await inject('presence', [goJson({ podId: goPod, roomId: r, userId: gopher.userId, action: 'leave' })]);
      for (const c of [alice, bob]) {
        const left = await c.next('participant_left', (f) => f.payload.userId === gopher.userId, WAIT);
        expect(left.payload).toEqual({ userId: gopher.userId });
      }
      const erin = await connect(a, 'erin');
      expect(names((await erin.join(r)).payload.participants)).not.toContain(gopher.userName);
    });

    it('counts garbage on every channel as malformed and keeps relaying', async () => {
      const { r, alice, bob } = await pair();
      // Under PostgreSQL's 8000-byte NOTIFY limit; far larger over NATS.
      const huge = '\u00e9\u20ac'.repeat(busType === 'postgres' ? 1_550 : 40_000) + '{';
      const junk: Record<Stream, string[]> = {
        room: [
          'not json',
          '[1,2,3]',
          '"a string"',
          `{"podId":"junk","roomId":"${r}"}`,
          `{"roomId":"${r}","message":{"type":"event"}}`,
          `{"podId":"junk","roomId":"${r}","message":"hello"}`,
          `{"podId":"junk","roomId":"${r}","message":{"type":"event"},"seq":-1}`,
          huge,
        ],
        presence: [
          'null',
          `{"podId":"junk","roomId":"${r}","action":"join"}`,
          `{"podId":"junk","roomId":"${r}","userId":"u","userName":42,"action":"join"}`,
          `{"podId":"junk","roomId":"${r}","userId":"u"}`,
          huge,
        ],
        control: [
          '{}',
          '{"podId":"junk"}',
          '{"podId":"junk","kind":"sync","presence":"nope","state":[]}',
          '{"podId":"junk","kind":"state","entry":{}}',
          huge,
        ],
        chunk: ['garbage', 'c1 junk 1 3 2 room\nxx', 'c1 junk 9 1 2 room\nxx', huge],
      };
      for (const s of STREAMS) for (const p of junk[s]) if (busType === 'postgres') expect(Buffer.byteLength(p)).toBeLessThan(8_000);

      const before = await Promise.all([scrapeMetrics(a), scrapeMetrics(b)]);
      for (const s of STREAMS) await inject(s, junk[s]);
      for (const [i, pod] of [a, b].entries()) {
        const delta = async (s: Stream) => malformed(await scrapeMetrics(pod), s) - malformed(before[i]!, s);
        await waitUntil(
          `pod ${'ab'[i]} counting the garbage`,
          async () => (await Promise.all(STREAMS.map(async (s) => (await delta(s)) >= junk[s].length))).every(Boolean),
          WAIT,
        );
        const text = await scrapeMetrics(pod);
        for (const s of STREAMS) expect(malformed(text, s) - malformed(before[i]!, s), `pod ${'ab'[i]}, ${s}`).toBe(junk[s].length);
        expect((await fetch(pod.url('/readyz'))).status).toBe(200);
      }

      // Nothing of it reached a client, and the relay still works both ways.
      for (const c of [alice, bob]) expect(c.frames.filter((f) => !['room_state', 'participant_joined'].includes(f.type))).toEqual([]);
      alice.send('publish', { event: 'still', data: 'a' });
      bob.send('publish', { event: 'still', data: 'b' });
      expect((await bob.next('event', (f) => f.payload.event === 'still', WAIT)).payload.data).toBe('a');
      expect((await alice.next('event', (f) => f.payload.event === 'still', WAIT)).payload.data).toBe('b');
      const carol = await connect(b, 'carol');
      await carol.join(r);
      await alice.next('participant_joined', (f) => f.payload.userName === 'carol', WAIT);
    });

    it('a pod that loses its broker reports 503, comes back by itself, resyncs presence and relays again', async () => {
      const { r, alice, bob } = await pair();
      const ann = await connect(a, 'ann');
      await ann.join(r);
      const reconnectsBefore = metricValue(await scrapeMetrics(a), 'retrotro_bus_reconnects_total');

      // The broker is gone for pod A, and stays gone until we say so.
      proxy.refuse();
      if (busType === 'postgres') {
        // Pod A's backends: the proxy's connections, named by PgTransport in pg_stat_activity.
        const { rows } = await admin!.query(
          `SELECT pid, application_name FROM pg_stat_activity
            WHERE client_port = ANY($1::int[]) AND application_name LIKE 'retrotro-bus/%'`,
          [proxy.upstreamLocalPorts()],
        );
        const appNames = rows.map((row) => String(row.application_name)).sort();
        expect(appNames).toHaveLength(2);
        expect(appNames[0]).toMatch(/^retrotro-bus\/listen\/[0-9a-f]+\//);
        expect(appNames[1]).toMatch(/^retrotro-bus\/notify\/[0-9a-f]+\//);
        expect(`${prefix}`.startsWith(appNames[0]!.split('/')[3]!)).toBe(true); // the prefix (maybe truncated to 63 bytes)
        const killed = await admin!.query('SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity WHERE pid = ANY($1::int[])', [
          rows.map((row) => row.pid),
        ]);
        // The first kill is enough: the pod drops its other connection itself, which may then be
        // gone before pg_terminate_backend reaches it (false).
        expect(killed.rows.map((row) => row.ok)).toContain(true);
      } else {
        expect(proxy.connections).toBe(1);
        proxy.dropAll();
      }
      await waitUntil('pod A not ready', async () => (await fetch(a.url('/readyz'))).status === 503, WAIT);
      expect((await fetch(a.url('/healthz'))).status).toBe(200);
      expect((await fetch(b.url('/readyz'))).status).toBe(200);

      // During the outage: pod A keeps serving its own sockets, and says the relay failed.
      alice.send('publish', { event: 'during', data: 1 });
      expect((await ann.next('event', (f) => f.payload.event === 'during', WAIT)).payload.data).toBe(1);
      const relayError = await alice.next('error', () => true, WAIT);
      expect(relayError.payload.code).toBe('relay_failed');
      // Operator details stay in the logs: no URL, host, port, user or database for browsers.
      expect(JSON.stringify(relayError.payload)).not.toMatch(/postgres|nats|127\.0\.0\.1|localhost|:\d{2,5}|@/i);
      // Pod B hears nothing from A any more: after PRESENCE_TTL_MS (2 s here) A's users leave there.
      await bob.next('participant_left', (f) => f.payload.userId === `alice-${r}`, WAIT);
      // Dora joins on pod B; pod A cannot hear it.
      const dora = await connect(b, 'dora');
      expect(names((await dora.join(r)).payload.participants)).toContain('dora');
      await sleep(300);
      expect(alice.of('participant_joined').filter((f) => f.payload.userName === 'dora')).toEqual([]);
      expect((await fetch(a.url('/readyz'))).status).toBe(503);

      proxy.restore();
      await waitUntil('pod A ready again', async () => (await fetch(a.url('/readyz'))).status === 200, 30_000);
      expect(metricValue(await scrapeMetrics(a), 'retrotro_bus_reconnects_total')).toBeGreaterThan(reconnectsBefore);

      // Resync: A learned about dora, and B, which had expired A, has A's users back.
      await bob.next(
        'participant_joined',
        (f) => f.payload.userId === `alice-${r}`,
        WAIT,
        bob.frames.findIndex((f) => f.type === 'participant_left'),
      );
      await alice.next('participant_joined', (f) => f.payload.userName === 'dora', WAIT);
      const erin = await connect(a, 'erin');
      const everyone = [`alice-${r}`, `bob-${r}`, 'ann', 'dora', 'erin'].map((userName) => ({ userName }));
      expect(names((await erin.join(r)).payload.participants)).toEqual(names(everyone));
      // Presence crosses pods asynchronously: wait until B has heard of erin before asking it.
      await bob.next('participant_joined', (f) => f.payload.userName === 'erin', WAIT);
      const fred = await connect(b, 'fred');
      expect(names((await fred.join(r)).payload.participants)).toEqual(names([...everyone, { userName: 'fred' }]));

      // Events flow both ways again.
      alice.send('publish', { event: 'after', data: 'from-a' });
      bob.send('publish', { event: 'after', data: 'from-b' });
      expect((await bob.next('event', (f) => f.payload.event === 'after', WAIT)).payload.data).toBe('from-a');
      expect((await dora.next('event', (f) => f.payload.data === 'from-a', WAIT)).payload.event).toBe('after');
      expect((await alice.next('event', (f) => f.payload.event === 'after', WAIT)).payload.data).toBe('from-b');
      expect((await erin.next('event', (f) => f.payload.data === 'from-b', WAIT)).payload.event).toBe('after');
    });
  });
}

interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs one pod that is expected to refuse to start; kills it if it is still running after `limitMs`. */
async function runExpectingExit(env: Record<string, string>, limitMs = 15_000): Promise<Exit & { timedOut: boolean }> {
  const proc = spawn(process.execPath, [MAIN], {
    env: { PATH: process.env.PATH ?? '', PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  proc.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    proc.kill('SIGKILL');
  }, limitMs);
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) => proc.once('close', (c, s) => resolve([c, s])));
  clearTimeout(timer);
  return { code, signal, stdout, stderr, timedOut };
}

const lines = (s: string) => s.split('\n').filter((l) => l.trim() !== '');

export function describeStartupFailures() {
  describe('refusing to start', () => {
    const brokerDown = (what: string, env: Record<string, string>) =>
      it(`exits non-zero within 15 s with one clear line when ${what} is unreachable`, async () => {
        const r = await runExpectingExit({ JWT_SECRET: TEST_SECRET, ...env });
        expect(r.timedOut, `still running after 15 s:\n${r.stdout}\n${r.stderr}`).toBe(false);
        expect(r.code).not.toBe(0);
        expect(r.code).not.toBeNull();
        const errs = lines(r.stderr);
        expect(errs, r.stderr).toHaveLength(1);
        expect(errs[0]).toContain('127.0.0.1:1');
        expect(errs[0]).not.toMatch(/^\s+at /);
        expect(r.stderr + r.stdout).not.toContain('secretpw');
      });
    brokerDown('PostgreSQL', { BUS_TYPE: 'postgres', DATABASE_URL: 'postgres://u:secretpw@127.0.0.1:1/db' });
    brokerDown('NATS', { BUS_TYPE: 'nats', NATS_URL: 'nats://127.0.0.1:1' });

    it('refuses an unknown BUS_TYPE, naming the accepted ones', async () => {
      const r = await runExpectingExit({ JWT_SECRET: TEST_SECRET, BUS_TYPE: 'kafka' });
      expect(r.timedOut).toBe(false);
      expect(r.code).not.toBe(0);
      expect(r.code).not.toBeNull();
      const errs = lines(r.stderr);
      expect(errs, r.stderr).toHaveLength(1);
      for (const word of ['BUS_TYPE', 'kafka', 'postgres', 'nats', 'memory']) expect(errs[0]).toContain(word);
    });

    it('refuses NODE_ENV=production without JWT_SECRET, naming it', async () => {
      const r = await runExpectingExit({ NODE_ENV: 'production', BUS_TYPE: 'memory', ALLOWED_ORIGINS: 'https://retro.example.com' });
      expect(r.timedOut).toBe(false);
      expect(r.code).not.toBe(0);
      expect(r.code).not.toBeNull();
      const errs = lines(r.stderr);
      expect(errs, r.stderr).toHaveLength(1);
      expect(errs[0]).toContain('JWT_SECRET');
    });
  });
}
