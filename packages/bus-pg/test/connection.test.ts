import { describe, expect, it } from 'vitest';
import { PgConnection } from '../src/connection.js';
import { DATABASE_URL } from './helpers.js';

function busyWait(ms: number): void {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    // a GC pause, a CPU-starved container, a slow synchronous handler
  }
}

describe('PgConnection probe', () => {
  it('does not mistake a stalled event loop for a dead connection', async () => {
    const lost: Error[] = [];
    const conn = new PgConnection({ connectionString: DATABASE_URL, applicationName: 'retrotro-bus-test-probe' }, (e) => lost.push(e));
    await conn.open();
    conn.markOpen();
    try {
      for (let i = 0; i < 3; i++) {
        const probe = conn.probe(200);
        busyWait(600); // the answer arrives meanwhile, but is read only after the timeout timer is due
        await expect(probe).resolves.toBeUndefined();
      }
      expect(lost).toEqual([]);
    } finally {
      await conn.close();
    }
  });
});
