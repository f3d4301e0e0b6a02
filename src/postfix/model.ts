/**
 * What Postfix is told, as prepared values: pure, no I/O. The templates in templates/postfix/
 * only loop over and print these.
 */
import type { Profile } from '../bundle/layout.js';
import type { Config, DomainName, Email } from '../config/types.js';
import type { TlsKey } from '../keys/types.js';
import { LOCAL_SENDER_LOGIN } from '../rspamd/dkim.js';
import { BUNDLE, installed, mailPaths } from '../mail/paths.js';
import { CLIENT_CIPHER_STRING } from '../tls/policy.js';

import { MESSAGE_SIZE_LIMIT } from '../mail/limits.js';
export { MESSAGE_SIZE_LIMIT };

import { ROLE_LOCAL_PARTS, domainOf } from '../config/types.js';
export { ROLE_LOCAL_PARTS };

export interface Alias {
  from: Email;
  to: Email;
}

export interface Listener {
  /** `addr:port` as master.cf wants it (IPv6 in brackets). */
  endpoint: string;
}

export interface PostfixModel {
  hostname: DomainName;
  primary: DomainName;
  domains: DomainName[];
  users: Email[];
  aliases: Alias[];
  /** Every line of the virtual alias map: the role addresses, the user's aliases and catch-alls. */
  virtual: Array<{ from: string; to: string; why: string }>;
  senderLogins: { address: Email; login: Email }[];
  inetProtocols: 'ipv4' | 'ipv6' | 'all';
  smtpListeners: Listener[];
  submissionListeners: Listener[];
  submissionsListeners: Listener[];
  /** The loopback listener for mail the host writes itself (Sieve's vacation replies). */
  localSubmissionListener: Listener;
  tlsKey: string;
  tlsCert: string;
  queueDir: string;
  dataDir: string;
  lmtpSocket: string;
  authSocket: string;
  virtualMailboxMap: string;
  virtualAliasMap: string;
  senderLoginMap: string;
  submissionHeaderChecks: string;
  /** rspamd's milter on port 25: it judges the mail (no AUTH there, so it never signs). */
  inboundMilters: string;
  /** rspamd's milter on submission and the loopback listener: it signs (both algorithms). */
  submissionMilters: string;
  /** The login the loopback listener gives rspamd for the host's own mail (it signs only authenticated mail). */
  localSenderLogin: string;
  messageSizeLimit: number;
  /** TLS 1.2 suites where TLS is required (src/tls/policy.ts). */
  clientCiphers: string;
  /** With own-vps, on the tunnel (the host and its rehearsal): the addresses outbound SMTP binds to; empty otherwise. */
  smtpBind4: string;
  smtpBind6: string;
}

/**
 * The RFC 2142 aliases: postmaster@ and abuse@ of every domain go to the admin, unless the
 * address is a mailbox of its own or is the admin itself.
 */
export function roleAliases(domains: readonly DomainName[], users: readonly Email[], admin: Email): Alias[] {
  const out: Alias[] = [];
  for (const d of [...domains].sort()) {
    for (const local of ROLE_LOCAL_PARTS) {
      const from = `${local}@${d}` as Email;
      if (from === admin || users.includes(from)) continue;
      out.push({ from, to: admin });
    }
  }
  return out;
}

function endpoints(profile: Profile, port: number): Listener[] {
  const out: Listener[] = [];
  if (profile.listen.ipv4) out.push({ endpoint: `${profile.listen.ipv4}:${port}` });
  if (profile.listen.ipv6) out.push({ endpoint: `[${profile.listen.ipv6}]:${port}` });
  return out;
}

/**
 * True where an own-VPS host's services listen on the tunnel's home end: the host itself and its
 * rehearsal (not the checks, which render on loopback). Pure.
 */
export function onTunnel(config: Pick<Config, 'ingress' | 'listenIpv4' | 'listenIpv6'>, profile: Pick<Profile, 'listen'>): boolean {
  if (config.ingress !== 'own-vps') return false;
  return (config.listenIpv4 !== undefined && profile.listen.ipv4 === config.listenIpv4) || (config.listenIpv6 !== undefined && profile.listen.ipv6 === config.listenIpv6);
}

