/**
 * What the last run was built from, so that a re-run with nothing to change can stop early.
 *
 * `selfmail.state.json` records the build of selfmail that wrote the bundle, a hash of the
 * selfmail.yaml it was built from, until when nothing time-bound needs redoing (the earliest
 * RRSIG nearing expiry, the bootstrap certificate nearing renewal), each file's mode and role, and
 * the configuration's warnings, and the MTA-STS mode (which follows the certificate installed on
 * the host). When a later `init` brings no new input, runs the same build, and
 * every file still matches MANIFEST.sha256 and its mode, the result of a full run is known in
 * advance: nothing would change. Everything here is derived from the bundle's own bytes, so the
 * file is as deterministic as the rest of the bundle. The state is authenticated (`mac`): the
 * quick path trusts nothing that a hand edit could have made consistent.
 */
import { createHash, createHmac, X509Certificate } from 'node:crypto';
import { lstatSync, readFileSync, readdirSync } from 'node:fs';
import { readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { RESIGN_MARGIN_DAYS, earliestExpiry } from '../dns/sign.js';
import { RENEW_BEFORE_DAYS } from '../keys/tls.js';
import type { BundleFile } from './types.js';
import type { MtaStsMode } from '../web/mtasts.js';
import { MANIFEST, STAT_CACHE } from './write.js';

export const STATE_PATH = 'selfmail.state.json';
const DAY = 86_400_000;

export interface BundleState {
  build: string;
  input: string;
  validUntil: string;
  /** Every file this run wrote, with its mode, role and SHA-256 (the manifest is only a copy). */
  files: Array<[path: string, mode: string, role: string, sha256: string]>;
  warnings: string[];
  /** The MTA-STS mode the bundle publishes: it follows the certificate installed on the host. */
  mtaSts: MtaStsMode;
  /** Services whose check could not run on the machine that wrote the bundle (apply checks them). */
  unchecked: string[];
  /** The SSHFP records published, from the host's SSH host keys (absent: none): a new host key changes them. */
  sshfp?: string[];
  /**
   * HMAC-SHA256 of everything above, keyed with a digest of the bundle's TLS private key: a hand
   * edit that also rewrites MANIFEST.sha256, or this file, cannot make a re-run skip the work.
   */
  mac: string;
}

/** The key of the state's MAC: derived from a secret only the bundle holds (keys/tls/key.pem, 0600). */
export const STATE_KEY_SOURCE = 'keys/tls/key.pem';

function stateMac(state: Omit<BundleState, 'mac'>, secret: Buffer): string {
  const key = createHash('sha256').update('selfmail state v1\0').update(secret).digest();
  return createHmac('sha256', key).update(JSON.stringify(state)).digest('hex');
}

/** The id of this build of selfmail (written by scripts/bundle.mjs); 'dev' when run from sources. */
export async function buildId(): Promise<string> {
  try {
    return (await readFile(new URL('../build-id.txt', import.meta.url), 'utf8')).trim();
  } catch {
    return 'dev';
  }
}

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

/**
 * The state file for a freshly built bundle. `validUntil` is when a run would first do something
 * because of the date alone: re-sign a zone (RESIGN_MARGIN_DAYS before its earliest RRSIG
 * expires), renew the bootstrap certificate (RENEW_BEFORE_DAYS before it expires), or withdraw
 * the TLSA of a TLS key rotated out, or take the next step of a DNSSEC key's schedule (publish,
 * sign, leave) after `now`, the build's clock.
 */
export function stateFile(files: readonly BundleFile[], build: string, warnings: readonly string[], mtaSts: MtaStsMode, unchecked: readonly string[] = [], sshfp: readonly string[] = [], now?: Date): BundleFile {
  let until = Number.POSITIVE_INFINITY;
  for (const f of files) {
    if (f.path.startsWith('dns/') && f.path.endsWith('.zone.signed')) {
      const exp = earliestExpiry(f.data.toString('utf8'));
      until = Math.min(until, exp ? exp.getTime() - RESIGN_MARGIN_DAYS * DAY : 0);
    } else if (f.path === 'keys/tls/cert.pem') {
      until = Math.min(until, new Date(new X509Certificate(f.data).validTo).getTime() - RENEW_BEFORE_DAYS * DAY);
    } else if (f.path === 'keys/keys.json') {
      const meta = JSON.parse(f.data.toString('utf8')) as {
        tls?: { retiring?: { until: string } };
        dnssec?: Record<string, { keys?: { publish: string; activate: string; remove?: string }[] }>;
      };
      // A TLS key rotated out: its TLSA is withdrawn by the first run after its time.
      const retiring = meta.tls?.retiring;
      if (retiring) until = Math.min(until, Date.parse(retiring.until));
      for (const z of Object.values(meta.dnssec ?? {})) {
        for (const k of z.keys ?? []) {
          for (const t of [k.publish, k.activate, k.remove]) {
            const ms = t === undefined ? NaN : Date.parse(t);
            if (now !== undefined && ms > now.getTime()) until = Math.min(until, ms);
          }
        }
      }
    }
  }
  const yaml = files.find((f) => f.path === 'selfmail.yaml');
  const secret = files.find((f) => f.path === STATE_KEY_SOURCE)?.data ?? Buffer.alloc(0);
  const body: Omit<BundleState, 'mac'> = {
    build,
    input: yaml ? sha256(yaml.data) : '',
    validUntil: Number.isFinite(until) ? new Date(until).toISOString() : '9999-12-31T00:00:00.000Z',
    files: files
      .filter((f) => f.path !== STATE_PATH)
      .map((f) => [f.path, f.mode.toString(8), f.role, sha256(f.data)] as [string, string, string, string])
      .sort((a, b) => (a[0] < b[0] ? -1 : 1)),
    warnings: [...warnings],
    mtaSts,
    unchecked: [...unchecked],
    ...(sshfp.length > 0 ? { sshfp: [...sshfp] } : {}),
  };
  const state: BundleState = { ...body, mac: stateMac(body, secret) };
  return { path: STATE_PATH, data: Buffer.from(`${JSON.stringify(state, null, 1)}\n`), mode: 0o644, role: 'what this bundle was built from (lets an unchanged re-run stop early)' };
}

/** The last run's build and what it could not check, read back without trusting more than that. */
export function previousState(raw: Buffer | undefined): { build: string; unchecked: string[] } | undefined {
  if (!raw) return undefined;
  try {
    const s = JSON.parse(raw.toString('utf8')) as Partial<BundleState>;
    if (typeof s.build !== 'string') return undefined;
    return { build: s.build, unchecked: Array.isArray(s.unchecked) ? s.unchecked.filter((u): u is string => typeof u === 'string') : [] };
  } catch {
    return undefined;
  }
}

/** What a caller needs of the small files the state is checked against. */
type Small = (path: string) => Buffer | undefined;

/**
 * The recorded state when it is authentic, of this build, before `validUntil`, publishing the
 * MTA-STS mode the host's certificate calls for, and MANIFEST.sha256 lists exactly its files with
 * its hashes. Says nothing yet of the other files' bytes: the callers check those.
 */
/** What this machine would publish for SSH host keys, given the bundle's selfmail.yaml (none by default). */
export type SshfpOf = (yaml: Buffer) => readonly string[];
const NO_SSHFP: SshfpOf = () => [];

function trustedState(read: Small, build: string, now: Date, mtaSts: (bundleCert: Buffer) => MtaStsMode, sshfp: SshfpOf): BundleState | undefined {
  if (build === 'dev') return undefined;
  const raw = read(STATE_PATH);
  const yaml = read('selfmail.yaml');
  const manifest = read(MANIFEST);
  if (!raw || !yaml || !manifest) return undefined;
  let state: BundleState;
  try {
    state = JSON.parse(raw.toString('utf8')) as BundleState;
  } catch {
    return undefined;
  }
  const { mac, ...body } = state;
  const secret = read(STATE_KEY_SOURCE);
  if (!secret || typeof mac !== 'string' || mac !== stateMac(body, secret)) return undefined;
  if (state.build !== build || state.input !== sha256(yaml)) return undefined;
  if (!(now.getTime() < Date.parse(state.validUntil))) return undefined;
  // A certificate installed (or gone) on the host since changes what the bundle publishes.
  const cert = read('keys/tls/cert.pem');
  try {
    if (state.mtaSts !== (cert ? mtaSts(cert) : 'testing')) return undefined;
  } catch {
    return undefined;
  }
  // So do new SSH host keys on the mail host (SSHFP).
  if ((state.sshfp ?? []).join(',') !== sshfp(yaml).join(',')) return undefined;
  const lines = new Map<string, string>();
  for (const line of manifest.toString('utf8').split('\n')) {
    const m = /^([0-9a-f]{64}) {2}(.+)$/.exec(line);
    if (m) lines.set(m[2]!, m[1]!);
  }
  if (lines.size !== state.files.length + 1 || lines.get(STATE_PATH) !== sha256(raw)) return undefined;
  for (const [path, , , hash] of state.files) if (lines.get(path) !== hash) return undefined;
  return state;
}

/**
 * The recorded state when `disk` (every file read) is exactly what the last run wrote, with the
 * same build, still before `validUntil`; undefined when a full run is needed.
 */
export function unchangedState(
  disk: { files: Map<string, { data: Buffer; mode: number }> },
  build: string,
  now: Date,
  mtaSts: (bundleCert: Buffer) => MtaStsMode,
  sshfp: SshfpOf = NO_SSHFP,
): BundleState | undefined {
  const state = trustedState((p) => disk.files.get(p)?.data, build, now, mtaSts, sshfp);
  if (!state) return undefined;
  for (const [path, mode, , hash] of state.files) {
    const f = disk.files.get(path);
    if (!f || f.mode.toString(8) !== mode || sha256(f.data) !== hash) return undefined;
  }
  return state;
}

/**
 * Beside the bundle's files, not one of them (not in MANIFEST.sha256, skipped by every reader):
 * each file's inode, size, mtime and ctime as the last write left them, MAC'd like the state and
 * bound to it. A file whose stat still matches has not been written since, so a re-run with
 * nothing asked reads a handful of small files and stats the rest, instead of hashing them all.
 * A file whose stat differs (a copy, `touch`, an edit) is hashed against the state as before.
 * ctime cannot be set from user space: an edit that restores size and mtime still shows.
 * (STAT_CACHE names it.)
 */
/** `dev:ino:size:mtimeMs:ctimeMs:mode` (mode in octal, last). */
type Stat = string;

interface StatCache {
  state: string;
  files: Record<string, Stat>;
  /** The bundle's folders below the top: one whose stat matches still lists what it listed. */
  dirs: Record<string, Stat>;
  mac: string;
}

function statMac(body: Omit<StatCache, 'mac'>, secret: Buffer): string {
  const key = createHash('sha256').update('selfmail stat v1\0').update(secret).digest();
  return createHmac('sha256', key).update(JSON.stringify(body)).digest('hex');
}

/** Sync on purpose: a thousand lstat calls take milliseconds in a loop, a hundred through the thread pool. */
function statOf(abs: string, kind: 'file' | 'dir' = 'file'): Stat | undefined {
  const st = lstatSync(abs, { throwIfNoEntry: false });
  if (!st || (kind === 'file' ? !st.isFile() : !st.isDirectory())) return undefined;
  // Milliseconds as a double keep a fraction of a microsecond at today's dates.
  return `${st.dev}:${st.ino}:${st.size}:${st.mtimeMs}:${st.ctimeMs}:${(st.mode & 0o777).toString(8)}`;
}

/** A small file's bytes, or undefined when it cannot be read (sync: the quick path reads few). */
function readSmall(abs: string): Buffer | undefined {
  try {
    return readFileSync(abs);
  } catch {
    return undefined;
  }
}

/** The mode at the end of a Stat. */
const modeOf = (s: Stat) => s.slice(s.lastIndexOf(':') + 1);

/** Files a file system stamps within this much of the clock (coarse kernel time) count as just written. */
const STAMP_MARGIN_MS = 20;

/**
 * Record the stats of the bundle's files as they are now (after a write). Waits, if a file was
 * stamped within STAMP_MARGIN_MS, until the clock has moved past it: a later write then always
 * shows in the ctime. Rewrites the cache only when its bytes change.
 */
export async function recordStats(dir: string): Promise<void> {
  const raw = await readFile(join(dir, STATE_PATH)).catch(() => undefined);
  const secret = await readFile(join(dir, STATE_KEY_SOURCE)).catch(() => undefined);
  if (!raw || !secret) return;
  let state: BundleState;
  try {
    state = JSON.parse(raw.toString('utf8')) as BundleState;
  } catch {
    return;
  }
  const paths = state.files.map(([p]) => p);
  const folders = [...new Set(paths.flatMap((p) => p.split('/').slice(0, -1).map((_, i, parts) => parts.slice(0, i + 1).join('/'))))].sort();
  const take = () => [...paths.map((p) => statOf(join(dir, p))), ...folders.map((d) => statOf(join(dir, d), 'dir'))];
  let stats = take();
  const newest = stats.reduce((m, s) => Math.max(m, s ? Number(s.split(':')[4]) : 0), 0);
  const wait = newest + STAMP_MARGIN_MS - Date.now();
  if (wait > 0) {
    await new Promise((r) => setTimeout(r, wait));
    stats = take();
  }
  const files: Record<string, Stat> = {};
  const dirs: Record<string, Stat> = {};
  [...paths, ...folders].forEach((p, i) => {
    const s = stats[i];
    if (s) (i < paths.length ? files : dirs)[p] = s;
  });
  const body = { state: state.mac, files, dirs };
  const data = Buffer.from(`${JSON.stringify({ ...body, mac: statMac(body, secret) })}\n`);
  const path = join(dir, STAT_CACHE);
  const old = await readFile(path).catch(() => undefined);
  if (old?.equals(data)) return;
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, data, { mode: 0o600 });
  await rename(tmp, path);
}

