import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/helpers/global-setup.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // Integration files each start their own databases on the shared cluster; 2 cores: two files at a time.
    maxWorkers: 2,
    fileParallelism: true,
  },
});
