/**
 * Before a command starts its work: every program it will run is installed, or one message names
 * all that are missing with the one `apt-get install` line that fixes it (never one tool at a time).
 */
import { ToolError } from '../errors.js';
import { PACKAGE_OF, hasTool } from './run.js';

/** What `selfmail init` runs: the signer and every checker of the generated configuration. */
export const INIT_TOOLS = [
  'ldns-signzone',
  'ldns-verify-zone',
  'named-checkzone',
  'dnssec-verify',
  'nsd-checkconf',
  'nsd-checkzone',
  'postconf',
  'postfix',
  'dovecot',
  'doveconf',
  'nft',
  'sshd',
  'ssh-keygen',
  'unbound-checkconf',
  'fail2ban-client',
  'rspamadm',
  'nginx',
  'bash',
  'sh',
  'unshare',
] as const;

/** The Debian packages that provide `missing`, sorted, each once. Pure. */
export function packagesFor(missing: readonly string[]): string[] {
  return [...new Set(missing.map((t) => PACKAGE_OF[t] ?? t))].sort();
}

/** Something a command needs that is not a program on PATH (a Python module fail2ban imports). */
export interface Requirement {
  name: string;
  pkg: string;
  present: () => Promise<boolean>;
}

/**
 * fail2ban reads the journal through python3-systemd. Without it the server starts no jail at all
 * (`Backend 'systemd' failed to initialize`), while `fail2ban-client -t` still passes: so ask
 * fail2ban's own interpreter (its scripts start with #!/usr/bin/python3, not whichever python3 is
 * first on PATH).
 */
export const JOURNAL_BACKEND_CHECK = { cmd: '/usr/bin/python3', args: ['-c', 'import systemd.journal'] } as const;

/** Where Debian's python3-systemd puts the module (both releases). */
export const DEBIAN_JOURNAL_MODULE = '/usr/lib/python3/dist-packages/systemd/journal.py';

export const JOURNAL_MODULE: Requirement = {
  name: 'python3-systemd (for fail2ban)',
  pkg: 'python3-systemd',
  present: async () => {
    // Debian's python3-systemd, found without starting Python (a tenth of a second); anywhere
    // else (pip, another prefix), Python itself is asked.
    const { access } = await import('node:fs/promises');
    if (await access(DEBIAN_JOURNAL_MODULE).then(() => true, () => false)) return true;
    const { run } = await import('./run.js');
    return run(JOURNAL_BACKEND_CHECK.cmd, [...JOURNAL_BACKEND_CHECK.args]).then(
      () => true,
      () => false,
    );
  },
};

/** Throw one ToolError naming every program of `tools` (and requirement) that is missing, and the fix. */
export async function requireTools(tools: readonly string[], what: string, more: readonly Requirement[] = []): Promise<void> {
  const missing: string[] = [];
  const pkgs: string[] = [];
  for (const t of new Set(tools)) if (!(await hasTool(t))) missing.push(t);
  for (const r of more) {
    if (await r.present()) continue;
    missing.push(r.name);
    pkgs.push(r.pkg);
  }
  if (missing.length === 0) return;
  pkgs.push(...packagesFor(missing.filter((m) => !more.some((r) => r.name === m))));
  pkgs.sort();
  throw new ToolError(
    `${what} needs programs that are not installed: ${missing.join(', ')}.\n` +
      `Install them with: apt-get install ${pkgs.join(' ')}\n` +
      '(or bash scripts/install-debian-packages.sh from selfmail\'s source, which installs everything a mail host needs)',
    'selfmail',
  );
}
