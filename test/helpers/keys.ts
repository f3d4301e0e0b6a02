/**
 * Fixtures for tests that need keys: a small Config, PreviousBundle views over in-memory files or
 * a folder, and a cached demo KeySet so suites do not pay for RSA generation more than once.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { BundleFile, PreviousBundle } from '../../src/bundle/types.js';
import type { Config, DomainName, Email, IPv4 } from '../../src/config/types.js';
import { ensureKeys } from '../../src/keys/store.js';
import type { KeySet } from '../../src/keys/types.js';

/** A fixed clock for key tests: a date in the past, so BIND treats the keys as active. */
export const KEYS_NOW = new Date('2026-03-15T10:20:30Z');

/** A valid Config for key tests (branded values cast: these literals are known to be valid). */
export function keysTestConfig(over: Partial<Config> = {}): Config {
  const d = (s: string): DomainName => s as DomainName;
  return {
    domains: [d('example.org')],
    hostname: d('mail.example.org'),
    ipv4: '192.0.2.10' as IPv4,
    nameServers: [
      { name: d('ns1.example.org'), ipv4: ['192.0.2.10' as IPv4], ipv6: [], self: true },
      { name: d('ns2.example.net'), ipv4: ['198.51.100.53' as IPv4], ipv6: [], self: false },
    ],
    admin: 'postmaster@example.org' as Email,
    users: ['alice@example.org' as Email],
    adminSshFrom: [],
    spamLookups: [],
    aliases: [],
    quotas: [],
    openpgpKeys: [],
    ingress: 'direct',
    acmeCa: d('letsencrypt.org'),
    dnssec: true,
    target: 'debian-12',
    ...over,
  };
}

/** An empty previous bundle (first run). */
export function emptyPrevious(dir = '/nonexistent/selfmail-bundle'): PreviousBundle {
  return { dir, read: () => undefined };
}

/** A previous bundle made of the given files (e.g. the `files` of an earlier KeySet). */
export function previousFromFiles(files: readonly BundleFile[], dir = '/nonexistent/selfmail-bundle'): PreviousBundle {
  const map = new Map(files.map((f) => [f.path, Buffer.from(f.data)]));
  return { dir, read: (path) => map.get(path) };
}

/** Write bundle files under `dir` with their modes (for tools that read key files from disk). */
export async function writeBundleFiles(files: readonly BundleFile[], dir: string): Promise<void> {
  for (const f of files) {
    const p = join(dir, f.path);
    await mkdir(dirname(p), { recursive: true, mode: 0o700 });
    await writeFile(p, f.data, { mode: f.mode });
  }
}

/**
 * A previous bundle read from a folder on disk. Reads are synchronous in PreviousBundle, so the
 * paths wanted are loaded up front.
 */
export async function previousFromDir(dir: string, paths: readonly string[]): Promise<PreviousBundle> {
  const map = new Map<string, Buffer>();
  for (const p of paths) {
    try {
      map.set(p, await readFile(join(dir, p)));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
  }
  return { dir, read: (path) => map.get(path) };
}

const cache = new Map<string, Promise<KeySet>>();

/** A KeySet for `config` (default keysTestConfig()) generated once per test file and reused. */
export function fixtureKeys(config: Config = keysTestConfig(), now: Date = KEYS_NOW): Promise<KeySet> {
  const k = JSON.stringify([config, now.toISOString()]);
  let p = cache.get(k);
  if (!p) {
    p = ensureKeys(config, emptyPrevious(), now);
    cache.set(k, p);
  }
  return p;
}
