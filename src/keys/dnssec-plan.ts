/**
 * The DNSSEC key schedule: which keys a zone publishes and which sign, at a given time. Pure; the
 * key store writes the schedule (keys.json), the signer and the host's daily job
 * (`bin/selfmail-resign`, the same rules in shell) follow it.
 *
 * ZSK rollover by pre-publication (RFC 6781 §4.1.1.1): the next ZSK is made ahead, enters the
 * DNSKEY set ZSK_PREPUBLISH_DAYS before it signs, and the old one stays published
 * ZSK_RETIRE_DAYS after (the lifetime of the signatures it made: a secondary that missed the change
 * or a cache may still hold them). A ZSK signs only once the zone it replaces already published it,
 * so a host that was off for the pre-publication days publishes first and signs the next day.
 *
 * A ZSK signs only once the zone it replaces published it (and that zone was served a DNSKEY TTL).
 *
 * KSK rollover by double signature with CDS/CDNSKEY (RFC 6781 §4.1.2, RFC 7344, RFC 8078): the new
 * KSK is published and signs the DNSKEY set beside the old one at once (a resolver holding the old
 * DS validates through the old KSK, one holding the new DS through the new), CDS and CDNSKEY name
 * it; once the parent serves its DS the old KSK leaves DS_WAIT_DAYS later (the parent's DS TTL).
 */
import type { DnssecKey } from './types.js';

/** A ZSK signs this long before its successor takes over (RFC 6781 suggests months; 90 days here). */
export const ZSK_PERIOD_DAYS = 90;
/** The next ZSK is in the DNSKEY set this long before it signs: far beyond the DNSKEY TTL (1 h) and the secondaries' refresh (4 h). */
export const ZSK_PREPUBLISH_DAYS = 3;
/** A replaced ZSK stays published for the signatures' lifetime (SIGNATURE_DAYS, src/dns/sign.ts). */
export const ZSK_RETIRE_DAYS = 30;
/** After the parent serves the new DS, the old KSK stays this long: the parent's DS TTL (a day at most TLDs) and a margin. */
export const DS_WAIT_DAYS = 2;

export const DAY_MS = 86_400_000;
/** The TTL of the DNSKEY set (DEFAULT_TTL, src/dns/records.ts): how long a resolver may hold the set it fetched. */
export const DNSKEY_TTL_MS = 3600 * 1000;

/** The DNSKEY RDATA of a key as the signer writes it: `flags 3 13 base64` (one space, no breaks). */
export function dnskeyText(k: Pick<DnssecKey, 'dnskey'>): string {
  const [flags, proto, alg, ...b64] = k.dnskey.trim().split(/\s+/);
  return `${flags} ${proto} ${alg} ${b64.join('')}`;
}

/** In the zone's DNSKEY set at `at`. */
export function isPublished(k: Pick<DnssecKey, 'publish' | 'remove'>, at: Date): boolean {
  const t = at.getTime();
  return Date.parse(k.publish) <= t && (k.remove === undefined || t < Date.parse(k.remove));
}

export interface ZonePlan {
  /** The DNSKEY set, KSKs first, by tag. */
  published: DnssecKey[];
  /** Every published KSK (they sign the DNSKEY set) and the one ZSK that signs the rest. */
  signers: DnssecKey[];
}

/** The signed zone a new signing replaces: its DNSKEY set (like `dnskeyText`), the ZSKs that signed it, when. */
export interface PreviousZone {
  dnskeys: readonly string[];
  zskTags: readonly number[];
  /** When it was signed; undefined: unknown (treated as long ago). */
  signedAt?: Date;
}

/**
 * What a zone publishes and which keys sign it at `at`. `previous`: the zone this signing replaces,
 * undefined for a zone signed for the first time. A ZSK whose time has come signs only if it signed
 * `previous` already, or `previous` published it and was signed at least a DNSKEY TTL before `at`
 * (so every resolver's cached DNSKEY set holds it).
 */
export function zonePlan(keys: readonly DnssecKey[], at: Date, previous?: PreviousZone): ZonePlan {
  const published = keys
    .filter((k) => isPublished(k, at))
    .sort((a, b) => (a.role === b.role ? a.tag - b.tag : a.role === 'ksk' ? -1 : 1));
  const ksks = published.filter((k) => k.role === 'ksk');
  const due = published
    .filter((k) => k.role === 'zsk' && Date.parse(k.activate) <= at.getTime())
    .sort((a, b) => Date.parse(a.activate) - Date.parse(b.activate) || a.tag - b.tag);
  const settled = previous?.signedAt === undefined || at.getTime() - previous.signedAt.getTime() >= DNSKEY_TTL_MS;
  const seen =
    previous === undefined ? due : due.filter((k) => previous.zskTags.includes(k.tag) || (settled && previous.dnskeys.includes(dnskeyText(k))));
  const zsk = seen.at(-1) ?? due.at(-1);
  const zone = keys[0]?.zone ?? '?';
  if (ksks.length === 0) throw new Error(`the DNSSEC schedule of ${zone} has no KSK published at ${at.toISOString()}`);
  if (!zsk) throw new Error(`the DNSSEC schedule of ${zone} has no ZSK that may sign at ${at.toISOString()}`);
  return { published, signers: [...ksks, zsk] };
}

export type DnssecStage = 'next' | 'active' | 'retiring';

/** A key's stage at `at` (assuming the zone follows the schedule) and the date of its next step. */
export function keyStage(k: DnssecKey, all: readonly DnssecKey[], at: Date): { state: DnssecStage; nextStep?: string } {
  const t = at.getTime();
  if (Date.parse(k.publish) > t) return { state: 'next', nextStep: `published from ${k.publish}, signs from ${k.activate}` };
  if (k.role === 'zsk' && Date.parse(k.activate) > t) return { state: 'next', nextStep: `signs from ${k.activate}` };
  if (k.role === 'ksk') {
    if (k.remove !== undefined) return { state: 'retiring', nextStep: `leaves the zone at ${k.remove} (the parent serves the new DS)` };
    if (k.cds) return { state: 'next', nextStep: 'signs the DNSKEY set, CDS/CDNSKEY name it: once the parent serves its DS, selfmail keys rotate dnssec --ksk --parent-confirmed' };
    const incoming = all.find((o) => o.zone === k.zone && o.cds);
    return { state: 'active', ...(incoming ? { nextStep: `replaced by KSK ${incoming.tag} once the parent serves its DS` } : {}) };
  }
  const later = all.find((o) => o.zone === k.zone && o.role === 'zsk' && o !== k && Date.parse(o.activate) > Date.parse(k.activate) && Date.parse(o.activate) <= t);
  if (later) return { state: 'retiring', nextStep: `leaves the zone at ${k.remove ?? '?'}` };
  const successor = all.find((o) => o.zone === k.zone && o.role === 'zsk' && Date.parse(o.activate) > t);
  return { state: 'active', ...(successor ? { nextStep: `replaced by ZSK ${successor.tag} at ${successor.activate}` } : {}) };
}
