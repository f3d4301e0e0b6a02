/**
 * Reading a bundle from disk for `apply` and `verify`: MANIFEST.sha256 is the list of what the
 * bundle holds, and a bundle whose files disagree with it is refused before anything is touched.
 */
import { createHash } from 'node:crypto';
import { lstat, readFile, readdir } from 'node:fs/promises';
import { join, posix } from 'node:path';
import { InputError } from '../errors.js';
import { STAT_CACHE } from '../bundle/write.js';

export const MANIFEST = 'MANIFEST.sha256';

/** One line of MANIFEST.sha256. */
export interface ManifestEntry {
  path: string;
  /** Lower-case hex SHA-256. */
  sha256: string;
}

/** One file of a bundle on disk, checked against the manifest. */
export interface BundleEntry {
  /** Bundle-relative path with forward slashes. */
  path: string;
  data: Buffer;
  /** Permission bits of the file in the bundle (0o600 for secrets). */
  mode: number;
  sha256: string;
}

export function sha256Hex(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/** A manifest path must stay inside the bundle: relative, normalised, no `..`, no empty parts. */
function safeBundlePath(p: string): boolean {
  if (p === '' || p.startsWith('/') || p.includes('\\') || p.includes('\0')) return false;
  if (posix.normalize(p) !== p) return false;
  return p.split('/').every((part) => part !== '' && part !== '.' && part !== '..');
}

/**
 * Parse `sha256sum -c` text (`<hex>  <path>`, or `<hex> *<path>` for binary mode). Pure.
 * Throws InputError naming every bad line.
 */
export function parseManifest(text: string, field = '--bundle'): ManifestEntry[] {
  const entries: ManifestEntry[] = [];
  const issues: string[] = [];
  const seen = new Set<string>();
  text.split('\n').forEach((line, i) => {
    if (line.trim() === '') return;
    const m = /^([0-9a-fA-F]{64}) [ *](.+)$/.exec(line);
    if (!m || !m[1] || !m[2]) {
      issues.push(`${MANIFEST} line ${i + 1} is not "<sha256>  <path>"`);
      return;
    }
    const path = m[2];
    if (!safeBundlePath(path)) {
      issues.push(`${MANIFEST} line ${i + 1} names a path outside the bundle: ${JSON.stringify(path)}`);
      return;
    }
    if (seen.has(path)) {
      issues.push(`${MANIFEST} lists ${path} twice`);
      return;
    }
    seen.add(path);
    entries.push({ path, sha256: m[1].toLowerCase() });
  });
  if (issues.length > 0) throw new InputError(issues.map((message) => ({ field, message })));
  return entries.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

/** Every regular file under `dir`, bundle-relative, sorted; symlinks and other types are reported. */
async function listFiles(dir: string, prefix = ''): Promise<{ files: string[]; odd: string[] }> {
  const files: string[] = [];
  const odd: string[] = [];
  const entries = await readdir(join(dir, prefix), { withFileTypes: true });
  for (const e of entries) {
    const rel = prefix === '' ? e.name : `${prefix}/${e.name}`;
    if (rel === STAT_CACHE) continue;
    if (e.isDirectory()) {
      const sub = await listFiles(dir, rel);
      files.push(...sub.files);
      odd.push(...sub.odd);
    } else if (e.isFile()) files.push(rel);
    else odd.push(rel);
  }
  return { files: files.sort(), odd: odd.sort() };
}

/**
 * Read the bundle at `dir` and check it against its MANIFEST.sha256: every listed file present
 * with that hash, and no unlisted file (a file nobody hashed cannot be verified later). Returns
 * the entries in manifest order plus the manifest itself. Throws InputError listing every mismatch.
 */
export async function readBundle(dir: string): Promise<{ entries: BundleEntry[]; manifest: BundleEntry }> {
  const field = '--bundle';
  let manifestData: Buffer;
  try {
    manifestData = await readFile(join(dir, MANIFEST));
  } catch (err) {
    const why = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'has no' : 'cannot read its';
    throw new InputError([{ field, message: `${dir} ${why} ${MANIFEST}: is it a bundle written by selfmail init?` }]);
  }
  const listed = parseManifest(manifestData.toString('utf8'), field);
  const { files, odd } = await listFiles(dir);
  const issues: string[] = odd.map((p) => `${p} is not a regular file (symlinks are not installed)`);
  const listedSet = new Set(listed.map((e) => e.path));
  for (const f of files) {
    if (f !== MANIFEST && !listedSet.has(f)) issues.push(`${f} is not listed in ${MANIFEST}`);
  }
  const entries: BundleEntry[] = [];
  for (const e of listed) {
    const full = join(dir, e.path);
    let st;
    try {
      st = await lstat(full);
    } catch {
      issues.push(`${e.path} is listed in ${MANIFEST} but missing`);
      continue;
    }
    if (!st.isFile()) {
      issues.push(`${e.path} is not a regular file`);
      continue;
    }
    const data = await readFile(full);
    const sha256 = sha256Hex(data);
    if (sha256 !== e.sha256) {
      issues.push(`${e.path} does not match ${MANIFEST} (changed after the bundle was written)`);
      continue;
    }
    entries.push({ path: e.path, data, mode: st.mode & 0o7777, sha256 });
  }
  if (issues.length > 0) {
    throw new InputError(issues.map((message) => ({ field, message: `bundle refused: ${message}` })));
  }
  const mst = await lstat(join(dir, MANIFEST));
  return {
    entries,
    manifest: { path: MANIFEST, data: manifestData, mode: mst.mode & 0o7777, sha256: sha256Hex(manifestData) },
  };
}
