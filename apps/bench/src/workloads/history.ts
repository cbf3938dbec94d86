/**
 * Workload 7, history (CONTRACT section 8), on each bus:
 *
 * - fan-out with HISTORY_SIZE=1000 against HISTORY_SIZE=0: the figures of workload 6's two
 *   "ours" peers when it ran in the same run, else the same trials for those two alone;
 * - replay: a room holding N events (N = 1,000 and 10,000, HISTORY_SIZE=10,000); a client on
 *   the other pod joins with `since` offset 0 and the room's epoch; events/s from the join to
 *   the last replayed event, every event checked (all there, once, in order);
 * - two publishers on two pods into one room, with ids, acks bounding what is in flight: every
 *   receiver (half on each pod) must see one strictly increasing offset order, the same on
 *   every receiver, each publisher's events in its own order; events/s over both.
 */
import { randomUUID } from 'node:crypto';
import WebSocket from 'ws';
import type { FixedLoopOptions } from '../clients/peer-flow.js';
import { tailOffset } from '../clients/peer.js';
import { NOT_EVENT, PROBE, parseEvent } from '../clients/ws.js';
import type { BenchTargets, BusKind } from '../config.js';
import { nowUs, sleep, waitFor } from '../clock.js';
import { podWsUrl, startPods, stopPods, type Pod } from '../pods.js';
import type { Row } from '../report.js';
import { median, noFaults, type Integrity } from '../stats.js';
import { issueToken } from '../token.js';
import { freshRoom } from './cluster.js';
import { windowFor } from './fan-out.js';
import { interleavedPeers, warmUp, PEER_OPTIONS, peerTrial, startPeers, summarizePeer, type PeerCase, type PeerTrial } from './peers.js';
import { peerSpecs, stopPeerPair } from '../peers.js';
import { textPadding } from '../padding.js';

const env = (name: string, fallback: number) => Number(process.env[name] ?? fallback);

export const HISTORY_OPTIONS = {
  /**
   * Twice the largest replay: with HISTORY_SIZE equal to N, a NATS room holding N events
   * answered `since` offset 0 with recovered: false (seen 2026-12-01).
   */
  historySize: 20_000,
  replayCounts: (process.env.BENCH_REPLAY_COUNTS ?? '1000,10000')
    .split(',')
    .map(Number)
    .filter((n) => n > 0),
  replayTrials: 3,
  /** Events each of the two publishers sends. */
  publisherEvents: env('BENCH_TWO_PUBLISHER_EVENTS', 10_000),
  /** Unacknowledged publishes per publisher. */
  publisherWindow: 500,
  receiversPerPod: 5,
  timeoutMs: 60_000,
};

const ROOM_STATE = '{"type":"room_state"';
const ACK = '{"type":"ack"';
const ERROR = '{"type":"error"';

interface Position {
  offset: number;
  epoch: string;
}

/** A plain socket of ours that joined a room: frames go to `onFrame`. */
class Socket {
  onFrame: ((data: Buffer) => void) | undefined;
  acks = 0;
  errors: Record<string, number> = {};
  position: Position | null = null;
  recovered: boolean | undefined;
  private readonly pad: string;

