/**
 * `selfmail doctor`'s judgements: each check turns facts gathered on the live host (unit states,
 * the certificate a port serves, the TLSA records its own name server answers) into a status and,
 * for anything not passing, what to do. Pure: the gathering is in ./index.ts.
 */
import { X509Certificate, createHash } from 'node:crypto';

export type CheckStatus = 'pass' | 'warn' | 'fail' | 'unknown';

export interface CheckResult {
  /** Stable: scripts key on it. */
  id: string;
  status: CheckStatus;
  /** What was found, one line. */
  summary: string;
  /** For anything not passing: what to do. */
  fix?: string;
  /** Whom the check asked. */
  asked: string;
}

const DAY = 86_400_000;
export const CERT_WARN_DAYS = 14;
/** The re-sign job runs daily; two days without a run means it stopped. */
export const RESIGN_MAX_AGE_DAYS = 2;

export interface UnitState {
  unit: string;
  active: string;
  enabled: string;
}

/** `services`: every unit the bundle needs is active and enabled. */
export function judgeServices(states: readonly UnitState[]): CheckResult {
  const asked = 'systemd on this host';
  const bad = states.filter((s) => s.active !== 'active' || s.enabled !== 'enabled');
  if (bad.length === 0) return { id: 'services', status: 'pass', summary: `all ${states.length} units active and enabled`, asked };
  return {
    id: 'services',
    status: 'fail',
    summary: bad.map((s) => `${s.unit} ${s.active}, ${s.enabled}`).join('; '),
    fix: `see why with journalctl -u ${bad[0]!.unit}; selfmail apply --bundle DIR enables and starts every unit again`,
    asked,
  };
}

/** A daily job: its timer's enablement, and when and how its service last finished. */
export interface DailyJobFacts {
  /** `systemctl is-enabled <job>.timer`. */
  timerEnabled: string;
  /** When the job's service last finished (undefined: never). */
  lastRun?: Date;
  /** Its last result (`success`, `exit-code`, …). */
  result?: string;
  now: Date;
}
export type ResignFacts = DailyJobFacts;

/** A daily job is enabled, ran within two days, and succeeded; `what` says what is lost when it does not. */
function judgeDailyJob(id: string, unit: string, f: DailyJobFacts, what: { lost: string; byHand: string }, prefix = ''): CheckResult {
  const asked = 'systemd on this host';
  if (f.timerEnabled !== 'enabled') {
    return { id, status: 'fail', summary: `${prefix}${unit}.timer is ${f.timerEnabled || 'missing'}: ${what.lost}`, fix: `systemctl enable --now ${unit}.timer (selfmail apply --bundle DIR does it too)`, asked };
  }
  if (!f.lastRun) return { id, status: 'warn', summary: `${prefix}enabled, not run yet (it runs daily)`, fix: `if the host has run a day already: systemctl list-timers ${unit}.timer`, asked };
  const age = f.now.getTime() - f.lastRun.getTime();
  if (f.result && f.result !== 'success') {
    return { id, status: 'fail', summary: `${prefix}the last run (${f.lastRun.toISOString()}) failed: ${f.result}`, fix: `journalctl -u ${unit}.service shows why; ${what.byHand}`, asked };
  }
  if (age > RESIGN_MAX_AGE_DAYS * DAY) {
    return { id, status: 'fail', summary: `${prefix}last ran ${Math.floor(age / DAY)} days ago (${f.lastRun.toISOString()})`, fix: `systemctl list-timers ${unit}.timer; journalctl -u ${unit}.timer`, asked };
  }
  return { id, status: 'pass', summary: `${prefix}enabled, last ran ${f.lastRun.toISOString()}, succeeded`, asked };
}

/** `resign-timer`: the daily re-sign job is enabled, ran within two days, and succeeded. */
export function judgeResignTimer(f: ResignFacts): CheckResult {
  return judgeDailyJob('resign-timer', 'selfmail-resign', f, {
    lost: "the zones' signatures will lapse within 30 days and the domains go dark for validating resolvers",
    byHand: 'selfmail dns resign --bundle DIR re-signs by hand',
  });
}

