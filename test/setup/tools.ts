/**
 * Before any test: every program the suite runs must be installed. A missing one fails the run
 * at once with the Debian packages to install (scripts/install-debian-packages.sh does it); no
 * test is ever skipped for want of a tool.
 */
import { PACKAGE_OF, hasTool } from '../../src/tools/run.js';

const NEEDED = [
  'postfix', 'postconf', 'postmap', 'doveconf', 'doveadm', 'dovecot', 'nsd', 'nsd-checkconf', 'nsd-checkzone',
  'nsd-control', 'ldns-signzone', 'ldns-verify-zone', 'ldns-key2ds', 'ldns-keygen', 'named-checkzone', 'dnssec-signzone',
  'dnssec-verify', 'dnssec-dsfromkey', 'dig', 'delv', 'unbound-checkconf', 'unbound', 'nft', 'sshd', 'ssh-keygen', 'fail2ban-client', 'fail2ban-regex',
  'nginx', 'openssl', 'sha256sum', 'unshare', 'runuser', 'diff', 'script', 'useradd', 'userdel', 'drill',
  // The user's own OpenPGP tool: the suite makes keys with it and compares with its view.
  'gpg', 'gpgconf',
  // Backups: the user's age, OpenSSH's sftp (the product's), curl for the Web Key Directory.
  'age', 'age-keygen', 'sftp', 'curl', 'wg', 'wg-quick', 'wireguard-go',
  // The pristine-host tier (test/host/): fresh roots, booted with systemd in namespaces of its own.
  'debootstrap', 'systemd-nspawn', 'ip', 'nsenter', 'tar', 'git', 'testssl',
];

export default async function checkTools(): Promise<void> {
  const missing: string[] = [];
  for (const tool of NEEDED) if (!(await hasTool(tool))) missing.push(tool);
  if (missing.length > 0) {
    const packages = [...new Set(missing.map((t) => PACKAGE_OF[t] ?? t))].sort();
    throw new Error(
      `the tests run the real servers and tools, and these are missing: ${missing.join(', ')}.\n` +
        `Install them with: bash scripts/install-debian-packages.sh --tests   (Debian packages: ${packages.join(' ')})`,
    );
  }
}