  private constructor(
    readonly ws: WebSocket,
    eventBytes: number,
  ) {
    this.pad = textPadding(Math.max(1, eventBytes - 150));
    ws.on('message', (data: Buffer) => {
      if (data.toString('latin1', 0, ACK.length) === ACK) this.acks++;
      else if (data.toString('latin1', 0, ERROR.length) === ERROR) {
        const code = /"code":"([^"]+)"/.exec(data.toString())?.[1] ?? 'unknown';
        this.errors[code] = (this.errors[code] ?? 0) + 1;
      }
      this.onFrame?.(data);
    });
    ws.on('error', () => {});
  }

  /** Opens, joins (with `since` if given) and resolves at room_state; `beforeJoin` runs just before the join is sent. */
  static async open(pod: Pod, roomId: string, eventBytes: number, since?: Position, beforeJoin?: (s: Socket) => void): Promise<Socket> {
    const ws = new WebSocket(podWsUrl(pod, issueToken('h', randomUUID())), { perMessageDeflate: false });
    const s = new Socket(ws, eventBytes);
    await new Promise<void>((resolve, reject) => {
      // A join with `since` is answered once its replay is read: allow the whole replay's time.
      const timer = setTimeout(
        () => reject(new Error(`no room_state from ${pod.name} within ${HISTORY_OPTIONS.timeoutMs / 1000} s`)),
        HISTORY_OPTIONS.timeoutMs,
      );
      ws.once('error', (e) => {
        clearTimeout(timer);
        reject(e);
      });
      ws.once('open', () => {
        beforeJoin?.(s);
        ws.send(JSON.stringify({ type: 'join_room', payload: { roomId, ...(since && { since }) } }));
      });
      const onMessage = (data: Buffer) => {
        if (data.toString('latin1', 0, ROOM_STATE.length) !== ROOM_STATE) return;
        const payload = (JSON.parse(data.toString()) as { payload: { position: Position | null; recovered?: boolean } }).payload;
        s.position = payload.position;
        s.recovered = payload.recovered;
        clearTimeout(timer);
        ws.off('message', onMessage);
        resolve();
      };
      ws.on('message', onMessage);
    });
    return s;
  }

  publish(seq: number, id?: string): void {
    const idPart = id === undefined ? '' : `,"id":"${id}"`;
    this.ws.send(`{"type":"publish","payload":{"event":"b","data":"${seq}.${nowUs()}.${this.pad}"${idPart}}}`);
  }

  close(): void {
    this.ws.terminate();
  }
}

/** Publishes `count` events with ids (at most `window` unacknowledged) and waits for every ack. */
async function fill(s: Socket, count: number, window: number, tag: string, firstSeq = 0): Promise<void> {
  let sent = 0;
  const base = s.acks;
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`fill ${tag}: ${s.acks - base}/${count} acks within ${HISTORY_OPTIONS.timeoutMs} ms`)),
      HISTORY_OPTIONS.timeoutMs,
    );
    const pump = () => {
      while (sent < count && sent - (s.acks - base) < window) {
        s.publish(firstSeq + sent, `${tag}${firstSeq + sent}`);
        sent++;
      }
      if (s.acks - base >= count) {
        clearTimeout(timer);
        s.ws.off('message', onMessage);
        resolve();
      }
    };
    const onMessage = () => setImmediate(pump);
    s.ws.on('message', onMessage);
    pump();
  });
}

export interface ReplayTrial {
  events: number;
  seconds: number;
  eventsPerSec: number;
  recovered: boolean | undefined;
  integrity: Integrity;
  offsetsIncreasing: boolean;
}

async function replayOnce(pod: Pod, roomId: string, since: Position, n: number): Promise<ReplayTrial> {
  const seen = new Uint8Array(n);
  let got = 0;
  let dup = 0;
  let reordered = 0;
  let last = -1;
  let lastOffset = 0;
  let increasing = true;
  let t0 = 0;
  let tEnd = 0;
  const s = await Socket.open(pod, roomId, 200, since, (sock) => {
    t0 = nowUs();
    sock.onFrame = (data) => {
      const seq = parseEvent(data);
      if (seq < 0) return;
      const offset = tailOffset(data);
      if (offset <= lastOffset) increasing = false;
      lastOffset = offset;
      if (seq >= n || seen[seq] === 1) {
        dup++;
        return;
      }
      seen[seq] = 1;
      if (seq < last) reordered++;
      last = Math.max(last, seq);
      if (++got === n) tEnd = nowUs();
    };
  });
  try {
    // Not recovered: no replay is coming.
    if (s.recovered === true) await waitFor(() => got === n, HISTORY_OPTIONS.timeoutMs);
    await sleep(30);
    const seconds = ((tEnd || nowUs()) - t0) / 1e6;
    return {
      events: got,
      seconds,
      eventsPerSec: got / seconds,
      recovered: s.recovered,
      integrity: { lost: n - got, duplicated: dup, reordered },
      offsetsIncreasing: increasing,
    };
  } finally {
    s.close();
  }
}

