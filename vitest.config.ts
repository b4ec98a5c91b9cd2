import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['{core,db,bot,worker,portal,test}/**/*.test.{ts,tsx}'],
    globalSetup: ['test/support/global-setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // Two cores: the end-to-end files start workers and containers of their own.
    maxWorkers: 2,
  },
});
