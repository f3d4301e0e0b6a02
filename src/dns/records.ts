/**
 * The record set of one zone, computed purely from the config and the public parts of the keys.
 * No I/O and no clock: the SOA serial is an input (src/dns/serial.ts decides it), so the same
 * config and keys always give the same records in the same order.
 */
import type { Config, DomainName } from '../config/types.js';
import { domainOf, isInZone, localPartOf, zoneOf } from '../config/types.js';
import type { KeySet } from '../keys/types.js';
import { type MtaStsMode, mtaStsId, mtaStsPolicy } from '../web/mtasts.js';
import { openpgpkeyOwner, wkdHost } from '../openpgp/names.js';
import type { PublishedKey } from '../openpgp/service.js';
import { dnskeyText } from '../keys/dnssec-plan.js';

/** One resource record. `name` is absolute without the trailing dot; rdata is presentation form. */
export interface Rr {
  name: string;
  type: string;
  rdata: string;
}

/** Records that belong together, with the comment printed above them in the zone file. */
export interface RrGroup {
  comment: string[];
  records: Rr[];
}

/** SOA timers (seconds), in the ranges RFC 1912 §2.2 recommends; `minimum` is the negative-caching TTL (RFC 2308). */
/**
 * SOA timers inside the ranges Zonemaster checks (refresh ≥ 4 h, retry ≥ 1 h and below refresh,
 * expire ≥ 1 week): secondaries re-check every 4 hours (NOTIFY tells them of changes at once).
 */
export const SOA_TIMERS = { refresh: 14400, retry: 3600, expire: 1209600, minimum: 3600 } as const;

/** Default TTL of every record ($TTL). An hour keeps changes (and key rollovers) quick to spread. */
export const DEFAULT_TTL = 3600;

/** The mail ports whose TLS endpoints are pinned with DANE (SMTP, submissions, submission, IMAPS). */
export const TLSA_PORTS = [25, 465, 587, 993] as const;

/** An absolute name in presentation form (trailing dot). */
export function fqdn(name: string): string {
  return `${name}.`;
}

/**
 * The SOA RNAME of an e-mail address (RFC 1035 §8): the `@` becomes a dot, and dots inside the
 * local part are escaped so they are not read as label separators.
 */
export function soaRname(email: Parameters<typeof localPartOf>[0]): string {
  const local = localPartOf(email).replace(/\\/g, '\\\\').replace(/\./g, '\\.');
  return `${local}.${domainOf(email)}.`;
}

/**
 * TXT RDATA for `value`: one or more quoted character-strings of at most 255 bytes each
 * (RFC 1035 §3.3.14). Long values such as RSA DKIM keys must be split, and a resolver joins the
 * strings back without separators.
 */
export function txtRdata(value: string): string {
  const bytes = Buffer.from(value, 'utf8');
  const parts: string[] = [];
  for (let i = 0; i < bytes.length || i === 0; i += 255) {
    const chunk = bytes.subarray(i, i + 255).toString('latin1');
    parts.push(`"${chunk.replace(/[\\"]/g, (c) => `\\${c}`)}"`);
    if (bytes.length === 0) break;
  }
  return parts.join(' ');
}

/** The first name server that is this host: the SOA MNAME, where secondaries take the zone from. */
export function primaryNameServer(config: Config): DomainName {
  const self = config.nameServers.find((n) => n.self) ?? config.nameServers[0];
  if (!self) throw new Error('config has no name server');
  return self.name;
}

/** The SOA RDATA of a zone with the given serial. */
export function soaRdata(config: Config, serial: number): string {
  const t = SOA_TIMERS;
  return `${fqdn(primaryNameServer(config))} ${soaRname(config.admin)} ${serial} ${t.refresh} ${t.retry} ${t.expire} ${t.minimum}`;
}

function addressRecords(name: string, v4: readonly string[], v6: readonly string[]): Rr[] {
  return [
    ...[...v4].sort().map((a) => ({ name, type: 'A', rdata: a })),
    ...[...v6].sort().map((a) => ({ name, type: 'AAAA', rdata: a })),
  ];
}

function hostAddresses(config: Config, name: string): Rr[] {
  return addressRecords(name, config.ipv4 ? [config.ipv4] : [], config.ipv6 ? [config.ipv6] : []);
}

const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/**
 * Every record of `zone` except DNSSEC's own (DNSKEY, RRSIG, NSEC are added by the signer), in
 * groups with their comments. `serial` goes into the SOA. `openpgp`: the mailboxes' published
 * OpenPGP keys (those of other zones are left out).
 */