/**
 * `backup`: with `--backup-to`, the daily backup is enabled, ran within two days, and succeeded;
 * without one, a warning (a dead disk loses the mail and the keys).
 */
export function judgeBackup(f: ({ target: string } & DailyJobFacts) | { target?: undefined }): CheckResult {
  if (f.target === undefined) {
    return {
      id: 'backup',
      status: 'warn',
      summary: 'no daily backup is set up: a dead disk loses the mail, and the DNSSEC keys with it',
      fix: 'make a key on your own device (age-keygen -o key.txt), then selfmail init --out DIR --backup-to TARGET --backup-recipient age1… and apply (README: Backups)',
      asked: 'the bundle',
    };
  }
  return judgeDailyJob('backup', 'selfmail-backup', f, { lost: 'no backup is made', byHand: 'selfmail backup --bundle DIR runs it by hand and says what failed' }, `to ${f.target}: `);
}

export interface ServedCert {
  port: number;
  /** The leaf certificate the port served (DER), or why none was had. */
  der?: Buffer;
  error?: string;
}

/** SHA-256 of a certificate's SubjectPublicKeyInfo, lower-case hex: what TLSA 3 1 1 pins. */
export function spkiSha256(cert: X509Certificate): string {
  return createHash('sha256').update(cert.publicKey.export({ type: 'spki', format: 'der' })).digest('hex');
}

/** `cert-expiry`: each port serves a certificate for the bundle's key, valid, and for how long. */
export function judgeCertificates(served: readonly ServedCert[], bundleSpki: string, now: Date, asked: string): CheckResult {
  const id = 'cert-expiry';
  const fails: string[] = [];
  const warns: string[] = [];
  const fine: string[] = [];
  let fix: string | undefined;
  for (const s of served) {
    if (!s.der) {
      fails.push(`port ${s.port}: no TLS (${s.error ?? 'no answer'})`);
      fix ??= 'the service on that port is down or not the bundle\'s: selfmail doctor\'s services check and journalctl say which';
      continue;
    }
    const cert = new X509Certificate(s.der);
    const left = new Date(cert.validTo).getTime() - now.getTime();
    const issuer = cert.issuer.replace(/\n/g, ', ');
    if (spkiSha256(cert) !== bundleSpki) {
      fails.push(`port ${s.port}: serves a certificate for another key (issuer ${issuer})`);
      fix ??= 'install a certificate for the bundle\'s key (selfmail-acme uses its CSR) and reload the services';
    } else if (left <= 0) {
      fails.push(`port ${s.port}: expired on ${new Date(cert.validTo).toISOString()}`);
      fix ??= 'systemctl start selfmail-acme.service renews it; journalctl -u selfmail-acme.service says why it did not';
    } else if (left <= CERT_WARN_DAYS * DAY) {
      warns.push(`port ${s.port}: expires in ${Math.floor(left / DAY)} days`);
      fix ??= 'systemctl start selfmail-acme.service renews it now';
    } else if (cert.issuer === cert.subject && cert.verify(cert.publicKey)) {
      warns.push(`port ${s.port}: the bundle's self-signed certificate, until ${new Date(cert.validTo).toISOString().slice(0, 10)}`);
      fix ??= 'once the DNS is delegated, selfmail-acme gets a CA-issued one for the same key; then init and apply publish MTA-STS enforce';
    } else {
      fine.push(`${s.port}`);
    }
  }
  const status: CheckStatus = fails.length > 0 ? 'fail' : warns.length > 0 ? 'warn' : 'pass';
  const summary = [...fails, ...warns].join('; ') || `ports ${fine.join(', ')} serve a CA-issued certificate for the bundle's key, valid for more than ${CERT_WARN_DAYS} days`;
  return { id, status, summary, ...(status === 'pass' ? {} : { fix }), asked };
}

export interface TlsaFacts {
  port: number;
  owner: string;
  /** `3 1 1` data answered by the host's name server (lower-case hex). */
  pins: string[];
  /** Why the name server gave no answer. */
  error?: string;
  /** SPKI sha256 of what the port serves; undefined when it served nothing. */
  servedSpki?: string;
}

