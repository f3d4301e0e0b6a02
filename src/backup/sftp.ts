/**
 * A backup target on a machine of the user's, over SFTP with OpenSSH's own client (`sftp -b`,
 * batch mode: one connection per batch of commands, the first failure ends it). On the mail host
 * the connection uses a key made on the host for this one purpose (`ssh-keygen`, 0600 in 0700)
 * and accepts only the backup machine's host key the user gave: nothing is learnt on first use.
 * On the backup machine that key is meant to reach one folder and nothing else (ChrootDirectory
 * and internal-sftp: `remoteSetup` says how).
 */
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, stat, writeFile, chmod } from 'node:fs/promises';
import { hostname as osHostname, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { FORMAT_FILE, OBJECTS_DIR, SNAPSHOTS_DIR, type TargetSpec, targetText } from './format.js';
import { type SftpAccess, type StoredFile, type TargetStore, TargetError, snapshotNames } from './target.js';

type SftpSpec = Extract<TargetSpec, { kind: 'sftp' }>;

/** The mail host's key for its backup connection, and the folder it lives in (0700, under /var/lib/selfmail/backup). */
export const BACKUP_SSH_KEY = '/var/lib/selfmail/backup/ssh/id_ed25519';

/** On the backup machine: the folder the backup user is locked into (root's, as sshd requires). */
export const REMOTE_CHROOT = '/srv/selfmail-backup';

/** Local paths written into a batch line must need no quoting rules beyond plain double quotes. */
const PLAIN_PATH = /^[A-Za-z0-9._/@+-]+$/;

/** One batch's output, by the command that printed it (sftp echoes each as `sftp> command`). */
export function batchSections(stdout: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  let current: string[] | undefined;
  for (const line of stdout.split('\n')) {
    if (line.startsWith('sftp> ')) {
      current = [];
      out.set(line.slice(6).trim(), current);
    } else if (current && line.trim() !== '') current.push(line.replace(/\r$/, ''));
  }
  return out;
}

/** `ls -ln` lines → name and size (the fifth field; the name is the last, with the folder before it). */
export function parseLongListing(lines: readonly string[]): { name: string; size: number }[] {
  const out: { name: string; size: number }[] = [];
  for (const l of lines) {
    const f = l.trim().split(/\s+/);
    if (f.length < 9 || !/^-/.test(f[0]!)) continue;
    const size = Number(f[4]);
    const name = f.at(-1)!.split('/').at(-1)!;
    if (Number.isFinite(size)) out.push({ name, size });
  }
  return out;
}

/** `df` in sftp: the available space in KiB (the third number of its one line), if it answered. */
export function parseDfAvailable(lines: readonly string[]): number | undefined {
  for (const l of lines) {
    const f = l.trim().split(/\s+/);
    if (f.length >= 3 && f.slice(0, 3).every((x) => /^\d+$/.test(x))) return Number(f[2]);
  }
  return undefined;
}

/**
 * What a failed `sftp` said, in the user's words. Pure; `hostMode` when the mail host's own key
 * and the given host key were used (the fixes differ from those on the user's device).
 */
export function explainSftpFailure(stderr: string, spec: SftpSpec, hostMode: boolean): string {
  const where = `${spec.host}${spec.port === 22 ? '' : ` port ${spec.port}`}`;
  const url = targetText(spec);
  if (/Host key verification failed|REMOTE HOST IDENTIFICATION HAS CHANGED|No \S+ host key is known/.test(stderr)) {
    return hostMode
      ? `${where} did not show the host key given for it (--backup-host-key, or --host-key): nothing was sent. If that machine's key really changed (a reinstall), give its new one, read there: cat /etc/ssh/ssh_host_ed25519_key.pub`
      : `${where} is not in your known_hosts, or its host key changed: nothing was read. Connect once by hand (sftp ${spec.user}@${spec.host}) and compare the fingerprint with the one that machine shows (ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub there)`;
  }
  // ssh's refusal lists the methods ("user@host: Permission denied (publickey)."); a file the
  // SFTP server may not write says "Permission denied" alone, and is no matter of keys.
  if (/Permission denied \(/.test(stderr)) {
    return hostMode
      ? `${where} refuses this host's backup key for ${spec.user}: set that machine up for it (selfmail backup --remote-setup --to ${url} prints the key and the lines to run there)`
      : `${where} refuses your SSH key for ${spec.user}: that user takes only the keys in its authorized keys file on the backup machine`;
  }
  const reach = /(Connection refused|Connection timed out|No route to host|Network is unreachable|Could not resolve hostname[^\n]*|Name or service not known|Temporary failure in name resolution|Connection reset by peer|Connection closed by remote host|Broken pipe|Timeout, server [^\n]* not responding)/.exec(stderr);
  if (reach) return `cannot reach the backup machine ${where}: ${reach[1]!.trim()}`;
  const missing = /(?:stat remote|remote readdir\([^)]*\)|Can't change directory|chdir)[^\n]*No such file or directory/.exec(stderr) ?? /No such file or directory/.exec(stderr);
  if (missing) return `the folder ${spec.path} does not exist on ${where} (as its SFTP server shows it: inside the chroot)`;
  const last = stderr.trim().split('\n').filter(Boolean).slice(-3).join('; ');
  return `sftp to ${where} failed${last ? `: ${last}` : ''}`;
}

/** Double-quoted for a batch line; every path reaching here is plain (checked by the caller). */
const q = (s: string) => `"${s}"`;

export class SftpTarget implements TargetStore {
  readonly label: string;
  private madeDirs = new Set<string>();
  private n = 0;

  private constructor(
    readonly spec: SftpSpec,
    private readonly access: SftpAccess,
    private readonly work: string,
  ) {
    this.label = targetText(spec);
  }

  static async open(spec: SftpSpec, access: SftpAccess): Promise<SftpTarget> {
    const work = await mkdtemp(join(tmpdir(), 'selfmail-sftp-'));
    if (!PLAIN_PATH.test(work)) {
      await rm(work, { recursive: true, force: true });
      throw new TargetError(`the temporary folder ${JSON.stringify(work)} has characters an sftp batch cannot name; set TMPDIR to a plain path`);
    }
    const t = new SftpTarget(spec, access, work);
    if (access.hostKeyLine) {
      const host = spec.port === 22 ? spec.host : `[${spec.host}]:${spec.port}`;
      await writeFile(join(work, 'known_hosts'), `${host} ${access.hostKeyLine}\n`, { mode: 0o600 });
    }
    return t;
  }

  private get hostMode(): boolean {
    return this.access.hostKeyLine !== undefined;
  }

  /** Run one batch (after `cd` into the target's folder); throws TargetError with the reason. */
  private async batch(lines: readonly string[], timeout = 120_000): Promise<{ stdout: string; stderr: string; failed: boolean }> {
    const file = join(this.work, `batch-${this.n++}`);
    await writeFile(file, [`cd ${q(this.spec.path)}`, ...lines, ''].join('\n'), { mode: 0o600 });
    const args = ['-b', file, '-o', 'BatchMode=yes', '-o', 'ConnectTimeout=20', '-o', 'ServerAliveInterval=15', '-o', 'ServerAliveCountMax=4', '-o', 'LogLevel=ERROR', '-o', 'StrictHostKeyChecking=yes', '-P', String(this.spec.port)];
    if (this.hostMode) {
      args.push('-o', `UserKnownHostsFile=${join(this.work, 'known_hosts')}`, '-o', 'GlobalKnownHostsFile=/dev/null', '-o', 'IdentitiesOnly=yes', '-o', 'IdentityAgent=none', '-o', 'UpdateHostKeys=no');
      if (this.access.keyFile) args.push('-i', this.access.keyFile);
    }
    args.push(`${this.spec.user}@${this.spec.host.includes(':') ? `[${this.spec.host}]` : this.spec.host}`);
    const { execa } = await import('execa');
    const r = await execa('sftp', args, { reject: false, timeout, encoding: 'utf8', stdin: 'ignore' });
    await rm(file, { force: true });
    if ((r as { code?: string }).code === 'ENOENT') throw new TargetError('sftp is not installed: install the Debian package openssh-client (apt-get install openssh-client)');
    if (r.timedOut) throw new TargetError(`the backup machine ${this.spec.host} did not finish within ${timeout / 1000} s`);
    return { stdout: String(r.stdout ?? ''), stderr: String(r.stderr ?? ''), failed: r.exitCode !== 0 };
  }

  private fail(stderr: string): never {
    throw new TargetError(explainSftpFailure(stderr, this.spec, this.hostMode));
  }

  async inspect() {
    const local = join(this.work, 'FORMAT');
    const r = await this.batch([`-get ${q(FORMAT_FILE)} ${q(local)}`, 'ls -1a']);
    if (r.failed) this.fail(r.stderr);
    const format = (await readFile(local, 'utf8').catch(() => undefined))?.trim();
    await rm(local, { force: true });
    const entries = (batchSections(r.stdout).get('ls -1a') ?? []).map((l) => l.trim().split('/').at(-1)!).filter((n) => n !== '.' && n !== '..');
    return { format, entries: entries.length };
  }

  async objects() {
    // One listing per prefix folder, in one connection; a prefix not there yet is skipped.
    const prefixes = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));
    const r = await this.batch(prefixes.map((p) => `-ls -1 ${q(`${OBJECTS_DIR}/${p}`)}`), 10 * 60_000);
    if (r.failed) this.fail(r.stderr);
    const present = new Set<string>();
    for (const [cmd, lines] of batchSections(r.stdout)) {
      if (!cmd.startsWith('-ls -1 ')) continue;
      for (const l of lines) {
        const name = l.trim().split('/').at(-1)!;
        if (/^[0-9a-f]{64}\.age$/.test(name)) present.add(name.slice(0, -4));
      }
    }
    return present;
  }

  async snapshots() {
    const r = await this.batch([`-ls -ln ${q(SNAPSHOTS_DIR)}`]);
    if (r.failed) this.fail(r.stderr);
    const listing = parseLongListing(batchSections(r.stdout).get(`-ls -ln ${q(SNAPSHOTS_DIR)}`) ?? []);
    const sizes = new Map(listing.map((e) => [e.name, e.size]));
    return snapshotNames(listing.map((e) => e.name)).map((name) => ({ name, size: sizes.get(`${name}.age`) ?? 0 }));
  }

  async fetch(paths: readonly string[]) {
    const out = new Map<string, Uint8Array>();
    if (paths.length === 0) return out;
    const dir = await mkdtemp(join(this.work, 'get-'));
    try {
      const r = await this.batch(paths.map((p, i) => `-get ${q(p)} ${q(join(dir, String(i)))}`), 30 * 60_000);
      if (r.failed) this.fail(r.stderr);
      for (const [i, p] of paths.entries()) {
        const data = await readFile(join(dir, String(i))).catch(() => undefined);
        if (data) out.set(p, data);
      }
      return out;
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  async store(files: readonly StoredFile[]) {
    if (files.length === 0) return;
    const dir = await mkdtemp(join(this.work, 'put-'));
    const lines: string[] = [];
    const temps: string[] = [];
    let bytes = 0;
    try {
      for (const [i, f] of files.entries()) {
        const local = join(dir, String(i));
        await writeFile(local, f.data, { mode: 0o600 });
        bytes += f.data.length;
        // Each folder once per connection's life; "-" because it may exist already.
        const parts = f.path.split('/').slice(0, -1);
        for (let k = 1; k <= parts.length; k++) {
          const d = parts.slice(0, k).join('/');
          if (!this.madeDirs.has(d)) {
            lines.push(`-mkdir ${q(d)}`);
            this.madeDirs.add(d);
          }
        }
        const tmp = `${f.path}.tmp-${randomBytes(4).toString('hex')}`;
        temps.push(tmp);
        lines.push(`put ${q(local)} ${q(tmp)}`, `rename ${q(tmp)} ${q(f.path)}`);
      }
      const r = await this.batch(lines, 60 * 60_000);
      if (!r.failed) return;
      if (!/write remote|Couldn't write|upload|Failure|No space|quota/i.test(r.stderr)) this.fail(r.stderr);
      // A write failed on the way: take away what this batch left under temporary names, and
      // ask the machine for its free space to tell a full disk from another fault.
      const after = await this.batch([...temps.map((t) => `-rm ${q(t)}`), 'df .']).catch(() => undefined);
      const avail = after ? parseDfAvailable(batchSections(after.stdout).get('df .') ?? []) : undefined;
      const at = /write remote "?([^":]+)"?/.exec(r.stderr)?.[1]?.split('/').slice(-3).join('/') ?? 'a file';
      const why = avail !== undefined && avail * 1024 < Math.max(bytes, 1024 * 1024) ? 'the backup target is full' : `writing to the backup target failed (${r.stderr.trim().split('\n').at(-1)})`;
      throw new TargetError(`${why} while writing ${at.replace(/\.tmp-[0-9a-f]+$/, '')}; nothing of the earlier backups was touched, and this run wrote no snapshot`);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  async close() {
    await rm(this.work, { recursive: true, force: true });
  }
}

/**
 * The mail host's backup key: made here with ssh-keygen the first time (principle 1), 0600 in a
 * 0700 folder; returns its path and public line.
 */
export async function ensureBackupKey(root: string): Promise<{ keyFile: string; publicKey: string; made: boolean }> {
  const keyFile = root + BACKUP_SSH_KEY;
  const have = await stat(keyFile).catch(() => undefined);
  if (!have) {
    for (const d of [dirname(dirname(keyFile)), dirname(keyFile)]) {
      await mkdir(d, { recursive: true, mode: 0o700 });
      await chmod(d, 0o700);
    }
    const { run } = await import('../tools/run.js');
    await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', `selfmail-backup@${osHostname()}`, '-f', keyFile]);
  }
  const publicKey = (await readFile(`${keyFile}.pub`, 'utf8')).trim();
  return { keyFile, publicKey, made: !have };
}

/** What the backup machine needs, as the lines a person runs there (Debian, as root). Pure. */
export function remoteSetup(spec: SftpSpec, publicKey: string): { sshdConfig: string; confFile: string; keysFile: string; keysLine: string; script: string } {
  const u = spec.user;
  const keysFile = `/etc/ssh/authorized_keys.${u}`;
  const confFile = `/etc/ssh/sshd_config.d/${u === 'selfmail-backup' ? u : `selfmail-backup-${u}`}.conf`;
  const keysLine = `restrict ${publicKey}`;
  const sshdConfig = [
    `# selfmail: ${u} reaches ${REMOTE_CHROOT}${spec.path} over SFTP and nothing else.`,
    `Match User ${u}`,
    `    ChrootDirectory ${REMOTE_CHROOT}`,
    `    ForceCommand internal-sftp -d ${spec.path} -u 0077`,
    `    AuthorizedKeysFile ${keysFile}`,
    '    PasswordAuthentication no',
    '    KbdInteractiveAuthentication no',
    '    AllowTcpForwarding no',
    '    AllowAgentForwarding no',
    '    AllowStreamLocalForwarding no',
    '    PermitTunnel no',
    '    X11Forwarding no',
    '    PermitTTY no',
    '',
  ].join('\n');
  const script = [
    `useradd --system --user-group --home-dir ${REMOTE_CHROOT} --no-create-home --shell /usr/sbin/nologin ${u}`,
    `install -d -m 0755 -o root -g root ${REMOTE_CHROOT}`,
    `install -d -m 0700 -o ${u} -g ${u} ${REMOTE_CHROOT}${spec.path}`,
    `echo '${keysLine}' > ${keysFile}`,
    `cat > ${confFile} <<'EOF'`,
    sshdConfig.trimEnd(),
    'EOF',
    'sshd -t && systemctl reload ssh',
    '# and the line to give selfmail as --backup-host-key:',
    'cat /etc/ssh/ssh_host_ed25519_key.pub',
    '',
  ].join('\n');
  return { sshdConfig, confFile, keysFile, keysLine, script };
}
