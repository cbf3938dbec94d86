import { describe, expect, it } from 'vitest';
import { TokenBucket, floodThreshold } from '../src/rate-limit.js';

describe('TokenBucket', () => {
  it('allows a burst of twice the rate, then the steady rate', () => {
    let now = 0;
    const bucket = new TokenBucket(5, () => now);
    const burst = Array.from({ length: 12 }, () => bucket.take());
    expect(burst.filter(Boolean)).toHaveLength(10);
    expect(bucket.recentRefusals()).toBe(2);
    now += 1_000; // one second refills 5
    expect(Array.from({ length: 6 }, () => bucket.take()).filter(Boolean)).toHaveLength(5);
    now += 200;
    expect(bucket.take()).toBe(true);
  });

  it('forgets refusals after the window, but sees a steady flood even between accepted frames', () => {
    let now = 0;
    const bucket = new TokenBucket(5, () => now);
    for (let i = 0; i < 30; i++) bucket.take(); // one burst
    expect(bucket.recentRefusals()).toBe(20);
    expect(bucket.recentRefusals()).toBeLessThan(floodThreshold(5));
    now += 4_000;
    expect(bucket.recentRefusals()).toBe(0);
    // 90 frames a second for 4 s: some are accepted all along, the refusals still pile up.
    for (let i = 0; i < 360; i++) {
      now += 1000 / 90;
      bucket.take();
    }
    expect(bucket.recentRefusals()).toBeGreaterThan(floodThreshold(5));
  });
});