export interface TwoPublisherResult {
  eventsPerSec: number;
  seconds: number;
  events: number;
  receivers: number;
  /** Every receiver's offsets strictly increasing. */
  offsetsIncreasing: boolean;
  /** Every receiver saw the events in the same order. */
  sameOrder: boolean;
  integrity: Integrity;
  acks: number;
  senderErrors: Record<string, number>;
}

async function twoPublishers(a: Pod, b: Pod, label: string): Promise<TwoPublisherResult> {
  const n = HISTORY_OPTIONS.publisherEvents;
  const roomId = freshRoom(label);
  const receivers: Socket[] = [];
  for (const pod of [a, b]) for (let i = 0; i < HISTORY_OPTIONS.receiversPerPod; i++) receivers.push(await Socket.open(pod, roomId, 200));
  const pa = await Socket.open(a, roomId, 200);
  const pb = await Socket.open(b, roomId, 200);
  const orders = receivers.map(() => new Int32Array(2 * n).fill(-1));
  const counts = receivers.map(() => 0);
  const seen = receivers.map(() => new Uint8Array(2 * n));
  const lastOffset = receivers.map(() => 0);
  const lastOfPublisher = receivers.map(() => [-1, -1]);
  let increasing = true;
  const integrity = noFaults();
  let total = 0;
  let tEnd = 0;
  receivers.forEach((r, i) => {
    r.onFrame = (data) => {
      const seq = parseEvent(data);
      if (seq === NOT_EVENT || seq === PROBE || seq < 0) return;
      const offset = tailOffset(data);
      if (!(offset > lastOffset[i]!)) increasing = false;
      lastOffset[i] = offset;
      if (seq >= 2 * n || seen[i]![seq] === 1) {
        integrity.duplicated++;
        return;
      }
      seen[i]![seq] = 1;
      const p = seq < n ? 0 : 1;
      if (seq < lastOfPublisher[i]![p]!) integrity.reordered++;
      else lastOfPublisher[i]![p] = seq;
      orders[i]![counts[i]!++] = seq;
      if (++total === 2 * n * receivers.length) tEnd = nowUs();
    };
  });
  const t0 = nowUs();
  try {
    await Promise.all([fill(pa, n, HISTORY_OPTIONS.publisherWindow, 'a'), fill(pb, n, HISTORY_OPTIONS.publisherWindow, 'b', n)]);
    await waitFor(() => total === 2 * n * receivers.length, 10_000);
    await sleep(30);
    for (const c of counts) integrity.lost += 2 * n - c;
    const first = orders[0]!;
    const sameOrder = orders.every((o) => o.every((v, k) => v === first[k]));
    const seconds = ((tEnd || nowUs()) - t0) / 1e6;
    const senderErrors: Record<string, number> = {};
    for (const p of [pa, pb]) for (const [k, v] of Object.entries(p.errors)) senderErrors[k] = (senderErrors[k] ?? 0) + v;
    return {
      eventsPerSec: (2 * n) / seconds,
      seconds,
      events: 2 * n,
      receivers: receivers.length,
      offsetsIncreasing: increasing,
      sameOrder,
      integrity,
      acks: pa.acks + pb.acks,
      senderErrors,
    };
  } finally {
    for (const s of [pa, pb, ...receivers]) s.close();
  }
}

const sizeName = (b: number) => (b >= 1024 ? `${b / 1024} KB` : `${b} B`);
const fmtRange = (xs: number[]) => `${Math.round(Math.min(...xs)).toLocaleString('en-US')}-${Math.round(Math.max(...xs)).toLocaleString('en-US')}`;

