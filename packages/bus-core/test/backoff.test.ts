import { describe, expect, it } from 'vitest';
import { Backoff } from '../src/backoff.js';

describe('Backoff', () => {
  it('doubles from initialMs up to maxMs, with jitter in [cap/2, cap]', () => {
    const low = new Backoff({ initialMs: 100, maxMs: 1_000, random: () => 0 });
    expect(Array.from({ length: 7 }, () => low.next())).toEqual([50, 100, 200, 400, 500, 500, 500]);
    const high = new Backoff({ initialMs: 100, maxMs: 1_000, random: () => 1 });
    expect(Array.from({ length: 7 }, () => high.next())).toEqual([100, 200, 400, 800, 1_000, 1_000, 1_000]);
  });

  it('stays within bounds with real randomness and never exceeds the cap', () => {
    const b = new Backoff({ initialMs: 10, maxMs: 300 });
    for (let i = 0; i < 200; i++) {
      const cap = Math.min(300, 10 * 2 ** i);
      const d = b.next();
      expect(d).toBeGreaterThanOrEqual(Math.floor(cap / 2));
      expect(d).toBeLessThanOrEqual(cap);
    }
    expect(b.attempts).toBe(30); // the exponent stops growing: no overflow to Infinity
  });

  it('reset() starts over', () => {
    const b = new Backoff({ initialMs: 100, maxMs: 5_000, random: () => 1 });
    for (let i = 0; i < 5; i++) b.next();
    expect(b.attempts).toBe(5);
    b.reset();
    expect(b.attempts).toBe(0);
    expect(b.next()).toBe(100);
  });

  it('defaults to 100 ms initial and 5 s cap', () => {
    const b = new Backoff({ random: () => 1 });
    expect(b.next()).toBe(100);
    for (let i = 0; i < 20; i++) b.next();
    expect(b.next()).toBe(5_000);
  });
});
