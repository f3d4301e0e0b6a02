/**
 * What the user gives the registrar (and, for an admin address elsewhere, the other domain's
 * owner): name servers, glue addresses, DS and DNSKEY. Pure; REPORT.md and `dns/<zone>.ds` are
 * written from it.
 */
import type { BuildContext } from '../bundle/types.js';
import type { Config, DomainName } from '../config/types.js';
import { domainOf, isInZone, zoneOf } from '../config/types.js';
import type { KeySet } from '../keys/types.js';

export interface RegistrarNameServer {
  name: DomainName;
  ipv4: string[];
  ipv6: string[];
  /** True when the name lies inside this zone: the registrar must publish its addresses as glue. */
  glue: boolean;
}

export interface RegistrarDs {
  keyTag: number;
  /** 13 = ECDSAP256SHA256. */
  algorithm: number;
  /** 2 = SHA-256. */
  digestType: number;
  digest: string;
  /** The whole record: `example.org. IN DS 12345 13 2 ABCD…`. */
  record: string;
}

export interface RegistrarDnskey {
  flags: number;
  protocol: number;
  algorithm: number;
  publicKey: string;
  /** The whole record: `example.org. IN DNSKEY 257 3 13 …`. */
  record: string;
}

export interface RegistrarZone {
  zone: DomainName;
  nameServers: RegistrarNameServer[];
  /** Empty without DNSSEC. */
  ds: RegistrarDs[];
  /** The KSK(s), for registrars that take a DNSKEY and compute the DS themselves. */
  dnskey: RegistrarDnskey[];
}

/** Per zone: what to enter at the registrar. */
export function registrarInfo(ctx: Pick<BuildContext, 'config' | 'keys'>): RegistrarZone[] {
  const { config, keys } = ctx;
  return config.domains.map((zone) => ({
    zone,
    nameServers: [...config.nameServers]
      .sort((a, b) => (a.name < b.name ? -1 : 1))
      .map((n) => ({ name: n.name, ipv4: [...n.ipv4], ipv6: [...n.ipv6], glue: isInZone(n.name, zone) })),
    ds: config.dnssec ? zoneDs(keys, zone) : [],
    dnskey: config.dnssec ? zoneKskDnskeys(keys, zone) : [],
  }));
}

/** The KSKs whose DS the parent should serve: all but one leaving after a KSK rollover. */
function kskOf(keys: Pick<KeySet, 'dnssec'>, zone: DomainName) {
  return keys.dnssec.filter((k) => k.zone === zone && k.role === 'ksk' && k.remove === undefined).sort((a, b) => a.tag - b.tag);
}

/** The DS records of `zone`'s KSKs. */
export function zoneDs(keys: Pick<KeySet, 'dnssec'>, zone: DomainName): RegistrarDs[] {
  return kskOf(keys, zone)
    .filter((k) => k.ds !== undefined)
    .map((k) => {
      const [tag, alg, type, ...digest] = k.ds!.trim().split(/\s+/);
      const hex = digest.join('').toUpperCase();
      return {
        keyTag: Number(tag),
        algorithm: Number(alg),
        digestType: Number(type),
        digest: hex,
        record: `${zone}. IN DS ${tag} ${alg} ${type} ${hex}`,
      };
    });
}

function zoneKskDnskeys(keys: Pick<KeySet, 'dnssec'>, zone: DomainName): RegistrarDnskey[] {
  return kskOf(keys, zone).map((k) => {
    const [flags, proto, alg, ...b64] = k.dnskey.trim().split(/\s+/);
    const publicKey = b64.join('');
    return {
      flags: Number(flags),
      protocol: Number(proto),
      algorithm: Number(alg),
      publicKey,
      record: `${zone}. IN DNSKEY ${flags} ${proto} ${alg} ${publicKey}`,
    };
  });
}

/** The text of `dns/<zone>.ds`: the DS records to give the registrar, with a comment. */
export function dsFileText(keys: Pick<KeySet, 'dnssec'>, zone: DomainName): string {
  const ds = zoneDs(keys, zone);
  if (ds.length === 0) throw new Error(`the key store has no KSK with a DS for ${zone}`);
  const rolling = keys.dnssec.filter((k) => k.zone === zone && k.cds);
  return [
    `; DS record(s) of ${zone}: give them to your registrar so that resolvers can validate the zone.`,
    '; Key tag, algorithm 13 (ECDSAP256SHA256), digest type 2 (SHA-256), digest.',
    ...rolling.map((k) => `; KSK rollover: add the DS of KSK ${k.tag} (the zone publishes it as CDS too); once the parent serves it, run selfmail keys rotate dnssec --ksk --parent-confirmed, and remove the old DS.`),
    ...ds.map((d) => d.record),
    '',
  ].join('\n');
}

/**
 * RFC 7489 §7.1 records that someone else must publish: when the admin (report) address is outside
 * all of our zones, its domain must authorize each of our domains to send it DMARC reports.
 */
export function externalDmarcAuthorizations(config: Config): { name: string; txt: string }[] {
  const adminDomain = domainOf(config.admin);
  if (zoneOf(config, adminDomain)) return [];
  return [...config.domains].sort().map((d) => ({ name: `${d}._report._dmarc.${adminDomain}`, txt: 'v=DMARC1' }));
}
