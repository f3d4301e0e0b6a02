/**
 * `apply` never cuts the session it runs in, nor the only way in: before anything changes it asks
 * whether the new firewall would drop the SSH connection it runs over, and whether sshd would
 * become keys-only while no login user has an authorized key. Deciding is pure
 * (`lockoutProblems`); the facts come from the process tree and the account files.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import ipaddr from 'ipaddr.js';
import { parseCidr } from '../config/values.js';

/** Where the firewall of the bundle lets SSH in from (--admin-ssh-from), as CIDR text. */
export interface SshAdmission {
  adminSshFrom: string[];
}

export interface SessionFacts {
  /** The client address of the SSH connection this process runs under, if any. */
  sshClient?: string;
  /** Login users (uid 0 or ≥ 1000 with a login shell) and whether each has an authorized key. */
  logins: { user: string; hasKey: boolean }[];
}

/** Is `addr` inside `cidr`? Pure; false for anything that does not parse or mixes families. */
export function inCidr(addr: string, cidr: string): boolean {
  try {
    let a = ipaddr.parse(addr);
    if (a.kind() === 'ipv6' && (a as ipaddr.IPv6).isIPv4MappedAddress()) a = (a as ipaddr.IPv6).toIPv4Address();
    const range = ipaddr.parseCIDR(cidr);
    return a.kind() === range[0].kind() && a.match(range);
  } catch {
    return false;
  }
}

/** What would lock the operator out, one sentence each; empty when nothing would. Pure. */
export function lockoutProblems(admission: SshAdmission, facts: SessionFacts): string[] {
  const problems: string[] = [];
  const client = facts.sshClient;
  if (client && !admission.adminSshFrom.some((c) => inCidr(client, c))) {
    const allowed = admission.adminSshFrom.length > 0 ? `only ${admission.adminSshFrom.join(', ')}` : 'no network at all (no --admin-ssh-from)';
    problems.push(
      `this apply runs over SSH from ${client}, and the new firewall lets SSH in from ${allowed}: the session would be cut. ` +
        `Add your network to the bundle (selfmail init --out BUNDLE --admin-ssh-from ${client.includes(':') ? `${client}/128` : `${client}/32`}) or run apply from the console`,
    );
  }
  const sshReachable = client !== undefined || admission.adminSshFrom.length > 0;
  if (sshReachable && !facts.logins.some((l) => l.hasKey)) {
    const who = facts.logins.map((l) => l.user).join(', ') || 'none';
    problems.push(
      `the new SSH settings allow keys only, and no login user (${who}) has an authorized key: nobody could log in over SSH afterwards. ` +
        'Put your public key in ~/.ssh/authorized_keys of the user you log in as (ssh-copy-id from your own machine) and apply again',
    );
  }
  return problems;
}

/** The SSH client address from an environment block (`SSH_CONNECTION=addr port addr port`). */
export function sshClientOfEnviron(environ: string): string | undefined {
  for (const kv of environ.split('\0')) {
    if (!kv.startsWith('SSH_CONNECTION=')) continue;
    const addr = kv.slice('SSH_CONNECTION='.length).split(' ')[0];
    if (addr && ipaddr.isValid(addr)) return addr;
  }
  return undefined;
}

/**
 * The SSH client this process runs under: SSH_CONNECTION of this process or of the nearest
 * ancestor that has it (sudo drops it from its child's environment, not from the login shell's).
 */
export async function sshClient(pid: number = process.pid): Promise<string | undefined> {
  let current = pid;
  for (let depth = 0; depth < 64 && current > 1; depth++) {
    try {
      const client = sshClientOfEnviron(await readFile(`/proc/${current}/environ`, 'latin1'));
      if (client) return client;
      const stat = await readFile(`/proc/${current}/stat`, 'latin1');
      // Fields after the command name, which is in parentheses and may hold spaces.
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (!Number.isInteger(ppid)) return undefined;
      current = ppid;
    } catch {
      return undefined;
    }
  }
  return undefined;
}

const NO_LOGIN = /(nologin|false|sync|shutdown|halt)$/;

/** A non-empty authorized_keys file holds a key when some line is neither blank nor a comment. */
export function holdsKey(text: string): boolean {
  return text.split('\n').some((l) => l.trim() !== '' && !l.trim().startsWith('#'));
}

/** The login users of the system under `root` and whether each has an authorized key. */
export async function loginUsers(root: string): Promise<SessionFacts['logins']> {
  let passwd: string;
  try {
    passwd = await readFile(join(root, 'etc/passwd'), 'utf8');
  } catch {
    return [];
  }
  const out: SessionFacts['logins'] = [];
  for (const line of passwd.split('\n')) {
    const f = line.split(':');
    if (f.length < 7) continue;
    const [user = '', , uidText = '', , , home = '', shell = ''] = f;
    const uid = Number(uidText);
    if (!(uid === 0 || (uid >= 1000 && uid < 65534)) || NO_LOGIN.test(shell)) continue;
    let hasKey = false;
    for (const file of ['.ssh/authorized_keys', '.ssh/authorized_keys2']) {
      try {
        if (holdsKey(await readFile(join(root, home, file), 'utf8'))) hasKey = true;
      } catch {
        // no such file: no key there
      }
    }
    out.push({ user, hasKey });
  }
  return out;
}

/** The --admin-ssh-from networks recorded in a bundle's selfmail.yaml (already validated by init). */
export function admissionOf(adminSshFrom: readonly string[] | undefined): SshAdmission {
  return { adminSshFrom: (adminSshFrom ?? []).filter((c) => parseCidr(c).ok) };
}
