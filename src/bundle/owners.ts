/**
 * User and group names → numeric ids, as the target system sees them: `<root>/etc/passwd` and
 * `<root>/etc/group` when the root carries its own, else the host's. Never creates accounts: the
 * Debian packages create theirs (_rspamd, dovecot, nsd, …), and a missing one is reported.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ToolError } from '../errors.js';

/** Which Debian package creates each service account we chown to. */
const ACCOUNT_PACKAGE: Record<string, string> = {
  _rspamd: 'rspamd',
  dovecot: 'dovecot-core',
  nsd: 'nsd',
  postfix: 'postfix',
  unbound: 'unbound',
};

/** name → id from a passwd- or group-format file (field 3 is the id in both). Pure. */
export function parseIdFile(text: string): Map<string, number> {
  const ids = new Map<string, number>();
  for (const line of text.split('\n')) {
    const f = line.split(':');
    if (f.length < 3 || !f[0] || line.startsWith('#')) continue;
    const id = Number(f[2]);
    if (Number.isInteger(id) && id >= 0 && !ids.has(f[0])) ids.set(f[0], id);
  }
  return ids;
}

async function readIds(root: string, file: 'passwd' | 'group'): Promise<Map<string, number>> {
  for (const base of root === '/' ? ['/'] : [root, '/']) {
    try {
      return parseIdFile(await readFile(join(base, 'etc', file), 'utf8'));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }
  return new Map();
}

export interface Ids {
  uid(name: string): number;
  gid(name: string): number;
  /** Names for display (reverse lookup); the number itself when unknown. */
  userName(uid: number): string;
  groupName(gid: number): string;
}

/** Load the account tables of `root`; lookups throw ToolError naming the package to install. */
export async function loadIds(root: string): Promise<Ids> {
  const users = await readIds(root, 'passwd');
  const groups = await readIds(root, 'group');
  const missing = (kind: string, name: string): never => {
    const pkg = ACCOUNT_PACKAGE[name];
    throw new ToolError(
      `the ${kind} ${name} does not exist on the target system${pkg ? `: install the Debian package ${pkg} first (apt-get install ${pkg})` : ''}`,
      'apply',
    );
  };
  const reverse = (m: Map<string, number>, id: number) => {
    for (const [k, v] of m) if (v === id) return k;
    return String(id);
  };
  return {
    uid: (name) => users.get(name) ?? missing('user', name),
    gid: (name) => groups.get(name) ?? missing('group', name),
    userName: (id) => reverse(users, id),
    groupName: (id) => reverse(groups, id),
  };
}
