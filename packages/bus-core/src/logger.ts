/** The subset of a pino-style logger the bus uses; pass pino, console wrappers, or nothing. */
export interface Logger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export const silentLogger: Logger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
};

/**
 * Logs at most `perWindow` lines per `windowMs` for one noisy source (garbage on the
 * wire must never flood the logs), then one line saying how many were suppressed.
 */
export class RateLimitedLog {
  private windowStart = 0;
  private count = 0;
  private suppressed = 0;

  constructor(
    private readonly log: (obj: object, msg: string) => void,
    private readonly perWindow = 10,
    private readonly windowMs = 10_000,
    private readonly now: () => number = Date.now,
  ) {}

  write(obj: object, msg: string): void {
    const t = this.now();
    if (t - this.windowStart >= this.windowMs) {
      if (this.suppressed > 0) {
        this.log({ suppressed: this.suppressed }, `${msg} (similar lines suppressed in the last window)`);
      }
      this.windowStart = t;
      this.count = 0;
      this.suppressed = 0;
    }
    if (this.count < this.perWindow) {
      this.count++;
      this.log(obj, msg);
    } else {
      this.suppressed++;
    }
  }
}