/**
 * Whether the folder `rel` of the bundle (or one below) holds a file the state does not list. A
 * folder whose stat is as recorded has had no entry added or removed since: only its recorded
 * subfolders are looked into. Any other folder (the top one always) is listed.
 */
function holdsUnknown(dir: string, rel: string, known: ReadonlySet<string>, folders: Record<string, Stat>, children = childrenOf(folders)): boolean {
  const was = rel ? folders[rel] : undefined;
  const now = rel ? statOf(join(dir, rel), 'dir') : undefined;
  if (was !== undefined && was === now) {
    return (children.get(rel) ?? []).some((d) => holdsUnknown(dir, d, known, folders, children));
  }
  let entries;
  try {
    entries = readdirSync(rel ? join(dir, rel) : dir, { withFileTypes: true });
  } catch {
    return true;
  }
  for (const e of entries) {
    const p = rel ? `${rel}/${e.name}` : e.name;
    if (e.isDirectory() ? holdsUnknown(dir, p, known, folders, children) : e.isFile() && !known.has(p)) return true;
  }
  return false;
}

/** Each recorded folder's recorded subfolders. */
function childrenOf(folders: Record<string, Stat>): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const d of Object.keys(folders)) {
    const parent = d.includes('/') ? d.slice(0, d.lastIndexOf('/')) : '';
    out.set(parent, [...(out.get(parent) ?? []), d]);
  }
  return out;
}

