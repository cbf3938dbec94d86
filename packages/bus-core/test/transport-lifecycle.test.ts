import { describe, expect, it } from 'vitest';
import { BrokerUnreachableError, BusError, BusUnavailableError, type StreamKind, type TransportSink, type TransportState } from '../src/index.js';
import { TransportConfigError, TransportLifecycle, describeError, type TransportDriver } from '../src/internal.js';
import { sleep } from '../src/testing/index.js';

class Conn {
  discarded = false;
  constructor(readonly id: number) {}
}

/** A driver whose connect attempts the test resolves or rejects by hand. */
class FakeDriver implements TransportDriver<Conn> {
  attempts: Array<{ signal: AbortSignal; resolve: (c: Conn) => void; reject: (e: unknown) => void }> = [];
  installed: Array<{ conn: Conn; again: boolean }> = [];
  discarded: Conn[] = [];
  shutdowns: boolean[] = [];
  onInstall: ((conn: Conn) => void) | undefined;
  private ids = 0;

  connect(signal: AbortSignal): Promise<Conn> {
    return new Promise((resolve, reject) => this.attempts.push({ signal, resolve, reject }));
  }
  install(conn: Conn, again: boolean): void {
    this.installed.push({ conn, again });
    this.onInstall?.(conn);
  }
  discard(conn: Conn): void {
    conn.discarded = true;
    this.discarded.push(conn);
  }
  async shutdown(graceful: boolean): Promise<void> {
    this.shutdowns.push(graceful);
    await sleep(5);
  }
  /** Resolves the latest attempt with a new connection. */
  succeed(): Conn {
    const conn = new Conn(++this.ids);
    this.attempts.at(-1)!.resolve(conn);
    return conn;
  }
  failWith(error: unknown): void {
    this.attempts.at(-1)!.reject(error);
  }
}

class Sink implements TransportSink {
  received: Array<[StreamKind, string]> = [];
  states: Array<[TransportState, string?]> = [];
  receive(stream: StreamKind, payload: string): void {
    this.received.push([stream, payload]);
  }
  stateChanged(state: TransportState, error?: Error): void {
    this.states.push(error ? [state, error.message] : [state]);
  }
}

function make(options: { connectTimeoutMs?: number } = {}) {
  const driver = new FakeDriver();
  const errors: Array<[object, string | undefined]> = [];
  const logger = { debug() {}, info() {}, warn() {}, error: (o: object, m?: string) => errors.push([o, m]) };
  const life = new TransportLifecycle(driver, {
    name: 'test transport',
    target: 'test://app:****@broker:1',
    connectTimeoutMs: options.connectTimeoutMs ?? 1_000,
    logger,
  });
  return { driver, life, errors, sink: new Sink() };
}

/** Opens and lets the driver connect. */
async function opened() {
  const t = make();
  const opening = t.life.open(t.sink);
  await Promise.resolve();
  const conn = t.driver.succeed();
  await opening;
  return { ...t, conn };
}

const rejection = (p: Promise<unknown>) =>
  p.then(
    () => undefined,
    (e: unknown) => e,
  );

