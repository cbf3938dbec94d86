import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Multi-pod suites start real server processes: one file at a time on a 2-core machine.
    fileParallelism: false,
  },
});
