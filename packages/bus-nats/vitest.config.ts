import { defineConfig } from 'vitest/config';

export default defineConfig({
  // Tests share one real nats-server (and start their own): run files one after another.
  test: { include: ['test/**/*.test.ts'], testTimeout: 30_000, hookTimeout: 30_000, fileParallelism: false },
});
