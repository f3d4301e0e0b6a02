/**
 * The mail account: every mailbox is stored as one unprivileged system user (`vmail`), which no
 * Debian package creates. `apply` creates it (no shell, no password, home = the mail root) and
 * the mail root it owns, with the system's own `useradd`.
 */
import { chmod, chown, mkdir, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { productionProfile } from '../bundle/layout.js';
import type { Ids } from '../bundle/owners.js';
import { mailPaths } from '../mail/paths.js';
import { run } from '../tools/run.js';

/** The production profile's mail user and the folder its mailboxes live in. */
export function mailAccount(): { user: string; group: string; home: string } {
  const profile = productionProfile({ ipv4: '192.0.2.1' });
  return { user: profile.mailUser.name, group: profile.mailUser.group, home: mailPaths(profile).mailRoot };
}

/** Mailboxes are readable by the mail user only: Dovecot's processes run as it, Postfix hands mail over LMTP. */
export const MAIL_ROOT_MODE = 0o700;

/** useradd's arguments for the mail account under `root` (`--prefix` edits `<root>/etc` without chrooting). Pure. */
export function useraddArgs(root: string, groupExists: boolean): string[] {
  const a = mailAccount();
  return [
    ...(root === '/' ? [] : ['--prefix', root]),
    '--system',
    ...(groupExists ? ['--gid', a.group] : ['--user-group']),
    '--home-dir',
    a.home,
    '--no-create-home',
    '--shell',
    '/usr/sbin/nologin',
    '--comment',
    'selfmail mailboxes',
    a.user,
  ];
}

/** Does the system under `root` lack the mail account? */
export function mailAccountMissing(ids: Ids): boolean {
  try {
    ids.uid(mailAccount().user);
    return false;
  } catch {
    return true;
  }
}

/** Create the mail account under `root`; the group too unless it exists. */
export async function createMailAccount(root: string, ids: Ids): Promise<void> {
  let groupExists = true;
  try {
    ids.gid(mailAccount().group);
  } catch {
    groupExists = false;
  }
  await run('useradd', useraddArgs(root, groupExists));
}

/** Undo createMailAccount (a failed apply leaves no account behind). */
export async function removeMailAccount(root: string): Promise<void> {
  await run('userdel', [...(root === '/' ? [] : ['--prefix', root]), mailAccount().user]);
}

/**
 * The mail root, owned by the mail account, mode 0700. Returns true when it was created or its
 * owner or mode repaired; never touches what is inside it.
 */
export async function ensureMailRoot(root: string, ids: Ids): Promise<boolean> {
  const a = mailAccount();
  const dir = join(root, a.home);
  const uid = ids.uid(a.user);
  const gid = ids.gid(a.group);
  let st;
  try {
    st = await stat(dir);
  } catch {
    st = undefined;
  }
  if (st && st.uid === uid && st.gid === gid && (st.mode & 0o7777) === MAIL_ROOT_MODE) return false;
  await mkdir(dirname(dir), { recursive: true, mode: 0o755 });
  await mkdir(dir, { recursive: true, mode: MAIL_ROOT_MODE });
  await chown(dir, uid, gid);
  await chmod(dir, MAIL_ROOT_MODE);
  return true;
}
