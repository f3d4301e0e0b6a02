/**
 * `apply`: install a bundle at its system paths, validate it with the real tools, roll back on
 * failure, reload what runs. Deciding (the plan) is separate from doing (backup, install,
 * rollback), so `--dry-run` only stops after the plan.
 */
import { existsSync } from 'node:fs';
import { chmod, chown, copyFile, link, lstat, mkdir, readFile, rename, rm, rmdir, stat, utimes, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { ruleFor, systemPathOf } from '../bundle/layout.js';
import type { InstallRule } from '../bundle/layout.js';
import { InputError, ToolError } from '../errors.js';
import { run } from '../tools/run.js';
import { readBundle } from './bundle.js';
import type { BundleEntry } from './bundle.js';
import { loadIds } from '../bundle/owners.js';
import type { Ids } from '../bundle/owners.js';
import { parseZone } from '../verify/dns.js';
import { RRSIG_FAIL_DAYS } from '../verify/index.js';
import { hostMaintained, judgeHostCopy, signedZoneOf } from '../verify/maintained.js';
import { rootUnsafeForOverlay, runValidator, topLevelDirs, validatorsFor } from './validate.js';

export interface ApplyOptions {
  bundleDir: string;
  /** Install root; default `/`. */
  root?: string;
  dryRun?: boolean;
  noReload?: boolean;
  /** The clock for the host-maintained files' expiry tests (tests). */
  now?: Date;
}

export type ApplyAction = 'create' | 'replace' | 'metadata';

export interface ApplyChange {
  bundlePath: string;
  /** The system path, without the install root. */
  systemPath: string;
  action: ApplyAction;
}

export interface ApplyResult {
  root: string;
  dryRun: boolean;
  /** What was (or, with dryRun, would be) changed, in bundle order. */
  changes: ApplyChange[];
  /** Files already installed with the same bytes, mode and owner. */
  unchanged: number;
  /** Bundle files with no install rule (kept in the bundle only). */
  notInstalled: string[];
  /** Where the replaced files were saved; undefined when nothing was replaced or created. */
  backupDir?: string;
  /** The validators that passed. */
  validated: string[];
  /** The services reloaded. */
  reloaded: string[];
  /** Why no service was reloaded, when none was. */
  reloadSkipped?: string;
  /** With dryRun: a unified diff of what would change (secret files named, never shown). */
  diff?: string;
  /**
   * Installed files the host updated itself and apply left as they are, although they differ from
   * the bundle: a zone re-signed with a higher serial, a CA-issued certificate for the bundle's key.
   */
  kept: { bundlePath: string; systemPath: string; reason: string }[];
  /** Things the operator should know that did not stop the run. */
  warnings: string[];
}

/** One bundle file against what is installed at its place. */
interface PlanItem {
  entry: BundleEntry;
  rule: InstallRule;
  systemPath: string;
  /** Absolute path under the install root. */
  target: string;
  mode: number;
  uid: number;
  gid: number;
  action: ApplyAction | 'same';
  current?: { mode: number; uid: number; gid: number };
  /** The bytes to install: the bundle's, or the host's own when it is kept. */
  data: Buffer;
  /** Why the host's copy is kept instead of the bundle's. */
  kept?: string;
  /** The installed bytes, when they differ from the bundle's. */
  previous?: Buffer;
}

/** A file is secret when nobody but its owner may read it: its contents never reach a diff or a log. */
function isSecret(item: PlanItem): boolean {
  return (item.mode & 0o077) === 0 || (item.entry.mode & 0o077) === 0;
}

async function plan(entries: BundleEntry[], root: string, ids: Ids, now: Date): Promise<PlanItem[]> {
  const items: PlanItem[] = [];
  for (const entry of entries) {
    const rule = ruleFor(entry.path);
    if (!rule) continue;
    const systemPath = systemPathOf(entry.path);
    const target = join(root, systemPath);
    const item: PlanItem = {
      entry,
      rule,
      systemPath,
      target,
      mode: rule.mode ?? entry.mode,
      uid: ids.uid(rule.owner),
      gid: ids.gid(rule.group),
      action: 'create',
      data: entry.data,
    };
    let st;
    try {
      st = await lstat(target);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    if (st) {
      if (!st.isFile()) throw new ToolError(`${target} exists and is not a regular file: move it away first`, 'apply');
      item.current = { mode: st.mode & 0o7777, uid: st.uid, gid: st.gid };
      const installed = await readFile(target);
      let same = installed.equals(entry.data);
      if (!same) item.previous = installed;
      if (!same && hostMaintained(entry.path)) {
        // Never undo the host's own upkeep: a newer re-signing of the same zone, or a CA-issued
        // certificate for the same key, beats the bundle's copy of it.
        const v = await judgeHostCopy({ bundlePath: entry.path, bundleData: entry.data, installed, file: target, entries, now, failDays: RRSIG_FAIL_DAYS });
        if (v.keep) {
          item.data = installed;
          item.kept = v.summary;
          same = true;
        }
      }
      const metaSame = item.current.mode === item.mode && st.uid === item.uid && st.gid === item.gid;
      item.action = !same ? 'replace' : metaSame ? 'same' : 'metadata';
    }
    items.push(item);
  }
  return items;
}

const octal = (m: number) => m.toString(8).padStart(4, '0');

/** The unified diff of a plan, through `diff -u`; secret files are named with their size only. */
async function diffOf(items: PlanItem[], bundleDir: string, ids: Ids): Promise<string> {
  const parts: string[] = [];
  for (const it of items) {
    if (it.action === 'same') continue;
    const meta = (m: number, u: number, g: number) => `${octal(m)} ${ids.userName(u)}:${ids.groupName(g)}`;
    const want = meta(it.mode, it.uid, it.gid);
    const have = it.current ? meta(it.current.mode, it.current.uid, it.current.gid) : undefined;
    if (it.action === 'metadata') {
      parts.push(`# ${it.systemPath}: ${have} -> ${want}\n`);
      continue;
    }
    const header = it.action === 'create' ? `# ${it.systemPath}: new file, ${want}\n` : `# ${it.systemPath}: replaced${have !== want ? `, ${have} -> ${want}` : ''}\n`;
    if (isSecret(it)) {
      parts.push(`${header}# ${it.systemPath}: secret, contents not shown (${it.data.length} bytes)\n`);
      continue;
    }
    const r = await run(
      'diff',
      ['-u', '--label', `a${it.systemPath}`, '--label', `b${it.systemPath}`, it.current ? it.target : '/dev/null', join(bundleDir, it.entry.path)],
      { okCodes: [0, 1] },
    );
    parts.push(header + r.stdout);
  }
  return parts.join('');
}

/** mkdir -p that records every folder it created (outermost first), so a rollback can remove them. */
async function ensureDir(dir: string, created: string[], modeOf: (d: string) => { mode: number; uid: number; gid: number }): Promise<void> {
  const missing: string[] = [];
  let d = dir;
  while (!existsSync(d)) {
    missing.unshift(d);
    const up = dirname(d);
    if (up === d) break;
    d = up;
  }
  for (const m of missing) {
    const { mode, uid, gid } = modeOf(m);
    await mkdir(m, { mode });
    created.push(m);
    await chmod(m, mode);
    await chown(m, uid, gid);
  }
}

/**
 * Mode and owner of a folder apply creates: always owned by root, since a service that could
 * write beside its keys could swap them (OpenDKIM refuses such a path); 0750 with the files'
 * group when everything beneath is secret to one group (e.g. /etc/opendkim/keys), else 0755.
 */
function dirPolicy(items: PlanItem[]): (d: string) => { mode: number; uid: number; gid: number } {
  return (d) => {
    const below = items.filter((it) => it.target.startsWith(`${d}/`));
    const groups = new Set(below.map((it) => it.gid));
    const first = below[0];
    if (first && groups.size === 1 && below.every((it) => (it.mode & 0o007) === 0)) {
      return { mode: 0o750, uid: 0, gid: first.gid };
    }
    return { mode: 0o755, uid: 0, gid: 0 };
  };
}

/**
 * Keep `from` under the name `to` exactly as it is. A hard link keeps the very inode (bytes, mode,
 * owner, times to the nanosecond), which works because every install is a rename of a new file
 * over the old name, never a write into it; a copy with the same metadata when the backup is on
 * another file system.
 */
async function preserve(from: string, to: string): Promise<void> {
  const tmp = join(dirname(to), `.selfmail-${process.pid}.tmp`);
  await rm(tmp, { force: true });
  try {
    await link(from, tmp);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EXDEV') throw err;
    const st = await stat(from);
    await copyFile(from, tmp);
    await chown(tmp, st.uid, st.gid);
    await chmod(tmp, st.mode & 0o7777);
    await utimes(tmp, st.atime, st.mtime);
  }
  await rename(tmp, to);
}

/**
 * Write the new file beside its target and rename it into place, so a service never reads half a
 * file and the previous inode stays intact in the backup. A mode or owner repair is a rewrite too.
 */
async function installFile(it: PlanItem): Promise<void> {
  const tmp = join(dirname(it.target), `.selfmail-${process.pid}.tmp`);
  // Created 0600 and chowned before the content is complete: a secret is never readable by others.
  await writeFile(tmp, it.data, { mode: 0o600 });
  await chown(tmp, it.uid, it.gid);
  await chmod(tmp, it.mode);
  await rename(tmp, it.target);
}

/**
 * Validators at once. Most of a validation run is waiting, not computing: Postfix's tools pause
 * ("let the file cool down") up to two seconds on a main.cf modified in the last second or two,
 * which is every fresh install; running the other checks meanwhile hides that pause.
 */
const VALIDATOR_CONCURRENCY = 4;

/** Run `task` over `items`, at most `limit` at a time; the outcome of each, in `items` order. */
async function inParallel<T>(items: readonly T[], limit: number, task: (item: T) => Promise<void>): Promise<({ error: unknown } | undefined)[]> {
  const out: ({ error: unknown } | undefined)[] = new Array(items.length).fill(undefined);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      try {
        await task(items[i] as T);
      } catch (error) {
        out[i] = { error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

function timestamp(now: Date): string {
  return now.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
}

interface Transaction {
  backupDir: string;
  /** Folders created under the root, outermost first (install folders and the backup's own). */
  createdDirs: string[];
  /** Items whose previous file is in the backup. */
  saved: PlanItem[];
  /** Items written where no file was before. */
  created: PlanItem[];
}

/** Undo a transaction: restore the saved files, delete the new ones, remove the new folders and the backup. */
async function rollback(tx: Transaction, root: string): Promise<void> {
  for (const it of tx.saved) await preserve(join(tx.backupDir, it.systemPath), it.target);
  for (const it of tx.created) await rm(it.target, { force: true });
  // Leftover temporary files from an interrupted write would make the root differ.
  for (const it of [...tx.saved, ...tx.created]) await rm(join(dirname(it.target), `.selfmail-${process.pid}.tmp`), { force: true });
  await rm(tx.backupDir, { recursive: true, force: true });
  for (const d of [...tx.createdDirs].reverse()) {
    if (d === tx.backupDir || !d.startsWith(root)) continue;
    await rmdir(d).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT') throw err;
    });
  }
}

async function reload(changed: PlanItem[], root: string, noReload: boolean): Promise<{ reloaded: string[]; skipped?: string }> {
  if (noReload) return { reloaded: [], skipped: '--no-reload' };
  if (root !== '/') return { reloaded: [], skipped: 'installed under another root' };
  if (!existsSync('/run/systemd/system')) return { reloaded: [], skipped: 'no service manager (systemd) running' };
  if (changed.some((it) => it.entry.path.startsWith('systemd/'))) await run('systemctl', ['daemon-reload']);
  const services = [...new Set(changed.map((it) => it.rule.service).filter((s): s is string => !!s))].sort();
  const reloaded: string[] = [];
  for (const s of services) {
    // Only units that are running are touched: try-reload-or-restart leaves stopped ones stopped.
    const active = await run('systemctl', ['is-active', '--quiet', s], { okCodes: [0, 1, 3, 4] });
    if (active.exitCode !== 0) continue;
    await run('systemctl', ['try-reload-or-restart', s]);
    reloaded.push(s);
  }
  return { reloaded };
}

/**
 * A zone replaced by one whose serial is not higher than the served one: secondaries compare
 * serials and would keep serving the old zone (typically the host re-signed it since `init`).
 */
function serialWarnings(items: PlanItem[]): string[] {
  const out: string[] = [];
  for (const it of items) {
    const zone = signedZoneOf(it.entry.path);
    if (it.action !== 'replace' || !zone || !it.previous) continue;
    const serial = (b: Buffer) => Number(parseZone(b.toString('utf8'), zone).find((r) => r.type === 'SOA')?.rdata[2]);
    const was = serial(it.previous);
    const now = serial(it.data);
    if (Number.isInteger(was) && Number.isInteger(now) && now <= was) {
      out.push(`${zone}: the new zone's serial ${now} is not above the served one (${was}); secondaries compare serials and will keep serving serial ${was}: raise the bundle's serial above it (selfmail dns resign --bundle DIR) and apply again`);
    }
  }
  return out;
}

/**
 * Install the bundle at `bundleDir` under `root` (default `/`). Refuses a bundle that does not
 * match its MANIFEST.sha256 (InputError). Skips files already installed identically; saves every
 * file it replaces under `<root>/var/backups/selfmail/<timestamp>/`; validates with the services'
 * tools and, when one rejects the result, restores the previous state exactly and throws its
 * ToolError. Reloads running services on `/` unless `noReload`. With `dryRun`, only plans and diffs.
 */
export async function applyBundle(opts: ApplyOptions): Promise<ApplyResult> {
  const root = resolve(opts.root ?? '/');
  if (root !== '/' && rootUnsafeForOverlay(root)) {
    throw new InputError([{ field: '--root', message: `${root}: use a path without spaces, quotes, commas or colons` }]);
  }
  if (!existsSync(root)) throw new InputError([{ field: '--root', message: `${root} does not exist` }]);
  const { entries, manifest } = await readBundle(opts.bundleDir);
  const ids = await loadIds(root);
  const all = [...entries, manifest];
  const items = await plan(all, root, ids, opts.now ?? new Date());
  const notInstalled = all.filter((e) => !ruleFor(e.path)).map((e) => e.path);
  const changedItems = items.filter((it) => it.action !== 'same');
  const result: ApplyResult = {
    root,
    dryRun: !!opts.dryRun,
    changes: changedItems.map((it) => ({ bundlePath: it.entry.path, systemPath: it.systemPath, action: it.action as ApplyAction })),
    unchanged: items.length - changedItems.length,
    notInstalled,
    validated: [],
    reloaded: [],
    kept: items.filter((it) => it.kept).map((it) => ({ bundlePath: it.entry.path, systemPath: it.systemPath, reason: it.kept ?? '' })),
    warnings: serialWarnings(changedItems),
  };
  if (opts.dryRun) {
    result.diff = await diffOf(items, opts.bundleDir, ids);
    return result;
  }
  if (changedItems.length === 0) {
    result.reloadSkipped = 'nothing changed';
    return result;
  }

  const backupBase = join(root, 'var/backups/selfmail');
  let backupDir = join(backupBase, timestamp(new Date()));
  for (let n = 2; existsSync(backupDir); n++) backupDir = join(backupBase, `${timestamp(new Date())}-${n}`);
  const tx: Transaction = { backupDir, createdDirs: [], saved: [], created: [] };
  const policy = dirPolicy(items);
  try {
    // Backups hold the previous secrets too: the folder is root's alone.
    await ensureDir(backupDir, tx.createdDirs, () => ({ mode: 0o700, uid: 0, gid: 0 }));
    for (const it of changedItems) {
      if (it.action === 'create') continue;
      const copy = join(backupDir, it.systemPath);
      await ensureDir(dirname(copy), tx.createdDirs, () => ({ mode: 0o700, uid: 0, gid: 0 }));
      await preserve(it.target, copy);
      tx.saved.push(it);
    }
    // A record for a manual rollback: which files this run created (they have no backup copy).
    const record = {
      bundle: resolve(opts.bundleDir),
      created: changedItems.filter((it) => it.action === 'create').map((it) => it.systemPath),
      replaced: tx.saved.map((it) => it.systemPath),
    };
    await writeFile(join(backupDir, 'selfmail-apply.json'), `${JSON.stringify(record, null, 2)}\n`, { mode: 0o600 });
    for (const it of changedItems) {
      await ensureDir(dirname(it.target), tx.createdDirs, policy);
      if (it.action === 'create') tx.created.push(it);
      await installFile(it);
    }
    const installed = new Map(items.map((it) => [it.entry.path, it.systemPath]));
    const overlay = topLevelDirs(items.map((it) => it.systemPath));
    const validators = validatorsFor(installed);
    const failures = await inParallel(validators, VALIDATOR_CONCURRENCY, (v) => runValidator(v, root, overlay));
    // The first failure in the fixed order, so the same broken bundle always gives the same message.
    const failed = failures.find((f) => f !== undefined);
    if (failed) throw failed.error;
    result.validated.push(...validators.map((v) => v.name));
  } catch (err) {
    await rollback(tx, root);
    if (err instanceof ToolError) {
      throw new ToolError(`${err.message}\napply: every file was restored as it was before; nothing changed`, err.tool, err.output);
    }
    throw err;
  }
  result.backupDir = backupDir;
  const r = await reload(changedItems, root, !!opts.noReload);
  result.reloaded = r.reloaded;
  if (r.skipped) result.reloadSkipped = r.skipped;
  return result;
}
