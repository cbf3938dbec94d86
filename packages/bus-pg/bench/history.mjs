// Measures PgHistory against plain NOTIFY on a real PostgreSQL, end to end (sent until a
// second transport's LISTEN received everything):
//   off       200 B room envelopes through transport.publish (history off)
//   on        200 B events through history.append (one item per call, many calls at once)
//   chunked   10 KB events through history.append, chunk frames NOTIFYed in the transaction
//   reference 10 KB events through history.append, a small NOTIFY carrying only the offset;
//             the receiver SELECTs the payloads with one query per batch of notifications
// Run `pnpm --filter @retrotro/bus-pg build` first, then:
//   node packages/bus-pg/bench/history.mjs [DATABASE_URL]
// It creates and drops its own tables (prefix bench_<pid>).
import { ChunkAssembler, historyEnvelope, parseChunk, splitIntoChunks } from '@retrotro/bus-core/internal';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { PgTransport } from '../dist/index.js';

const url = process.argv[2] ?? process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const prefix = `bench_${process.pid}`;
const ROOMS = 20;
const limits = { size: 1000, ttlS: 3600 };

function sink() {
  const s = { count: 0, onRoom: undefined, onChunk: undefined, waiters: [] };
  s.receive = (stream, payload) => {
    if (stream === 'room') (s.onRoom ?? (() => s.count++))(payload);
    else if (stream === 'chunk') s.onChunk?.(payload);
  };
  s.stateChanged = () => {};
  s.until = (n) =>
    new Promise((resolve) => {
      const check = () => (s.count >= n ? resolve() : setTimeout(check, 1));
      check();
    });
  return s;
}

// Incompressible padding (random base64), so TOAST compression does not flatter large payloads.
const noise = randomBytes(16_000).toString('base64');
function payloadOf(bytes, i) {
  const head = JSON.stringify({ event: 'note', data: '', from: 'user-1' });
  const n = Math.max(0, bytes - head.length - String(i).length);
  const start = (i * 7919) % (noise.length - n);
  return JSON.stringify({ event: 'note', data: `${i}${noise.slice(start, start + n)}`, from: 'user-1' });
}

let msgId = 0;
let itemId = 0;
function item(i, bytes, mode) {
  const roomId = `room-${i % ROOMS}`;
  const payload = payloadOf(bytes, i);
  return {
    roomId,
    userId: 'user-1',
    id: `m${++itemId}`,
    podId: 'pod-a',
    payload,
    frames(offset) {
      if (mode === 'reference') return [{ stream: 'room', payload: `{"roomId":${JSON.stringify(roomId)},"offset":${offset}}` }];
      const env = historyEnvelope({ roomId, podId: 'pod-a', offset, payload });
      if (Buffer.byteLength(env) <= 7999) return [{ stream: 'room', payload: env }];
      return splitIntoChunks('pod-a', ++msgId, 'room', env, 7999).map((p) => ({ stream: 'chunk', payload: p }));
    },
  };
}

/** Sends n messages keeping `window` in flight; resolves when the receiver has them all. */
async function run(label, n, window, send, receiver, bytes) {
  receiver.count = 0;
  const started = process.hrtime.bigint();
  const latencies = [];
  let next = 0;
  let failed = 0;
  async function lane() {
    while (next < n) {
      const i = next++;
      const t0 = process.hrtime.bigint();
      await send(i).catch(() => failed++);
      latencies.push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
  }
  await Promise.all(Array.from({ length: window }, lane));
  const stored = Number(process.hrtime.bigint() - started) / 1e9;
  await receiver.until(n - failed);
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  latencies.sort((a, b) => a - b);
  const p = (q) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))].toFixed(2);
  const rate = Math.round(n / seconds);
  console.log(
    `${label.padEnd(34)} ${String(n).padStart(6)} msgs  window ${String(window).padStart(4)}  ` +
      `${String(rate).padStart(7)} msg/s delivered  ${((rate * bytes) / 1e6).toFixed(1).padStart(5)} MB/s  ` +
      `acked in ${stored.toFixed(2)} s  p50 ${p(0.5)} ms  p99 ${p(0.99)} ms${failed ? `  FAILED ${failed}` : ''}`,
  );
  return rate;
}

