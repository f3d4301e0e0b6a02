/**
 * Where a mailbox's OpenPGP public key is published: the OPENPGPKEY owner name (RFC 7929 §3) and
 * the Web Key Directory's "advanced" URL (draft-koch-openpgp-webkey-service §3.1), and where the
 * bundle keeps the key. Pure.
 */
import { createHash } from 'node:crypto';
import type { Config, DomainName, Email } from '../config/types.js';
import { domainOf, localPartOf } from '../config/types.js';

/** The z-base-32 alphabet (the WKD draft §3.1, after Zooko's human-oriented base-32). */
const ZBASE32 = 'ybndrfg8ejkmcpqxot1uwisza345h769';

/** z-base-32 of `data`, most significant bit first, without padding. */
export function zbase32(data: Uint8Array): string {
  let out = '';
  let acc = 0;
  let bits = 0;
  for (const byte of data) {
    acc = (acc << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += ZBASE32[(acc >> (bits - 5)) & 31];
      bits -= 5;
    }
    acc &= (1 << bits) - 1;
  }
  if (bits > 0) out += ZBASE32[(acc << (5 - bits)) & 31];
  return out;
}

/**
 * The first label of a mailbox's OPENPGPKEY owner: the hex of the first 28 octets of the SHA-256
 * of the local part, UTF-8, as written (RFC 7929 §3).
 */
export function openpgpkeyLabel(localPart: string): string {
  return createHash('sha256').update(localPart, 'utf8').digest().subarray(0, 28).toString('hex');
}

/** `<label>._openpgpkey.<domain>`: where the OPENPGPKEY record of `email` lives. */
export function openpgpkeyOwner(email: Email): string {
  return `${openpgpkeyLabel(localPartOf(email))}._openpgpkey.${domainOf(email)}`;
}

/** The WKD file name of a local part: z-base-32 of the SHA-1 of its lower-cased form (WKD draft §3.1). */
export function wkdHash(localPart: string): string {
  return zbase32(createHash('sha1').update(localPart.toLowerCase(), 'utf8').digest());
}

/** The name the advanced method asks for a domain's keys. */
export function wkdHost(domain: DomainName): DomainName {
  return `openpgpkey.${domain}` as DomainName;
}

/** Bundle path of the key a mailbox publishes (binary), re-read by the next run. */
export function keyPath(email: Email): string {
  return `openpgp/${email}.pgp`;
}

/**
 * Bundle paths and URL of a mailbox's WKD entry, advanced method: the served root of
 * `openpgpkey.<domain>` is `www/<domain>/`, under which the path names the domain again.
 */
export function wkdPaths(email: Email): { key: string; policy: string; url: string } {
  const domain = domainOf(email);
  const dir = `.well-known/openpgpkey/${domain}`;
  const hu = `${dir}/hu/${wkdHash(localPartOf(email))}`;
  return { key: `www/${domain}/${hu}`, policy: `www/${domain}/${dir}/policy`, url: `https://${wkdHost(domain)}/${hu}` };
}

/** The domains with at least one published key: each gets `openpgpkey.<domain>` (sorted). */
export function openpgpDomains(config: Pick<Config, 'openpgpKeys'>): DomainName[] {
  return [...new Set(config.openpgpKeys.map(domainOf))].sort();
}
