import { describe, expect, it } from 'vitest';
import { TokenBucket } from '../src/rate-limit.js';

describe('TokenBucket', () => {
  it('allows a burst of twice the rate, then the steady rate', () => {
    let now = 0;
    const bucket = new TokenBucket(5, () => now);
    const burst = Array.from({ length: 12 }, () => bucket.take());
    expect(burst.filter(Boolean)).toHaveLength(10);
    expect(bucket.strikes).toBe(2);
    now += 1_000; // one second refills 5
    expect(Array.from({ length: 6 }, () => bucket.take()).filter(Boolean)).toHaveLength(5);
    now += 200;
    expect(bucket.take()).toBe(true);
    expect(bucket.strikes).toBe(0);
  });
});
