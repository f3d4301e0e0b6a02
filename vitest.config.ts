import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    // Fails the run at once, naming the Debian packages, when a real tool is missing; rebuilds
    // dist/ when the sources are newer (a single file run after an edit tests the current code).
    globalSetup: ['test/setup/tools.ts', 'test/setup/build.ts'],
    // Real servers and key generation make some tests slow; the machine has two cores.
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    projects: [
      {
        // Everything but the pristine-host tier, one file at a time: the rehearsal tests look for
        // rehearsal processes and roots machine-wide, and the real daemons share loopback ports.
        extends: true,
        test: { name: 'main', include: ['test/**/*.test.ts'], exclude: ['test/host/**'], fileParallelism: false, sequence: { groupOrder: 0 } },
      },
      {
        // Then the tier's two releases side by side: each boots its own root in network
        // namespaces of its own, and most of its time is waiting on the booted host.
        extends: true,
        test: { name: 'host', include: ['test/host/**/*.test.ts'], maxWorkers: 2, sequence: { groupOrder: 1 } },
      },
    ],
  },
});
