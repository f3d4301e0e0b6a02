/**
 * Files the host itself keeps up to date after apply, and the test that tells such an update from
 * drift. Two installed files legitimately stop matching the bundle:
 * - a signed zone, re-signed every day by `selfmail-resign` with fresh RRSIGs and a higher SOA
 *   serial: fine while its records (DNSSEC aside) are the bundle's, its DNSKEYs are the bundle's,
 *   its signatures verify and are not about to expire;
 * - the TLS certificate, replaced by `selfmail-acme` with a CA-issued one: fine while it is for the
 *   very key the bundle made (the one TLSA pins) and has not expired.
 * Anything else that differs is drift, and each problem is named.
 */
import { X509Certificate } from 'node:crypto';
import { ToolError } from '../errors.js';
import { run } from '../tools/run.js';
import { earliestRrsigExpiry, parseDnskey, parseZone, soaSerialOfRecords } from './dns.js';
import type { ZoneRecord } from './dns.js';

/** The signer's own records: they change at every re-signing and are checked apart. */
const DNSSEC_TYPES = new Set(['RRSIG', 'NSEC', 'NSEC3', 'NSEC3PARAM', 'DNSKEY']);
/** Types whose RDATA holds domain names, compared without regard to case (RFC 4343). */
const NAME_TYPES = new Set(['NS', 'CNAME', 'DNAME', 'MX', 'SRV', 'PTR', 'SOA']);
const DAY = 86_400_000;

/** `dns/<zone>.zone.signed` → the zone name; undefined for any other bundle path. */
export function signedZoneOf(bundlePath: string): string | undefined {
  return /^dns\/([^/]+)\.zone\.signed$/.exec(bundlePath)?.[1];
}

/** The bundle path of the TLS certificate that selfmail-acme replaces on the host. */
export const TLS_CERT = 'keys/tls/cert.pem';

/** Whether the host may legitimately rewrite this installed file (see the module comment). */
export function hostMaintained(bundlePath: string): boolean {
  return bundlePath === TLS_CERT || signedZoneOf(bundlePath) !== undefined;
}

/** What the test says about an installed copy that differs from the bundle's. */
export interface HostCopyVerdict {
  /** True when the difference is the host's own legitimate update. */
  accepted: boolean;
  /** One line saying what the host did (accepted) or what differs (not accepted). */
  summary: string;
  /** Every problem found; empty when accepted. */
  problems: string[];
  /**
   * Accepted and newer than the bundle's copy, so apply keeps it: a re-signed zone with a higher
   * serial, or a CA-issued certificate where the bundle only has its self-signed bootstrap one.
   */
  keep: boolean;
  /** For a certificate: accepted and issued by a CA (not self-signed). */
  caIssued?: boolean;
}


/** One record as a comparable line; the SOA serial blanked, since re-signing raises it. */
function recordKey(r: ZoneRecord): string {
  let rdata = r.rdata;
  if (r.type === 'SOA') rdata = rdata.map((t, i) => (i === 2 ? '*' : t));
  const text = rdata.join(' ');
  return `${r.owner} ${r.ttl ?? '-'} ${r.type} ${NAME_TYPES.has(r.type) ? text.toLowerCase() : text}`;
}

/** Lines of `a` not in `b`, counting repeats. */
function minus(a: readonly string[], b: readonly string[]): string[] {
  const left = new Map<string, number>();
  for (const k of b) left.set(k, (left.get(k) ?? 0) + 1);
  const out: string[] = [];
  for (const k of a) {
    const n = left.get(k) ?? 0;
    if (n > 0) left.set(k, n - 1);
    else out.push(k);
  }
  return out;
}

const dnskeySet = (records: readonly ZoneRecord[]) =>
  records
    .filter((r) => r.type === 'DNSKEY')
    .map((r) => parseDnskey(r.rdata)?.wire.toString('hex') ?? `malformed ${r.rdata.join(' ')}`)
    .sort();

const some = (lines: string[]) => (lines.length > 3 ? `${lines.slice(0, 3).join('; ')}; and ${lines.length - 3} more` : lines.join('; '));

