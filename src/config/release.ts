/**
 * The Debian releases selfmail writes for. A bundle is made for one release: the software differs
 * between them (Dovecot 2.4 on Debian 13 reads a new configuration syntax), so the bundle records
 * its release and `apply` installs it only on a host of that release.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

export type Release = 'debian-12' | 'debian-13';

export interface ReleaseInfo {
  id: Release;
  /** As a person says it: `Debian 13 "trixie"`. */
  name: string;
  /** The os-release VERSION_ID of the release. */
  versionId: string;
  /** Dovecot's major version there: 2.4 reads another configuration syntax than 2.3. */
  dovecot: '2.3' | '2.4';
}

/** Newest first: the first is what a person installing a mail server today starts from. */
export const RELEASES: readonly ReleaseInfo[] = [
  { id: 'debian-13', name: 'Debian 13 "trixie"', versionId: '13', dovecot: '2.4' },
  { id: 'debian-12', name: 'Debian 12 "bookworm"', versionId: '12', dovecot: '2.3' },
];

/** `debian-13 (Debian 13 "trixie") and debian-12 (Debian 12 "bookworm")`, for messages. */
export const SUPPORTED_TEXT = RELEASES.map((r) => `${r.id} (${r.name})`).join(' and ');

export function releaseInfo(id: Release): ReleaseInfo {
  const r = RELEASES.find((x) => x.id === id);
  if (!r) throw new Error(`unknown release ${id}`);
  return r;
}

/** A `--target` value → a release, or the rule it breaks. Pure. */
export function parseRelease(text: string): { ok: true; value: Release } | { ok: false; error: string } {
  const id = text.trim().toLowerCase();
  const r = RELEASES.find((x) => x.id === id);
  if (r) return { ok: true, value: r.id };
  return { ok: false, error: `is not a supported release: selfmail writes for ${SUPPORTED_TEXT}` };
}

export interface HostRelease {
  /** Undefined when the system is not one of the supported releases. */
  release?: Release;
  /** What the system says it is (`Debian GNU/Linux 13 (trixie)`, `Ubuntu 24.04.1 LTS`), for messages. */
  description: string;
}

/** Read the key=value lines of an os-release file (values unquoted). Pure. */
export function parseOsRelease(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split('\n')) {
    const m = /^([A-Z0-9_]+)=(.*)$/.exec(line.trim());
    if (!m || !m[1]) continue;
    let v = m[2] ?? '';
    if ((v.startsWith('"') && v.endsWith('"')) || (v.startsWith("'") && v.endsWith("'"))) v = v.slice(1, -1);
    out.set(m[1], v.replace(/\\(["\\$`])/g, '$1'));
  }
  return out;
}

/** The supported release an os-release text describes, if any. Pure. */
export function releaseOfOsRelease(text: string): HostRelease {
  const f = parseOsRelease(text);
  const description = f.get('PRETTY_NAME') ?? ([f.get('NAME'), f.get('VERSION')].filter(Boolean).join(' ') || 'an unknown system');
  if (f.get('ID') !== 'debian') return { description };
  const r = RELEASES.find((x) => x.versionId === f.get('VERSION_ID'));
  return r ? { release: r.id, description } : { description };
}

/** The release of the system under `root` (`/etc/os-release`, else `/usr/lib/os-release`). */
export async function hostRelease(root = '/'): Promise<HostRelease> {
  for (const p of ['etc/os-release', 'usr/lib/os-release']) {
    try {
      return releaseOfOsRelease(await readFile(join(root, p), 'utf8'));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }
  return { description: 'a system without /etc/os-release' };
}
