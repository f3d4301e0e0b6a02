/**
 * fail2ban (principle 5: password guessing is throttled): jails for Postfix SASL logins, Dovecot,
 * sshd, and recidive for those who come back. Bans go through nftables in fail2ban's own table,
 * beside ours. Debian 12 and 13 log to the journal only, so the service jails read it (python3-systemd).
 */
import { appendFile, cp, mkdir, readdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { BuildContext, BundleFile, ServiceModule } from '../bundle/types.js';
import { textFile } from '../bundle/types.js';
import type { Profile } from '../bundle/layout.js';
import { sysPath } from '../bundle/layout.js';
import { render } from '../render/index.js';
import { run } from '../tools/run.js';
import { SSH_PORT } from '../nftables/index.js';

export const JAIL_PATH = 'fail2ban/jail.d/selfmail.local';
/** Debian's Dovecot filter plus Dovecot 2.4's wording (templates/fail2ban/selfmail-dovecot.conf.hbs). */
export const DOVECOT_FILTER_PATH = 'fail2ban/filter.d/selfmail-dovecot.conf';

export interface Jail {
  name: string;
  filter: string;
  /** Comma-separated ports to ban (numbers), or undefined for the jail's default. */
  port?: string;
  backend: 'systemd' | 'auto';
  /**
   * With the journal backend: which journal entries the filter reads. Set for every journal jail,
   * because the filters' own defaults miss Debian's units: Postfix runs as `postfix@-.service`,
   * and sshd as `ssh.service` (Debian 12's filter looks for `sshd.service`), whose per-connection
   * processes are `sshd-session` since OpenSSH 9.8 (Debian 13). The same match fits both releases.
   */
  journalmatch?: string;
  logpath?: string;
  maxretry: number;
  findtime: string;
  bantime: string;
  banaction?: string;
}

/** The jails (pure). */
export function jails(profile: Profile): Jail[] {
  const p = profile.ports;
  const mailPorts = [p.smtp, p.submissions, p.submission].join(',');
  return [
    {
      name: 'sshd',
      filter: 'sshd',
      port: String(SSH_PORT),
      backend: 'systemd',
      journalmatch: '_SYSTEMD_UNIT=ssh.service + _COMM=sshd + _COMM=sshd-session',
      maxretry: 3,
      findtime: '10m',
      bantime: '1h',
    },
    {
      name: 'postfix-sasl',
      filter: 'postfix[mode=auth]',
      port: mailPorts,
      backend: 'systemd',
      journalmatch: '_SYSTEMD_UNIT=postfix@-.service',
      maxretry: 5,
      findtime: '10m',
      bantime: '1h',
    },
    {
      name: 'dovecot',
      filter: 'selfmail-dovecot',
      port: [p.imaps, p.submissions, p.submission].join(','),
      backend: 'systemd',
      journalmatch: '_SYSTEMD_UNIT=dovecot.service',
      maxretry: 5,
      findtime: '10m',
      bantime: '1h',
    },
    {
      name: 'recidive',
      filter: 'recidive',
      backend: 'auto',
      logpath: sysPath(profile, '/var/log/fail2ban.log'),
      maxretry: 3,
      findtime: '1d',
      bantime: '1w',
      banaction: 'nftables-allports',
    },
  ];
}

export const fail2banService: ServiceModule = {
  name: 'fail2ban',
  async build(ctx: BuildContext): Promise<BundleFile[]> {
    // Strict templates: every field present, '' for "not set".
    const data = jails(ctx.profile).map((j) => ({ ...j, port: j.port ?? '', journalmatch: j.journalmatch ?? '', logpath: j.logpath ?? '', banaction: j.banaction ?? '' }));
    const text = await render('fail2ban', 'selfmail.local', { jails: data });
    return [
      textFile(JAIL_PATH, text, 'fail2ban jails: postfix-sasl, dovecot, sshd, recidive'),
      textFile(DOVECOT_FILTER_PATH, await render('fail2ban', 'selfmail-dovecot.conf', {}), "fail2ban's Dovecot filter with Dovecot 2.4's wording"),
    ];
  },
  async check(ctx: BuildContext): Promise<void> {
    const root = ctx.profile.root;
    if (!root) throw new Error('the fail2ban check needs a scratch root; it never runs against /etc');
    const confdir = join(root, 'etc/fail2ban');
    // fail2ban's own filters and actions from the installed package, so ours resolve; the host's
    // own jail.d and jail.local are left out so that only our jails are tested.
    for (const entry of await readdir('/etc/fail2ban')) {
      if (entry === 'jail.d' || entry === 'jail.local') continue;
      await cp(join('/etc/fail2ban', entry), join(confdir, entry), { recursive: true, force: false, errorOnExist: false });
    }
    // Jails that read files need them to exist; on a host fail2ban's own log always does.
    for (const j of jails(ctx.profile)) {
      if (!j.logpath) continue;
      await mkdir(dirname(j.logpath), { recursive: true });
      await appendFile(j.logpath, '');
    }
    // fail2ban-client -t passes even when the journal backend cannot load: init's preflight
    // (src/tools/preflight.ts) and apply's validators ask Python for python3-systemd.
    await run('fail2ban-client', ['-c', confdir, '-t']);
  },
};