/**
 * The quick path's own reader: the recorded state when the bundle at `dir` is exactly what the
 * last run wrote, found by reading the few files the state is checked against and stat'ing the
 * rest (hashing those whose stat changed); undefined when a full run is needed, or when the
 * folder holds a file selfmail did not write (the full run names it). `read` gives the small
 * files back to the caller.
 */
export async function unchangedOnDisk(
  dir: string,
  build: string,
  now: Date,
  mtaSts: (bundleCert: Buffer) => MtaStsMode,
  sshfp: SshfpOf = NO_SSHFP,
): Promise<{ state: BundleState; read: (path: string) => Promise<Buffer | undefined> } | undefined> {
  if (build === 'dev') return undefined;
  const small = new Map<string, Buffer>();
  const names = [STATE_PATH, 'selfmail.yaml', MANIFEST, STATE_KEY_SOURCE, 'keys/tls/cert.pem', STAT_CACHE];
  for (const n of names) {
    const data = readSmall(join(dir, n));
    if (data) small.set(n, data);
  }
  const state = trustedState((p) => small.get(p), build, now, mtaSts, sshfp);
  if (!state) return undefined;
  let cached: Record<string, Stat> = {};
  let folders: Record<string, Stat> = {};
  try {
    const doc = JSON.parse(small.get(STAT_CACHE)?.toString('utf8') ?? '') as StatCache;
    const { mac, ...body } = doc;
    if (doc.state === state.mac && mac === statMac(body, small.get(STATE_KEY_SOURCE)!)) ({ files: cached, dirs: folders } = doc);
  } catch {
    // No cache, or not this state's: every file is hashed, every folder listed.
  }
  const known = new Set([STATE_PATH, MANIFEST, STAT_CACHE, ...state.files.map(([p]) => p)]);
  if (holdsUnknown(dir, '', known, folders)) return undefined;
  const unsure: Array<[abs: string, hash: string]> = [];
  for (const [path, mode, , hash] of state.files) {
    const abs = `${dir}/${path}`;
    const st = statOf(abs);
    if (!st || modeOf(st) !== mode) return undefined;
    if (cached[path] !== st) unsure.push([abs, hash]);
  }
  // Written since the stats were taken (or copied, touched): their bytes decide.
  const same = await Promise.all(unsure.map(([abs, hash]) => readFile(abs).then((d) => sha256(d) === hash, () => false)));
  if (!same.every(Boolean)) return undefined;
  return { state, read: async (p) => small.get(p) ?? readSmall(`${dir}/${p}`) };
}
