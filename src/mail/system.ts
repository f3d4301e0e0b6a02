/**
 * The directories the mail daemons expect before they start, created under a profile's root.
 * Used by the checks (Postfix refuses to check a config whose queue directory is missing) and
 * by the rehearsal and apply, which start the daemons. I/O only; the names come from paths.ts.
 */
import { chmod, chown, mkdir } from 'node:fs/promises';
import { loadIds } from '../bundle/owners.js';
import { dirname } from 'node:path';
import { type Profile, installedPath, ruleFor } from '../bundle/layout.js';
import { mailPaths } from '../mail/paths.js';

export interface SystemIds {
  uid: number;
  gid: number;
}

/**
 * The uid of a user and the gid of a group on this machine (the one account table of
 * src/bundle/owners.ts; a missing account is a ToolError naming the package that creates it).
 */
export async function systemIds(user: string, group: string): Promise<SystemIds> {
  const ids = await loadIds('/');
  return { uid: ids.uid(user), gid: ids.gid(group) };
}

/**
 * Create `path` with `mode`, and any missing parent with 0755 (a recursive mkdir would give every
 * parent the leaf's mode, and a 0700 parent locks the daemons' users out).
 */
async function mkdirLeaf(path: string, mode: number, owner?: SystemIds): Promise<void> {
  await mkdir(dirname(path), { recursive: true, mode: 0o755 });
  await mkdir(path, { recursive: true, mode });
  await chmod(path, mode);
  if (owner) await chown(path, owner.uid, owner.gid);
}

/**
 * Create the spool, state and mail directories of Postfix and Dovecot under the profile's root,
 * with the owners the daemons check for: Postfix's data directory belongs to `postfix`; the mail
 * root to the profile's mail user.
 * Needs root (chown). Postfix creates the queue's subfolders itself (`postfix check`).
 */
export async function prepareMailDirs(profile: Profile): Promise<void> {
  const p = mailPaths(profile);
  const postfix = await systemIds('postfix', 'postfix');
  const mail = await systemIds(profile.mailUser.name, profile.mailUser.group);
  await mkdirLeaf(p.postfixQueueDir, 0o755);
  // The queue's subfolders, with the owners and modes of Postfix's own postfix-files. Made here,
  // they spare `postfix check` its post-install pass, which takes seconds on a fresh root.
  const postdrop = await systemIds('postfix', 'postdrop');
  const root = { uid: 0, gid: 0 };
  const queue: Array<[string, number, SystemIds]> = [
    ...['active', 'bounce', 'corrupt', 'defer', 'deferred', 'flush', 'hold', 'incoming', 'private', 'saved', 'trace'].map(
      (d): [string, number, SystemIds] => [d, 0o700, { uid: postfix.uid, gid: 0 }],
    ),
    ['maildrop', 0o1730, postdrop],
    ['public', 0o2710, postdrop],
    ['pid', 0o755, root],
  ];
  for (const [dir, mode, owner] of queue) await mkdirLeaf(`${p.postfixQueueDir}/${dir}`, mode, owner);
  await mkdirLeaf(p.postfixDataDir, 0o700, postfix);
  await mkdirLeaf(p.dovecotBaseDir, 0o755);
  await mkdirLeaf(p.dovecotStateDir, 0o750);
  await mkdirLeaf(p.mailRoot, 0o770, mail);
}

/**
 * Give staged files the owner and group the layout table names for them (dovecot/users to
 * dovecot, DKIM keys to _rspamd, …), as apply does: Dovecot's auth process and rspamd read
 * these files after dropping root. `stageTree` leaves everything owned by root.
 */
export async function applyOwners(profile: Profile, files: readonly { path: string }[]): Promise<void> {
  for (const f of files) {
    const rule = ruleFor(f.path);
    if (!rule || (rule.owner === 'root' && rule.group === 'root')) continue;
    const ids = await systemIds(rule.owner, rule.group);
    await chown(installedPath(profile, f.path), ids.uid, ids.gid);
  }
}
