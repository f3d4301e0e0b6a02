/**
 * DNSSEC signing with ldns-signzone (a proven signer; no home-made crypto), and the rules for
 * when an existing signed zone can be kept.
 *
 * Denial of existence: NSEC, not NSEC3. NSEC3 only hides names from zone walking, and every
 * name in these zones is predictable anyway (mail., mta-sts., _dmarc., selectors are published
 * in every signed mail). NSEC is simpler for validators, cheaper to serve, and lets resolvers
 * synthesise negative answers from cache (RFC 8198); RFC 9276 §3.1 recommends NSEC when zone
 * enumeration is not a concern.
 */
import { earliestRrsigExpiry, parseDnsTime, parseZone } from '../verify/dns.js';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import type { DomainName } from '../config/types.js';
import type { DnssecKey, KeySet } from '../keys/types.js';
import { run } from '../tools/run.js';
import { dnskeyText, zonePlan, type PreviousZone, type ZonePlan } from '../keys/dnssec-plan.js';

/** Signatures start an hour before now, so a validator whose clock lags a little accepts them. */
export const INCEPTION_SKEW_SECONDS = 3600;
/** Signatures are valid for 30 days. */
export const SIGNATURE_DAYS = 30;
/** A signed zone is re-signed once its earliest signature expires within a week. */
export const RESIGN_MARGIN_DAYS = 7;

const DAY = 86_400_000;

/** `YYYYMMDDhhmmss` in UTC, the date form ldns-signzone takes and RRSIGs show. */
export function dnssecTime(d: Date): string {
  return d.toISOString().replace(/[-:T]/g, '').slice(0, 14);
}

/**
 * The records of a zone as ldns-signzone writes it (one record a line, absolute names, TTL and
 * class spelled out): `[owner, ttl, class, type, ...rdata]`. Comments are kept inside the fields
 * on purpose: a `;` may sit inside a quoted TXT or CAA value, and only the types parsed here
 * (RRSIG, DNSKEY, SOA) need them cut, which their readers do.
 */
function records(text: string): string[][] {
  return text
    .split('\n')
    .filter((l) => l.trim() !== '' && !/^\s*[;$]/.test(l))
    .map((l) => l.trim().split(/\s+/));
}

/** The earliest RRSIG expiration in a signed zone (the one scanner, verify/dns.ts's). */
export function earliestExpiry(signed: string): Date | undefined {
  return earliestRrsigExpiry(parseZone(signed, '.'));
}

/** The DNSKEY RDATA of a signed zone (`flags 3 alg base64`), sorted, ldns' trailing comment cut. */
export function dnskeysIn(text: string): string[] {
  return records(text)
    .filter((f) => f[3] === 'DNSKEY')
    .map((f) => {
      const rest = f.slice(4);
      const end = rest.findIndex((t) => t.startsWith(';'));
      const [flags, proto, alg, ...b64] = end < 0 ? rest : rest.slice(0, end);
      return `${flags} ${proto} ${alg} ${b64.join('')}`;
    })
    .sort();
}

/**
 * The DNSKEY set `zone` publishes at `at` by the key store's schedule, normalised like `dnskeysIn`.
 * `previousSigned`: the signed zone this one replaces (it decides whether a due ZSK may sign yet).
 */
export function zoneDnskeys(keys: Pick<KeySet, 'dnssec'>, zone: DomainName, at: Date, previousSigned?: string): string[] {
  return planOf(keys, zone, at, previousSigned).published.map(dnskeyText).sort();
}

function planOf(keys: Pick<KeySet, 'dnssec'>, zone: DomainName, at: Date, previousSigned: string | undefined): ZonePlan {
  return zonePlan(keys.dnssec.filter((k) => k.zone === zone), at, previousSigned === undefined ? undefined : previousZone(previousSigned));
}

/** What the schedule needs to know of the signed zone a new signing replaces. */
export function previousZone(signed: string): PreviousZone {
  const soaSig = records(signed).find((f) => f[3] === 'RRSIG' && f[4] === 'SOA');
  const inception = parseDnsTime(soaSig?.[9] ?? '');
  const signedAt = inception ? new Date(inception.getTime() + INCEPTION_SKEW_SECONDS * 1000) : undefined;
  return { dnskeys: dnskeysIn(signed), zskTags: soaSignerTags(signed), ...(signedAt ? { signedAt } : {}) };
}

/** The key tags of the RRSIGs over the SOA: the ZSK a signed zone was signed with. */
export function soaSignerTags(signed: string): number[] {
  return records(signed)
    .filter((f) => f[3] === 'RRSIG' && f[4] === 'SOA')
    .map((f) => Number(f[10]))
    .sort((a, b) => a - b);
}

