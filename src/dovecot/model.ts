/**
 * What Dovecot is told, as prepared values: pure, no I/O. IMAP over implicit TLS only, LMTP and
 * auth sockets for Postfix, Maildir owned by the profile's mail user.
 */
import type { Profile } from '../bundle/layout.js';
import { releaseInfo } from '../config/release.js';
import type { Config, Email } from '../config/types.js';
import type { TlsKey } from '../keys/types.js';
import { BUNDLE, installed, mailPaths } from '../mail/paths.js';
import { CLIENT_CIPHER_STRING } from '../tls/policy.js';

/** Simultaneous IMAP connections per user and client address. */
export const MAX_USERIP_CONNECTIONS = 10;

export interface DovecotUser {
  user: Email;
  hash: string;
  /** The extra userdb field of its line: the storage limit, when it has one. */
  extra: string;
}

export interface DovecotModel {
  /** The script a mailbox's quota warning runs, and at which share of the limit. */
  quotaWarningScript: string;
  quotaWarnPercent: number;
  /** The host name Dovecot names itself by (LMTP Received headers, greetings). */
  hostname: string;
  /** `listen` value: the host's own addresses. */
  listen: string;
  imapsPort: number;
  baseDir: string;
  stateDir: string;
  tlsKey: string;
  tlsCert: string;
  usersFile: string;
  lmtpSocket: string;
  authSocket: string;
  mailRoot: string;
  mailUser: string;
  mailGroup: string;
  postmaster: Email;
  maxUserIpConnections: number;
  users: DovecotUser[];
  /** TLS 1.2 suites (src/tls/policy.ts). */
  clientCiphers: string;
  managesievePort: number;
  /** The global Sieve scripts and the folder of the programs they may pipe to, as installed. */
  sieve: { spamToJunk: string; learnSpam: string; learnHam: string; binDir: string; binCache: string };
  /** Postfix's loopback listener Sieve's vacation replies leave through (`host:port`). */
  submissionHost: string;
  /** rspamd's controller the learning program hands messages to (`host:port`). */
  spamController: string;
}

/** Bundle paths of the Sieve scripts every mailbox runs, and of the one program they pipe to. */
export const SIEVE = {
  spamToJunk: 'dovecot/sieve/spam-to-junk.sieve',
  learnSpam: 'dovecot/sieve/learn-spam.sieve',
  learnHam: 'dovecot/sieve/learn-ham.sieve',
  binDir: 'dovecot/sieve/bin',
  learnProgram: 'dovecot/sieve/bin/rspamd-learn',
} as const;

/** The script Dovecot runs when a mailbox passes QUOTA_WARN_PERCENT of its limit. */
export const QUOTA_WARNING_SCRIPT = 'dovecot/quota-warning';
/** At this share of its limit a mailbox gets a note (the 90 %). */
export const QUOTA_WARN_PERCENT = 90;

/**
 * Build the Dovecot model. Every mailbox must have a hash: a missing one is a bug upstream
 * (the pipeline stops with exit 2 before rendering), so it throws here.
 */
export function dovecotModel(
  config: Config,
  tls: Pick<TlsKey, 'keyPath' | 'certPath'>,
  profile: Profile,
  hashes: ReadonlyMap<Email, string>,
): DovecotModel {
  const p = mailPaths(profile);
  const listen = [profile.listen.ipv4, profile.listen.ipv6].filter((a): a is string => a !== undefined);
  if (listen.length === 0) throw new Error('the profile names no address to listen on');
  const twoFour = releaseInfo(config.target).dovecot === '2.4';
  const users = [...config.users].sort().map((user) => {
    const hash = hashes.get(user);
    if (hash === undefined) throw new Error(`no password hash for ${user}`);
    // A hash is ours (Argon2id PHC text); a colon or line break would break the passwd-file.
    if (/[:\n\r\0]/.test(hash)) throw new Error(`the password hash for ${user} is malformed`);
    const quota = config.quotas.find((q) => q.user === user);
    // The limit as a userdb field: Dovecot 2.3 reads a quota rule, 2.4 a storage size setting.
    const extra = !quota ? '' : twoFour ? `userdb_quota_storage_size=${quota.size}` : `userdb_quota_rule=*:storage=${quota.size}`;
    return { user, hash, extra };
  });
  return {
    hostname: config.hostname,
    listen: listen.join(', '),
    imapsPort: profile.ports.imaps,
    baseDir: p.dovecotBaseDir,
    stateDir: p.dovecotStateDir,
    tlsKey: installed(profile, tls.keyPath),
    tlsCert: installed(profile, tls.certPath),
    usersFile: installed(profile, BUNDLE.dovecotUsers),
    lmtpSocket: p.lmtpSocket,
    authSocket: p.authSocket,
    mailRoot: p.mailRoot,
    mailUser: profile.mailUser.name,
    mailGroup: profile.mailUser.group,
    postmaster: config.admin,
    maxUserIpConnections: MAX_USERIP_CONNECTIONS,
    users,
    clientCiphers: CLIENT_CIPHER_STRING,
    managesievePort: profile.ports.managesieve,
    sieve: {
      spamToJunk: installed(profile, SIEVE.spamToJunk),
      learnSpam: installed(profile, SIEVE.learnSpam),
      learnHam: installed(profile, SIEVE.learnHam),
      binDir: installed(profile, SIEVE.binDir),
      // In each mailbox's home: Dovecot expands ~ per user.
      binCache: '~/sieve-global',
    },
    quotaWarningScript: installed(profile, QUOTA_WARNING_SCRIPT),
    quotaWarnPercent: QUOTA_WARN_PERCENT,
    submissionHost: `${p.localSubmission.host}:${p.localSubmission.port}`,
    spamController: `${p.spamController.host}:${p.spamController.port}`,
  };
}
