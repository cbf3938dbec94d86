/**
 * How much this pod has handed to its broker that the broker has not acknowledged yet. Above
 * a high-water mark the bus says it is overloaded, and the socket layer stops reading from
 * its publishers (backpressure) instead of the broker refusing their events; below the
 * low-water mark it says so again and reading resumes. Memory stays bounded, nothing is
 * refused while the broker is up.
 */
export interface BackpressureOptions {
  /** Unacknowledged payload bytes that make the bus overloaded. Default 8 MiB. */
  highWaterBytes?: number;
  /** Unacknowledged messages that make the bus overloaded. Default 4000 (PostgreSQL's queue holds 10000). */
  highWaterMessages?: number;
}

export type PressureListener = (overloaded: boolean) => void;

export class Backpressure {
  private bytes = 0;
  private messages = 0;
  private high = false;
  private readonly listeners = new Set<PressureListener>();
  private readonly highBytes: number;
  private readonly highMessages: number;

  constructor(options: BackpressureOptions = {}) {
    this.highBytes = options.highWaterBytes ?? 8 * 1024 * 1024;
    this.highMessages = options.highWaterMessages ?? 4_000;
  }

  get overloaded(): boolean {
    return this.high;
  }

  get inFlight(): { messages: number; bytes: number } {
    return { messages: this.messages, bytes: this.bytes };
  }

  /** Counts `bytes` as in flight until `sent` settles. */
  track<T>(bytes: number, sent: Promise<T>): Promise<T> {
    this.bytes += bytes;
    this.messages++;
    if (!this.high && (this.bytes >= this.highBytes || this.messages >= this.highMessages)) this.set(true);
    const done = () => {
      this.bytes -= bytes;
      this.messages--;
      // Resume at half the marks, so reading does not flap on every acknowledgement.
      if (this.high && this.bytes <= this.highBytes / 2 && this.messages <= this.highMessages / 2) this.set(false);
    };
    sent.then(done, done);
    return sent;
  }

  onChange(listener: PressureListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private set(high: boolean): void {
    this.high = high;
    for (const l of this.listeners) {
      try {
        l(high);
      } catch {
        // a listener's failure is its own
      }
    }
  }
}