/**
 * True when `previousSigned` can be kept as it is: it was signed from exactly `unsigned`
 * (`previousUnsigned` equal byte for byte), carries exactly the zone's current DNSKEYs, was signed by
 * the schedule's ZSK, and its
 * earliest signature expires more than RESIGN_MARGIN_DAYS after `now`. ECDSA signatures are
 * randomised, so keeping the old bytes is what makes a re-run byte-identical.
 */
export function canReuseSigned(opts: {
  previousSigned: string | undefined;
  previousUnsigned: string | undefined;
  unsigned: string;
  dnskeys: readonly string[];
  /** The ZSK that must have signed it (the schedule's signer now). */
  zskTag?: number;
  now: Date;
}): boolean {
  const { previousSigned, previousUnsigned, unsigned, dnskeys, now } = opts;
  if (previousSigned === undefined || previousUnsigned !== unsigned) return false;
  const have = dnskeysIn(previousSigned);
  if (have.length !== dnskeys.length || have.some((k, i) => k !== dnskeys[i])) return false;
  if (opts.zskTag !== undefined && soaSignerTags(previousSigned).join() !== String(opts.zskTag)) return false;
  const exp = earliestExpiry(previousSigned);
  return exp !== undefined && exp.getTime() > now.getTime() + RESIGN_MARGIN_DAYS * DAY;
}

/** A DNSSEC key pair as ldns-signzone reads it: `<base>.key` and `<base>.private`. */
export interface SigningKey {
  /** File base name, `Kexample.org.+013+12345`. */
  base: string;
  key: Buffer;
  private: Buffer;
}

/**
 * The keys that sign `zone` at `at` (private bytes read through `keys.read`) and the DNSKEY records
 * of the keys published beside them without signing (a next ZSK, a retiring one).
 */
export function signingKeys(keys: Pick<KeySet, 'dnssec' | 'read'>, zone: DomainName, at: Date, previousSigned?: string): { signers: SigningKey[]; publishOnly: string[] } {
  const plan = planOf(keys, zone, at, previousSigned);
  const signers = plan.signers.map((k: DnssecKey) => ({
    base: basename(k.basePath),
    key: keys.read(`${k.basePath}.key`),
    private: keys.read(`${k.basePath}.private`),
  }));
  const publishOnly = plan.published.filter((k) => !plan.signers.includes(k)).map((k) => `${zone}. IN DNSKEY ${dnskeyText(k)}`);
  return { signers, publishOnly };
}

/** The ZSK that signs `zone` at `at` by the schedule. */
export function signingZskTag(keys: Pick<KeySet, 'dnssec'>, zone: DomainName, at: Date, previousSigned?: string): number {
  return planOf(keys, zone, at, previousSigned).signers.find((k) => k.role === 'zsk')!.tag;
}

/**
 * Sign `unsigned` with ldns-signzone: NSEC (see above), inception an hour before `now`, expiry
 * SIGNATURE_DAYS after. The private keys are written only into a fresh 0700 folder (never into
 * argv) and removed afterwards, also on failure.
 */
export async function signZone(zone: DomainName, unsigned: string, keys: readonly SigningKey[], now: Date, publishOnly: readonly string[] = []): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'selfmail-sign-'));
  try {
    await chmod(dir, 0o700);
    const zoneFile = join(dir, `${zone}.zone`);
    // Keys published without signing go in as plain DNSKEY records; ldns-signzone adds the signers'.
    await writeFile(zoneFile, publishOnly.length > 0 ? `${unsigned}${publishOnly.join('\n')}\n` : unsigned, { mode: 0o600 });
    for (const k of keys) {
      await writeFile(join(dir, `${k.base}.key`), k.key, { mode: 0o600 });
      await writeFile(join(dir, `${k.base}.private`), k.private, { mode: 0o600 });
    }
    const out = join(dir, `${zone}.zone.signed`);
    const inception = new Date(now.getTime() - INCEPTION_SKEW_SECONDS * 1000);
    const expiry = new Date(now.getTime() + SIGNATURE_DAYS * DAY);
    await run(
      'ldns-signzone',
      ['-f', out, '-o', `${zone}.`, '-i', dnssecTime(inception), '-e', dnssecTime(expiry), zoneFile, ...keys.map((k) => k.base)],
      { cwd: dir, timeout: 60_000 },
    );
    return await readFile(out, 'utf8');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
