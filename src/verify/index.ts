/**
 * `verify`: prove that what is installed is what the bundle holds, and that the published trust
 * chain still holds: files against MANIFEST.sha256, key modes and owners, RRSIG expiry of the
 * served zones, the certificate's expiry and its TLSA pin, the registrar's DS against the DNSKEY.
 */
import { createHash, X509Certificate } from 'node:crypto';
import { lstat, readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { readBundle, sha256Hex } from '../apply/bundle.js';
import type { BundleEntry } from '../apply/bundle.js';
import { loadIds } from '../bundle/owners.js';
import { ruleFor, systemPathOf } from '../bundle/layout.js';
import { hostMaintained, judgeHostCopy, TLS_CERT } from './maintained.js';
import type { Ids } from '../bundle/owners.js';
import { MAIL_ROOT_MODE, mailAccount, mailAccountMissing } from '../apply/accounts.js';
import { planRemovals } from '../apply/plan.js';
import { RESOLV_CONF_PATH } from '../unbound/index.js';
import { mtaStsModeFor } from '../web/mtasts.js';
import { dsDigest, earliestRrsigExpiry, parseDnskey, parseDs, parseZone, tlsaPins } from './dns.js';
import type { ZoneRecord } from './dns.js';

/** A failure means drift (exit 4); a warning needs attention soon; a note only says what the host did. */
export type FindingLevel = 'failure' | 'warning' | 'note';

/** `resigned` / `renewed`: a host-maintained file differs from the bundle, legitimately (a note). */
export type FindingCheck =
  | 'missing'
  | 'changed'
  | 'mode'
  | 'owner'
  | 'stale'
  | 'account'
  | 'resolver'
  | 'mta-sts'
  | 'rrsig'
  | 'certificate'
  | 'tlsa'
  | 'ds'
  | 'resigned'
  | 'renewed';

/** One thing that drifted or is about to. */
export interface Finding {
  level: FindingLevel;
  check: FindingCheck;
  /** The installed system path (without root) or the bundle path the finding is about. */
  path: string;
  message: string;
}

export interface VerifyOptions {
  bundleDir: string;
  /** Install root; default `/`. */
  root?: string;
  /** The clock for expiry horizons (tests). */
  now?: Date;
}

const DAY = 86_400_000;
/** RRSIG horizons: a warning leaves a week to re-sign; a failure means resolvers will soon reject the zone. */
export const RRSIG_WARN_DAYS = 7;
export const RRSIG_FAIL_DAYS = 1;
/** A certificate is renewed well before it lapses (ACME renews 30 days ahead). */
export const CERT_WARN_DAYS = 14;

/** One finding as one line of text: `FAIL changed /etc/postfix/main.cf: …`. */
export function formatFinding(f: Finding): string {
  return `${f.level === 'failure' ? 'FAIL' : f.level === 'warning' ? 'WARN' : 'NOTE'} ${f.check} ${f.path}: ${f.message}`;
}

async function readIfPresent(path: string): Promise<Buffer | undefined> {
  try {
    return await readFile(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

const days = (ms: number) => Math.floor(ms / DAY);
const octal = (m: number) => m.toString(8).padStart(4, '0');

/**
 * Compare what is installed under `root` with the bundle at `bundleDir`. Returns the findings,
 * failures first, then warnings, then notes, each list in bundle order; no failure means clean.
 * A re-signed zone or a renewed certificate that passes the test of ./maintained.ts is a note. Throws InputError when the
 * bundle itself does not match its manifest (it cannot serve as the reference then).
 */
export async function verifyBundle(opts: VerifyOptions): Promise<Finding[]> {
  const root = resolve(opts.root ?? '/');
  const now = opts.now ?? new Date();
  const { entries, manifest } = await readBundle(opts.bundleDir);
  const ids = await loadIds(root);
  const findings: Finding[] = [];
  /** The bytes as served: the installed copy when present, else the bundle's. */
  const served = new Map<string, Buffer>();

  for (const e of [...entries, manifest]) {
    const rule = ruleFor(e.path);
    if (!rule) {
      served.set(e.path, e.data);
      continue;
    }
    const sys = systemPathOf(e.path);
    const target = join(root, sys);
    const data = await readIfPresent(target);
    if (!data) {
      findings.push({ level: 'failure', check: 'missing', path: sys, message: `not installed (bundle file ${e.path})` });
      served.set(e.path, e.data);
      continue;
    }
    served.set(e.path, data);
    if (sha256Hex(data) !== e.sha256) {
      const differs = `differs from ${e.path} in MANIFEST.sha256 (sha256 ${sha256Hex(data)})`;
      if (hostMaintained(e.path)) {
        // The host re-signs its zones and renews its certificate: that is no drift when the test holds.
        const v = await judgeHostCopy({ bundlePath: e.path, bundleData: e.data, installed: data, file: target, entries, now, failDays: RRSIG_FAIL_DAYS });
        const check: FindingCheck = e.path === TLS_CERT ? 'renewed' : 'resigned';
        if (v.accepted) findings.push({ level: 'note', check, path: sys, message: v.summary });
        else findings.push({ level: 'failure', check: 'changed', path: sys, message: `${differs}: ${v.summary}` });
      } else {
        findings.push({ level: 'failure', check: 'changed', path: sys, message: differs });
      }
    }
    findings.push(...(await metadataFindings(e, sys, target, rule.mode ?? e.mode, rule.owner, rule.group, ids)));
  }

  const zoneFiles = entries.filter((e) => /^dns\/[^/]+\.zone(\.signed)?$/.test(e.path));
  const zones = new Map<string, { path: string; records: ZoneRecord[]; signed: boolean }>();
  for (const e of zoneFiles) {
    const signed = e.path.endsWith('.signed');
    const name = e.path.replace(/^dns\//, '').replace(/\.zone(\.signed)?$/, '');
    if (zones.get(name)?.signed && !signed) continue;
    const text = (served.get(e.path) ?? e.data).toString('utf8');
    zones.set(name, { path: e.path, records: parseZone(text, name), signed });
  }

  for (const [name, z] of [...zones].sort(([a], [b]) => (a < b ? -1 : 1))) {
    if (!z.signed) continue;
    const where = systemPathOf(z.path);
    const expiry = earliestRrsigExpiry(z.records);
    if (!expiry) {
      findings.push({ level: 'failure', check: 'rrsig', path: where, message: `${name} is meant to be signed but has no RRSIG` });
    } else {
      const left = expiry.getTime() - now.getTime();
      const when = `${expiry.toISOString()} (${left <= 0 ? 'already expired' : `in ${days(left)} days`})`;
      if (left <= RRSIG_FAIL_DAYS * DAY) {
        findings.push({ level: 'failure', check: 'rrsig', path: where, message: `${name}: signatures expire ${when}; validating resolvers will reject the zone: run selfmail dns resign` });
      } else if (left <= RRSIG_WARN_DAYS * DAY) {
        findings.push({ level: 'warning', check: 'rrsig', path: where, message: `${name}: signatures expire ${when}: run selfmail dns resign` });
      }
    }
  }

  for (const e of entries.filter((x) => /^dns\/[^/]+\.ds$/.test(x.path))) {
    findings.push(...dsFindings(e, zones));
  }
  findings.push(...certFindings(entries, served, zones, now));
  findings.push(...(await hostFindings(entries, root, ids, served, now)));

  const rank = (f: Finding) => (f.level === 'failure' ? 0 : f.level === 'warning' ? 1 : 2);
  return findings.map((f, i) => ({ f, i })).sort((a, b) => rank(a.f) - rank(b.f) || a.i - b.i).map(({ f }) => f);
}

async function metadataFindings(
  e: BundleEntry,
  sys: string,
  target: string,
  mode: number,
  owner: string,
  group: string,
  ids: Awaited<ReturnType<typeof loadIds>>,
): Promise<Finding[]> {
  const out: Finding[] = [];
  const st = await lstat(target);
  // Secrets get failures: a readable key is a leaked key. Other files only warn on metadata.
  const level: FindingLevel = (mode & 0o077) === 0 || e.path.startsWith('keys/') ? 'failure' : 'warning';
  if (!st.isFile()) {
    out.push({ level: 'failure', check: 'changed', path: sys, message: 'is not a regular file' });
    return out;
  }
  if ((st.mode & 0o7777) !== mode) {
    out.push({ level, check: 'mode', path: sys, message: `mode ${octal(st.mode & 0o7777)}, expected ${octal(mode)}` });
  }
  let want: [number, number] | undefined;
  try {
    want = [ids.uid(owner), ids.gid(group)];
  } catch (err) {
    out.push({ level, check: 'owner', path: sys, message: (err as Error).message });
  }
  if (want && (st.uid !== want[0] || st.gid !== want[1])) {
    out.push({
      level,
      check: 'owner',
      path: sys,
      message: `owned by ${ids.userName(st.uid)}:${ids.groupName(st.gid)}, expected ${owner}:${group}`,
    });
  }
  return out;
}

function dsFindings(e: BundleEntry, zones: Map<string, { path: string; records: ZoneRecord[]; signed: boolean }>): Finding[] {
  const name = e.path.replace(/^dns\//, '').replace(/\.ds$/, '');
  const zone = zones.get(name);
  const dsList = parseZone(e.data.toString('utf8'), name)
    .filter((r) => r.type === 'DS')
    .map(parseDs);
  if (dsList.length === 0 || dsList.some((d) => !d)) {
    return [{ level: 'failure', check: 'ds', path: e.path, message: `${name}: no readable DS record` }];
  }
  if (!zone?.signed) {
    return [{ level: 'failure', check: 'ds', path: e.path, message: `${name}: a DS is published but the zone is not signed: resolvers will reject it` }];
  }
  const apex = zone.records.find((r) => r.type === 'SOA')?.owner ?? `${name.toLowerCase()}.`;
  const ksks = zone.records
    .filter((r) => r.type === 'DNSKEY' && r.owner === apex)
    .map((r) => parseDnskey(r.rdata))
    .filter((k): k is NonNullable<typeof k> => !!k && k.flags === 257);
  const out: Finding[] = [];
  for (const ds of dsList) {
    if (!ds) continue;
    const key = ksks.find((k) => k.tag === ds.keyTag && k.algorithm === ds.algorithm);
    if (!key) {
      out.push({ level: 'failure', check: 'ds', path: e.path, message: `${name}: DS ${ds.keyTag} names no KSK (DNSKEY 257) in the served zone` });
      continue;
    }
    const digest = dsDigest(apex, key, ds.digestType);
    if (!digest) {
      out.push({ level: 'warning', check: 'ds', path: e.path, message: `${name}: DS ${ds.keyTag} uses digest type ${ds.digestType}, which verify cannot recompute` });
    } else if (digest !== ds.digest) {
      out.push({ level: 'failure', check: 'ds', path: e.path, message: `${name}: DS ${ds.keyTag} digest does not match the KSK in the served zone (expected ${digest})` });
    }
  }
  return out;
}

function certFindings(
  entries: BundleEntry[],
  served: Map<string, Buffer>,
  zones: Map<string, { path: string; records: ZoneRecord[]; signed: boolean }>,
  now: Date,
): Finding[] {
  const out: Finding[] = [];
  const pins = [...zones.values()].flatMap((z) => tlsaPins(z.records));
  for (const e of entries) {
    if (!e.path.startsWith('keys/tls/')) continue;
    const data = served.get(e.path) ?? e.data;
    if (!data.includes('-----BEGIN CERTIFICATE-----')) continue;
    const where = systemPathOf(e.path);
    let cert: X509Certificate;
    try {
      cert = new X509Certificate(data);
    } catch (err) {
      out.push({ level: 'failure', check: 'certificate', path: where, message: `cannot be parsed: ${(err as Error).message}` });
      continue;
    }
    const left = new Date(cert.validTo).getTime() - now.getTime();
    if (left <= 0) {
      out.push({ level: 'failure', check: 'certificate', path: where, message: `expired on ${new Date(cert.validTo).toISOString()}` });
    } else if (left <= CERT_WARN_DAYS * DAY) {
      out.push({ level: 'warning', check: 'certificate', path: where, message: `expires on ${new Date(cert.validTo).toISOString()} (in ${days(left)} days)` });
    }
    if (pins.length > 0) {
      const spki = createHash('sha256').update(cert.publicKey.export({ type: 'spki', format: 'der' })).digest('hex');
      if (!pins.some((p) => p.sha256 === spki)) {
        out.push({
          level: 'failure',
          check: 'tlsa',
          path: where,
          message: `its public key (SPKI sha256 ${spki}) is pinned by no TLSA 3 1 1 record (${[...new Set(pins.map((p) => p.owner))].join(', ')}): DANE senders will refuse to deliver`,
        });
      }
    }
  }
  return out;
}

/**
 * What apply sets up beside the files: no file of an earlier bundle left behind, the mail account
 * and its folder, the host pointed at its own resolver, MTA-STS `enforce` once a CA-issued
 * certificate is installed.
 */
async function hostFindings(entries: BundleEntry[], root: string, ids: Ids, served: Map<string, Buffer>, now: Date): Promise<Finding[]> {
  const out: Finding[] = [];
  for (const r of await planRemovals(entries, root)) {
    out.push({ level: 'failure', check: 'stale', path: r.systemPath, message: `should be gone: the bundle no longer has ${r.bundlePath} (apply removes it, keeping a copy in its backup)` });
  }
  const account = mailAccount();
  if (mailAccountMissing(ids)) {
    out.push({ level: 'failure', check: 'account', path: '/etc/passwd', message: `no ${account.user} account: Dovecot cannot store or read mail (apply creates it)` });
  } else {
    const st = await lstat(join(root, account.home)).catch(() => undefined);
    if (!st?.isDirectory()) out.push({ level: 'failure', check: 'account', path: account.home, message: `the mail folder is missing (apply creates it, owned by ${account.user})` });
    else if (st.uid !== ids.uid(account.user) || (st.mode & 0o7777) !== MAIL_ROOT_MODE) {
      out.push({ level: 'failure', check: 'account', path: account.home, message: `owned by ${ids.userName(st.uid)} with mode ${octal(st.mode & 0o7777)}, expected ${account.user} and ${octal(MAIL_ROOT_MODE)}` });
    }
  }
  // Another root (an image) switches its resolver when it boots; only a running host is judged.
  const resolv = root === '/' ? entries.find((e) => e.path === RESOLV_CONF_PATH) : undefined;
  if (resolv) {
    const current = await readIfPresent(join(root, 'etc/resolv.conf'));
    if (!current?.equals(resolv.data)) {
      out.push({ level: 'warning', check: 'resolver', path: '/etc/resolv.conf', message: 'does not point at the local unbound yet (selfmail-resolver.service switches it once unbound answers); outgoing DANE needs it' });
    }
  }
  const cert = served.get(TLS_CERT);
  const bundleCert = entries.find((e) => e.path === TLS_CERT);
  if (cert && bundleCert && mtaStsModeFor(cert, bundleCert.data, now) === 'enforce') {
    const testing = entries.filter((e) => /^www\/[^/]+\/\.well-known\/mta-sts\.txt$/.test(e.path) && /^mode: testing\r?$/m.test(e.data.toString('utf8')));
    for (const e of testing) {
      out.push({ level: 'warning', check: 'mta-sts', path: systemPathOf(e.path), message: 'says mode: testing although a CA-issued certificate is installed: re-run selfmail init and apply to publish mode: enforce' });
    }
  }
  return out;
}