/**
 * Is `installed` (the text of a served signed zone) the bundle's zone re-signed on the host? Pure:
 * the signatures themselves are checked by {@link verifyZoneSignatures}. The records other than
 * RRSIG/NSEC/NSEC3/NSEC3PARAM/DNSKEY must equal the bundle's unsigned zone (the SOA serial aside),
 * the DNSKEYs the bundle's signed zone's, the serial must not be lower than the bundle's, and the
 * earliest RRSIG must expire more than `failDays` after `now`.
 */
export function judgeSignedZone(input: {
  zone: string;
  installed: string;
  bundleSigned: string;
  bundleUnsigned: string;
  /** The DNSKEYs (wire form, hex) of every key the bundle holds for the zone; without it the set must be the bundle's signed zone's. */
  bundleDnskeys?: readonly string[];
  now: Date;
  failDays: number;
}): HostCopyVerdict {
  const { zone } = input;
  const served = parseZone(input.installed, zone);
  const signed = parseZone(input.bundleSigned, zone);
  const unsigned = parseZone(input.bundleUnsigned, zone);
  const problems: string[] = [];

  const have = soaSerialOfRecords(served);
  const want = soaSerialOfRecords(signed) ?? soaSerialOfRecords(unsigned);
  if (have === undefined) problems.push('it has no readable SOA serial');
  else if (want !== undefined && have < want) problems.push(`its SOA serial ${have} is lower than the bundle's ${want}`);

  const servedKeys = served.filter((r) => !DNSSEC_TYPES.has(r.type)).map(recordKey);
  const bundleKeys = unsigned.filter((r) => !DNSSEC_TYPES.has(r.type)).map(recordKey);
  const extra = minus(servedKeys, bundleKeys);
  const missing = minus(bundleKeys, servedKeys);
  if (extra.length > 0) problems.push(`records not in the bundle's zone: ${some(extra)}`);
  if (missing.length > 0) problems.push(`records of the bundle's zone missing: ${some(missing)}`);

  const keys = dnskeySet(served);
  if (input.bundleDnskeys !== undefined) {
    // The host follows the bundle's key schedule (a ZSK published or replaced, a KSK leaving): any
    // DNSKEY set of the bundle's own keys with a KSK among them is one of its stages.
    const allowed = new Set(input.bundleDnskeys);
    const foreign = keys.filter((k) => !allowed.has(k));
    if (foreign.length > 0) problems.push(`its DNSKEY set holds ${foreign.length} key(s) the bundle does not: the DS at the registrar may no longer match`);
    else if (!keys.some((k) => k.startsWith('0101'))) problems.push('its DNSKEY set has no KSK');
  } else if (keys.join() !== dnskeySet(signed).join()) {
    problems.push(`its DNSKEY set (${keys.length} key(s)) is not the bundle's: the DS at the registrar may no longer match`);
  }

  const expiry = earliestRrsigExpiry(served);
  if (!expiry) problems.push('it has no RRSIG');
  else if (expiry.getTime() - input.now.getTime() <= input.failDays * DAY) {
    problems.push(`its signatures expire ${expiry.toISOString()}`);
  }

  if (problems.length > 0) {
    return { accepted: false, summary: `${zone}: differs from the bundle's signed zone and is no re-signing of it: ${problems.join('; ')}`, problems, keep: false };
  }
  const newer = have !== undefined && want !== undefined && have > want;
  return {
    accepted: true,
    summary: `${zone}: re-signed on the host (serial ${have}${newer ? `, bundle ${want}` : ''}); records and DNSKEYs are the bundle's${keys.join() === dnskeySet(signed).join() ? '' : ' (a later stage of its key schedule)'}`,
    problems: [],
    keep: newer,
  };
}

/**
 * Check every RRSIG of a signed zone file against its DNSKEYs with ldns-verify-zone. Returns the
 * tool's complaint, or undefined when the zone verifies.
 */
export async function verifyZoneSignatures(file: string): Promise<string | undefined> {
  try {
    await run('ldns-verify-zone', ['-V', '1', file]);
    return undefined;
  } catch (err) {
    if (err instanceof ToolError && err.output.trim() !== '') {
      return `ldns-verify-zone rejects its signatures: ${err.output.trim().split('\n').slice(0, 3).join('; ')}`;
    }
    throw err;
  }
}

/** The DER SubjectPublicKeyInfo of a certificate, as hex. */
const spkiHex = (c: X509Certificate) => c.publicKey.export({ type: 'spki', format: 'der' }).toString('hex');

