/**
 * `apply`: put a bundle on the host it was made for and leave that host running it. In order:
 * 1. read the bundle (refused unless it matches its MANIFEST.sha256) and check that the host runs
 *    the release it was made for;
 * 2. plan: each file created, replaced, re-owned, kept or already there; installed files the bundle
 *    dropped; the mail account; and stop (exit 2) if the new firewall or sshd settings would lock
 *    the operator out;
 * 3. validate the new files at their real paths in a private mount namespace (./validate.ts)
 *    before anything live changes;
 * 4. back up, install, remove, create the mail account and its folder;
 * 5. enable every unit the bundle needs, start what is not running, reload or restart what a
 *    change concerns (./units.ts).
 * A failure in 3 changes nothing; a failure in 4 or 5 restores every file and account as it was.
 * `--dry-run` stops after 2.
 */
import { constants, existsSync } from 'node:fs';
import { access, chmod, chown, copyFile, link, mkdir, mkdtemp, rename, rm, rmdir, stat, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { ruleFor } from '../bundle/layout.js';
import { loadIds } from '../bundle/owners.js';
import type { Ids } from '../bundle/owners.js';
import { type Release, hostRelease, parseRelease, releaseInfo, SUPPORTED_TEXT } from '../config/release.js';
import { InputError, ToolError } from '../errors.js';
import { readBundle } from './bundle.js';
import type { BundleEntry } from './bundle.js';
import { createMailAccount, ensureMailRoot, mailAccount, mailAccountMissing, removeMailAccount } from './accounts.js';
import { type ApplyAction, type PlanItem, type Removal, diffOf, dirPolicy, planFiles, planRemovals, serialWarnings } from './plan.js';
import { admissionOf, lockoutProblems, loginUsers, sshClient, type SessionFacts } from './session.js';
import { type UnitOutcome, applyUnits, shippedUnits, unitPlan } from './units.js';
import { rootUnsafeForOverlay, runValidator, topLevelDirs, validatorsFor } from './validate.js';

export type { ApplyAction } from './plan.js';

export interface ApplyOptions {
  bundleDir: string;
  /** Install root; default `/`. */
  root?: string;
  dryRun?: boolean;
  /** Install and validate, but leave the units alone. */
  noReload?: boolean;
  /** Go on although the new firewall or sshd settings would lock the operator out. */
  allowSshLockout?: boolean;
  /** The session's facts (tests); read from /proc and the root's accounts otherwise. */
  session?: SessionFacts;
  /** The clock for the host-maintained files' expiry tests (tests). */
  now?: Date;
  /** Progress while it works (a terminal's progress line). */
  onProgress?: (line: string) => void;
}

export interface ApplyChange {
  bundlePath: string;
  /** The system path, without the install root. */
  systemPath: string;
  action: ApplyAction;
}

export interface ApplyResult {
  root: string;
  /** The release the bundle was made for, and that the host runs. */
  target: Release;
  dryRun: boolean;
  /** What was (or, with dryRun, would be) changed, in bundle order; removals last. */
  changes: ApplyChange[];
  /** Files already installed with the same bytes, mode and owner. */
  unchanged: number;
  /** Bundle files with no install rule (kept in the bundle only). */
  notInstalled: string[];
  /** System accounts created (or, with dryRun, to create): the mail account on a fresh host. */
  accounts: string[];
  /** Where the replaced and removed files were saved; undefined when nothing was saved or created. */
  backupDir?: string;
  /** The validators that passed. */
  validated: string[];
  /** Units enabled (every unit the bundle needs), started, and reloaded or restarted. */
  enabled: string[];
  started: string[];
  reloaded: string[];
  /** Units of earlier versions stopped and disabled (OpenDKIM's, since rspamd signs). */
  retired: string[];
  /** Why units were not started or reloaded, when they were not. */
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
async function writeAt(target: string, data: Buffer, mode: number, uid: number, gid: number, mtime?: Date): Promise<void> {
  const tmp = join(dirname(target), `.selfmail-${process.pid}.tmp`);
  // Created 0600 and chowned before the content is complete: a secret is never readable by others.
  await writeFile(tmp, data, { mode: 0o600 });
  await chown(tmp, uid, gid);
  await chmod(tmp, mode);
  if (mtime) await utimes(tmp, mtime, mtime);
  await rename(tmp, target);
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

/** Validators at once: most of a validation run is waiting on Postfix, not computing. */
const VALIDATOR_CONCURRENCY = 4;

/**
 * Lay out the files to install under `staged` at their system paths, with their owners and modes,
 * and every folder with the owner and mode it has (or will get) on the host: the overlay shows the
 * uppermost layer's folder, so a 0700 staging folder would hide /var/lib/rspamd/dkim from _rspamd. Files
 * already in place need no copy: the overlay shows the installed ones beneath.
 */
async function stage(items: readonly PlanItem[], all: readonly PlanItem[], staged: string, root: string): Promise<void> {
  const policy = dirPolicy(all);
  for (const it of items) {
    const parts = dirname(it.systemPath).split('/').filter(Boolean);
    let sys = '';
    for (const p of parts) {
      sys += `/${p}`;
      const dir = join(staged, sys);
      if (existsSync(dir)) continue;
      let meta = policy(join(root, sys));
      try {
        const st = await stat(join(root, sys));
        meta = { mode: st.mode & 0o7777, uid: st.uid, gid: st.gid };
      } catch {
        // a folder apply will create: the policy's owner and mode
      }
      await mkdir(dir, { mode: meta.mode });
      await chmod(dir, meta.mode);
      await chown(dir, meta.uid, meta.gid);
    }
    await writeAt(join(staged, it.systemPath), it.data, it.mode, it.uid, it.gid, new Date(Date.now() - 60_000));
  }
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
  /** Files removed (a copy of each is in the backup). */
  removed: Removal[];
  /** The mail account was created by this run. */
  account: boolean;
}

/** Undo a transaction: restore the saved and removed files, delete the new ones and the new folders, the backup and the account. */
async function rollback(tx: Transaction, root: string): Promise<void> {
  for (const it of tx.saved) await preserve(join(tx.backupDir, it.systemPath), it.target);
  for (const r of tx.removed) await preserve(join(tx.backupDir, r.systemPath), r.target);
  for (const it of tx.created) await rm(it.target, { force: true });
  // Leftover temporary files from an interrupted write would make the root differ.
  for (const it of [...tx.saved, ...tx.created]) await rm(join(dirname(it.target), `.selfmail-${process.pid}.tmp`), { force: true });
  await rm(tx.backupDir, { recursive: true, force: true });
  for (const d of [...tx.createdDirs].reverse()) {
    if (d === tx.backupDir || !d.startsWith(root)) continue;
    await rmdir(d).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT' && err.code !== 'ENOTEMPTY') throw err;
    });
  }
  if (tx.account) await removeMailAccount(root);
}

/** The release and SSH admission a bundle records in its selfmail.yaml. */
async function bundleSettings(entries: readonly BundleEntry[]): Promise<{ target: Release; adminSshFrom: string[]; spamLookups: string[] }> {
  const yaml = entries.find((e) => e.path === 'selfmail.yaml');
  if (!yaml) throw new InputError([{ field: '--bundle', message: 'the bundle has no selfmail.yaml: is it a bundle written by selfmail init?' }]);
  const { parseConfigText } = await import('../config/load.js');
  const raw = await parseConfigText(yaml.data.toString('utf8'), 'selfmail.yaml');
  const r = raw.target === undefined ? undefined : parseRelease(raw.target);
  if (!r?.ok) {
    throw new InputError([
      {
        field: '--bundle',
        message: `the bundle does not say which release it was made for (selfmail.yaml: target): re-run selfmail init --out BUNDLE on the mail host, or with --target (${SUPPORTED_TEXT})`,
      },
    ]);
  }
  if (raw.ingress === 'own-vps' && !entries.some((e) => e.path === 'wireguard/selfmail.conf')) {
    // The services bind to this end of the tunnel, which needs the VPS's key to exist.
    throw new InputError([
      {
        field: '--bundle',
        message: 'this bundle is for --ingress own-vps and does not know the VPS\'s WireGuard key yet: set up the VPS with vps/README.md (vps/setup.sh prints the key), then selfmail init --out BUNDLE --vps-wg-key KEY; nothing was changed',
      },
    ]);
  }
  return { target: r.value, adminSshFrom: raw.adminSshFrom ?? [], spamLookups: raw.spamLookups ?? [] };
}

/** Stop unless the host runs the release the bundle was made for. */
async function checkRelease(root: string, target: Release, warnings: string[]): Promise<void> {
  const host = await hostRelease(root);
  if (host.release === target) return;
  const made = `this bundle was made for ${target} (${releaseInfo(target).name})`;
  if (host.release) {
    throw new InputError([
      {
        field: '--bundle',
        message: `${made}, and ${root === '/' ? 'this host' : root} runs ${host.release} (${host.description}): the software differs between them (Dovecot ${releaseInfo(target).dovecot} against ${releaseInfo(host.release).dovecot}). Make the bundle for this host: selfmail init --out BUNDLE --target ${host.release}`,
      },
    ]);
  }
  warnings.push(`${made}; ${root === '/' ? 'this host' : root} is ${host.description}, which selfmail does not know: the validators below are its only check`);
}

/** Where systemd looks for a command an ExecStart names without a path (systemd ≥ 239). */
export const SYSTEMD_SEARCH_PATH = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin'];

/**
 * The daily backup's service runs `selfmail backup --bundle <the bundle's folder>`: it must name
 * the folder apply installs from, and systemd must find `selfmail`. What would make it fail every
 * night, said now.
 */
async function backupUnitProblems(entries: readonly BundleEntry[], bundleDir: string, root: string): Promise<string[]> {
  const { BACKUP_SERVICE_PATH, backupBundleOf } = await import('../backup/service.js');
  const unit = entries.find((e) => e.path === BACKUP_SERVICE_PATH);
  if (!unit) return [];
  const problems: string[] = [];
  const named = backupBundleOf(unit.data.toString('utf8'));
  const here = resolve(bundleDir);
  if (named !== here) {
    problems.push(`selfmail-backup.service backs up the bundle at ${named ?? '(none)'}, where init wrote it, but this bundle is ${here}: run selfmail init --out ${here} once more there, so that the daily backup names this folder`);
  }
  let found = false;
  for (const d of SYSTEMD_SEARCH_PATH) if (await access(join(root, d, 'selfmail'), constants.X_OK).then(() => true, () => false)) found = true;
  if (!found) {
    problems.push(`selfmail-backup.service runs selfmail, which is not installed where systemd finds it (${SYSTEMD_SEARCH_PATH.join(', ')}${root === '/' ? '' : ` under ${root}`}): install it there (npm install -g selfmail), or drop the daily backup (selfmail init --backup-to none)`);
  }
  return problems;
}

/**
 * Install the bundle at `bundleDir` under `root` (default `/`). Throws InputError (exit 2) for a
 * bundle that does not match its manifest, a host of another release, or a lockout; ToolError
 * (exit 4) when a validator rejects the new configuration (nothing changed) or a unit does not
 * run afterwards (everything restored). With `dryRun`, only plans and diffs.
 */
export async function applyBundle(opts: ApplyOptions): Promise<ApplyResult> {
  const root = resolve(opts.root ?? '/');
  if (root !== '/' && rootUnsafeForOverlay(root)) {
    throw new InputError([{ field: '--root', message: `${root}: use a path without spaces, quotes, commas or colons` }]);
  }
  if (!existsSync(root)) throw new InputError([{ field: '--root', message: `${root} does not exist` }]);
  if (root !== '/' && !(existsSync(join(root, 'etc/passwd')) && existsSync(join(root, 'etc/group')))) {
    throw new InputError([
      { field: '--root', message: `${root} has no etc/passwd and etc/group: apply installs onto a system root (a debootstrap root, an image), whose accounts own the files` },
    ]);
  }
  const { entries, manifest } = await readBundle(opts.bundleDir);
  const warnings: string[] = [];
  const settings = await bundleSettings(entries);
  await checkRelease(root, settings.target, warnings);
  const backupProblems = await backupUnitProblems(entries, opts.bundleDir, root);
  if (backupProblems.length > 0 && !opts.dryRun) throw new InputError(backupProblems.map((message) => ({ field: '--bundle', message: `${message}. Nothing was changed` })));
  warnings.push(...backupProblems.map((p) => `apply would stop: ${p}`));
  const ids = await loadIds(root);
  const all = [...entries, manifest];
  const items = await planFiles(all, root, ids, opts.now ?? new Date());
  const removals = await planRemovals(entries, root);
  const needsAccount = mailAccountMissing(ids);
  const changedItems = items.filter((it) => it.action !== 'same');
  const result: ApplyResult = {
    root,
    target: settings.target,
    dryRun: !!opts.dryRun,
    changes: [
      ...changedItems.map((it) => ({ bundlePath: it.entry.path, systemPath: it.systemPath, action: it.action as ApplyAction })),
      ...removals.map((r) => ({ bundlePath: r.bundlePath, systemPath: r.systemPath, action: 'remove' as const })),
    ],
    unchanged: items.length - changedItems.length,
    notInstalled: all.filter((e) => !ruleFor(e.path)).map((e) => e.path),
    accounts: needsAccount ? [mailAccount().user] : [],
    validated: [],
    enabled: [],
    started: [],
    reloaded: [],
    retired: [],
    kept: items.filter((it) => it.kept).map((it) => ({ bundlePath: it.entry.path, systemPath: it.systemPath, reason: it.kept ?? '' })),
    warnings: [...warnings, ...serialWarnings(changedItems)],
  };

  // The session runs on this system only when the root is `/`.
  if (root === '/') {
    const facts = opts.session ?? { ...(await sshClientFact()), logins: await loginUsers(root) };
    const problems = lockoutProblems(admissionOf(settings.adminSshFrom), facts);
    if (problems.length > 0 && !opts.allowSshLockout) {
      if (opts.dryRun) result.warnings.push(...problems.map((p) => `apply would stop: ${p}`));
      else {
        throw new InputError(
          problems.map((message) => ({ field: 'apply', message: `${message}. Nothing was changed (--allow-ssh-lockout goes on anyway)` })),
        );
      }
    } else if (problems.length > 0) result.warnings.push(...problems.map((p) => `going on despite: ${p}`));
  }

  const units = unitPlan(
    shippedUnits(entries),
    changedItems.map((it) => it.entry.path),
    removals.map((r) => r.bundlePath),
  );
  if (opts.dryRun) {
    result.diff = await diffOf(items, removals, opts.bundleDir, ids);
    result.enabled = units.wanted;
    return result;
  }

  const nothingToInstall = changedItems.length === 0 && removals.length === 0 && !needsAccount;
  let tx: Transaction | undefined;
  if (!nothingToInstall) {
    await validate(items, root, settings.target, result, opts.onProgress, settings.spamLookups);
    tx = await install(items, changedItems, removals, needsAccount, root, opts.bundleDir, ids);
    result.backupDir = tx.backupDir;
  } else if (!(await ensureMailRoot(root, ids))) {
    // Nothing to install: the mail root's owner or mode is still repaired, and every unit brought up below.
    result.reloadSkipped = 'nothing changed';
  }
  opts.onProgress?.('Enabling and starting the units…');
  const outcome = await startUnits(units, root, !!opts.noReload, tx);
  result.enabled = outcome.enabled;
  result.started = outcome.started;
  result.reloaded = [...outcome.reloaded, ...outcome.restarted].sort();
  result.retired = outcome.retired;
  if (outcome.skipped) result.reloadSkipped = outcome.skipped;
  return result;
}

async function sshClientFact(): Promise<{ sshClient?: string }> {
  const client = await sshClient();
  return client ? { sshClient: client } : {};
}

/** Every validator against the staged files; the first failure in the fixed order is thrown. */
async function validate(items: readonly PlanItem[], root: string, target: Release, result: ApplyResult, onProgress?: (line: string) => void, spamLookups: readonly string[] = []): Promise<void> {
  const staged = await mkdtemp(join(tmpdir(), 'selfmail-stage-'));
  try {
    await chmod(staged, 0o755);
    await stage(items.filter((it) => it.action !== 'same'), items, staged, root);
    const installed = new Map(items.map((it) => [it.entry.path, it.systemPath]));
    const tree = { staged, root, overlay: topLevelDirs(items.map((it) => it.systemPath)) };
    const validators = validatorsFor(installed, target, { spamLookups });
    const { JOURNAL_BACKEND_CHECK, JOURNAL_MODULE, requireTools } = await import('../tools/preflight.js');
    const programs = validators.map((v) => v.cmd).filter((c) => !c.startsWith('/'));
    const journal = validators.some((v) => v.cmd === JOURNAL_BACKEND_CHECK.cmd) ? [JOURNAL_MODULE] : [];
    await requireTools([...programs, 'unshare', 'script', 'runuser', 'useradd', ...(root === '/' ? ['systemctl'] : [])], 'selfmail apply', journal);
    const { mapPool } = await import('../tools/pool.js');
    // Every validator runs to its end; the outcome of each, in the validators' order.
    let done = 0;
    const failures = await mapPool(
      validators,
      async (v) => {
        const t = Date.now();
        try {
          await runValidator(v, tree);
          return undefined;
        } catch (error) {
          return { error };
        } finally {
          onProgress?.(`Checking the new files: ${++done}/${validators.length} (${v.name})`);
          if (process.env.SELFMAIL_DEBUG) process.stderr.write(`validator ${v.name}: ${Date.now() - t} ms\n`);
        }
      },
      VALIDATOR_CONCURRENCY,
    );
    // The first failure in the fixed order, so the same broken bundle always gives the same message.
    const failed = failures.find((f) => f !== undefined);
    if (failed) {
      const err = failed.error;
      if (err instanceof ToolError) throw new ToolError(`${err.message}\napply: nothing was changed`, err.tool, err.output);
      throw err;
    }
    result.validated.push(...validators.map((v) => v.name));
  } finally {
    await rm(staged, { recursive: true, force: true });
  }
}

/** Back up, install, remove, create the account: one transaction, undone entirely on any failure. */
async function install(
  items: readonly PlanItem[],
  changedItems: readonly PlanItem[],
  removals: readonly Removal[],
  needsAccount: boolean,
  root: string,
  bundleDir: string,
  ids: Ids,
): Promise<Transaction> {
  const backupBase = join(root, 'var/backups/selfmail');
  let backupDir = join(backupBase, timestamp(new Date()));
  for (let n = 2; existsSync(backupDir); n++) backupDir = join(backupBase, `${timestamp(new Date())}-${n}`);
  const tx: Transaction = { backupDir, createdDirs: [], saved: [], created: [], removed: [], account: false };
  const policy = dirPolicy(items);
  const rootOnly = () => ({ mode: 0o700, uid: 0, gid: 0 });
  try {
    // Backups hold the previous secrets too: the folder is root's alone.
    await ensureDir(backupDir, tx.createdDirs, rootOnly);
    for (const it of changedItems) {
      if (it.action === 'create') continue;
      const copy = join(backupDir, it.systemPath);
      await ensureDir(dirname(copy), tx.createdDirs, rootOnly);
      await preserve(it.target, copy);
      tx.saved.push(it);
    }
    for (const r of removals) {
      const copy = join(backupDir, r.systemPath);
      await ensureDir(dirname(copy), tx.createdDirs, rootOnly);
      await preserve(r.target, copy);
    }
    // A record for a manual rollback: which files this run created (they have no backup copy).
    const record = {
      bundle: resolve(bundleDir),
      created: changedItems.filter((it) => it.action === 'create').map((it) => it.systemPath),
      replaced: tx.saved.map((it) => it.systemPath),
      removed: removals.map((r) => r.systemPath),
      accounts: needsAccount ? [mailAccount().user] : [],
    };
    await writeFile(join(backupDir, 'selfmail-apply.json'), `${JSON.stringify(record, null, 2)}\n`, { mode: 0o600 });
    if (needsAccount) {
      await createMailAccount(root, ids);
      tx.account = true;
    }
    const mailRoot = join(root, mailAccount().home);
    const mailRootExisted = existsSync(mailRoot);
    await ensureMailRoot(root, await loadIds(root));
    if (!mailRootExisted) tx.createdDirs.push(mailRoot);
    for (const it of changedItems) {
      await ensureDir(dirname(it.target), tx.createdDirs, policy);
      if (it.action === 'create') tx.created.push(it);
      await writeAt(it.target, it.data, it.mode, it.uid, it.gid);
    }
    for (const r of removals) {
      await rm(r.target);
      tx.removed.push(r);
    }
    return tx;
  } catch (err) {
    await rollback(tx, root);
    throw err;
  }
}

/** Units after a successful install; if one does not run, the install is undone and the units restarted on the old files. */
async function startUnits(units: ReturnType<typeof unitPlan>, root: string, noReload: boolean, tx: Transaction | undefined): Promise<UnitOutcome> {
  if (noReload) return { enabled: [], started: [], reloaded: [], restarted: [], retired: [], skipped: '--no-reload' };
  if (root !== '/') return { enabled: [], started: [], reloaded: [], restarted: [], retired: [], skipped: 'installed under another root' };
  try {
    return await applyUnits(units);
  } catch (err) {
    if (!tx || !(err instanceof ToolError)) throw err;
    await rollback(tx, root);
    // Back on the previous files: the units a change concerned take them again (best effort).
    await applyUnits({ ...units, daemonReload: true }, { retire: false }).catch(() => undefined);
    throw new ToolError(`${err.message}\napply: every file was restored as it was before`, err.tool, err.output);
  }
}
