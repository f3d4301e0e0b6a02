/**
 * Bundles for the rehearsal tests. The real CLI (`selfmail init`) makes them when it can; until
 * `init` runs end to end on every branch, `writeTestBundle` builds one through the same pipeline
 * (config → keys → hashes → services → atomic writer) without the real-tool checks.
 */
import type { RawInput } from '../../src/config/raw.js';
import { sourced } from '../../src/config/raw.js';
import type { Email } from '../../src/config/types.js';

export const DEMO_INPUT: RawInput = {
  domains: ['example.org'],
  hostname: 'mail.example.org',
  ipv4: '192.0.2.25',
  ipv6: '2001:db8::25',
  users: ['demo@example.org'],
  adminSshFrom: ['198.51.100.0/24'],
};

export const TWO_DOMAIN_INPUT: RawInput = {
  domains: ['example.org', 'example.net'],
  ipv4: '192.0.2.25',
  users: ['alice@example.org', 'bob@example.net'],
};

/** Write a bundle for `values` with `passwords` (address → cleartext) into `dir`. */
export async function writeTestBundle(dir: string, values: RawInput, passwords: Record<string, string>, now = new Date()): Promise<void> {
  const { resolveConfig } = await import('../../src/config/schema.js');
  const { buildBundle } = await import('../../src/pipeline.js');
  const { readBundle, writeBundle } = await import('../../src/bundle/write.js');
  const { config, warnings } = resolveConfig(sourced(values, 'flag'));
  const disk = await readBundle(dir);
  const previous = { dir, read: (p: string) => disk.files.get(p)?.data };
  const pw = new Map(Object.entries(passwords).map(([k, v]) => [k as Email, v]));
  const built = await buildBundle({ config, passwords: pw, previous, now, warnings });
  await writeBundle(disk, built.files);
}
