import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Bounds that only end a hung test: under two CPU hogs on 2 cores the slowest test takes ~15 s and the
    // slowest hook (Prometheus's first scrape) waits up to 45 s. Tests wait for conditions (test/helpers/wait.ts).
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
  },
});
