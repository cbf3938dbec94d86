/**
 * The main thread's handle on a receivers' worker thread (receiver-worker.ts, peer-worker.ts):
 * it queues the worker's messages and hands them out one by one, each of the type expected.
 */
import { Worker } from 'node:worker_threads';

export type FromWorker<R> = { type: 'ready' } | { type: 'probed' } | { type: 'report'; report: R } | { type: 'error'; message: string };

export class WorkerHandle<R> {
  private readonly worker: Worker;
  private readonly inbox: FromWorker<R>[] = [];
  private waiting: ((m: FromWorker<R>) => void) | undefined;
  private failure: Error | undefined;

  /** `script`: the worker module's own URL; `job`: its workerData. */
  constructor(script: URL, job: unknown) {
    this.worker = new Worker(script, { workerData: job });
    this.worker.on('message', (m: FromWorker<R>) => this.deliver(m));
    this.worker.on('error', (e) => this.deliver({ type: 'error', message: e.message }));
    this.worker.on('exit', (code) => this.deliver({ type: 'error', message: `receiver worker exited (${code})` }));
  }

  private deliver(m: FromWorker<R>): void {
    if (m.type === 'error') this.failure ??= new Error(m.message);
    const w = this.waiting;
    this.waiting = undefined;
    if (w) w(m);
    else this.inbox.push(m);
  }

  /** The next message, which must be of `type`. */
  async next<T extends FromWorker<R>['type']>(type: T, timeoutMs: number): Promise<Extract<FromWorker<R>, { type: T }>> {
    const m =
      this.inbox.shift() ??
      (await new Promise<FromWorker<R>>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`receiver worker: no '${type}' within ${timeoutMs} ms`)), timeoutMs);
        this.waiting = (msg) => {
          clearTimeout(timer);
          resolve(msg);
        };
      }));
    if (m.type !== type) throw this.failure ?? new Error(`receiver worker: expected '${type}', got '${m.type}'`);
    return m as Extract<FromWorker<R>, { type: T }>;
  }

  finish(sent: number): void {
    this.worker.postMessage({ type: 'finish', sent });
  }

  async close(): Promise<void> {
    await this.worker.terminate();
  }
}
