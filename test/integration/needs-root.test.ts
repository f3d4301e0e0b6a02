/**
 * The commands that run the real servers say plainly that they need root, with exit 4, and
 * write nothing. In-process, with getuid() answering as an ordinary user (a spawned process as
 * `nobody` could not even read a checkout under a private folder).
 */
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { Io } from '../../src/cli/io.js';
import { sourced } from '../../src/config/raw.js';
import { ToolError } from '../../src/errors.js';
import { generate } from '../../src/generate.js';
import { requireRootAndTools } from '../../src/rehearse/host.js';

const quiet: Io = { say: () => {}, warn: () => {}, json: () => {}, jsonMode: false, interactive: false };

afterEach(() => {
  vi.restoreAllMocks();
});

describe('without root', () => {
  it('init stops before writing, with exit 4 and the reason', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'selfmail-noroot-'));
    try {
      vi.spyOn(process, 'getuid').mockReturnValue(1000);
      const run = generate(
        {
          out: join(dir, 'bundle'),
          layers: { flags: sourced({ domains: ['example.org'], ipv4: '192.0.2.25', users: ['alice@example.org'] }, 'flag') },
          passwords: new Map([['alice@example.org', 'correct horse battery staple']]),
          passwordIssues: [],
          interactive: false,
          demo: false,
        },
        quiet,
      );
      await expect(run).rejects.toBeInstanceOf(ToolError);
      await expect(run).rejects.toMatchObject({ exitCode: 4, message: expect.stringMatching(/run selfmail init as root/) });
      expect(await readdir(dir)).toEqual([]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('rehearse names the missing privilege (exit 4)', async () => {
    vi.spyOn(process, 'getuid').mockReturnValue(65534);
    await expect(requireRootAndTools()).rejects.toMatchObject({ exitCode: 4, message: expect.stringMatching(/needs root/) });
  });
});