describe('TransportLifecycle: open', () => {
  it('goes idle → opening → connected and installs the connection before open() resolves', async () => {
    const { driver, life, sink } = make();
    expect(life.state).toBe('idle');
    const opening = life.open(sink);
    expect(life.state).toBe('opening');
    expect(driver.attempts).toHaveLength(1);
    const conn = driver.succeed();
    await opening;
    expect(life.state).toBe('connected');
    expect(life.connected).toBe(true);
    expect(driver.installed).toEqual([{ conn, again: false }]);
    expect(sink.states).toEqual([]); // open resolving says "connected"; no callback for it
  });

  it('a failed open rejects with BrokerUnreachableError naming the target, and leaves it idle to try again', async () => {
    const { driver, life, sink } = make();
    const opening = rejection(life.open(sink));
    await Promise.resolve();
    driver.failWith(new Error('connect ECONNREFUSED 127.0.0.1:1'));
    const error = await opening;
    expect(error).toBeInstanceOf(BrokerUnreachableError);
    expect((error as Error).message).toBe('cannot reach test://app:****@broker:1: connect ECONNREFUSED 127.0.0.1:1');
    expect(life.state).toBe('idle');
    const again = life.open(sink);
    driver.succeed();
    await again;
    expect(life.state).toBe('connected');
  });

  it('a second open rejects with a clear BusError, while opening and while connected, and changes nothing', async () => {
    const { driver, life, sink } = make();
    const first = life.open(sink);
    const second = await rejection(life.open(new Sink()));
    expect(second).toBeInstanceOf(BusError);
    expect(second).toMatchObject({ code: 'already_open', message: expect.stringMatching(/already opening/) });
    driver.succeed();
    await first;
    const third = await rejection(life.open(new Sink()));
    expect(third).toMatchObject({ code: 'already_open', message: expect.stringMatching(/already open:/) });
    expect(driver.attempts).toHaveLength(1);
    expect(life.state).toBe('connected');
    life.deliver('room', 'x');
    expect(sink.received).toEqual([['room', 'x']]); // still the first sink
  });

  it('open after close rejects with BusError stopped, without connecting', async () => {
    const { driver, life, sink } = make();
    await life.close();
    await expect(life.open(sink)).rejects.toMatchObject({ code: 'stopped', message: expect.stringMatching(/create a new one/) });
    expect(driver.attempts).toHaveLength(0);
  });

  it('gives the whole open one deadline: BrokerUnreachableError, the attempt aborted, a late connection discarded', async () => {
    const { driver, life, sink } = make({ connectTimeoutMs: 50 });
    const started = Date.now();
    const error = await rejection(life.open(sink));
    expect(Date.now() - started).toBeGreaterThanOrEqual(45);
    expect(error).toBeInstanceOf(BrokerUnreachableError);
    expect((error as Error).message).toBe('cannot reach test://app:****@broker:1: no answer within 50 ms');
    expect(driver.attempts[0]!.signal.aborted).toBe(true);
    expect(life.state).toBe('idle');
    const late = driver.succeed();
    await sleep(1);
    expect(late.discarded).toBe(true);
    expect(driver.installed).toEqual([]);
  });

  it('close() during open aborts it: open rejects with stopped, the half-made connection is destroyed', async () => {
    const { driver, life, sink } = make();
    const opening = rejection(life.open(sink));
    const signal = driver.attempts[0]!.signal;
    await life.close();
    expect(signal.aborted).toBe(true);
    expect(await opening).toMatchObject({ code: 'stopped', message: expect.stringMatching(/closed while connecting/) });
    const late = driver.succeed();
    await sleep(1);
    expect(late.discarded).toBe(true);
    expect(driver.installed).toEqual([]);
    expect(driver.shutdowns).toEqual([false]);
    expect(sink.states).toEqual([]);
  });

  it('passes BusErrors and TransportConfigErrors through as they are', async () => {
    for (const thrown of [new BusError('publish_failed', 'x'), new TransportConfigError('cannot read creds file /x')]) {
      const { driver, life, sink } = make();
      const opening = rejection(life.open(sink));
      driver.failWith(thrown);
      expect(await opening).toBe(thrown);
    }
  });

  it('a connect that throws synchronously is a rejected open too', async () => {
    const { life, driver, sink } = make();
    driver.connect = () => {
      throw new Error('boom');
    };
    await expect(life.open(sink)).rejects.toThrow('cannot reach test://app:****@broker:1: boom');
  });

  it('a throwing install fails the open and discards the connection', async () => {
    const { life, driver, sink } = make();
    driver.onInstall = () => {
      throw new Error('subscribe refused');
    };
    const opening = rejection(life.open(sink));
    const conn = driver.succeed();
    expect(await opening).toBeInstanceOf(BrokerUnreachableError);
    expect(conn.discarded).toBe(true);
    expect(life.state).toBe('idle');
  });

  it('refuses a non-positive connectTimeoutMs', () => {
    expect(() => new TransportLifecycle(new FakeDriver(), { name: 'x', target: 'y', connectTimeoutMs: 0 })).toThrow(/connectTimeoutMs/);
  });
});

