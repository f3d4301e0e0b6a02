/**
 * The directories the mail daemons expect before they start, created under a profile's root.
 * Used by the checks (Postfix refuses to check a config whose queue directory is missing) and
 * by the rehearsal and apply, which start the daemons. I/O only; the names come from paths.ts.
 */
import { chown, mkdir, readFile } from 'node:fs/promises';
import type { Profile } from '../bundle/layout.js';
import { mailPaths } from '../mail/paths.js';

export interface SystemIds {
  uid: number;
  gid: number;
}

/** The uid of a user and the gid of a group, from /etc/passwd and /etc/group. */
export async function systemIds(user: string, group: string): Promise<SystemIds> {
  const field = async (file: string, name: string): Promise<number> => {
    const text = await readFile(file, 'utf8');
    for (const line of text.split('\n')) {
      const parts = line.split(':');
      if (parts[0] === name && parts[2] !== undefined) return Number(parts[2]);
    }
    throw new Error(`no ${file === '/etc/passwd' ? 'user' : 'group'} named ${name} on this system`);
  };
  return { uid: await field('/etc/passwd', user), gid: await field('/etc/group', group) };
}

/**
 * Create the spool, state and mail directories of Postfix, Dovecot and OpenDKIM under the
 * profile's root, with the owners the daemons check for: Postfix's data directory belongs to
 * `postfix`; the mail root to the profile's mail user; OpenDKIM's run directory to `opendkim`.
 * Needs root (chown). Postfix creates the queue's subfolders itself (`postfix check`).
 */
export async function prepareMailDirs(profile: Profile): Promise<void> {
  const p = mailPaths(profile);
  await mkdir(p.postfixQueueDir, { recursive: true, mode: 0o755 });
  await mkdir(p.postfixDataDir, { recursive: true, mode: 0o700 });
  const postfix = await systemIds('postfix', 'postfix');
  await chown(p.postfixDataDir, postfix.uid, postfix.gid);
  await mkdir(p.dovecotBaseDir, { recursive: true, mode: 0o755 });
  await mkdir(p.dovecotStateDir, { recursive: true, mode: 0o750 });
  await mkdir(p.mailRoot, { recursive: true, mode: 0o770 });
  const mail = await systemIds(profile.mailUser.name, profile.mailUser.group);
  await chown(p.mailRoot, mail.uid, mail.gid);
  await mkdir(p.opendkimRunDir, { recursive: true, mode: 0o750 });
  const opendkim = await systemIds('opendkim', 'opendkim');
  await chown(p.opendkimRunDir, opendkim.uid, opendkim.gid);
}