export function zoneRecords(
  config: Config,
  keys: Pick<KeySet, 'dkim' | 'tls'> & Partial<Pick<KeySet, 'dnssec'>>,
  zone: DomainName,
  serial: number,
  mtaSts: MtaStsMode,
  sshfp: readonly string[] = [],
  openpgp: readonly PublishedKey[] = [],
): RrGroup[] {
  const groups: RrGroup[] = [];
  const add = (comment: string[], records: Rr[]) => {
    if (records.length > 0) groups.push({ comment, records });
  };
  const host = config.hostname;
  const hostZone = zoneOf(config, host);
  const admin = config.admin;
  const adminDomain = domainOf(admin);

  add(
    ['Start of authority: the primary name server (this host), the admin mailbox, the serial', `(YYYYMMDDnn) and the timers secondaries use (refresh, retry, expire, negative-answer TTL).`],
    [{ name: zone, type: 'SOA', rdata: soaRdata(config, serial) }],
  );
  add(
    ['The name servers of this zone. Give the same list to your registrar.'],
    [...config.nameServers].map((n) => n.name).sort(cmp).map((n) => ({ name: zone, type: 'NS', rdata: fqdn(n) })),
  );
  const inZoneNs = config.nameServers.filter((n) => zoneOf(config, n.name) === zone).sort((a, b) => cmp(a.name, b.name));
  const nsRecords = inZoneNs.flatMap((n) => addressRecords(n.name, n.ipv4, n.ipv6));
  const nsNames = new Set<string>(inZoneNs.map((n) => n.name));
  add(
    ['Addresses of the name servers inside this zone. The registrar needs them as glue records,', 'because nobody could find these name servers otherwise.'],
    nsRecords,
  );

  if (hostZone === zone && !nsNames.has(host)) {
    add(['The mail host.'], hostAddresses(config, host));
  }
  add(
    ['Web names served by the mail host: the MTA-STS policy (mta-sts) and the mail client', 'autoconfiguration file (autoconfig).'],
    [`autoconfig.${zone}`, `mta-sts.${zone}`].filter((n) => !nsNames.has(n) && n !== host).flatMap((n) => hostAddresses(config, n)),
  );

  const ownKeys = openpgp.filter((k) => domainOf(k.email) === zone).sort((a, b) => cmp(a.email, b.email));
  if (ownKeys.length > 0) {
    add(
      ['The Web Key Directory of this domain\'s OpenPGP public keys, served by the mail host.'],
      [wkdHost(zone)].filter((n) => !nsNames.has(n) && n !== host).flatMap((n) => hostAddresses(config, n)),
    );
  }

  add(['Mail for this domain goes to the mail host.'], [{ name: zone, type: 'MX', rdata: `10 ${fqdn(host)}` }]);
  add(
    ['SPF: only the hosts named in MX may send mail from this domain; everything else fails.'],
    [{ name: zone, type: 'TXT', rdata: txtRdata('v=spf1 mx -all') }],
  );
  if (hostZone === zone) {
    add(
      ['SPF for the mail host\'s own name (used in HELO and in bounces): only its own address.'],
      [{ name: host, type: 'TXT', rdata: txtRdata('v=spf1 a -all') }],
    );
  }

  const dkim = keys.dkim.filter((k) => k.domain === zone).sort((a, b) => cmp(a.selector, b.selector));
  add(
    ['DKIM public keys: receivers check the signatures of outgoing mail with them. One per', 'selector; keys kept after a rotation stay published until mail signed with them is delivered.'],
    dkim.map((k) => ({ name: `${k.selector}._domainkey.${zone}`, type: 'TXT', rdata: txtRdata(k.txt) })),
  );
  add(
    ['DMARC: receivers reject mail that fails SPF and DKIM alignment, and send aggregate reports', `to ${admin}.`],
    [{ name: `_dmarc.${zone}`, type: 'TXT', rdata: txtRdata(`v=DMARC1; p=reject; adkim=s; aspf=s; rua=mailto:${admin}`) }],
  );
  // RFC 7489 §7.1: a report address in another domain must be authorized by that domain. When it
  // is one of ours, the authorization goes into the admin domain's zone, one record per domain.
  if (zoneOf(config, adminDomain) === zone) {
    const authorized = config.domains.filter((d) => d !== adminDomain && !isInZone(adminDomain, d)).sort(cmp);
    add(
      [`DMARC report authorization (RFC 7489 7.1): ${adminDomain} accepts the reports of these domains.`],
      authorized.map((d) => ({ name: `${d}._report._dmarc.${adminDomain}`, type: 'TXT', rdata: txtRdata('v=DMARC1') })),
    );
  }
  add(
    ['MTA-STS (RFC 8461): senders must use TLS to the MX; the id changes whenever the policy at', `https://mta-sts.${zone}/.well-known/mta-sts.txt changes.`],
    [{ name: `_mta-sts.${zone}`, type: 'TXT', rdata: txtRdata(`v=STSv1; id=${mtaStsId(mtaStsPolicy(config, mtaSts))}`) }],
  );
  add(
    ['TLS reporting (RFC 8460): senders report TLS failures to this address.'],
    [{ name: `_smtp._tls.${zone}`, type: 'TXT', rdata: txtRdata(`v=TLSRPTv1; rua=mailto:${admin}`) }],
  );
  if (hostZone === zone) {
    add(
      ['DANE (RFC 7672): the SHA-256 of the mail host\'s TLS public key, generated on this machine.', 'Validating senders accept only this key, whoever signed the certificate.'],
      TLSA_PORTS.flatMap((p) => keys.tls.pins.map((pin) => ({ name: `_${p}._tcp.${host}`, type: 'TLSA', rdata: `3 1 1 ${pin}` }))),
    );
    if (config.dnssec && sshfp.length > 0) {
      add(
        ['SSHFP (RFC 4255, 6594, 7479): the SHA-256 of each SSH host key of the mail host, read from its', '/etc/ssh where init ran; ssh -o VerifyHostKeyDNS=yes checks them through a validating resolver.'],
        sshfp.map((rdata) => ({ name: host, type: 'SSHFP', rdata })),
      );
    }
  }
  if (config.dnssec) {
    const rolling = (keys.dnssec ?? []).filter((k) => k.zone === zone && k.cds && k.ds);
    add(
      ['CDS and CDNSKEY (RFC 7344, RFC 8078): a KSK rollover under way asks the parent for the new KSK\'s DS.', 'Registries that scan for them replace the DS by themselves; elsewhere give the registrar dns/<zone>.ds.'],
      rolling.flatMap((k) => [
        { name: zone, type: 'CDS', rdata: k.ds! },
        { name: zone, type: 'CDNSKEY', rdata: dnskeyText(k) },
      ]),
    );
    add(
      ['OPENPGPKEY (RFC 7929): each mailbox\'s OpenPGP public key, under the SHA-256 of its local part;', 'DNSSEC proves it is the one published here. Public keys only: the private keys stay on the users\' devices.'],
      ownKeys.map((k) => ({ name: openpgpkeyOwner(k.email), type: 'OPENPGPKEY', rdata: k.key.toString('base64') })),
    );
  }
  add(
    ['CAA: only this certificate authority may issue certificates for these names, no wildcards;', 'it reports refused requests to the admin.'],
    [
      { name: zone, type: 'CAA', rdata: `0 issue "${config.acmeCa}"` },
      { name: zone, type: 'CAA', rdata: `0 issuewild ";"` },
      { name: zone, type: 'CAA', rdata: `0 iodef "mailto:${admin}"` },
    ],
  );
  add(
    ['Mail client autoconfiguration (RFC 6186, RFC 8314): submission with implicit TLS (465) or', 'STARTTLS (587), IMAP over TLS (993); plain IMAP and POP3 are not offered (target ".").'],
    [
      { name: `_submissions._tcp.${zone}`, type: 'SRV', rdata: `0 1 465 ${fqdn(host)}` },
      { name: `_submission._tcp.${zone}`, type: 'SRV', rdata: `0 1 587 ${fqdn(host)}` },
      { name: `_imaps._tcp.${zone}`, type: 'SRV', rdata: `0 1 993 ${fqdn(host)}` },
      { name: `_imap._tcp.${zone}`, type: 'SRV', rdata: '0 0 0 .' },
      { name: `_pop3._tcp.${zone}`, type: 'SRV', rdata: '0 0 0 .' },
    ],
  );
  add(
    ['Outlook finds its autodiscover file on autoconfig.<domain> (the certificate covers that name).'],
    [{ name: `_autodiscover._tcp.${zone}`, type: 'SRV', rdata: `0 1 443 autoconfig.${zone}.` }],
  );
  return groups;
}
