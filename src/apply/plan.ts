/**
 * What `apply` would do, decided before anything is touched: for each bundle file, whether it is
 * created, replaced, only re-owned, kept (the host's own upkeep) or already in place; and which
 * installed files the bundle no longer has. Reads the install root; writes nothing.
 */
import { lstat, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { FORMER_LOCATIONS, ruleFor, systemPathOf } from '../bundle/layout.js';
import type { InstallRule } from '../bundle/layout.js';
import type { Ids } from '../bundle/owners.js';
import { ToolError } from '../errors.js';
import { run } from '../tools/run.js';
import { soaSerial } from '../verify/dns.js';
import { RRSIG_FAIL_DAYS } from '../verify/index.js';
import { hostMaintained, judgeHostCopy, signedZoneOf } from '../verify/maintained.js';
import { MANIFEST, parseManifest } from './bundle.js';
import type { BundleEntry } from './bundle.js';

export type ApplyAction = 'create' | 'replace' | 'metadata' | 'remove';

/** One bundle file against what is installed at its place. */
export interface PlanItem {
  entry: BundleEntry;
  rule: InstallRule;
  systemPath: string;
  /** Absolute path under the install root. */
  target: string;
  mode: number;
  uid: number;
  gid: number;
  action: Exclude<ApplyAction, 'remove'> | 'same';
  current?: { mode: number; uid: number; gid: number };
  /** The bytes to install: the bundle's, or the host's own when it is kept. */
  data: Buffer;
  /** Why the host's copy is kept instead of the bundle's. */
  kept?: string;
  /** The installed bytes, when they differ from the bundle's. */
  previous?: Buffer;
}

/** An installed file of an earlier bundle that this bundle no longer has. */
export interface Removal {
  bundlePath: string;
  systemPath: string;
  target: string;
  /** Secret files (private keys) keep their mode in the backup and are never shown. */
  mode: number;
}

async function lstatOrUndefined(path: string) {
  try {
    return await lstat(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    return undefined;
  }
}

/** Every bundle file with an install rule, against the root. */
export async function planFiles(entries: BundleEntry[], root: string, ids: Ids, now: Date): Promise<PlanItem[]> {
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
    const st = await lstatOrUndefined(target);
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

/**
 * Installed files of the bundle applied last time (the installed MANIFEST.sha256 is its list)
 * that the new bundle no longer has and that are still there: DKIM keys of retired selectors, the
 * zone of a dropped domain.
 */
export async function planRemovals(entries: readonly BundleEntry[], root: string): Promise<Removal[]> {
  let text: string;
  try {
    text = await readFile(join(root, systemPathOf(MANIFEST)), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  let listed;
  try {
    listed = parseManifest(text, systemPathOf(MANIFEST));
  } catch {
    // An unreadable record of the last apply removes nothing; verify names it as changed.
    return [];
  }
  const now = new Set(entries.map((e) => e.path));
  const out: Removal[] = [];
  const consider = async (path: string, systemPath: string) => {
    const target = join(root, systemPath);
    const st = await lstatOrUndefined(target);
    if (st?.isFile()) out.push({ bundlePath: path, systemPath, target, mode: st.mode & 0o7777 });
  };
  for (const { path } of listed) {
    // Where an earlier version of selfmail installed it (OpenDKIM's key folder), whether or not
    // the bundle still has it.
    for (const f of FORMER_LOCATIONS) if (path.startsWith(f.from)) await consider(path, f.to + path.slice(f.from.length));
    if (now.has(path) || !ruleFor(path)) continue;
    await consider(path, systemPathOf(path));
  }
  return out;
}

/** A file is secret when nobody but its owner may read it: its contents never reach a diff or a log. */
export function isSecret(mode: number, bundleMode = mode): boolean {
  return (mode & 0o077) === 0 || (bundleMode & 0o077) === 0;
}

const octal = (m: number) => m.toString(8).padStart(4, '0');

/** The unified diff of a plan, through `diff -u`; secret files are named with their size only. */
export async function diffOf(items: PlanItem[], removals: Removal[], bundleDir: string, ids: Ids): Promise<string> {
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
    if (isSecret(it.mode, it.entry.mode)) {
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
  for (const r of removals) {
    const now = ruleFor(r.bundlePath) ? systemPathOf(r.bundlePath) : undefined;
    const why = now && now !== r.systemPath ? `${r.bundlePath} is installed at ${now} now` : `the bundle no longer has ${r.bundlePath}`;
    parts.push(`# ${r.systemPath}: removed (${why}; a copy stays in the backup)\n`);
  }
  return parts.join('');
}

/**
 * Mode and owner of a folder apply creates: always owned by root, since a service that could
 * write beside its keys could swap them (rspamd and Dovecot read their keys after dropping root); 0750 with the files'
 * group when everything beneath is secret to one group (e.g. /var/lib/rspamd/dkim), else 0755.
 */
export function dirPolicy(items: readonly PlanItem[]): (d: string) => { mode: number; uid: number; gid: number } {
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
 * A zone replaced by one whose serial is not higher than the served one: secondaries compare
 * serials and would keep serving the old zone (typically the host re-signed it since `init`).
 */
export function serialWarnings(items: readonly PlanItem[]): string[] {
  const out: string[] = [];
  for (const it of items) {
    const zone = signedZoneOf(it.entry.path);
    if (it.action !== 'replace' || !zone || !it.previous) continue;
    const was = soaSerial(it.previous.toString('utf8'), zone);
    const now = soaSerial(it.data.toString('utf8'), zone);
    if (was !== undefined && now !== undefined && now <= was) {
      out.push(`${zone}: the new zone's serial ${now} is not above the served one (${was}); secondaries compare serials and will keep serving serial ${was}: raise the bundle's serial above it (selfmail dns resign --bundle DIR) and apply again`);
    }
  }
  return out;
}