/** `tlsa-matches`: what each DANE port serves is pinned by the TLSA the host's own name server answers. */
export function judgeTlsa(facts: readonly TlsaFacts[], asked: string): CheckResult {
  const id = 'tlsa-matches';
  const fails: string[] = [];
  const unknown: string[] = [];
  for (const f of facts) {
    if (f.error) unknown.push(`${f.owner}: ${f.error}`);
    else if (f.pins.length === 0) fails.push(`${f.owner}: no TLSA 3 1 1 answered`);
    else if (!f.servedSpki) unknown.push(`port ${f.port} served no certificate`);
    else if (!f.pins.includes(f.servedSpki)) fails.push(`port ${f.port} serves SPKI sha256 ${f.servedSpki}, which ${f.owner} does not pin (it pins ${f.pins.join(', ')})`);
  }
  if (fails.length > 0) {
    return { id, status: 'fail', summary: fails.join('; '), fix: 'DANE senders refuse to deliver: serve a certificate for the key the zone pins (selfmail apply --bundle DIR installs the bundle\'s), or publish the served key with selfmail init and apply', asked };
  }
  if (unknown.length > 0) return { id, status: 'unknown', summary: unknown.join('; '), fix: 'see the services and cert-expiry checks', asked };
  return { id, status: 'pass', summary: `${facts.map((f) => f.port).join(', ')}: the served key is pinned by the TLSA records`, asked };
}

/** `dig +short TLSA` answers → the `3 1 1` pins, lower-case hex (dig splits long data with spaces). Pure. */
export function parseTlsaAnswers(stdout: string): string[] {
  const pins: string[] = [];
  for (const line of stdout.split('\n')) {
    const m = /^\s*3\s+1\s+1\s+([0-9a-fA-F\s]+)$/.exec(line);
    if (m) pins.push(m[1]!.replace(/\s+/g, '').toLowerCase());
  }
  return pins;
}

/** The exit status doctor reports: 0 unless a check failed. */
export function anyFailed(results: readonly CheckResult[]): boolean {
  return results.some((r) => r.status === 'fail');
}

/** Days ahead an RRSIG may expire before doctor warns (the host re-signs a week ahead) or fails. */
export const RRSIG_WARN_DAYS = 7;
export const RRSIG_FAIL_DAYS = 1;

export interface ZoneValidation {
  zone: string;
  /** delv's verdict against the bundle's DS: true when it said "fully validated". */
  validated: boolean;
  /** delv's last lines when it did not. */
  detail?: string;
  /** The earliest RRSIG expiration in the answers the name server gave. */
  earliestExpiry?: Date;
  /**
   * What this host's own resolver makes of the zone, from the root: `secure` (AD), `insecure`
   * (answers without AD: no DS at the parent), `bogus` (SERVFAIL, but an answer with checking
   * disabled), `unreachable` (no answer either way: no chain to check).
   */
  resolver?: 'secure' | 'insecure' | 'bogus' | 'unreachable';
}

/** `dnssec-valid`: each zone's answers validate against the DS given to the registrar, with signatures well ahead of expiry. */
export function judgeDnssec(zones: readonly ZoneValidation[], now: Date, asked: string): CheckResult {
  const id = 'dnssec-valid';
  const fails: string[] = [];
  const warns: string[] = [];
  const chain: string[] = [];
  for (const z of zones) {
    if (z.resolver === 'bogus') fails.push(`${z.zone}: this host's own validating resolver refuses it (bogus from the root: the parent's DS matches no key the zone serves, see ds-at-parent)`);
    if (z.resolver) chain.push(`${z.zone} ${z.resolver}`);
    if (!z.validated) {
      fails.push(`${z.zone}: does not validate against its DS (${z.detail ?? 'no answer'})`);
      continue;
    }
    if (!z.earliestExpiry) continue;
    const left = z.earliestExpiry.getTime() - now.getTime();
    if (left <= RRSIG_FAIL_DAYS * DAY) fails.push(`${z.zone}: signatures expire ${z.earliestExpiry.toISOString()}`);
    else if (left <= RRSIG_WARN_DAYS * DAY) warns.push(`${z.zone}: signatures expire in ${Math.floor(left / DAY)} days, past the re-sign horizon`);
  }
  if (fails.length > 0) return { id, status: 'fail', summary: fails.join('; '), fix: 'validating resolvers refuse the zone: journalctl -u nsd and -u selfmail-resign.service say why; selfmail dns resign --bundle DIR and apply re-sign and reinstall it', asked };
  if (warns.length > 0) return { id, status: 'warn', summary: warns.join('; '), fix: 'the daily re-sign has not run: see the resign-timer check', asked };
  const fromRoot = chain.length > 0 ? `; from the root, through this host's resolver: ${chain.join(', ')}` : '';
  return { id, status: 'pass', summary: `${zones.map((z) => z.zone).join(', ')}: validated against the bundle's DS, signatures good for more than ${RRSIG_WARN_DAYS} days${fromRoot}`, asked };
}

