/**
 * Writing a bundle safely. The new bundle is built in a temporary sibling folder and renamed into
 * place, so a failure or Ctrl-C at any point leaves the previous bundle exactly as it was. Files
 * whose bytes and mode did not change are hard-linked from the previous bundle, so they keep
 * their inode and mtime; when nothing changed at all, nothing on disk is touched.
 */
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, linkSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import * as fs from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { InputError, InterruptedError } from '../errors.js';
import type { BundleFile } from './types.js';

export const MANIFEST = 'MANIFEST.sha256';
/** The quick path's record of file stats (bundle/state.ts): beside the bundle's files, never one of them. */
export const STAT_CACHE = '.selfmail.stat';

/** The bundle as found on disk: every regular file with its bytes and mode. */
export interface DiskBundle {
  dir: string;
  exists: boolean;
  files: Map<string, { data: Buffer; mode: number }>;
}

/**
 * Read every regular file under `dir` (empty when the folder does not exist). Sync on purpose: a
 * thousand small reads take tens of milliseconds in a loop and hundreds through the thread pool.
 */
export async function readBundle(dir: string): Promise<DiskBundle> {
  const files = new Map<string, { data: Buffer; mode: number }>();
  let exists = true;
  try {
    for (const e of readdirSync(dir, { recursive: true, withFileTypes: true })) {
      if (!e.isFile()) continue;
      const abs = join(e.parentPath, e.name);
      const rel = abs.slice(dir.length + 1).split('\\').join('/');
      if (rel === STAT_CACHE) continue;
      files.set(rel, { data: readFileSync(abs), mode: statSync(abs).mode & 0o777 });
    }
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'EACCES' || e.code === 'EPERM') {
      throw new InputError([{ field: '--out', message: `cannot read ${e.path ?? dir}: permission denied; the bundle holds private keys readable only by the user who wrote it (root)` }]);
    }
    if (e.code === 'ENOTDIR') throw new InputError([{ field: '--out', message: `${dir} is a file, not a folder` }]);
    if (e.code !== 'ENOENT') throw err;
    exists = false;
    files.clear();
  }
  return { dir, exists, files };
}

/** `sha256sum -c` compatible manifest of `files` (sorted by path). */
export function manifestOf(files: readonly BundleFile[]): BundleFile {
  const lines = [...files]
    .filter((f) => f.path !== MANIFEST)
    .sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))
    .map((f) => `${createHash('sha256').update(f.data).digest('hex')}  ${f.path}\n`);
  return { path: MANIFEST, data: Buffer.from(lines.join('')), mode: 0o644, role: 'SHA-256 of every file in the bundle' };
}

/** Paths listed in a manifest: the files selfmail wrote last time (anything else is the user's). */
export function manifestPaths(manifest: Buffer | undefined): Set<string> {
  const out = new Set<string>();
  for (const line of (manifest?.toString('utf8') ?? '').split('\n')) {
    const m = /^[0-9a-f]{64} {2}(.+)$/.exec(line);
    if (m) out.add(m[1]!);
  }
  return out;
}

export interface WriteResult {
  /** Paths written with new bytes or a new mode. */
  changed: string[];
  /** Paths selfmail wrote before and no longer produces. */
  removed: string[];
  /** Files found in the folder that selfmail did not write; kept as they are. */
  foreign: string[];
}

export interface WriteHooks {
  /** Called before each file is written; tests throw from here to inject a failure. */
  beforeWrite?: (path: string) => void | Promise<void>;
  /** Polled between files; true makes the write stop with InterruptedError. */
  interrupted?: () => boolean;
}

/** Folders whose contents are secret get 0700; the rest 0755. */
function dirMode(rel: string): number {
  return rel === 'keys' || rel.startsWith('keys/') ? 0o700 : 0o755;
}

/**
 * Make `dir` hold exactly `files` (plus `MANIFEST.sha256`, computed here, and any foreign files
 * found there). Atomic: either the new bundle is in place, or the old one is untouched.
 */
export async function writeBundle(
  previous: DiskBundle,
  files: readonly BundleFile[],
  hooks: WriteHooks = {},
): Promise<WriteResult> {
  const dir = previous.dir;
  const ours = manifestPaths(previous.files.get(MANIFEST)?.data);
  const wanted = new Map(files.map((f) => [f.path, f]));
  const foreign: string[] = [];
  const removed: string[] = [];
  for (const [path, old] of previous.files) {
    if (path === MANIFEST || wanted.has(path)) continue;
    if (ours.has(path)) removed.push(path);
    else {
      foreign.push(path);
      wanted.set(path, { path, data: old.data, mode: old.mode, role: 'not written by selfmail; kept as found' });
    }
  }
  const all = [...wanted.values()];
  // The manifest lists what selfmail wrote; files the user put there stay theirs on later runs.
  const foreignSet = new Set(foreign);
  all.push(manifestOf(all.filter((f) => !foreignSet.has(f.path))));

  const changed = all
    .filter((f) => {
      const old = previous.files.get(f.path);
      return !old || old.mode !== f.mode || !old.data.equals(f.data);
    })
    .map((f) => f.path);
  if (previous.exists && changed.length === 0 && removed.length === 0) return { changed, removed, foreign };

  const suffix = `${process.pid}-${randomBytes(4).toString('hex')}`;
  const parent = dirname(dir);
  const tmp = join(parent, `.${basename(dir)}.selfmail-new-${suffix}`);
  const old = join(parent, `.${basename(dir)}.selfmail-old-${suffix}`);
  const changedSet = new Set(changed);
  await fs.mkdir(parent, { recursive: true });
  await fs.mkdir(tmp, { mode: 0o755 });
  let swapped = false;
  try {
    const made = new Set<string>();
    for (const f of all.sort((a, b) => (a.path < b.path ? -1 : 1))) {
      if (hooks.interrupted?.()) throw new InterruptedError();
      // Folders and links are sync calls: a thousand of them take milliseconds in a loop.
      const parts = f.path.split('/');
      for (let i = 1; i < parts.length; i++) {
        const rel = parts.slice(0, i).join('/');
        if (made.has(rel)) continue;
        mkdirSync(join(tmp, rel), { mode: dirMode(rel) });
        chmodSync(join(tmp, rel), dirMode(rel));
        made.add(rel);
      }
      const target = join(tmp, f.path);
      if (!changedSet.has(f.path)) {
        // Same bytes and mode: share the inode, so the mtime stays what it was.
        linkSync(join(dir, f.path), target);
        continue;
      }
      await hooks.beforeWrite?.(f.path);
      const handle = await fs.open(target, 'wx', f.mode);
      try {
        await handle.writeFile(f.data);
        await handle.chmod(f.mode);
        await handle.sync();
      } finally {
        await handle.close();
      }
    }
    // Let a pending Ctrl-C be seen (the links above are sync) before the one step that swaps.
    await new Promise((r) => setImmediate(r));
    if (hooks.interrupted?.()) throw new InterruptedError();
    if (previous.exists) {
      await fs.rename(dir, old);
      try {
        await fs.rename(tmp, dir);
      } catch (err) {
        await fs.rename(old, dir);
        throw err;
      }
      swapped = true;
      rmSync(old, { recursive: true, force: true });
    } else {
      await fs.rename(tmp, dir);
      swapped = true;
    }
  } finally {
    if (!swapped) await fs.rm(tmp, { recursive: true, force: true });
  }
  return { changed: changed.sort(), removed: removed.sort(), foreign: foreign.sort() };
}