/** Build the Postfix model of `config` for `profile`. */
export function postfixModel(config: Config, tls: Pick<TlsKey, 'keyPath' | 'certPath'>, profile: Profile): PostfixModel {
  const paths = mailPaths(profile);
  const { ipv4, ipv6 } = profile.listen;
  if (!ipv4 && !ipv6) throw new Error('the profile names no address to listen on');
  const milter = (m: { host: string; port: number }) => `inet:${m.host}:${m.port}`;
  const aliases = roleAliases(config.domains, config.users, config.admin);
  const primary = config.domains[0];
  if (!primary) throw new Error('a config without a domain cannot reach the Postfix model');
  return {
    hostname: config.hostname,
    primary,
    domains: [...config.domains].sort(),
    users: [...config.users].sort(),
    aliases,
    virtual: virtualEntries(config, aliases),
    senderLogins: senderLogins(config.users, [...aliases, ...singleTargetAliases(config)]),
    inetProtocols: ipv4 && ipv6 ? 'all' : ipv4 ? 'ipv4' : 'ipv6',
    smtpListeners: endpoints(profile, profile.ports.smtp),
    submissionListeners: endpoints(profile, profile.ports.submission),
    submissionsListeners: endpoints(profile, profile.ports.submissions),
    localSubmissionListener: { endpoint: `${paths.localSubmission.host}:${paths.localSubmission.port}` },
    tlsKey: installed(profile, tls.keyPath),
    tlsCert: installed(profile, tls.certPath),
    queueDir: paths.postfixQueueDir,
    dataDir: paths.postfixDataDir,
    lmtpSocket: paths.lmtpSocket,
    authSocket: paths.authSocket,
    virtualMailboxMap: `texthash:${installed(profile, BUNDLE.virtualMailboxes)}`,
    virtualAliasMap: `texthash:${installed(profile, BUNDLE.virtualAliases)}`,
    senderLoginMap: `texthash:${installed(profile, BUNDLE.senderLogins)}`,
    submissionHeaderChecks: `regexp:${installed(profile, BUNDLE.submissionHeaderChecks)}`,
    // One rspamd milter: on port 25 it verifies and filters, and a filter that is down lets mail
    // through (accept); for submissions it signs, and a signer that is down defers (tempfail).
    inboundMilters: milter(paths.milterSpam),
    submissionMilters: milter(paths.milterSpam),
    localSenderLogin: LOCAL_SENDER_LOGIN,
    messageSizeLimit: MESSAGE_SIZE_LIMIT,
    clientCiphers: CLIENT_CIPHER_STRING,
    // Through a VPS of the user's own, mail leaves from this end of the tunnel: the host routes
    // that source address through it, and the VPS gives it its public address (vps/nftables.conf).
    smtpBind4: onTunnel(config, profile) ? (ipv4 ?? '') : '',
    smtpBind6: onTunnel(config, profile) ? (ipv6 ?? '') : '',
  };
}

/**
 * The virtual alias map: role addresses to the admin, the user's aliases, and for each domain with
 * a catch-all, an entry mapping each of its mailboxes to itself first: Postfix tries the whole
 * address before `@domain`, so a catch-all then takes only mail for addresses nothing else
 * names (virtual(5)). Pure.
 */
export function virtualEntries(config: Pick<Config, 'users' | 'aliases'>, roles: readonly Alias[]): Array<{ from: string; to: string; why: string }> {
  const out: Array<{ from: string; to: string; why: string }> = roles.map((r) => ({ from: r.from, to: r.to, why: 'role' }));
  const catchAll = new Set(config.aliases.filter((a) => a.from.startsWith('@')).map((a) => a.from.slice(1)));
  for (const u of config.users) if (catchAll.has(domainOf(u))) out.push({ from: u, to: u, why: 'mailbox' });
  for (const a of config.aliases) out.push({ from: a.from, to: a.to.join(', '), why: a.from.startsWith('@') ? 'catch-all' : 'alias' });
  return out.sort((x, y) => (x.from < y.from ? -1 : x.from > y.from ? 1 : 0));
}

/** Aliases of one mailbox of this host: that mailbox may send as the alias too. */
function singleTargetAliases(config: Pick<Config, 'users' | 'aliases'>): Alias[] {
  return config.aliases.flatMap((a) => (!a.from.startsWith('@') && a.to.length === 1 && config.users.includes(a.to[0]!) ? [{ from: a.from as Email, to: a.to[0]! }] : []));
}

/**
 * Sender-login map entries: each mailbox may send as itself, an admin who is a mailbox also as
 * the role addresses routed to them (to answer postmaster@ mail as postmaster@), and a mailbox as
 * the aliases that deliver to it alone.
 */
export function senderLogins(users: readonly Email[], aliases: readonly Alias[]): { address: Email; login: Email }[] {
  const out = users.map((u) => ({ address: u, login: u }));
  for (const a of aliases) if (users.includes(a.to)) out.push({ address: a.from, login: a.to });
  return out.sort((x, y) => (x.address < y.address ? -1 : x.address > y.address ? 1 : 0));
}