describe('TransportLifecycle: publish gating', () => {
  it('rejects (never throws) with BusUnavailableError before open and while reconnecting, BusError stopped after close', async () => {
    const { life } = await opened();
    expect(life.connected).toBe(true);
    life.lost(new Error('gone'));
    const unavailable = life.refusePublish();
    expect(unavailable).toBeInstanceOf(Promise);
    await expect(unavailable).rejects.toBeInstanceOf(BusUnavailableError);
    await expect(life.refusePublish()).rejects.toThrow('test transport (test://app:****@broker:1) is disconnected; message not sent');
    await life.close();
    await expect(life.refusePublish()).rejects.toMatchObject({ code: 'stopped', message: expect.stringMatching(/is closed; message not sent/) });
    const fresh = make();
    await expect(fresh.life.refusePublish()).rejects.toBeInstanceOf(BusUnavailableError);
  });
});

describe('TransportLifecycle: state changes', () => {
  it('tells the sink each transition exactly once, however often the driver reports it', async () => {
    const { life, sink } = await opened();
    expect(life.lost(new Error('disconnect'))).toBe(true);
    expect(life.lost(new Error('reconnecting'))).toBe(false);
    expect(life.state).toBe('reconnecting');
    expect(life.regained()).toBe(true);
    expect(life.regained()).toBe(false);
    expect(sink.states).toEqual([['reconnecting', 'disconnect'], ['connected']]);
  });

  it('reconnect(): connects within the deadline, installs with again=true, then reports connected', async () => {
    const { life, driver, sink } = await opened();
    expect(await life.reconnect()).toBe(false); // not reconnecting
    life.lost(new Error('gone'));
    const first = rejection(life.reconnect());
    expect(await life.reconnect()).toBe(false); // one attempt at a time
    driver.failWith(new Error('refused'));
    expect(await first).toBeInstanceOf(BrokerUnreachableError);
    expect(life.state).toBe('reconnecting');
    const second = life.reconnect();
    const conn = driver.succeed();
    expect(await second).toBe(true);
    expect(driver.installed.at(-1)).toEqual({ conn, again: true });
    expect(sink.states).toEqual([['reconnecting', 'gone'], ['connected']]);
  });

  it('a connection lost while being installed is reported once, and never as connected', async () => {
    const { life, driver, sink } = await opened();
    life.lost(new Error('gone'));
    driver.onInstall = () => life.lost(new Error('dead on arrival'));
    const attempt = life.reconnect();
    driver.succeed();
    await attempt;
    expect(life.state).toBe('reconnecting');
    expect(sink.states).toEqual([['reconnecting', 'gone']]);
  });

  it('close() during a reconnect attempt aborts it and stays silent', async () => {
    const { life, driver, sink } = await opened();
    life.lost(new Error('gone'));
    const attempt = rejection(life.reconnect());
    await life.close();
    expect(await attempt).toMatchObject({ code: 'stopped' });
    driver.succeed();
    await sleep(1);
    expect(sink.states).toEqual([['reconnecting', 'gone']]);
    expect(life.regained()).toBe(false);
  });

  it('fail(): the broker gave up for good: the sink hears closed once, then nothing; close() still resolves', async () => {
    const { life, driver, sink } = await opened();
    life.fail(new Error('closed by server'));
    life.fail(new Error('again'));
    expect(life.state).toBe('closed');
    life.deliver('room', 'late');
    expect(life.lost(new Error('x'))).toBe(false);
    await life.close();
    expect(sink.states).toEqual([['closed', 'closed by server']]);
    expect(sink.received).toEqual([]);
    expect(driver.shutdowns).toEqual([false]);
  });
});

