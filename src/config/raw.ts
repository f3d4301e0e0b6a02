/**
 * The raw, unvalidated request: what flags, a config file or the wizard asked for, before any
 * rule is applied. Config files use exactly these keys; `selfmail.yaml` is written in this form.
 */

export interface RawInput {
  domains?: string[];
  hostname?: string;
  ipv4?: string;
  ipv6?: string;
  listenIpv4?: string;
  listenIpv6?: string;
  /** `NAME` or `NAME=ADDR[,ADDR]`. */
  ns?: string[];
  admin?: string;
  users?: string[];
  adminSshFrom?: string[];
  ingress?: string;
  /** With `ingress: own-vps`: the VPS's public addresses (published in DNS) and its WireGuard public key. */
  vpsIpv4?: string;
  vpsIpv6?: string;
  vpsWgKey?: string;
  acmeCa?: string;
  dnssec?: boolean;
  /** `debian-13` or `debian-12`: the release the bundle is written for. */
  target?: string;
  /** Outside lookups for the spam filter, opted in (`spamhaus`, `surbl`), or `none`. */
  spamLookups?: string[];
  /** `SOURCE=TARGET[,TARGET…]`; SOURCE `@domain` for a catch-all. */
  aliases?: string[];
  /** `EMAIL=SIZE` (like `alice@example.org=2G`): the mailbox's storage limit, enforced by Dovecot. */
  quotas?: string[];
  /** Where the daily backup goes: a folder of the host, `sftp://USER@HOST[:PORT]/PATH`, or `none`. */
  backupTo?: string;
  /** age public keys (`age1…`) the backups are encrypted to. */
  backupRecipients?: string[];
  /** The backup machine's SSH host public key, for an sftp:// target. */
  backupHostKey?: string;
  /**
   * Mailboxes that publish an OpenPGP public key: `EMAIL=FILE` (the key, read by the CLI),
   * `EMAIL=none` (drop it), or `EMAIL` (keep the bundle's copy; what selfmail.yaml holds). Unlike
   * every other list, a layer adds to the keys of the layers under it (see `overlay`).
   */
  openpgpKeys?: string[];

  // Requests that exist only to be refused with an explanation (src/policy/).
  tunnelProvider?: string;
  relayHost?: string;
  dkimKey?: string;
  tlsKey?: string;
  dnssecKey?: string;
  dnsProvider?: string;
  upnp?: boolean;
}

export type RawKey = keyof RawInput;

/** Where each key's value came from, so messages name the flag or the file key the user wrote. */
export type Origin = 'flag' | 'file' | 'bundle' | 'wizard' | 'default';

/** The flag for each key, used in messages. */
export const FLAG_OF: Record<RawKey, string> = {
  domains: '--domain',
  hostname: '--hostname',
  ipv4: '--ipv4',
  ipv6: '--ipv6',
  listenIpv4: '--listen-ipv4',
  listenIpv6: '--listen-ipv6',
  ns: '--ns',
  admin: '--admin',
  users: '--user',
  adminSshFrom: '--admin-ssh-from',
  ingress: '--ingress',
  vpsIpv4: '--vps-ipv4',
  vpsIpv6: '--vps-ipv6',
  vpsWgKey: '--vps-wg-key',
  acmeCa: '--acme-ca',
  dnssec: '--no-dnssec',
  target: '--target',
  spamLookups: '--spam-lookups',
  aliases: '--alias',
  quotas: '--quota',
  backupTo: '--backup-to',
  backupRecipients: '--backup-recipient',
  backupHostKey: '--backup-host-key',
  openpgpKeys: '--openpgp-key',
  tunnelProvider: '--tunnel-provider',
  relayHost: '--relay-host',
  dkimKey: '--dkim-key',
  tlsKey: '--tls-key',
  dnssecKey: '--dnssec-key',
  dnsProvider: '--dns-provider',
  upnp: '--upnp',
};

/** A raw request with the origin of each value. */
export interface SourcedInput {
  values: RawInput;
  origins: Partial<Record<RawKey, Origin>>;
  /** Path of the config file, for messages. */
  file?: string;
}

/** How a field is named in a message: the flag, or the key in the file it came from. */
export function fieldName(input: SourcedInput, key: RawKey): string {
  const origin = input.origins[key];
  if (origin === 'file') return `${input.file ?? 'config file'}: ${key}`;
  if (origin === 'bundle') return `selfmail.yaml: ${key}`;
  return FLAG_OF[key];
}

/** The address an `openpgpKeys` entry is about (`EMAIL`, `EMAIL=FILE`, `EMAIL=none`), for matching layers. */
export function openpgpEntryAddress(entry: string): string {
  const eq = entry.indexOf('=');
  return (eq < 0 ? entry : entry.slice(0, eq)).trim().toLowerCase();
}

/**
 * Lay `over` on top of `under`: a key present in `over` replaces the whole value of `under`,
 * except `openpgpKeys`, where `over`'s entries replace only those for the same addresses: keys
 * given by flags are added to those the bundle publishes (`EMAIL=none` drops one).
 */
export function overlay(under: SourcedInput, over: SourcedInput): SourcedInput {
  const values: RawInput = { ...under.values };
  const origins = { ...under.origins };
  for (const key of Object.keys(over.values) as RawKey[]) {
    if (over.values[key] === undefined) continue;
    (values as Record<string, unknown>)[key] = over.values[key];
    origins[key] = over.origins[key];
  }
  if (over.values.openpgpKeys && under.values.openpgpKeys) {
    const named = new Set(over.values.openpgpKeys.map(openpgpEntryAddress));
    values.openpgpKeys = [...under.values.openpgpKeys.filter((e) => !named.has(openpgpEntryAddress(e))), ...over.values.openpgpKeys];
  }
  return { values, origins, file: over.file ?? under.file };
}

export function sourced(values: RawInput, origin: Origin, file?: string): SourcedInput {
  const origins: Partial<Record<RawKey, Origin>> = {};
  for (const key of Object.keys(values) as RawKey[]) if (values[key] !== undefined) origins[key] = origin;
  return file === undefined ? { values, origins } : { values, origins, file };
}