/** A certificate signed by its own key: the bundle's bootstrap certificate is one. */
export function selfSigned(c: X509Certificate): boolean {
  // Not checkIssued(): it also wants keyCertSign in keyUsage, which a leaf certificate lacks.
  return c.issuer === c.subject && c.verify(c.publicKey);
}

/**
 * Is `installed` (PEM, the leaf first, as selfmail-acme installs a full chain) a certificate the
 * host obtained for the bundle's own TLS key? Pure. Accepted when its public key is the bundle
 * certificate's (the key TLSA pins) and `now` is within its validity; kept by apply when, on top
 * of that, it is CA-issued and the bundle's is the self-signed bootstrap one.
 */
export function judgeCertificate(input: { installed: Buffer; bundleCert: Buffer; now: Date }): HostCopyVerdict {
  const problems: string[] = [];
  let cert: X509Certificate | undefined;
  let ours: X509Certificate | undefined;
  try {
    cert = new X509Certificate(input.installed);
  } catch (err) {
    problems.push(`it cannot be parsed as a certificate (${(err as Error).message})`);
  }
  try {
    ours = new X509Certificate(input.bundleCert);
  } catch (err) {
    problems.push(`the bundle's certificate cannot be parsed (${(err as Error).message})`);
  }
  if (cert && ours) {
    if (spkiHex(cert) !== spkiHex(ours)) problems.push('it is for another key than the bundle\'s TLS key, which TLSA pins');
    const from = new Date(cert.validFrom);
    const to = new Date(cert.validTo);
    if (to.getTime() <= input.now.getTime()) problems.push(`it expired on ${to.toISOString()}`);
    else if (from.getTime() > input.now.getTime()) problems.push(`it is not valid before ${from.toISOString()}`);
  }
  if (problems.length > 0 || !cert || !ours) {
    return { accepted: false, summary: `differs from the bundle's certificate and is no renewal for its key: ${problems.join('; ')}`, problems, keep: false };
  }
  const caIssued = !selfSigned(cert);
  return {
    accepted: true,
    summary: `${caIssued ? 'issued by a CA' : 'another self-signed certificate'} for the bundle's TLS key (pinned by TLSA), valid until ${new Date(cert.validTo).toISOString()}`,
    problems: [],
    keep: caIssued && selfSigned(ours),
    caIssued,
  };
}

/**
 * The test for one host-maintained file whose installed bytes differ from the bundle's. `entries`
 * is the whole bundle (the unsigned zone is the reference for a signed one); `file` is the
 * installed file, read by ldns-verify-zone when the pure checks pass.
 */
export async function judgeHostCopy(input: {
  bundlePath: string;
  bundleData: Buffer;
  installed: Buffer;
  file: string;
  entries: readonly { path: string; data: Buffer }[];
  now: Date;
  failDays: number;
}): Promise<HostCopyVerdict> {
  const zone = signedZoneOf(input.bundlePath);
  if (zone === undefined) return judgeCertificate({ installed: input.installed, bundleCert: input.bundleData, now: input.now });
  const unsigned = input.entries.find((e) => e.path === `dns/${zone}.zone`);
  if (!unsigned) {
    const problems = [`the bundle has no unsigned zone dns/${zone}.zone to compare with`];
    return { accepted: false, summary: `${zone}: ${problems[0]}`, problems, keep: false };
  }
  const verdict = judgeSignedZone({
    zone,
    installed: input.installed.toString('utf8'),
    bundleSigned: input.bundleData.toString('utf8'),
    bundleUnsigned: unsigned.data.toString('utf8'),
    bundleDnskeys: input.entries
      .filter((e) => e.path.startsWith(`keys/dnssec/${zone}/`) && e.path.endsWith('.key'))
      .flatMap((e) => parseZone(e.data.toString('utf8'), zone).filter((r) => r.type === 'DNSKEY'))
      .map((r) => parseDnskey(r.rdata)?.wire.toString('hex') ?? ''),
    now: input.now,
    failDays: input.failDays,
  });
  if (!verdict.accepted) return verdict;
  const bad = await verifyZoneSignatures(input.file);
  if (bad === undefined) return verdict;
  return { accepted: false, summary: `${zone}: differs from the bundle's signed zone and ${bad}`, problems: [bad], keep: false };
}
