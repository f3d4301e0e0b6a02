/**
 * Fixtures for the mail tests: a resolved config, a KeySet from the real key store, and a
 * rehearsal-style profile under a temporary root.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Profile } from '../../src/bundle/layout.js';
import type { BuildContext } from '../../src/bundle/types.js';
import { sourced } from '../../src/config/raw.js';
import { resolveConfig } from '../../src/config/schema.js';
import type { Config, Email } from '../../src/config/types.js';
import { ensureKeys } from '../../src/keys/store.js';
import type { KeySet } from '../../src/keys/types.js';

/** The run's clock in the mail tests. */
export const KEYS_NOW = new Date('2026-01-15T12:00:00Z');

/** A two-domain config with two mailboxes, resolved by the real schema. */
export function mailTestConfig(): Config {
  return resolveConfig(
    sourced(
      {
        domains: ['example.org', 'example.net'],
        hostname: 'mail.example.org',
        ipv4: '192.0.2.25',
        ipv6: '2001:db8::25',
        users: ['alice@example.org', 'bob@example.net'],
        target: 'debian-12',
      },
      'flag',
    ),
  ).config;
}

/** The real key store's keys for `config` on a first run (DKIM RSA + Ed25519, TLS with a bootstrap certificate). */
export async function mailTestKeySet(config: Config): Promise<KeySet> {
  return ensureKeys(config, { dir: '/nonexistent/selfmail-bundle', read: () => undefined }, KEYS_NOW);
}

/** A rehearsal-style profile under `root`: loopback address, high ports, nobody/nogroup. */
export function mailTestProfile(root: string): Profile {
  return {
    kind: 'rehearsal',
    root,
    listen: { ipv4: '127.0.0.2' },
    ports: { smtp: 20025, submission: 20587, submissions: 20465, imaps: 20993, dns: 20053, http: 20080, https: 20443, spam: 21332, redis: 21379, managesieve: 24190, localSubmission: 20588 },
    mailUser: { name: 'nobody', group: 'nogroup' },
  };
}

/** A BuildContext for the mail modules under a fresh temporary root; `cleanup` removes it. */
export async function mailTestContext(
  hashes: Map<Email, string> = new Map(),
): Promise<{ ctx: BuildContext; root: string; cleanup: () => Promise<void> }> {
  const root = await mkdtemp(join(tmpdir(), 'selfmail-mail-'));
  const config = mailTestConfig();
  const keys = await mailTestKeySet(config);
  const ctx: BuildContext = {
    config,
    keys,
    previous: { dir: join(root, 'bundle'), read: () => undefined },
    profile: mailTestProfile(root),
    now: KEYS_NOW,
    passwordHashes: hashes,
    warnings: [],
    mtaSts: 'testing',
  };
  return { ctx, root, cleanup: () => rm(root, { recursive: true, force: true }) };
}