const sender = new PgTransport({ connectionString: url, prefix, history: true });
const receiver = new PgTransport({ connectionString: url, prefix });
const rx = sink();
await sender.open(sink());
await receiver.open(rx);
await sender.history.open(limits);
const db = new pg.Client({ connectionString: url });
await db.connect();
const events = pg.escapeIdentifier(`${prefix}_history_events`);

try {
  // Warm up (named statements, plans).
  await run('warm-up', 2000, 200, (i) => sender.history.append([item(i, 200)]), rx, 200);
  await run(
    'warm-up off',
    2000,
    200,
    (i) => sender.publish('room', historyEnvelope({ roomId: 'w', podId: 'pod-a', offset: i + 1, payload: payloadOf(200, i) })),
    rx,
    200,
  );

  // Off and on alternate, three times per window; the ratio compares medians.
  const median = (list) => [...list].sort((a, b) => a - b)[list.length >> 1];
  for (const window of [1, 100, 1000]) {
    const n = window === 1 ? 2000 : 30000;
    const off = [];
    const on = [];
    for (let rep = 0; rep < (window === 1 ? 1 : 3); rep++) {
      off.push(
        await run(
          `200 B history off (publish)`,
          n,
          window,
          (i) => sender.publish('room', historyEnvelope({ roomId: `room-${i % ROOMS}`, podId: 'pod-a', offset: i + 1, payload: payloadOf(200, i) })),
          rx,
          200,
        ),
      );
      on.push(await run(`200 B history on (append)`, n, window, (i) => sender.history.append([item(i, 200)]), rx, 200));
    }
    console.log(`=> window ${window}: off ${median(off)} msg/s, on ${median(on)} msg/s, on/off ${(median(on) / median(off)).toFixed(2)}x`);
  }
  console.log(`transactions so far: ${sender.history.stats.transactions} for ${sender.history.stats.appended} items`);

  // 10 KB: chunk frames in the transaction.
  const assembler = new ChunkAssembler(256 * 1024 * 1024);
  rx.onChunk = (frame) => {
    const h = parseChunk(frame);
    if (h && assembler.add(h).kind === 'complete') rx.count++;
  };
  for (const window of [1, 100, 500]) {
    const n = window === 1 ? 500 : 5000;
    await run(`10 KB chunked (append)`, n, window, (i) => sender.history.append([item(i, 10_000, 'chunked')]), rx, 10_000);
  }
  rx.onChunk = undefined;

  // 10 KB by reference: small NOTIFY; the receiver fetches each batch with one SELECT.
  let batch = [];
  let fetching = false;
  const fetch = async () => {
    if (fetching || batch.length === 0) return;
    fetching = true;
    const take = batch;
    batch = [];
    const { rows } = await db.query({
      name: 'bench_fetch',
      text: `SELECT e.room_id, e.event_offset, e.payload FROM ${events} e JOIN unnest($1::text[], $2::bigint[]) AS k(r, o) ON e.room_id = k.r AND e.event_offset = k.o`,
      values: [take.map((x) => x.roomId), take.map((x) => x.offset)],
    });
    rx.count += rows.length;
    fetching = false;
    if (batch.length > 0) void fetch();
  };
  rx.onRoom = (payload) => {
    batch.push(JSON.parse(payload));
    if (batch.length === 1) setImmediate(() => void fetch());
  };
  for (const window of [1, 100, 500]) {
    const n = window === 1 ? 500 : 5000;
    await run(`10 KB by reference (append+SELECT)`, n, window, (i) => sender.history.append([item(i, 10_000, 'reference')]), rx, 10_000);
  }
  console.log('stats', sender.history.stats, sender.stats);
} finally {
  await sender.close();
  await receiver.close();
  await db.query(
    `DROP TABLE IF EXISTS ${events}, ${pg.escapeIdentifier(`${prefix}_history_rooms`)}; DROP FUNCTION IF EXISTS ${pg.escapeIdentifier(`${prefix}_history_append`)}`,
  );
  await db.end();
}
