/**
 * Test fixtures for the DNS module: a resolved config with two domains and a secondary, the
 * key set the real key store makes for it, and a build context around them.
 */
import type { BundleFile, BuildContext, PreviousBundle } from '../../src/bundle/types.js';
import type { Profile } from '../../src/bundle/layout.js';
import { productionProfile } from '../../src/bundle/layout.js';
import type { RawInput } from '../../src/config/raw.js';
import { resolveConfig } from '../../src/config/schema.js';
import type { Config } from '../../src/config/types.js';
import { ensureKeys } from '../../src/keys/store.js';
import type { KeySet } from '../../src/keys/types.js';

export function makeConfig(values: RawInput = {}): Config {
  return resolveConfig({
    values: {
      domains: ['example.org', 'example.net'],
      hostname: 'mail.example.org',
      ipv4: '192.0.2.10',
      ipv6: '2001:db8::10',
      ns: ['ns1.example.org', 'ns2.example.com=198.51.100.53'],
      users: ['alice@example.org', 'first.last@example.net'],
      admin: 'alice@example.org',
      target: 'debian-12',
      ...values,
    },
    origins: {},
  }).config;
}

/** The key set of `config` from the real key store, as a first run makes it. */
export async function makeKeySet(config: Config, now = new Date()): Promise<KeySet> {
  return ensureKeys(config, memoryPrevious(), now);
}

/** A previous bundle held in memory. */
export function memoryPrevious(files: readonly BundleFile[] = [], dir = '/nonexistent'): PreviousBundle {
  const m = new Map(files.map((f) => [f.path, f.data]));
  return { dir, read: (p) => m.get(p) };
}

export function makeContext(config: Config, keys: KeySet, opts: { previous?: readonly BundleFile[]; now?: Date; profile?: Profile } = {}): BuildContext {
  return {
    config,
    keys,
    previous: memoryPrevious(opts.previous ?? []),
    profile: opts.profile ?? productionProfile(config),
    now: opts.now ?? new Date('2026-03-01T12:00:00Z'),
    passwordHashes: new Map(),
    warnings: [],
    mtaSts: 'testing',
  };
}
