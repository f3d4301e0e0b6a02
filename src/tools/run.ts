/**
 * The one way selfmail runs an external program: execa, arguments as an array (never a shell),
 * a timeout, and a clear error naming the Debian package when the program is missing.
 */
import { ToolError } from '../errors.js';

/** Which Debian package provides each program we call. */
export const PACKAGE_OF: Record<string, string> = {
  postfix: 'postfix',
  postconf: 'postfix',
  postmap: 'postfix',
  doveconf: 'dovecot-core',
  doveadm: 'dovecot-core',
  dovecot: 'dovecot-core',
  nsd: 'nsd',
  'nsd-checkconf': 'nsd',
  'nsd-checkzone': 'nsd',
  'nsd-control': 'nsd',
  script: 'bsdutils',
  'ldns-signzone': 'ldnsutils',
  'ldns-verify-zone': 'ldnsutils',
  'ldns-key2ds': 'ldnsutils',
  'ldns-keygen': 'ldnsutils',
  'ldns-read-zone': 'ldnsutils',
  'named-checkzone': 'bind9-utils',
  'named-checkconf': 'bind9-utils',
  'dnssec-signzone': 'bind9-utils',
  'dnssec-verify': 'bind9-utils',
  'dnssec-dsfromkey': 'bind9-utils',
  dig: 'bind9-dnsutils',
  delv: 'bind9-dnsutils',
  unbound: 'unbound',
  'unbound-checkconf': 'unbound',
  nft: 'nftables',
  unshare: 'util-linux',
  sshd: 'openssh-server',
  'ssh-keygen': 'openssh-client',
  ssh: 'openssh-client',
  sftp: 'openssh-client',
  age: 'age',
  'age-keygen': 'age',
  curl: 'curl',
  'fail2ban-client': 'fail2ban',
  rspamadm: 'rspamd',
  rspamd: 'rspamd',
  'redis-server': 'redis-server',
  'fail2ban-regex': 'fail2ban',
  nginx: 'nginx-light',
  swaks: 'swaks',
  gpg: 'gnupg',
  gpgconf: 'gnupg',
  openssl: 'openssl',
  bash: 'bash',
  sh: 'dash',
  sha256sum: 'coreutils',
  diff: 'diffutils',
  runuser: 'util-linux',
  systemctl: 'systemd',
  '/usr/bin/python3': 'python3',
  useradd: 'passwd',
  userdel: 'passwd',
  journalctl: 'systemd',
  debootstrap: 'debootstrap',
  'systemd-nspawn': 'systemd-container',
  ip: 'iproute2',
  nsenter: 'util-linux',
  wg: 'wireguard-tools',
  'wg-quick': 'wireguard-tools',
  testssl: 'testssl.sh',
  drill: 'ldnsutils',
  sievec: 'dovecot-sieve',
  rspamc: 'rspamd',
};

export interface RunOptions {
  /** Milliseconds; default 60 s. */
  timeout?: number;
  input?: string | Buffer;
  cwd?: string;
  env?: Record<string, string>;
  /** Exit codes that are not failures (default only 0). */
  okCodes?: number[];
}

export interface RunResult {
  stdout: string;
  stderr: string;
  exitCode: number;
}

/**
 * Run `cmd` with `args`. Throws ToolError when the program is missing (naming its package), times
 * out, or exits with a code outside `okCodes`. Arguments must never carry secrets: they are
 * visible to every user of the machine in the process list.
 */
export async function run(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const { execa } = await import('execa');
  const okCodes = opts.okCodes ?? [0];
  const result = await execa(cmd, args, {
    reject: false,
    timeout: opts.timeout ?? 60_000,
    input: opts.input,
    cwd: opts.cwd,
    env: opts.env,
    extendEnv: true,
    stripFinalNewline: false,
    encoding: 'utf8',
  });
  const stdout = String(result.stdout ?? '');
  const stderr = String(result.stderr ?? '');
  const code = (result as { code?: string }).code;
  if (code === 'ENOENT' || (result.failed && result.exitCode === undefined && /ENOENT/.test(String(result.message)))) {
    const pkg = PACKAGE_OF[cmd];
    throw new ToolError(
      `${cmd} is not installed${pkg ? `: install the Debian package ${pkg} (apt-get install ${pkg})` : ''}`,
      cmd,
    );
  }
  if (result.timedOut) {
    throw new ToolError(`${cmd} did not finish within ${(opts.timeout ?? 60_000) / 1000} s`, cmd, stdout + stderr);
  }
  const exitCode = result.exitCode ?? -1;
  if (!okCodes.includes(exitCode)) {
    const out = (stderr + stdout).trim();
    throw new ToolError(`${cmd} ${args[0] ?? ''} failed (exit ${exitCode})${out ? `:\n${out}` : ''}`, cmd, out);
  }
  return { stdout, stderr, exitCode };
}

/** True when `cmd` can be found on PATH (or in /usr/sbin, where Debian puts daemons). */
export async function hasTool(cmd: string): Promise<boolean> {
  const { access } = await import('node:fs/promises');
  const { constants } = await import('node:fs');
  const dirs = (process.env.PATH ?? '').split(':').concat(['/usr/sbin', '/sbin']);
  for (const d of dirs) {
    try {
      await access(`${d}/${cmd}`, constants.X_OK);
      return true;
    } catch {
      // not in this directory; keep looking
    }
  }
  return false;
}