/** The RRSIG expirations in `dig +dnssec` output (field 9 of each RRSIG line). Pure. */
export function rrsigExpiries(digOutput: string): Date[] {
  const out: Date[] = [];
  for (const line of digOutput.split('\n')) {
    const f = line.trim().split(/\s+/);
    const i = f.indexOf('RRSIG');
    const raw = i >= 0 ? f[i + 5] : undefined;
    const m = raw ? /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})$/.exec(raw) : null;
    if (m) out.push(new Date(Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!)));
  }
  return out;
}

export interface MtaStsFacts {
  domain: string;
  /** The `id` of `_mta-sts.<domain>` TXT as the host's name server answers it. */
  txtId?: string;
  /** The policy served at https://mta-sts.<domain>/.well-known/mta-sts.txt, or why not. */
  policy?: string;
  error?: string;
  /** The TLS of that answer verified against the system's CAs and the name. */
  trusted: boolean;
  /** The id the policy's bytes give (RFC 8461: it must change with the policy). */
  policyId?: string;
}

/** `mta-sts`: each domain's policy is served, over TLS senders trust, with the id its TXT record gives. */
export function judgeMtaSts(facts: readonly MtaStsFacts[], hostname: string, asked: string): CheckResult {
  const id = 'mta-sts';
  const fails: string[] = [];
  const warns: string[] = [];
  let fix: string | undefined;
  for (const f of facts) {
    if (!f.txtId) {
      fails.push(`${f.domain}: no _mta-sts TXT record with an id`);
      fix ??= 'selfmail apply --bundle DIR installs the zone that has it';
      continue;
    }
    if (f.policy === undefined) {
      fails.push(`${f.domain}: no policy served (${f.error ?? 'no answer'})`);
      fix ??= 'nginx serves it: see the services check';
      continue;
    }
    if (f.policyId !== f.txtId) {
      fails.push(`${f.domain}: the TXT id ${f.txtId} is not the served policy's (${f.policyId}): senders keep an old policy`);
      fix ??= 'selfmail apply --bundle DIR installs policy and zone together';
      continue;
    }
    if (!new RegExp(`^mx: ${hostname.replace(/\./g, '\\.')}\\r?$`, 'm').test(f.policy)) fails.push(`${f.domain}: the policy does not name ${hostname}`);
    const mode = /^mode: (\S+)/m.exec(f.policy)?.[1];
    if (!f.trusted) {
      warns.push(`${f.domain}: served over a certificate senders do not trust (${f.error ?? 'not CA-issued'}), so they ignore the policy`);
      fix ??= 'selfmail-acme gets a CA-issued certificate for the bundle key once the DNS is delegated; then selfmail init and apply publish enforce';
    } else if (mode !== 'enforce') {
      warns.push(`${f.domain}: mode ${mode}: senders report failures but deliver without TLS`);
      fix ??= 'the certificate is CA-issued now: selfmail init --out DIR and selfmail apply --bundle DIR publish mode: enforce';
    }
  }
  const status: CheckStatus = fails.length > 0 ? 'fail' : warns.length > 0 ? 'warn' : 'pass';
  const summary = [...fails, ...warns].join('; ') || `${facts.map((f) => f.domain).join(', ')}: mode enforce, served over trusted TLS, ids match`;
  return { id, status, summary, ...(status === 'pass' ? {} : { fix }), asked };
}
