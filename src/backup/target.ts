/**
 * Where a backup is kept, behind one small interface: a folder of this host (an attached disk), or
 * a folder on a machine of the user's, reached with OpenSSH's own `sftp` in batch mode (./sftp.ts).
 * Every file is written under a temporary name and renamed once complete, so a run that breaks
 * off leaves the earlier backups as they were.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, open, readFile, readdir, rename, rm, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { FORMAT_FILE, OBJECTS_DIR, SNAPSHOTS_DIR, SNAPSHOT_NAME_RE, type TargetSpec, targetText } from './format.js';

/** The target is full, unreachable, or broke mid-run: what was there stays. */
export class TargetError extends Error {}

export interface StoredFile {
  /** Relative to the target: `objects/ab/<hex>.age`, `snapshots/<name>.age`, `FORMAT`. */
  path: string;
  data: Uint8Array;
}

export interface TargetStore {
  /** The target as messages name it: the folder, or sftp://USER@HOST/PATH. */
  readonly label: string;
  /** The FORMAT file's text (trimmed; undefined when absent) and how many entries the folder holds. */
  inspect(): Promise<{ format: string | undefined; entries: number }>;
  /** The objects the target holds (names without `.age`). */
  objects(): Promise<Set<string>>;
  /** The snapshots the target holds, oldest first, with their (encrypted) sizes. */
  snapshots(): Promise<{ name: string; size: number }[]>;
  /** Read these files; a missing one is absent from the answer. */
  fetch(paths: readonly string[]): Promise<Map<string, Uint8Array>>;
  /** Write these files, each complete under its name or not there at all. */
  store(files: readonly StoredFile[]): Promise<void>;
  close(): Promise<void>;
}

/** Why a write to a local folder failed, in the user's words. */
function writeFailure(err: NodeJS.ErrnoException, path: string): TargetError {
  const why = err.code === 'ENOSPC' ? 'the backup target is full' : err.code === 'EDQUOT' ? 'the backup target is over its quota' : `writing to the backup target failed (${err.code ?? err.message})`;
  return new TargetError(`${why} while writing ${path}; nothing of the earlier backups was touched, and this run wrote no snapshot`);
}

/** Snapshot names from a folder listing, sorted. */
export function snapshotNames(files: readonly string[]): string[] {
  return files
    .filter((f) => f.endsWith('.age') && SNAPSHOT_NAME_RE.test(f.slice(0, -4)))
    .map((f) => f.slice(0, -4))
    .sort();
}

/** A folder of this host: an attached disk, or a machine of the user's mounted here. */
export class DirTarget implements TargetStore {
  readonly label: string;
  constructor(readonly dir: string) {
    this.label = dir;
  }

  async inspect() {
    const format = (await readFile(join(this.dir, FORMAT_FILE), 'utf8').catch(() => undefined))?.trim();
    return { format, entries: (await readdir(this.dir)).length };
  }

  async objects() {
    const present = new Set<string>();
    const top = join(this.dir, OBJECTS_DIR);
    for (const d of await readdir(top).catch(() => [] as string[])) {
      for (const f of await readdir(join(top, d)).catch(() => [] as string[])) if (f.endsWith('.age')) present.add(f.slice(0, -4));
    }
    return present;
  }

  async snapshots() {
    const dir = join(this.dir, SNAPSHOTS_DIR);
    const out: { name: string; size: number }[] = [];
    for (const name of snapshotNames(await readdir(dir).catch(() => [] as string[]))) out.push({ name, size: (await stat(join(dir, `${name}.age`))).size });
    return out;
  }

  async fetch(paths: readonly string[]) {
    const out = new Map<string, Uint8Array>();
    for (const p of paths) {
      const data = await readFile(join(this.dir, p)).catch(() => undefined);
      if (data) out.set(p, data);
    }
    return out;
  }

  async store(files: readonly StoredFile[]) {
    for (const f of files) {
      const full = join(this.dir, f.path);
      const tmp = `${full}.tmp-${randomBytes(4).toString('hex')}`;
      try {
        await mkdir(dirname(full), { recursive: true });
        const fh = await open(tmp, 'w', 0o644);
        try {
          await fh.writeFile(f.data);
          await fh.sync();
        } finally {
          await fh.close();
        }
        await rename(tmp, full);
      } catch (err) {
        await rm(tmp, { force: true }).catch(() => undefined);
        throw writeFailure(err as NodeJS.ErrnoException, f.path);
      }
    }
  }

  async close() {}
}

/** How this process reaches an SFTP target. */
export interface SftpAccess {
  /**
   * The mail host's own backup key and the one host key it accepts (`selfmail backup`); without
   * them, the user's own SSH setup (their key, their known_hosts: `selfmail restore` on their device).
   */
  hostKeyLine?: string;
  keyFile?: string;
}

/** The store for a target spec. */
export async function openTarget(spec: TargetSpec, access: SftpAccess = {}): Promise<TargetStore> {
  if (spec.kind === 'dir') return new DirTarget(spec.path);
  const { SftpTarget } = await import('./sftp.js');
  return SftpTarget.open(spec, access);
}

export { targetText };
