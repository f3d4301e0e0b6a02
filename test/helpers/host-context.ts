/** Build contexts for the host tests: a resolved config, fixture keys, a throwaway root. */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Profile } from '../../src/bundle/layout.js';
import { STANDARD_PORTS, productionProfile } from '../../src/bundle/layout.js';
import type { BuildContext } from '../../src/bundle/types.js';
import type { RawInput } from '../../src/config/raw.js';
import { sourced } from '../../src/config/raw.js';
import { resolveConfig } from '../../src/config/schema.js';
import type { KeySet } from '../../src/keys/types.js';
import { fixtureKeySet, stubKeySet } from './host-keyset.js';

export const BASE_INPUT: RawInput = {
  domains: ['example.org', 'example.net'],
  ipv4: '203.0.113.10',
  ipv6: '2001:db8::10',
  users: ['alice@example.org', 'bob@example.net'],
  target: 'debian-12',
};

/**
 * A context for `input` (over BASE_INPUT). `root` set: a rehearsal-like profile under that root
 * (loopback, high ports); else production paths. `realKeys`: a real TLS key and certificate.
 */
export function hostContext(input: RawInput = {}, opts: { root?: string; keys?: KeySet; realKeys?: boolean } = {}): BuildContext {
  const { config, warnings } = resolveConfig(sourced({ ...BASE_INPUT, ...input }, 'flag'));
  const root = opts.root ?? '';
  const profile: Profile = root
    ? {
        kind: 'rehearsal',
        root,
        listen: { ipv4: '127.0.0.1', ipv6: '::1' },
        ports: { ...STANDARD_PORTS, smtp: 20025, submission: 20587, submissions: 20465, imaps: 20993, dns: 20053, http: 20080, https: 20443 },
        mailUser: { name: 'nobody', group: 'nogroup' },
      }
    : productionProfile(config);
  return {
    config,
    keys: opts.keys ?? (opts.realKeys ? fixtureKeySet(config) : stubKeySet(config)),
    previous: { dir: '/nonexistent', read: () => undefined },
    profile,
    now: new Date('2026-03-01T12:00:00Z'),
    passwordHashes: new Map(),
    warnings: [...warnings],
    mtaSts: 'testing',
  };
}

/** A temp dir for one test file, removed by the returned function. */
export async function scratchDir(): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'selfmail-host-'));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}
