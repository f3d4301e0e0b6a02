import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Fails the run at once, naming the Debian packages, when a real tool is missing; rebuilds
    // dist/ when the sources are newer (a single file run after an edit tests the current code).
    globalSetup: ['test/setup/tools.ts', 'test/setup/build.ts'],
    // Real servers and key generation make some tests slow; the machine has two cores.
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
  },
});