export async function historyWorkload(
  buses: readonly BusKind[],
  prefix: string,
  targets: BenchTargets,
  log: (m: string) => void,
  fromPeers: PeerCase[] = [],
) {
  const rows: Row[] = [];
  const text: string[] = [];
  const details: Record<string, unknown> = { options: HISTORY_OPTIONS };
  for (const bus of buses) {
    // Fan-out: workload 6's trials of the two "ours" peers, or the same trials now.
    let cases = fromPeers.filter((c) => c.bus === bus && c.trials['ours-h1000'] && c.trials['ours-h0']);
    if (cases.length === 0) {
      const specs = peerSpecs(bus).filter((s) => s.kind === 'ours' && s.env === undefined);
      const { started, unavailable } = await startPeers(specs, `${prefix}_hf`, targets, log);
      if (Object.keys(unavailable).length > 0) text.push(`7 history ${bus}: fan-out not measured: ${JSON.stringify(unavailable)}`);
      try {
        cases = [];
        if (started.length === 2) {
          await warmUp(started, bus);
          for (const eventBytes of PEER_OPTIONS.sizes) {
            log(`7 history: ${bus} fan-out ${sizeName(eventBytes)}, HISTORY_SIZE 1000 / 0`);
            const o: FixedLoopOptions = { ...PEER_OPTIONS, window: windowFor(eventBytes) };
            const trials = await interleavedPeers<PeerTrial>(started, PEER_OPTIONS.trials, (p, t) =>
              peerTrial(p.pair, eventBytes, `hf-${p.spec.id}-${bus[0]}-${eventBytes}-${t}`, o),
            );
            cases.push({ bus, eventBytes, trials, summaries: started.map((p) => summarizePeer(p.spec, trials[p.spec.id]!)) });
          }
        }
      } finally {
        await Promise.all(started.map((p) => stopPeerPair(p.pair)));
      }
    }
    for (const c of cases) {
      const on = c.summaries.find((s) => s.spec.id === 'ours-h1000')!;
      const off = c.summaries.find((s) => s.spec.id === 'ours-h0')!;
      const goal = c.eventBytes < 1024 ? (bus === 'nats' ? 0.7 : 0.5) : undefined;
      rows.push({
        workload: '7 history',
        bus,
        case: `fan-out ${sizeName(c.eventBytes)}, 20 recv`,
        metric: 'deliveries/s',
        value: on.deliveriesPerSec,
        better: 'higher',
        baseline: { name: 'HISTORY_SIZE=0', value: off.deliveriesPerSec },
        ...(goal && { target: { text: `>=${goal}x`, pass: on.deliveriesPerSec >= goal * off.deliveriesPerSec } }),
        integrity: on.integrity,
      });
      text.push(
        `7 history ${bus} fan-out ${sizeName(c.eventBytes)}: HISTORY_SIZE=1000 ${fmtRange(c.trials['ours-h1000']!.map((t) => t.deliveriesPerSec))} deliveries/s ` +
          `vs HISTORY_SIZE=0 ${fmtRange(c.trials['ours-h0']!.map((t) => t.deliveriesPerSec))} over the trials; ratio of medians ${(on.deliveriesPerSec / off.deliveriesPerSec).toFixed(2)}x; ` +
          `cuts ${on.cuts} (recovered ${on.recoveries}, ${on.recoveredEvents} events)`,
      );
    }
    details[`fanout ${bus}`] = cases.map((c) => ({
      eventBytes: c.eventBytes,
      trials: { 'ours-h1000': c.trials['ours-h1000'], 'ours-h0': c.trials['ours-h0'] },
    }));

    // Replay and two publishers: one pair with room for 10,000 events per room.
    let pods: Pod[] = [];
    try {
      pods = await startPods(2, `hist-${bus}`, { busType: bus, prefix: `${prefix}_h${bus[0]}`, targets, historySize: HISTORY_OPTIONS.historySize });
    } catch (e) {
      const why = (e instanceof Error ? e.message : String(e))
        .split('\n')
        .filter((l) => l.trim() && !/^\s+at /.test(l))
        .slice(0, 3)
        .join(' | ');
      log(`7 history ${bus}: pods with HISTORY_SIZE=${HISTORY_OPTIONS.historySize} did not start: ${why}`);
      text.push(`7 history ${bus}: replay and two publishers not measured: ${why}`);
      continue;
    }
    const [a, b] = pods as [Pod, Pod];
    try {
      const replays: Record<string, ReplayTrial[]> = {};
      for (const n of HISTORY_OPTIONS.replayCounts) {
        log(`7 history: ${bus} replay of ${n.toLocaleString('en-US')} events`);
        const roomId = freshRoom(`replay-${bus}-${n}`);
        const filler = await Socket.open(a, roomId, 200);
        // The room's position before its first event (offset 0 on both buses today).
        const empty = filler.position;
        const epoch = empty?.epoch;
        if (!epoch) throw new Error(`${bus}: room_state without a position although HISTORY_SIZE=${HISTORY_OPTIONS.historySize}`);
        await fill(filler, n, 1_000, 'f');
        filler.close();
        const trials: ReplayTrial[] = [];
        for (let t = 0; t < HISTORY_OPTIONS.replayTrials; t++) trials.push(await replayOnce(b, roomId, { offset: empty!.offset, epoch }, n));
        replays[n] = trials;
        const integrity = trials.reduce(
          (s, t) => ({
            lost: s.lost + t.integrity.lost,
            duplicated: s.duplicated + t.integrity.duplicated,
            reordered: s.reordered + t.integrity.reordered,
          }),
          noFaults(),
        );
        const ok = trials.every((t) => t.recovered === true && t.offsetsIncreasing);
        const rate = median(trials.map((t) => t.eventsPerSec));
        rows.push({
          workload: '7 history',
          bus,
          case: `replay ${n.toLocaleString('en-US')} missed events`,
          metric: 'events/s',
          value: rate,
          better: 'higher',
          target: { text: `>=50,000/s${ok ? '' : ', recovered+ordered'}`, pass: rate >= 50_000 && ok },
          integrity,
        });
        text.push(
          `7 history ${bus} replay ${n.toLocaleString('en-US')}: ${fmtRange(trials.map((t) => t.eventsPerSec))} events/s over ${trials.length} trials ` +
            `(since offset ${empty!.offset}, the room's position before its first event; recovered: ${trials.map((t) => t.recovered).join('/')}, ` +
            `offsets increasing: ${trials.every((t) => t.offsetsIncreasing)})`,
        );
      }
      details[`replay ${bus}`] = replays;

      log(`7 history: ${bus} two publishers on two pods, one room`);
      const two: TwoPublisherResult[] = [];
      for (let t = 0; t < HISTORY_OPTIONS.replayTrials; t++) two.push(await twoPublishers(a, b, `two-${bus}-${t}`));
      details[`two publishers ${bus}`] = two;
      const ok = two.every((r) => r.sameOrder && r.offsetsIncreasing && r.acks === r.events);
      rows.push({
        workload: '7 history',
        bus,
        case: `2 publishers on 2 pods, 1 room, ${2 * HISTORY_OPTIONS.receiversPerPod} recv`,
        metric: 'events/s',
        value: median(two.map((r) => r.eventsPerSec)),
        better: 'higher',
        target: { text: 'one order everywhere', pass: ok },
        integrity: two.reduce(
          (s, r) => ({
            lost: s.lost + r.integrity.lost,
            duplicated: s.duplicated + r.integrity.duplicated,
            reordered: s.reordered + r.integrity.reordered,
          }),
          noFaults(),
        ),
      });
      text.push(
        `7 history ${bus} two publishers: ${fmtRange(two.map((r) => r.eventsPerSec))} events/s over ${two.length} trials; ` +
          `same order on every receiver: ${two.map((r) => r.sameOrder).join('/')}; offsets strictly increasing: ${two.map((r) => r.offsetsIncreasing).join('/')}; ` +
          `acks ${two.map((r) => `${r.acks}/${r.events}`).join(', ')}; sender errors ${JSON.stringify(two.map((r) => r.senderErrors))}`,
      );
    } finally {
      await stopPods(pods);
    }
  }
  return { rows, text: text.join('\n'), details };
}
