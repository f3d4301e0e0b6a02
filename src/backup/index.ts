/**
 * `selfmail backup`: the mailboxes, the bundle and the daemons' state, encrypted with age to the
 * user's recipients into a target (a folder of this host, or a machine of the user's over SFTP:
 * ./target.ts), incrementally: a file's bytes are read and sent only when the target lacks them.
 * Nothing here can read a backup back: the identity is not on this host.
 */
import { createHash, createHmac, randomBytes } from 'node:crypto';
import { chmod, lstat, mkdir, readFile, readdir, readlink, stat, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { dirname, join } from 'node:path';
import {
  CACHE_PATH,
  FORMAT_FILE,
  FORMAT_LINE,
  INDEX_KEY_PATH,
  SNAPSHOTS_DIR,
  SYSTEM_SOURCES,
  type Snapshot,
  type SnapshotEntry,
  missingObjects,
  objectPath,
  snapshotName,
} from './format.js';
import { STAT_CACHE } from '../bundle/write.js';
import { type StoredFile, type TargetStore, TargetError } from './target.js';

export { TargetError };

export interface BackupOptions {
  bundle: string;
  target: TargetStore;
  recipients: string[];
  /** Prefix of every system path (tests); '' on a real host. */
  root: string;
  now?: Date;
  progress?: (line: string) => void;
}

export interface BackupResult {
  snapshot: string;
  files: number;
  bytes: number;
  /** Objects written by this run, and their plaintext bytes. */
  added: number;
  addedBytes: number;
  /** Bytes this run wrote to the target (objects and snapshot, encrypted). */
  written: number;
  sources: { name: string; path: string; files: number }[];
}

interface CacheRow {
  size: number;
  mtimeMs: number;
  ino: number;
  sha256: string;
  object: string;
}

export async function encryptTo(recipients: readonly string[], data: Uint8Array): Promise<Uint8Array> {
  const age = await import('age-encryption');
  const e = new age.Encrypter();
  for (const r of recipients) e.addRecipient(r);
  return e.encrypt(data);
}

export async function decryptWith(identities: readonly string[], data: Uint8Array): Promise<Uint8Array> {
  const age = await import('age-encryption');
  const d = new age.Decrypter();
  for (const i of identities) d.addIdentity(i);
  return d.decrypt(data);
}

/** The host's key for object names: made once, 0600 in a 0700 folder. */
async function indexKey(root: string): Promise<Buffer> {
  const path = root + INDEX_KEY_PATH;
  const have = await readFile(path).catch(() => undefined);
  if (have && have.length === 32) return have;
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  await chmod(dirname(path), 0o700);
  const key = randomBytes(32);
  await writeFile(path, key, { mode: 0o600 });
  return key;
}

/** Every entry under `dir` (itself included), sorted, without following symlinks. */
async function walk(dir: string, rel = ''): Promise<{ rel: string; full: string }[]> {
  const full = rel ? join(dir, rel) : dir;
  const out = [{ rel, full }];
  const st = await lstat(full);
  if (!st.isDirectory()) return out;
  const names = (await readdir(full)).sort();
  for (const n of names) out.push(...(await walk(dir, rel ? `${rel}/${n}` : n)));
  return out;
}

/** Encrypted objects are sent in batches of about this many bytes (one SFTP connection each). */
const BATCH_BYTES = 32 * 2 ** 20;
const BATCH_FILES = 2000;

export async function backup(opts: BackupOptions): Promise<BackupResult> {
  const now = opts.now ?? new Date();
  const { root, target } = opts;
  const key = await indexKey(root);
  const cache: Record<string, CacheRow> = JSON.parse(await readFile(root + CACHE_PATH, 'utf8').catch(() => '{}')) as Record<string, CacheRow>;
  const nextCache: Record<string, CacheRow> = {};

  const sources: { name: string; path: string }[] = [{ name: 'bundle', path: opts.bundle }];
  for (const s of SYSTEM_SOURCES) if (await stat(root + s.path).catch(() => undefined)) sources.push({ name: s.name, path: s.path });

  const entries: SnapshotEntry[] = [];
  const fullOf = new Map<SnapshotEntry, string>();
  const counts = new Map<string, number>();
  for (const s of sources) {
    const base = s.name === 'bundle' ? s.path : root + s.path;
    for (const { rel, full } of await walk(base)) {
      // The index key and the cache are the host's own; the snapshot keeps the key so a restored
      // host goes on deduplicating, never the cache (it describes this disk).
      if (s.name === 'selfmail' && full === root + CACHE_PATH) continue;
      // Likewise the bundle's stat cache (it describes this disk's inodes and times).
      if (s.name === 'bundle' && rel === STAT_CACHE) continue;
      const st = await lstat(full);
      const common = { source: s.name, rel, mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, mtimeMs: Math.floor(st.mtimeMs) };
      if (st.isDirectory()) entries.push({ ...common, type: 'dir' });
      else if (st.isSymbolicLink()) entries.push({ ...common, type: 'symlink', target: await readlink(full) });
      else if (st.isFile()) {
        const id = `${s.name}/${rel}`;
        const c = cache[id];
        let sha256: string;
        let object: string;
        if (c && c.size === st.size && c.mtimeMs === Math.floor(st.mtimeMs) && c.ino === st.ino) ({ sha256, object } = c);
        else {
          const data = await readFile(full);
          sha256 = createHash('sha256').update(data).digest('hex');
          object = createHmac('sha256', key).update(data).digest('hex');
        }
        nextCache[id] = { size: st.size, mtimeMs: Math.floor(st.mtimeMs), ino: st.ino, sha256, object };
        const e: SnapshotEntry = { ...common, type: 'file', size: st.size, sha256, object };
        entries.push(e);
        fullOf.set(e, full);
        counts.set(s.name, (counts.get(s.name) ?? 0) + 1);
      }
    }
  }

  if ((await target.inspect()).format !== FORMAT_LINE) await target.store([{ path: FORMAT_FILE, data: new TextEncoder().encode(`${FORMAT_LINE}\n`) }]);
  const present = await target.objects();
  let pending: StoredFile[] = [];
  let pendingBytes = 0;
  const flush = async () => {
    await target.store(pending);
    pending = [];
    pendingBytes = 0;
  };
  let written = 0;
  let addedBytes = 0;
  let added = 0;
  // Rounds, because a file a daemon rewrites between the walk and the read (rspamd's counters do,
  // all the time) is kept as read then: its entry takes the new bytes' names, and what the old
  // name stood for may still be wanted by another file with those bytes.
  for (let round = 0; round < 3; round++) {
    const missing = missingObjects(entries, present);
    if (missing.length === 0) break;
    let i = 0;
    for (const e of missing) {
      i++;
      const data = await readFile(fullOf.get(e)!);
      const object = createHmac('sha256', key).update(data).digest('hex');
      if (object !== e.object) {
        Object.assign(e, { object, sha256: createHash('sha256').update(data).digest('hex'), size: data.length });
        delete nextCache[`${e.source}/${e.rel}`];
        if (present.has(object)) continue;
      }
      const sealed = await encryptTo(opts.recipients, data);
      pending.push({ path: objectPath(object), data: sealed });
      pendingBytes += sealed.length;
      if (pendingBytes >= BATCH_BYTES || pending.length >= BATCH_FILES) await flush();
      present.add(object);
      written += sealed.length;
      addedBytes += data.length;
      added++;
      if (i % 50 === 0) opts.progress?.(`[${i}/${missing.length}] objects written`);
    }
    await flush();
  }
  // A file still changing after three reads is left to the next run rather than listed without its bytes.
  const kept = entries.filter((e) => e.type !== 'file' || present.has(e.object!));
  entries.length = 0;
  entries.push(...kept);
  const snapshot: Snapshot = { format: 1, created: now.toISOString(), hostname: hostname(), sources, entries };
  // One snapshot per second: a second run within it takes the next free second.
  const taken = new Set((await target.snapshots()).map((s) => s.name));
  let at = now.getTime();
  while (taken.has(snapshotName(new Date(at)))) at += 1000;
  const name = snapshotName(new Date(at));
  const sealed = await encryptTo(opts.recipients, new TextEncoder().encode(JSON.stringify(snapshot)));
  await target.store([{ path: `${SNAPSHOTS_DIR}/${name}.age`, data: sealed }]);
  written += sealed.length;
  await mkdir(dirname(root + CACHE_PATH), { recursive: true, mode: 0o700 });
  await writeFile(root + CACHE_PATH, JSON.stringify(nextCache), { mode: 0o600 });

  const files = entries.filter((e) => e.type === 'file');
  return {
    snapshot: name,
    files: files.length,
    bytes: files.reduce((n, e) => n + (e.size ?? 0), 0),
    added,
    addedBytes,
    written,
    sources: sources.map((s) => ({ ...s, files: counts.get(s.name) ?? 0 })),
  };
}

export interface SnapshotListing {
  name: string;
  created: string;
  /** Encrypted size of the snapshot document (what the target's owner sees too). */
  size: number;
}

/** The snapshots a target holds, oldest first: names, times and sizes, readable without the identity. */
export async function listSnapshots(target: TargetStore): Promise<SnapshotListing[]> {
  return (await target.snapshots()).map(({ name: n, size }) => ({
    name: n,
    created: `${n.slice(0, 4)}-${n.slice(4, 6)}-${n.slice(6, 8)}T${n.slice(9, 11)}:${n.slice(11, 13)}:${n.slice(13, 15)}Z`,
    size,
  }));
}
