/**
 * Token bucket per socket: `rate` frames per second sustained, bursts up to twice that.
 * `strikes` counts frames refused in a row, so a socket that keeps flooding can be closed.
 */
export class TokenBucket {
  private tokens: number;
  private last: number;
  strikes = 0;

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
      this.strikes = 0;
      return true;
    }
    this.strikes++;
    return false;
  }
}
