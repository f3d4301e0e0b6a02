/**
 * SSH hardening (principle 5): a drop-in for Debian's sshd_config.d that allows keys only, root
 * only with a key, and modern algorithms. Debian's main sshd_config includes the drop-ins before
 * its own settings, and sshd keeps the first value it reads, so these settings win.
 */
import { access, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { BuildContext, BundleFile, ServiceModule } from '../bundle/types.js';
import { textFile } from '../bundle/types.js';
import { installedPath } from '../bundle/layout.js';
import { render } from '../render/index.js';
import { run } from '../tools/run.js';

export const SSHD_DROPIN_PATH = 'ssh/sshd_config.d/selfmail.conf';

/**
 * Algorithms for OpenSSH 9.2 (Debian 12) and later: post-quantum hybrid and X25519 key exchange,
 * AEAD ciphers, encrypt-then-MAC only, Ed25519 and RSA-SHA2 host keys. No SHA-1, no NIST curves
 * from a non-hybrid ECDH, no CBC.
 */
export const SSH_ALGORITHMS = {
  kex: [
    'sntrup761x25519-sha512@openssh.com',
    'curve25519-sha256',
    'curve25519-sha256@libssh.org',
    'diffie-hellman-group16-sha512',
    'diffie-hellman-group18-sha512',
  ],
  ciphers: ['chacha20-poly1305@openssh.com', 'aes256-gcm@openssh.com', 'aes128-gcm@openssh.com', 'aes256-ctr', 'aes192-ctr', 'aes128-ctr'],
  macs: ['hmac-sha2-512-etm@openssh.com', 'hmac-sha2-256-etm@openssh.com', 'umac-128-etm@openssh.com'],
  hostKeys: [
    'ssh-ed25519',
    'ssh-ed25519-cert-v01@openssh.com',
    'sk-ssh-ed25519@openssh.com',
    'sk-ssh-ed25519-cert-v01@openssh.com',
    'rsa-sha2-512',
    'rsa-sha2-512-cert-v01@openssh.com',
    'rsa-sha2-256',
    'rsa-sha2-256-cert-v01@openssh.com',
  ],
} as const;

/** Render the sshd drop-in (pure apart from reading the template). */
export async function renderSshd(): Promise<string> {
  return render('ssh', 'selfmail.conf', {
    kex: SSH_ALGORITHMS.kex.join(','),
    ciphers: SSH_ALGORITHMS.ciphers.join(','),
    macs: SSH_ALGORITHMS.macs.join(','),
    hostKeys: SSH_ALGORITHMS.hostKeys.join(','),
  });
}

export const sshService: ServiceModule = {
  name: 'ssh',
  async build(): Promise<BundleFile[]> {
    return [textFile(SSHD_DROPIN_PATH, await renderSshd(), 'SSH hardening: keys only, modern algorithms')];
  },
  async check(ctx: BuildContext): Promise<void> {
    const root = ctx.profile.root;
    if (!root) throw new Error('the SSH check needs a scratch root; it never runs against /etc');
    const dir = join(root, 'selfmail-check', 'ssh');
    await mkdir(dir, { recursive: true });
    const hostKey = join(dir, 'ssh_host_ed25519_key');
    try {
      await access(hostKey);
    } catch {
      // A throwaway host key: sshd -t refuses a config without one.
      await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'selfmail-check', '-f', hostKey]);
    }
    const main = join(dir, 'sshd_config');
    await writeFile(
      main,
      [
        `Include ${installedPath(ctx.profile, SSHD_DROPIN_PATH)}`,
        `HostKey ${hostKey}`,
        `PidFile ${join(dir, 'sshd.pid')}`,
        // Debian's own main file, in short: the drop-in must hold its own against it.
        'KbdInteractiveAuthentication no',
        'UsePAM yes',
        'X11Forwarding yes',
        'PrintMotd no',
        'AcceptEnv LANG LC_*',
        'Subsystem sftp /usr/lib/openssh/sftp-server',
        '',
      ].join('\n'),
    );
    await ensurePrivsepDir();
    await run('sshd', ['-t', '-f', main]);
  },
};

/**
 * sshd -t run as root insists on its privilege-separation directory, which ssh.service creates
 * at start (RuntimeDirectory=sshd). On a machine where sshd never ran (a container, CI) create
 * it the same way: an empty root-owned folder, nothing else changes.
 */
async function ensurePrivsepDir(): Promise<void> {
  if (process.getuid?.() !== 0) return;
  await mkdir('/run/sshd', { recursive: true, mode: 0o755 });
}

/** Settings `sshd -T` must report for the drop-in to have taken effect (lower-case keys). */
export const SSHD_EFFECTIVE: Record<string, string> = {
  passwordauthentication: 'no',
  kbdinteractiveauthentication: 'no',
  permitrootlogin: 'without-password',
  pubkeyauthentication: 'yes',
  permitemptypasswords: 'no',
  x11forwarding: 'no',
  authenticationmethods: 'publickey',
};
