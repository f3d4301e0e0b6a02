/**
 * The one definition of a setup, as the rest of the program sees it. Values of these types only
 * come out of the schema (src/config/schema.ts): a plain string cannot be passed where a
 * `DomainName` is expected, so nothing unvalidated can reach a template.
 */

import type { Release } from './release.js';
import type { TargetSpec } from '../backup/format.js';

export type { Release } from './release.js';

declare const brand: unique symbol;
export type Brand<T, B extends string> = T & { readonly [brand]: B };

/** Lower-case A-label name, no trailing dot, at least two labels, LDH rule. */
export type DomainName = Brand<string, 'DomainName'>;
/** Canonical dotted quad. */
export type IPv4 = Brand<string, 'IPv4'>;
/** Canonical RFC 5952 text form. */
export type IPv6 = Brand<string, 'IPv6'>;
/** `local@domain`, lower case, local part limited to letters, digits, `.`, `_`, `-` (and `+` for the admin). */
export type Email = Brand<string, 'Email'>;
/** Network address with prefix length, host bits cleared: `203.0.113.0/24`, `2001:db8::/48`. */
export type Cidr = Brand<string, 'Cidr'>;

export type Ingress = 'direct' | 'port-forward' | 'own-vps';

export interface NameServer {
  name: DomainName;
  ipv4: IPv4[];
  ipv6: IPv6[];
  /** True when this name server is the mail host itself (NSD in the bundle serves as primary). */
  self: boolean;
}

export interface Config {
  /** Mail domains; the first is the primary. Each is also a DNS zone we write and sign. */
  domains: DomainName[];
  /** The mail host's name; inside one of `domains`. */
  hostname: DomainName;
  /** Public addresses of the mail host (at least one of the two). */
  ipv4?: IPv4;
  ipv6?: IPv6;
  /** With `port-forward`: the LAN addresses the services bind to. */
  listenIpv4?: IPv4;
  listenIpv6?: IPv6;
  nameServers: NameServer[];
  /** Postmaster and report address. May be outside our domains. */
  admin: Email;
  /** Mailboxes, each inside one of `domains`. */
  users: Email[];
  /** Networks allowed to reach SSH. Empty: SSH closed to the network. */
  adminSshFrom: Cidr[];
  ingress: Ingress;
  /**
   * With `own-vps`: the VPS's WireGuard public key, once made there (`ipv4`/`ipv6` are then the
   * VPS's public addresses, `listenIpv4`/`listenIpv6` this end of the tunnel).
   */
  vpsWgKey?: string;
  /** The CA named in CAA records. */
  acmeCa: DomainName;
  dnssec: boolean;
  /** The Debian release the bundle is written for (the host's, unless --target says otherwise). */
  target: Release;
  /**
   * Outside DNS blocklists the spam filter may ask (src/rspamd/lookups.ts), opted in with
   * --spam-lookups; none by default.
   */
  spamLookups: string[];
  /** Addresses that deliver to other addresses; a catch-all (`@domain`) takes only what nothing else does. */
  aliases: MailAlias[];
  /** Storage limits of mailboxes (the others have none). */
  quotas: MailQuota[];
  /** The daily encrypted backup (selfmail-backup.timer), when a target and recipients are given. */
  backup?: BackupSettings;
  /**
   * Mailboxes that publish an OpenPGP public key (OPENPGPKEY with DNSSEC, and the Web Key
   * Directory), sorted. The keys themselves travel beside the Config (src/openpgp/publish.ts) and
   * live in the bundle as `openpgp/<email>.pgp`.
   */
  openpgpKeys: Email[];
}

/**
 * Where the daily backup goes and whom it is encrypted to. Only public keys: the identity that
 * reads the backups is made on the user's own device and never reaches the server.
 */
export interface BackupSettings {
  to: TargetSpec;
  /** age X25519 recipients (`age1…`). */
  recipients: string[];
  /** With an sftp:// target: the backup machine's SSH host key (`TYPE BASE64`), the only one accepted. */
  hostKey?: string;
}

/** A mailbox's storage limit: `size` as written (`2G`, `500M`), `bytes` what it means (powers of 1024). */
export interface MailQuota {
  user: Email;
  size: string;
  bytes: number;
}

/** An alias: `from` (an address in our domains, or `@domain` for a catch-all) delivers to `to`. */
export interface MailAlias {
  from: string;
  to: Email[];
}

/** Secrets that come with a run but are never stored in clear: only hashes reach the bundle. */
export interface Secrets {
  /** Cleartext passwords by mailbox, from --password-file or the wizard's hidden prompts. */
  passwords: Map<Email, string>;
}

/** RFC 2142 role addresses every mail domain must have: they reach the admin, always. */
export const ROLE_LOCAL_PARTS = ['abuse', 'postmaster'] as const;

/** The domain part of an address (already validated, so a cast is sound). */
export function domainOf(email: Email): DomainName {
  return email.slice(email.lastIndexOf('@') + 1) as DomainName;
}

/** The local part of an address. */
export function localPartOf(email: Email): string {
  return email.slice(0, email.lastIndexOf('@'));
}

/** True when `name` is `zone` or below it. */
export function isInZone(name: string, zone: string): boolean {
  return name === zone || name.endsWith(`.${zone}`);
}

/** The configured zone that holds `name`, the longest match, if any. */
export function zoneOf(config: Pick<Config, 'domains'>, name: string): DomainName | undefined {
  let best: DomainName | undefined;
  for (const d of config.domains) {
    if (isInZone(name, d) && (!best || d.length > best.length)) best = d;
  }
  return best;
}
