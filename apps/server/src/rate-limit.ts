/**
 * Token bucket per socket: `rate` frames per second sustained, bursts up to twice that.
 * It also counts refused frames over the last few seconds, so a socket that keeps flooding
 * (not one that bursted once) can be told apart and closed.
 */
const WINDOW_SECONDS = 3;

export class TokenBucket {
  private tokens: number;
  private last: number;
  /** Refusals per second for the last WINDOW_SECONDS seconds, as a ring. */
  private readonly refusals = new Array<number>(WINDOW_SECONDS).fill(0);
  private refusalSecond = 0;

  constructor(
    private readonly rate: number,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.tokens = rate * 2;
    this.last = this.now();
  }

  take(): boolean {
    const t = this.now();
    this.tokens = Math.min(this.rate * 2, this.tokens + ((t - this.last) / 1000) * this.rate);
    this.last = t;
    if (this.tokens >= 1) {
      this.tokens -= 1;
      return true;
    }
    this.advance(t);
    this.refusals[this.refusalSecond % WINDOW_SECONDS]!++;
    return false;
  }

  /** Frames refused during roughly the last WINDOW_SECONDS seconds. */
  recentRefusals(): number {
    this.advance(this.now());
    return this.refusals.reduce((a, b) => a + b, 0);
  }

  private advance(t: number): void {
    const second = Math.floor(t / 1000);
    // Clear the slots of the seconds that passed since the last refusal.
    for (let s = this.refusalSecond + 1; s <= second && s <= this.refusalSecond + WINDOW_SECONDS; s++) {
      this.refusals[s % WINDOW_SECONDS] = 0;
    }
    this.refusalSecond = Math.max(this.refusalSecond, second);
  }
}

/** Refusals within the window after which a socket counts as flooding and is closed (1008). */
export function floodThreshold(rate: number): number {
  return Math.max(50, rate * 10);
}
