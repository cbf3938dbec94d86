import { describe, expect, it } from 'vitest';
import { RateLimitedLog } from '../src/logger.js';

describe('RateLimitedLog', () => {
  it('logs at most perWindow lines per window, then reports how many were suppressed', () => {
    const lines: Array<{ obj: object; msg: string }> = [];
    let now = 50_000;
    const log = new RateLimitedLog(
      (obj, msg) => lines.push({ obj, msg }),
      3,
      1_000,
      () => now,
    );
    for (let i = 0; i < 10; i++) log.write({ i }, 'bad envelope');
    expect(lines.map((l) => l.obj)).toEqual([{ i: 0 }, { i: 1 }, { i: 2 }]);
    now += 999;
    log.write({ i: 10 }, 'bad envelope');
    expect(lines).toHaveLength(3);
    now += 1; // a new window
    log.write({ i: 11 }, 'bad envelope');
    expect(lines).toHaveLength(5);
    expect(lines[3]!.obj).toEqual({ suppressed: 8 });
    expect(lines[3]!.msg).toMatch(/suppressed/);
    expect(lines[4]!.obj).toEqual({ i: 11 });
    // The new window has its own budget.
    log.write({ i: 12 }, 'bad envelope');
    log.write({ i: 13 }, 'bad envelope');
    log.write({ i: 14 }, 'bad envelope');
    expect(lines).toHaveLength(7);
    // Nothing suppressed in a window: no summary line.
    now += 5_000;
    log.write({ i: 15 }, 'bad envelope');
    expect(lines.slice(7).map((l) => l.obj)).toEqual([{ suppressed: 1 }, { i: 15 }]);
    now += 5_000;
    log.write({ i: 16 }, 'bad envelope');
    expect(lines.slice(9).map((l) => l.obj)).toEqual([{ i: 16 }]);
  });
});