describe('TransportLifecycle: close', () => {
  it('is idempotent: one shutdown, the same promise, graceful only when connected', async () => {
    const { life, driver } = await opened();
    const a = life.close();
    const b = life.close();
    expect(a).toBe(b);
    await Promise.all([a, b]);
    await life.close();
    expect(driver.shutdowns).toEqual([true]);
    const lost = await opened();
    lost.life.lost(new Error('x'));
    await lost.life.close();
    expect(lost.driver.shutdowns).toEqual([false]);
  });

  it('no callbacks once close() is called', async () => {
    const { life, sink } = await opened();
    const closing = life.close();
    life.deliver('room', 'during close');
    expect(life.lost(new Error('x'))).toBe(false);
    await closing;
    life.deliver('room', 'after close');
    expect(sink.received).toEqual([]);
    expect(sink.states).toEqual([]);
  });

  it('a throwing shutdown is logged, close() still resolves', async () => {
    const { life, driver } = await opened();
    driver.shutdown = async () => {
      throw new Error('socket already gone');
    };
    await expect(life.close()).resolves.toBeUndefined();
  });
});

describe('TransportLifecycle: the sink wrapper', () => {
  it('catches and logs a throwing receive or stateChanged; later deliveries still arrive', async () => {
    const { life, sink, errors } = await opened();
    const seen: string[] = [];
    sink.receive = (_stream, payload) => {
      if (payload.startsWith('boom')) throw new Error(`sink broke on ${payload}`);
      seen.push(payload);
    };
    sink.stateChanged = () => {
      throw new Error('state handler broke');
    };
    expect(() => life.deliver('room', 'boom-1')).not.toThrow();
    expect(() => life.lost(new Error('gone'))).not.toThrow();
    life.deliver('presence', 'after');
    expect(seen).toEqual(['after']);
    expect(errors.map(([, m]) => m)).toEqual(['transport sink failed on a message', 'transport sink failed on a state change']);
    expect(errors[0]![0]).toMatchObject({ stream: 'room', err: expect.objectContaining({ message: 'sink broke on boom-1' }) });
  });

  it('delivers from the start of open (a subscription may fire before connect resolves)', async () => {
    const { life, driver, sink } = make();
    const opening = life.open(sink);
    life.deliver('room', 'early');
    driver.succeed();
    await opening;
    expect(sink.received).toEqual([['room', 'early']]);
  });
});

describe('describeError', () => {
  it("turns Node's empty AggregateError into one readable message", () => {
    const e = new AggregateError([new Error('connect ECONNREFUSED ::1:5432'), new Error('connect ECONNREFUSED 127.0.0.1:5432')], '');
    const d = describeError(e);
    expect(d.message).toBe('connect ECONNREFUSED ::1:5432; connect ECONNREFUSED 127.0.0.1:5432');
    expect(d.cause).toBe(e);
  });

  it('makes an Error of anything, uses the code of an empty message, and appends a cause that says more', () => {
    expect(describeError('plain string').message).toBe('plain string');
    expect(describeError(Object.assign(new Error(''), { code: 'ECONNRESET' })).message).toBe('ECONNRESET');
    const withCause = new Error('connection refused', { cause: new Error('connect ECONNREFUSED 127.0.0.1:4') });
    expect(describeError(withCause).message).toBe('connection refused (connect ECONNREFUSED 127.0.0.1:4)');
    const same = new Error('refused: x', { cause: new Error('x') });
    expect(describeError(same)).toBe(same); // nothing to add: the original itself
  });

  it("reports a client library's TimeoutError as the deadline", async () => {
    const { life, driver, sink } = make({ connectTimeoutMs: 700 });
    const opening = rejection(life.open(sink));
    driver.failWith(Object.assign(new Error('timeout'), { name: 'TimeoutError' }));
    expect(((await opening) as Error).message).toBe('cannot reach test://app:****@broker:1: no answer within 700 ms');
  });
});
