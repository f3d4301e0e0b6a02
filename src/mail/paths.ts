/**
 * The meeting points of Postfix, Dovecot and rspamd: sockets, spool and mail folders, milter
 * addresses. Both sides of each connection take the name from here, so they cannot disagree,
 * and every path goes through the profile so the rehearsal can move it under its own root.
 */
import { installedPath, sysPath, type Profile } from '../bundle/layout.js';

/** Bundle paths of the mail services' files (the layout table maps them to /etc). */
export const BUNDLE = {
  mainCf: 'postfix/main.cf',
  masterCf: 'postfix/master.cf',
  virtualMailboxes: 'postfix/vmailbox',
  virtualAliases: 'postfix/virtual',
  senderLogins: 'postfix/sender_login',
  submissionHeaderChecks: 'postfix/submission_header_checks',
  dovecotConf: 'dovecot/dovecot.conf',
  dovecotUsers: 'dovecot/users',
} as const;

/** The loopback address the milters listen on (never a public address). */
export const MILTER_HOST = '127.0.0.1';

export interface MailPaths {
  postfixConfigDir: string;
  postfixQueueDir: string;
  postfixDataDir: string;
  /** Dovecot's LMTP socket, inside Postfix's queue directory (Postfix's `private/`). */
  lmtpSocket: string;
  /** Dovecot's auth socket for Postfix SASL. */
  authSocket: string;
  dovecotBaseDir: string;
  dovecotStateDir: string;
  /** Root of the mailboxes: `<mailRoot>/<domain>/<user>/Maildir`. */
  mailRoot: string;
  /**
   * rspamd's milter (`ports.spam`): it judges mail arriving on port 25 and DKIM-signs what the
   * submission services and the loopback listener hand it.
   */
  milterSpam: { host: string; port: number };
  /** Postfix's loopback listener for mail the host writes itself (Sieve's replies), signed like a submission. */
  localSubmission: { host: string; port: number };
  /** rspamd's controller (learning, statistics), on loopback. */
  spamController: { host: string; port: number };
}

export interface RspamdPorts {
  /** The milter Postfix talks to (port 25, submissions, the loopback listener). */
  proxy: number;
  normal: number;
  controller: number;
}

/** rspamd's three workers: the milter port of the profile, the next two for the others. */
export function rspamdPorts(spam: number): RspamdPorts {
  return { proxy: spam, normal: spam + 1, controller: spam + 2 };
}

/** Every path and address the three services share, under `profile`. */
export function mailPaths(profile: Profile): MailPaths {
  const queue = sysPath(profile, '/var/spool/postfix');
  return {
    postfixConfigDir: sysPath(profile, '/etc/postfix'),
    postfixQueueDir: queue,
    postfixDataDir: sysPath(profile, '/var/lib/postfix'),
    lmtpSocket: `${queue}/private/dovecot-lmtp`,
    authSocket: `${queue}/private/auth`,
    dovecotBaseDir: sysPath(profile, '/run/dovecot'),
    dovecotStateDir: sysPath(profile, '/var/lib/dovecot'),
    mailRoot: sysPath(profile, '/var/vmail'),
    milterSpam: { host: MILTER_HOST, port: profile.ports.spam },
    localSubmission: { host: MILTER_HOST, port: profile.ports.localSubmission },
    spamController: { host: MILTER_HOST, port: rspamdPorts(profile.ports.spam).controller },
  };
}

/** Shorthand used by all three modules. */
export function installed(profile: Profile, bundlePath: string): string {
  return installedPath(profile, bundlePath);
}
