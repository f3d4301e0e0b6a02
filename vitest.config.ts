import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Fails the run at once, naming the Debian packages, when a real tool is missing.
    globalSetup: ['test/setup/tools.ts'],
    // Real servers and key generation make some tests slow; the machine has two cores.
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
  },
});
