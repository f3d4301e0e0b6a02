/**
 * The key store. `ensureKeys` reuses every key already in the previous bundle, generates only
 * what is missing (concurrently, on the thread pool), applies DKIM rotations and retirements,
 * and returns the KeySet with every key file. State across runs lives in `keys/keys.json`
 * (public metadata only); private keys are read back from the previous bundle's files and are
 * never accepted from anywhere else.
 */
import { createHash, createPublicKey } from 'node:crypto';
import type { BundleFile, PreviousBundle } from '../bundle/types.js';
import type { Config, DomainName } from '../config/types.js';
import { InputError, type InputIssue } from '../errors.js';
import {
  SELECTOR_RE,
  algorithmOfSelector,
  dkimTxt,
  loadDkimKey,
  nextSelectorPair,
  rspamdEd25519Key,
  type DkimAlgorithm,
} from './dkim.js';
import {
  FLAGS,
  dnskeyRdata,
  dsRecord,
  keyFileBase,
  keyFileText,
  keyTag,
  p256FromScalar,
  p256Spki,
  parsePrivateFile,
  privateFileText,
  type EcKeyMaterial,
} from './dnssec.js';
import { newEd25519Pem, newP256, newRsa2048Pem, newTsigSecret } from './gen.js';
import { RENEW_BEFORE_DAYS, bootstrapNotAfter, buildTlsPair, checkTlsKey, spkiSha256, tlsNames } from './tls.js';
import { openpgpDomains } from '../openpgp/names.js';
import { DAY_MS, DS_WAIT_DAYS, ZSK_PERIOD_DAYS, ZSK_PREPUBLISH_DAYS, ZSK_RETIRE_DAYS, keyStage } from './dnssec-plan.js';
import type { DkimKey, DnssecKey, KeyRow, KeySet, TlsKey, TsigKey, WireguardKey } from './types.js';
import { HOME_WG_KEY_PATH, HOME_WG_PUB_PATH, isWgKeyText, newWgPrivateKey, wgPublicKey } from '../vps/wireguard.js';

export const KEYS_META_PATH = 'keys/keys.json';
export const TLS_KEY_PATH = 'keys/tls/key.pem';
export const TLS_CSR_PATH = 'keys/tls/csr.pem';
export const TLS_CERT_PATH = 'keys/tls/cert.pem';
/** The next TLS key: made ahead and pinned by TLSA beside the current one, so a rotation has no DANE gap. */
export const TLS_NEXT_KEY_PATH = 'keys/tls/next-key.pem';
/**
 * Two TTLs of the TLSA records (DEFAULT_TTL, src/dns/records.ts): how long a next key must have
 * been published before it may serve, and how long a rotated-out key stays pinned after.
 */
export const TLS_ROLL_WAIT_MS = 2 * 3600 * 1000;

/** Bundle path of a DKIM private key. */
export function dkimPrivatePath(domain: DomainName, selector: string): string {
  return `keys/dkim/${domain}/${selector}.private`;
}
/** Bundle path of an Ed25519 DKIM key in the form rspamd signs with (see rspamdEd25519Key). */
export function dkimRspamdPath(domain: DomainName, selector: string): string {
  return `keys/dkim/${domain}/${selector}.rspamd`;
}
/** Bundle path of a DKIM TXT value. */
export function dkimTxtPath(domain: DomainName, selector: string): string {
  return `keys/dkim/${domain}/${selector}.txt`;
}
/** Bundle path (without `.key`/`.private`) of a DNSSEC key. */
export function dnssecBasePath(zone: DomainName, tag: number): string {
  return `keys/dnssec/${zone}/${keyFileBase(zone, tag)}`;
}
/** Bundle path of the TSIG secret shared with a secondary. */
export function tsigPath(server: DomainName): string {
  return `keys/tsig/${server}.key`;
}
/** The TSIG key name for a secondary. */
export function tsigKeyName(server: DomainName): string {
  return `selfmail-${server}`;
}

export interface EnsureKeysOptions {
  /** Domains whose DKIM keys get a new selector pair that becomes active; the old pair stays published. */
  rotateDkim?: DomainName[];
  /**
   * The next TLS key becomes the current one; a new next key is made; the old one stays pinned
   * for two TTLs. `immediately`: even before the next key's TLSA has been published for two TTLs
   * (a compromised key: a DANE sender holding an older TLSA set defers mail for up to a TTL).
   */
  rotateTls?: { immediately: boolean };
  /**
   * A DNSSEC rollover step for `zones` (all when empty): `zsk` publishes the next ZSK now (it signs
   * ZSK_PREPUBLISH_DAYS later); `ksk` adds a new KSK with CDS/CDNSKEY; `parentConfirmed` says the
   * parent serves the new KSK's DS, so the old KSK leaves DS_WAIT_DAYS later.
   */
  rotateDnssec?: { step: 'zsk' | 'ksk' | 'parent-confirmed'; zones: DomainName[] };
  /** Published (not active) DKIM selectors to remove, with their files and TXT records. */
  retireDkimSelectors?: string[];
  /** Told about anything the user should know (a key that had to be regenerated). */
  warn?: (message: string) => void;
  /** Told each time one more of the domains', the TLS or the secondaries' keys is ready. */
  progress?: (done: number, total: number) => void;
}

// ---- keys.json -------------------------------------------------------------------------------

interface DkimMeta {
  active: Record<DkimAlgorithm, string>;
  selectors: Record<string, { algorithm: DkimAlgorithm; created: string }>;
  /** Selectors once published and then retired: never reused for another key. */
  retired: string[];
}
/** One DNSSEC key and its schedule (ISO times to the second; see src/keys/dnssec-plan.ts). */
interface DnssecKeyMeta {
  tag: number;
  role: 'ksk' | 'zsk';
  created: string;
  publish: string;
  activate: string;
  remove?: string;
}
interface DnssecMeta {
  keys: DnssecKeyMeta[];
  /** The tag of a new KSK whose CDS/CDNSKEY the zone publishes until the parent serves its DS. */
  cds?: number;
  /** Keys that left the zone (and the bundle), for `keys list`. */
  retired: { tag: number; role: 'ksk' | 'zsk'; removed: string }[];
}
interface TlsMeta {
  created: string;
  /** The date the CSR and bootstrap certificate were built (their notBefore). */
  issued: string;
  names: string[];
  /** The next key: `published` is when its TLSA first went into the bundle (an ISO time). */
  next?: { created: string; published: string };
  /** A key rotated out: its pin stays in the TLSA records until `until` (an ISO time). */
  retiring?: { spki: string; until: string };
}
interface Meta {
  format: 1;
  dkim: Record<string, DkimMeta>;
  dnssec: Record<string, DnssecMeta>;
  tls?: TlsMeta;
  tsig: Record<string, { created: string; name: string }>;
  /** The home host's WireGuard key (own-vps). */
  wireguard?: { created: string };
}

const DATE_RE = /^[0-9]{4}-[0-9]{2}-[0-9]{2}$/;

function emptyMeta(): Meta {
  return { format: 1, dkim: {}, dnssec: {}, tsig: {} };
}

/** Read and check keys.json from the previous bundle: every name in it ends up in paths. */
function loadMeta(previous: PreviousBundle): Meta {
  const raw = previous.read(KEYS_META_PATH);
  if (!raw) return emptyMeta();
  const bad = (why: string): never => {
    throw new InputError([{ field: `bundle: ${KEYS_META_PATH}`, message: `${why}; restore it from a backup of the bundle` }]);
  };
  let m: unknown;
  try {
    m = JSON.parse(raw.toString('utf8'));
  } catch {
    return bad('is not valid JSON');
  }
  const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
  const date = (v: unknown): string => (typeof v === 'string' && DATE_RE.test(v) ? v : bad(`has a bad date ${JSON.stringify(v)}`));
  if (!isObj(m) || m.format !== 1) return bad('is not a selfmail key index (format 1)');
  const meta = emptyMeta();
  for (const [domain, d] of Object.entries(isObj(m.dkim) ? m.dkim : {})) {
    if (!isObj(d) || !isObj(d.active) || !isObj(d.selectors) || !Array.isArray(d.retired)) return bad(`has a bad DKIM entry for ${domain}`);
    const selectors: DkimMeta['selectors'] = {};
    for (const [s, v] of Object.entries(d.selectors)) {
      if (!SELECTOR_RE.test(s) || !isObj(v) || v.algorithm !== algorithmOfSelector(s)) return bad(`has a bad DKIM selector ${JSON.stringify(s)}`);
      selectors[s] = { algorithm: algorithmOfSelector(s), created: date(v.created) };
    }
    const active = { rsa: String(d.active.rsa), ed25519: String(d.active.ed25519) };
    if (!selectors[active.rsa] || !selectors[active.ed25519]) return bad(`names an active DKIM selector it does not list for ${domain}`);
    const retired = d.retired.map((s) => (typeof s === 'string' && SELECTOR_RE.test(s) ? s : bad('has a bad retired selector')));
    meta.dkim[domain] = { active, selectors, retired };
  }
  const time = (v: unknown): string => (typeof v === 'string' && !Number.isNaN(Date.parse(v)) && /^\d{4}-\d\d-\d\dT[\d:.]+Z$/.test(v) ? v : bad(`has a bad time ${JSON.stringify(v)}`));
  for (const [zone, z] of Object.entries(isObj(m.dnssec) ? m.dnssec : {})) {
    const tagOf = (v: unknown): number => (Number.isInteger(v) && (v as number) >= 0 && (v as number) <= 0xffff ? (v as number) : bad(`has a bad DNSSEC key tag for ${zone}`));
    const roleOf = (v: unknown): 'ksk' | 'zsk' => (v === 'ksk' || v === 'zsk' ? v : bad(`has a bad DNSSEC key role for ${zone}`));
    if (!isObj(z)) return bad(`has a bad DNSSEC entry for ${zone}`);
    if (Array.isArray(z.keys)) {
      const keys = z.keys.map((k): DnssecKeyMeta => {
        if (!isObj(k)) return bad(`has a bad DNSSEC entry for ${zone}`);
        return { tag: tagOf(k.tag), role: roleOf(k.role), created: date(k.created), publish: time(k.publish), activate: time(k.activate), ...(k.remove !== undefined ? { remove: time(k.remove) } : {}) };
      });
      const retired = (Array.isArray(z.retired) ? z.retired : []).map((r) => (isObj(r) ? { tag: tagOf(r.tag), role: roleOf(r.role), removed: time(r.removed) } : bad(`has a bad retired DNSSEC key for ${zone}`)));
      meta.dnssec[zone] = { keys, retired, ...(z.cds !== undefined ? { cds: tagOf(z.cds) } : {}) };
    } else {
      // Format of the releases before rollovers: one KSK and one ZSK, published and signing since their creation day.
      const legacy = (role: 'ksk' | 'zsk', v: unknown): DnssecKeyMeta => {
        if (!isObj(v)) return bad(`has a bad DNSSEC entry for ${zone}`);
        const created = date(v.created);
        return { tag: tagOf(v.tag), role, created, publish: `${created}T00:00:00Z`, activate: `${created}T00:00:00Z` };
      };
      meta.dnssec[zone] = { keys: [legacy('ksk', z.ksk), legacy('zsk', z.zsk)], retired: [] };
    }
  }
  if (m.tls !== undefined) {
    const t = m.tls;
    if (!isObj(t) || !Array.isArray(t.names)) return bad('has a bad TLS entry');
    meta.tls = { created: date(t.created), issued: date(t.issued), names: t.names.map(String) };
    if (t.next !== undefined) {
      if (!isObj(t.next)) return bad('has a bad next TLS key entry');
      meta.tls.next = { created: date(t.next.created), published: time(t.next.published) };
    }
    if (t.retiring !== undefined) {
      if (!isObj(t.retiring) || typeof t.retiring.spki !== 'string' || !/^[0-9a-f]{64}$/.test(t.retiring.spki)) return bad('has a bad retiring TLS key entry');
      meta.tls.retiring = { spki: t.retiring.spki, until: time(t.retiring.until) };
    }
  }
  for (const [server, t] of Object.entries(isObj(m.tsig) ? m.tsig : {})) {
    if (!isObj(t)) return bad(`has a bad TSIG entry for ${server}`);
    meta.tsig[server] = { created: date(t.created), name: String(t.name) };
  }
  if (m.wireguard !== undefined) {
    if (!isObj(m.wireguard)) return bad('has a bad WireGuard entry');
    meta.wireguard = { created: date(m.wireguard.created) };
  }
  return meta;
}

/** JSON with object keys sorted at every level, two-space indent, final newline. */
export function stableJson(value: unknown): string {
  const sort = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(sort);
    if (typeof v === 'object' && v !== null) {
      return Object.fromEntries(
        Object.keys(v)
          .sort()
          .filter((k) => (v as Record<string, unknown>)[k] !== undefined)
          .map((k) => [k, sort((v as Record<string, unknown>)[k])]),
      );
    }
    return v;
  };
  return JSON.stringify(sort(value), null, 2) + '\n';
}

// ---- the store -------------------------------------------------------------------------------

/** `YYYY-MM-DD` of the run's clock (UTC). */
function isoDay(now: Date): string {
  return now.toISOString().slice(0, 10);
}
/** An ISO time to the second, UTC: when a rotation step may or will happen. */
function isoTime(d: Date): string {
  return d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}
function dayDate(day: string): Date {
  return new Date(`${day}T00:00:00Z`);
}

function badKeyFile(path: string, why: string): InputError {
  return new InputError([
    {
      field: `bundle: ${path}`,
      message: `${why}; selfmail only uses keys it generated itself. Restore the file from a backup, or move it away to have a new key generated`,
    },
  ]);
}

/** Collects the KeySet's files; private ones get mode 0600. */
class Files {
  readonly map = new Map<string, BundleFile>();
  add(path: string, data: Buffer | string, role: string, secret: boolean): void {
    this.map.set(path, { path, data: Buffer.isBuffer(data) ? data : Buffer.from(data, 'utf8'), mode: secret ? 0o600 : 0o644, role });
  }
}

/**
 * Make sure every key the configuration needs exists: reuse what `previous` holds, generate
 * what is missing, apply the requested DKIM rotations and retirements. `now` dates new keys.
 * Throws InputError for a rotation or retirement that does not fit the store's state, or for a
 * key file in the bundle that selfmail did not make.
 */
export async function ensureKeys(
  config: Config,
  previous: PreviousBundle,
  now: Date,
  opts: EnsureKeysOptions = {},
): Promise<KeySet> {
  const today = isoDay(now);
  const warn = opts.warn ?? ((): void => undefined);
  const old = loadMeta(previous);
  const meta = emptyMeta();
  const files = new Files();
  checkOptions(config, old, opts, now);

  // Keys of domains or secondaries no longer configured leave the bundle; say so, since a
  // domain added back later gets new keys (and, with DNSSEC, a new DS at the registrar).
  for (const d of Object.keys(old.dkim).filter((d) => !config.domains.includes(d as DomainName)).sort()) {
    warn(`${d} is no longer a configured domain: its DKIM keys are removed from the bundle`);
  }
  for (const z of Object.keys(old.dnssec).filter((z) => !config.dnssec || !config.domains.includes(z as DomainName)).sort()) {
    warn(`the DNSSEC keys of ${z} are removed from the bundle (${config.dnssec ? 'no longer a configured domain' : 'DNSSEC is off'}); remove its DS record at the registrar first`);
  }
  for (const n of Object.keys(old.tsig).filter((n) => !config.nameServers.some((s) => !s.self && s.name === n)).sort()) {
    warn(`${n} is no longer a secondary name server: its TSIG secret is removed from the bundle`);
  }

  const dkimTasks = config.domains.map((d) => ensureDkim(d, old.dkim[d], previous, now, opts, files, warn));
  const dnssecStep = (z: DomainName) => (opts.rotateDnssec && (opts.rotateDnssec.zones.length === 0 || opts.rotateDnssec.zones.includes(z)) ? opts.rotateDnssec.step : undefined);
  const dnssecTasks = config.dnssec ? config.domains.map((z) => ensureDnssec(z, old.dnssec[z], previous, now, dnssecStep(z), files, warn)) : [];
  const tlsTask = ensureTls(config, old.tls, previous, now, files, warn, opts.rotateTls !== undefined);
  const servers = [...new Set(config.nameServers.filter((n) => !n.self).map((n) => n.name))].sort();
  const tsigTasks = servers.map((s) => ensureTsig(s, old.tsig[s], previous, today, files, warn));
  const wireguard = config.ingress === 'own-vps' ? ensureWireguard(old.wireguard, previous, today, files, warn) : undefined;
  if (wireguard) meta.wireguard = { created: wireguard.created };

  const total = dkimTasks.length + dnssecTasks.length + 1 + tsigTasks.length;
  let done = 0;
  const counted = <T>(task: Promise<T>): Promise<T> =>
    task.then((v) => {
      opts.progress?.(++done, total);
      return v;
    });
  const [dkim, dnssec, tls, tsig] = await Promise.all([
    Promise.all(dkimTasks.map(counted)),
    Promise.all(dnssecTasks.map(counted)),
    counted(tlsTask),
    Promise.all(tsigTasks.map(counted)),
  ]);
  config.domains.forEach((d, i) => (meta.dkim[d] = dkim[i]!.meta));
  if (config.dnssec) config.domains.forEach((z, i) => (meta.dnssec[z] = dnssec[i]!.meta));
  meta.tls = tls.meta;
  servers.forEach((s, i) => (meta.tsig[s] = tsig[i]!.meta));
  files.add(KEYS_META_PATH, stableJson(meta), 'public metadata of the keys (dates, active DKIM selectors)', false);

  const sortedFiles = [...files.map.values()].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  const byPath = new Map(sortedFiles.map((f) => [f.path, f.data]));
  return {
    dkim: dkim.flatMap((r) => r.keys).sort((a, b) => cmp(a.domain, b.domain) || cmp(a.selector, b.selector)),
    dnssec: dnssec.flatMap((r) => r.keys),
    dnssecRetired: config.dnssec ? config.domains.flatMap((z, i) => dnssec[i]!.meta.retired.map((r) => ({ zone: z, ...r }))) : [],
    tls: tls.key,
    tsig: tsig.map((r) => r.key),
    ...(wireguard ? { wireguard } : {}),
    files: sortedFiles,
    read(path: string): Buffer {
      const data = byPath.get(path);
      if (!data) throw new Error(`no key file ${path} in the key set`);
      return data;
    },
  };
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Every rotation and retirement must make sense before anything is generated. */
function checkOptions(config: Config, old: Meta, opts: EnsureKeysOptions, now: Date): void {
  const issues: InputIssue[] = [];
  for (const d of opts.rotateDkim ?? []) {
    if (!config.domains.includes(d)) issues.push({ field: '--domain', message: `${d} is not one of the configured mail domains` });
  }
  const rotating = new Set(opts.rotateDkim ?? []);
  for (const s of opts.retireDkimSelectors ?? []) {
    const where = config.domains.filter((d) => old.dkim[d]?.selectors[s]);
    // Active in a domain unless that domain is rotated in this very run.
    const signsFor = where.filter((d) => {
      const a = old.dkim[d]!.active;
      return (a.rsa === s || a.ed25519 === s) && !rotating.has(d);
    });
    if (where.length === 0) {
      issues.push({ field: '--selector', message: `${JSON.stringify(s)} is not a published DKIM selector of this bundle` });
    } else if (signsFor.length === where.length) {
      // Selector names repeat across domains (they are dated), so it is retired wherever it is
      // only published, and refused only when it still signs everywhere it exists.
      issues.push({
        field: '--selector',
        message: `${s} still signs the mail of ${signsFor.join(', ')}; rotate first (selfmail keys rotate dkim), then retire the old selector`,
      });
    }
  }
  if (opts.rotateTls) issues.push(...tlsRotationProblems(old.tls, now, opts.rotateTls.immediately));
  if (opts.rotateDnssec) issues.push(...dnssecRotationProblems(config, old, opts.rotateDnssec, now));
  if (issues.length > 0) throw new InputError(issues);
}

/**
 * A DNSSEC rollover step must fit where each zone's schedule stands: one ZSK rollover and one KSK
 * rollover at a time (each ends when the key it replaces has left the zone), and the parent's DS
 * confirmed only for a KSK rollover that waits for it.
 */
function dnssecRotationProblems(config: Config, old: Meta, r: NonNullable<EnsureKeysOptions['rotateDnssec']>, now: Date): InputIssue[] {
  const field = r.step === 'parent-confirmed' ? '--parent-confirmed' : `selfmail keys rotate dnssec --${r.step}`;
  if (!config.dnssec) return [{ field, message: 'DNSSEC is off in this bundle (dnssec: false); nothing was changed' }];
  const t = now.getTime();
  const issues: InputIssue[] = [];
  for (const zone of r.zones.length > 0 ? r.zones : config.domains) {
    if (!config.domains.includes(zone)) {
      issues.push({ field: '--domain', message: `${zone} is not one of the bundle's domains (${config.domains.join(', ')})` });
      continue;
    }
    const m = old.dnssec[zone];
    if (!m) {
      issues.push({ field, message: `${zone} has no DNSSEC keys yet: selfmail init makes them; nothing was changed` });
      continue;
    }
    const ksks = m.keys.filter((k) => k.role === 'ksk');
    const zsks = m.keys.filter((k) => k.role === 'zsk');
    if (r.step === 'zsk') {
      const waiting = zsks.find((k) => Date.parse(k.publish) <= t && t < Date.parse(k.activate));
      const newest = Math.max(...zsks.filter((k) => Date.parse(k.activate) <= t).map((k) => Date.parse(k.activate)));
      const leaving = zsks.find((k) => k.remove !== undefined && Date.parse(k.activate) < newest && t < Date.parse(k.remove));
      if (waiting) issues.push({ field, message: `a ZSK rollover of ${zone} is under way: ZSK ${waiting.tag} is published and signs from ${waiting.activate}; nothing was changed` });
      else if (leaving) issues.push({ field, message: `a ZSK rollover of ${zone} is under way: the old ZSK ${leaving.tag} stays published until ${leaving.remove} (the lifetime of its signatures); start the next one after that; nothing was changed` });
    } else if (r.step === 'ksk') {
      const leaving = ksks.find((k) => k.remove !== undefined && t < Date.parse(k.remove));
      if (m.cds !== undefined) issues.push({ field, message: `a KSK rollover of ${zone} waits for the parent to serve the DS of KSK ${m.cds}: once it does (selfmail doctor's ds-at-parent), run selfmail keys rotate dnssec --ksk --parent-confirmed; nothing was changed` });
      else if (leaving) issues.push({ field, message: `a KSK rollover of ${zone} is under way: the old KSK ${leaving.tag} leaves the zone at ${leaving.remove}; nothing was changed` });
    } else if (m.cds === undefined) {
      issues.push({ field, message: `no KSK rollover of ${zone} waits for the parent's DS (start one with selfmail keys rotate dnssec --ksk); nothing was changed` });
    }
  }
  return issues;
}

/**
 * A TLS rotation must keep a DANE sender's TLSA set matching whatever the host serves: the next
 * key must have been published for two TTLs (which also keeps one rotation from starting in the
 * middle of another), unless it must serve now.
 */
function tlsRotationProblems(tls: TlsMeta | undefined, now: Date, immediately: boolean): InputIssue[] {
  const field = 'selfmail keys rotate tls';
  if (!tls?.next) return [{ field, message: 'this bundle has no next TLS key published yet: selfmail init --out DIR makes one; apply it, and rotate once its TLSA has been served for two hours' }];
  const ready = Date.parse(tls.next.published) + TLS_ROLL_WAIT_MS;
  if (now.getTime() < ready && !immediately) {
    return [{ field, message: `the next key's TLSA went into the bundle at ${tls.next.published}: rotate from ${isoTime(new Date(ready))} on (two TTLs after, once applied), so that no DANE sender holds a TLSA set without it; or now with --immediately, for a key you must stop using at once (DANE senders holding an older TLSA set defer mail for up to an hour); nothing was changed` }];
  }
  // (A rotation under way needs no rule of its own: its new next key is as young as the rotation,
  // and the key it rotated out is withdrawn by then.)
  return [];
}

interface DkimResult {
  meta: DkimMeta;
  keys: DkimKey[];
}

async function ensureDkim(
  domain: DomainName,
  prev: DkimMeta | undefined,
  previous: PreviousBundle,
  now: Date,
  opts: EnsureKeysOptions,
  files: Files,
  warn: (m: string) => void,
): Promise<DkimResult> {
  const today = isoDay(now);
  const retireNow = new Set(opts.retireDkimSelectors ?? []);
  const selectors: DkimMeta['selectors'] = {};
  const retired = new Set(prev?.retired ?? []);
  const pems = new Map<string, Buffer>();
  let active = prev ? { ...prev.active } : undefined;

  for (const [s, info] of Object.entries(prev?.selectors ?? {})) {
    const isActive = active?.rsa === s || active?.ed25519 === s;
    if (retireNow.has(s) && !isActive) {
      retired.add(s);
      continue;
    }
    const pem = previous.read(dkimPrivatePath(domain, s));
    if (!pem) {
      // A lost published key cannot be recovered; a lost active key means a new pair below.
      warn(`DKIM key ${s} of ${domain} is missing from the bundle; it is dropped${isActive ? ' and a new selector pair is generated' : ''}`);
      retired.add(s);
      if (isActive) active = undefined;
      continue;
    }
    selectors[s] = info;
    pems.set(s, pem);
  }
  if (active && (!selectors[active.rsa] || !selectors[active.ed25519])) {
    // One half of the active pair is gone: publish the surviving half, sign with a new pair.
    active = undefined;
  }
  const rotate = (opts.rotateDkim ?? []).includes(domain) && prev !== undefined;
  // A rotation requested together with retiring the current active pair retires it now too.
  if (rotate && active) {
    for (const s of [active.rsa, active.ed25519]) {
      if (retireNow.has(s)) {
        delete selectors[s];
        pems.delete(s);
        retired.add(s);
      }
    }
  }
  if (!active || rotate) {
    const used = new Set([...Object.keys(prev?.selectors ?? {}), ...retired]);
    const pair = nextSelectorPair(now, used);
    const [rsaPem, edPem] = await Promise.all([newRsa2048Pem(), newEd25519Pem()]);
    pems.set(pair.rsa, Buffer.from(rsaPem));
    pems.set(pair.ed25519, Buffer.from(edPem));
    selectors[pair.rsa] = { algorithm: 'rsa', created: today };
    selectors[pair.ed25519] = { algorithm: 'ed25519', created: today };
    active = pair;
  }

  const keys: DkimKey[] = [];
  for (const s of Object.keys(selectors).sort()) {
    const info = selectors[s]!;
    const path = dkimPrivatePath(domain, s);
    let txt: string;
    let signer: string | undefined;
    try {
      const key = loadDkimKey(pems.get(s)!, info.algorithm);
      txt = dkimTxt(key);
      if (info.algorithm === 'ed25519') signer = rspamdEd25519Key(key);
    } catch (e) {
      throw badKeyFile(path, `is not a DKIM ${info.algorithm} key (${(e as Error).message})`);
    }
    const state = active.rsa === s || active.ed25519 === s ? 'active' : 'published';
    files.add(path, pems.get(s)!, `DKIM private key ${s} (${info.algorithm}) for ${domain}`, true);
    files.add(dkimTxtPath(domain, s), `${txt}\n`, `DKIM TXT value ${s}._domainkey.${domain}`, false);
    let signingKeyPath = path;
    if (signer !== undefined) {
      signingKeyPath = dkimRspamdPath(domain, s);
      files.add(signingKeyPath, `${signer}\n`, `DKIM private key ${s} (ed25519) for ${domain}, in rspamd's form`, true);
    }
    keys.push({ domain, selector: s, algorithm: info.algorithm, txt, privateKeyPath: path, signingKeyPath, state, created: info.created });
  }
  return { meta: { active, selectors, retired: [...retired].sort() }, keys };
}

interface DnssecResult {
  meta: DnssecMeta;
  keys: DnssecKey[];
}

async function ensureDnssec(
  zone: DomainName,
  prev: DnssecMeta | undefined,
  previous: PreviousBundle,
  now: Date,
  step: 'zsk' | 'ksk' | 'parent-confirmed' | undefined,
  files: Files,
  warn: (m: string) => void,
): Promise<DnssecResult> {
  const t = now.getTime();
  const at = (ms: number): string => isoTime(new Date(ms));
  const nowIso = at(t);
  type Held = { meta: DnssecKeyMeta; material: EcKeyMaterial; privateBytes?: Buffer };
  const held: Held[] = [];
  const retired = [...(prev?.retired ?? [])];
  for (const m of prev?.keys ?? []) {
    if (m.remove !== undefined && Date.parse(m.remove) <= t) {
      // Its time in the zone is over (the host's daily job already took it out): it leaves the bundle.
      retired.push({ tag: m.tag, role: m.role, removed: m.remove });
      continue;
    }
    const path = `${dnssecBasePath(zone, m.tag)}.private`;
    const bytes = previous.read(path);
    if (!bytes) {
      const only = m.role === 'ksk' && !(prev?.keys ?? []).some((o) => o !== m && o.role === 'ksk');
      warn(`DNSSEC ${m.role.toUpperCase()} ${m.tag} of ${zone} is missing from the bundle; it is dropped` + (only ? ', a new KSK is generated and the DS record at the registrar must be replaced' : ''));
      continue;
    }
    let material: EcKeyMaterial;
    try {
      material = p256FromScalar(parsePrivateFile(bytes.toString('utf8')));
    } catch (e) {
      throw badKeyFile(path, `is not a DNSSEC algorithm 13 key (${(e as Error).message})`);
    }
    if (keyTag(dnskeyRdata(FLAGS[m.role], material.publicXY)) !== m.tag) throw badKeyFile(path, `does not hold the key with tag ${m.tag}`);
    held.push({ meta: { ...m }, material, privateBytes: bytes });
  }

  const tagOf = (role: 'ksk' | 'zsk', m: EcKeyMaterial): number => keyTag(dnskeyRdata(FLAGS[role], m.publicXY));
  /** A new key; two keys of one zone must not share a tag (1 in 65536), since tools pick keys by tag. */
  const fresh = async (role: 'ksk' | 'zsk', publish: number, activate: number): Promise<Held> => {
    for (;;) {
      const material = await newP256();
      const tag = tagOf(role, material);
      if (held.some((h) => h.meta.tag === tag) || retired.some((r) => r.tag === tag)) continue;
      const h: Held = { meta: { tag, role, created: isoDay(now), publish: at(publish), activate: at(activate) }, material };
      held.push(h);
      return h;
    }
  };
  const zsks = (): Held[] => held.filter((h) => h.meta.role === 'zsk').sort((a, b) => Date.parse(a.meta.activate) - Date.parse(b.meta.activate));
  let cds = prev?.cds !== undefined && held.some((h) => h.meta.tag === prev.cds) ? prev.cds : undefined;

  if (!held.some((h) => h.meta.role === 'ksk' && Date.parse(h.meta.publish) <= t)) await fresh('ksk', t, t);
  if (!zsks().some((h) => Date.parse(h.meta.publish) <= t && Date.parse(h.meta.activate) <= t)) {
    for (const h of zsks()) if (h.meta.remove === undefined) h.meta.remove = at(t + ZSK_RETIRE_DAYS * DAY_MS);
    await fresh('zsk', t, t);
  }

  if (step === 'ksk') {
    cds = (await fresh('ksk', t, t)).meta.tag;
  } else if (step === 'parent-confirmed') {
    for (const h of held) if (h.meta.role === 'ksk' && h.meta.tag !== cds) h.meta.remove = at(t + DS_WAIT_DAYS * DAY_MS);
    cds = undefined;
  } else if (step === 'zsk') {
    const next = zsks().find((h) => Date.parse(h.meta.activate) > t) ?? (await fresh('zsk', t, t + ZSK_PREPUBLISH_DAYS * DAY_MS));
    next.meta.publish = nowIso;
    next.meta.activate = at(t + ZSK_PREPUBLISH_DAYS * DAY_MS);
    const leaves = Date.parse(next.meta.activate) + ZSK_RETIRE_DAYS * DAY_MS;
    for (const h of zsks()) if (h !== next && (h.meta.remove === undefined || Date.parse(h.meta.remove) > leaves)) h.meta.remove = at(leaves);
  }
  // Always a successor: made now, published ZSK_PREPUBLISH_DAYS before the current ZSK's period ends,
  // so the host's daily job rolls the ZSK over by itself.
  const newest = zsks().at(-1)!;
  if (Date.parse(newest.meta.activate) <= t) {
    const period = Date.parse(newest.meta.activate) + ZSK_PERIOD_DAYS * DAY_MS;
    const publish = Math.max(t, period - ZSK_PREPUBLISH_DAYS * DAY_MS);
    const next = await fresh('zsk', publish, Math.max(publish + ZSK_PREPUBLISH_DAYS * DAY_MS, period));
    newest.meta.remove = at(Date.parse(next.meta.activate) + ZSK_RETIRE_DAYS * DAY_MS);
  }

  held.sort((a, b) => (a.meta.role === b.meta.role ? Date.parse(a.meta.activate) - Date.parse(b.meta.activate) || a.meta.tag - b.meta.tag : a.meta.role === 'ksk' ? -1 : 1));
  const keys: DnssecKey[] = [];
  for (const h of held) {
    const { role, tag } = h.meta;
    const rdata = dnskeyRdata(FLAGS[role], h.material.publicXY);
    const base = dnssecBasePath(zone, tag);
    const created = dayDate(h.meta.created);
    const label = `DNSSEC ${role.toUpperCase()} ${tag} for ${zone}`;
    files.add(`${base}.key`, keyFileText(zone, role, h.material, created), `${label} (public, BIND format)`, false);
    files.add(`${base}.private`, h.privateBytes ?? privateFileText(h.material, created), `${label} (private, BIND format)`, true);
    keys.push({
      zone,
      role,
      tag,
      algorithm: 13,
      dnskey: `${FLAGS[role]} 3 13 ${h.material.publicXY.toString('base64')}`,
      ...(role === 'ksk' ? { ds: dsRecord(zone, rdata) } : {}),
      basePath: base,
      created: h.meta.created,
      publish: h.meta.publish,
      activate: h.meta.activate,
      ...(h.meta.remove !== undefined ? { remove: h.meta.remove } : {}),
      ...(tag === cds ? { cds: true } : {}),
    });
  }
  return { meta: { keys: held.map((h) => h.meta), retired, ...(cds !== undefined ? { cds } : {}) }, keys };
}

async function ensureTls(
  config: Config,
  prev: TlsMeta | undefined,
  previous: PreviousBundle,
  now: Date,
  files: Files,
  warn: (m: string) => void,
  rotate: boolean,
): Promise<{ meta: TlsMeta; key: TlsKey }> {
  const today = isoDay(now);
  const names = tlsNames(config.hostname, config.domains, openpgpDomains(config));
  const checked = (path: string, pem: Buffer | undefined): Buffer | undefined => {
    if (!pem) return undefined;
    try {
      checkTlsKey(pem);
    } catch (e) {
      throw badKeyFile(path, `is not a TLS key selfmail made (${(e as Error).message})`);
    }
    return pem;
  };
  let keyPem = checked(TLS_KEY_PATH, prev ? previous.read(TLS_KEY_PATH) : undefined);
  let reusedKey = keyPem !== undefined;
  if (prev && !keyPem) warn('the TLS key is missing from the bundle; a new one is generated and the DANE TLSA record changes');
  let created = prev?.created ?? today;
  let nextPem = checked(TLS_NEXT_KEY_PATH, prev?.next ? previous.read(TLS_NEXT_KEY_PATH) : undefined);
  if (prev?.next && !nextPem) warn('the next TLS key is missing from the bundle; a new one is made, with a new TLSA record');
  let next = nextPem ? prev!.next! : undefined;
  // A rotated-out key stays pinned for two TTLs, then its TLSA goes (this run being the first after).
  let retiring = prev?.retiring && now.getTime() < Date.parse(prev.retiring.until) ? prev.retiring : undefined;
  if (rotate) {
    if (!keyPem || !nextPem || !next) throw badKeyFile(keyPem ? TLS_NEXT_KEY_PATH : TLS_KEY_PATH, 'is missing, so a rotation would serve a key no TLSA pins yet');
    retiring = { spki: spkiSha256(keyPem), until: isoTime(new Date(now.getTime() + TLS_ROLL_WAIT_MS)) };
    keyPem = nextPem;
    created = next.created;
    reusedKey = false;
    nextPem = undefined;
  }
  if (!keyPem) {
    keyPem = Buffer.from(await newRsa2048Pem());
    created = today;
  }
  if (!nextPem) {
    nextPem = Buffer.from(await newRsa2048Pem());
    next = { created: today, published: isoTime(now) };
  }
  const prevCsr = previous.read(TLS_CSR_PATH);
  const prevCert = previous.read(TLS_CERT_PATH);
  const sameNames = prev !== undefined && prev.names.join(',') === names.join(',');
  const fresh = prev !== undefined && now.getTime() < bootstrapNotAfter(dayDate(prev.issued)).getTime() - RENEW_BEFORE_DAYS * 86_400_000;
  let issued = today;
  let csr: Buffer | string;
  let cert: Buffer | string;
  if (prev && reusedKey && sameNames && fresh && prevCsr && prevCert) {
    issued = prev.issued;
    csr = prevCsr;
    cert = prevCert;
  } else {
    ({ csr, cert } = await buildTlsPair(keyPem, names, dayDate(issued)));
  }
  files.add(TLS_KEY_PATH, keyPem, 'TLS private key of the mail host', true);
  files.add(TLS_NEXT_KEY_PATH, nextPem, 'the next TLS private key (pinned by TLSA already; serves after selfmail keys rotate tls)', true);
  files.add(TLS_CSR_PATH, csr, 'TLS certificate signing request for an ACME client', false);
  files.add(TLS_CERT_PATH, cert, 'self-signed bootstrap TLS certificate', false);
  const spki = spkiSha256(keyPem);
  const nextSpki = spkiSha256(nextPem);
  return {
    meta: { created, issued, names, next: next!, ...(retiring ? { retiring } : {}) },
    key: {
      keyPath: TLS_KEY_PATH,
      certPath: TLS_CERT_PATH,
      csrPath: TLS_CSR_PATH,
      spkiSha256: spki,
      names,
      created,
      next: { keyPath: TLS_NEXT_KEY_PATH, spkiSha256: nextSpki, created: next!.created, published: next!.published, ready: isoTime(new Date(Date.parse(next!.published) + TLS_ROLL_WAIT_MS)) },
      ...(retiring ? { retiring: { spkiSha256: retiring.spki, until: retiring.until } } : {}),
      pins: [...new Set([spki, nextSpki, ...(retiring ? [retiring.spki] : [])])],
    },
  };
}

async function ensureTsig(
  server: DomainName,
  prev: { created: string } | undefined,
  previous: PreviousBundle,
  today: string,
  files: Files,
  warn: (m: string) => void,
): Promise<{ meta: { created: string; name: string }; key: TsigKey }> {
  const path = tsigPath(server);
  let data = prev ? previous.read(path) : undefined;
  let created = prev?.created ?? today;
  if (prev && !data) warn(`the TSIG secret for ${server} is missing from the bundle; a new one is generated (give it to the secondary)`);
  if (data) {
    const text = data.toString('utf8').trim();
    if (!/^[A-Za-z0-9+/]{43}=$/.test(text) || Buffer.from(text, 'base64').length !== 32) {
      throw badKeyFile(path, 'is not a 32-byte base64 TSIG secret');
    }
  } else {
    data = Buffer.from(`${(await newTsigSecret()).toString('base64')}\n`);
    created = today;
  }
  const name = tsigKeyName(server);
  files.add(path, data, `TSIG secret (hmac-sha256) shared with ${server}`, true);
  return { meta: { created, name }, key: { name, algorithm: 'hmac-sha256', server, secretPath: path, created } };
}

/**
 * The home host's WireGuard key for the tunnel to the user's VPS (own-vps): the previous bundle's,
 * else a new one. Its public key goes to the VPS (vps/wireguard.conf); the private one stays here.
 */
function ensureWireguard(
  prev: { created: string } | undefined,
  previous: PreviousBundle,
  today: string,
  files: Files,
  warn: (m: string) => void,
): WireguardKey {
  const text = previous.read(HOME_WG_KEY_PATH)?.toString('utf8').trim();
  if (prev && text === undefined) warn('the WireGuard key of this host is missing from the bundle; a new one is made: copy vps/ to the VPS again and run vps/setup.sh there');
  if (text !== undefined && !isWgKeyText(text)) throw badKeyFile(HOME_WG_KEY_PATH, 'is not a WireGuard private key');
  const key = text ?? newWgPrivateKey();
  const created = text !== undefined && prev ? prev.created : today;
  const publicKey = wgPublicKey(key);
  files.add(HOME_WG_KEY_PATH, `${key}\n`, 'WireGuard private key of this (home) host, for the tunnel to the VPS', true);
  files.add(HOME_WG_PUB_PATH, `${publicKey}\n`, 'WireGuard public key of this host (the VPS names it)', false);
  return { keyPath: HOME_WG_KEY_PATH, publicKey, created };
}

// ---- listing ---------------------------------------------------------------------------------

function sha256Hex(der: Buffer): string {
  return createHash('sha256').update(der).digest('hex');
}

/** SPKI DER of a DKIM key from its TXT value (RSA: p= is the SPKI; Ed25519: p= is the raw key). */
function dkimSpki(key: DkimKey): Buffer {
  const p = /p=([A-Za-z0-9+/=]+)/.exec(key.txt)?.[1] ?? '';
  const raw = Buffer.from(p, 'base64');
  if (key.algorithm === 'rsa') return raw;
  return createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: raw.toString('base64url') }, format: 'jwk' }).export({
    type: 'spki',
    format: 'der',
  });
}

/**
 * The rows of `selfmail keys list`: type, owner, selector or tag, state, creation date and the
 * SHA-256 fingerprint of the public key. Built from public parts only, so no private byte can
 * reach the listing.
 */
/**
 * One row per key, public parts only. `present` says whether a key's private file is in the
 * bundle; a key that is not is listed as `missing`, without a fingerprint (none exists yet).
 */
export function describeKeys(keys: KeySet, present: (path: string) => boolean = () => true, now: Date = new Date()): KeyRow[] {
  const rows: KeyRow[] = [];
  const row = (r: Omit<KeyRow, 'state'> & { state: Exclude<KeyRow['state'], 'missing'> }): KeyRow =>
    !r.file || present(r.file) ? r : { ...r, state: 'missing', fingerprint: '' };
  for (const k of keys.dkim) {
    rows.push(
      row({
        type: 'dkim',
        name: k.domain,
        id: k.selector,
        algorithm: k.algorithm === 'rsa' ? 'rsa-2048' : 'ed25519',
        state: k.state,
        created: k.created,
        fingerprint: sha256Hex(dkimSpki(k)),
        file: k.privateKeyPath,
      }),
    );
  }
  for (const k of keys.dnssec) {
    const pub = Buffer.from(k.dnskey.split(' ')[3] ?? '', 'base64');
    const stage = keyStage(k, keys.dnssec, now);
    rows.push(
      row({
        type: k.role === 'ksk' ? 'dnssec-ksk' : 'dnssec-zsk',
        name: k.zone,
        id: String(k.tag),
        algorithm: 'ecdsap256sha256',
        state: stage.state,
        created: k.created,
        fingerprint: sha256Hex(p256Spki(pub)),
        file: `${k.basePath}.private`,
        ...(stage.nextStep ? { nextStep: stage.nextStep } : {}),
      }),
    );
  }
  for (const r of keys.dnssecRetired ?? []) {
    rows.push({ type: r.role === 'ksk' ? 'dnssec-ksk' : 'dnssec-zsk', name: r.zone, id: String(r.tag), algorithm: 'ecdsap256sha256', state: 'retired', created: '', fingerprint: '', file: '', nextStep: `left the zone at ${r.removed}` });
  }
  rows.push(
    row({
      type: 'tls',
      name: keys.tls.names[0] ?? '',
      id: '',
      algorithm: 'rsa-2048',
      state: 'active',
      created: keys.tls.created,
      fingerprint: keys.tls.spkiSha256,
      file: keys.tls.keyPath,
    }),
  );
  const { next, retiring } = keys.tls;
  rows.push(
    row({
      type: 'tls',
      name: keys.tls.names[0] ?? '',
      id: 'next',
      algorithm: 'rsa-2048',
      state: 'next',
      created: next.created,
      fingerprint: next.spkiSha256,
      file: next.keyPath,
      nextStep: `may serve from ${next.ready} (selfmail keys rotate tls)`,
    }),
  );
  if (retiring) {
    rows.push({ type: 'tls', name: keys.tls.names[0] ?? '', id: 'retiring', algorithm: 'rsa-2048', state: 'retiring', created: '', fingerprint: retiring.spkiSha256, file: '', nextStep: `TLSA withdrawn by the first init after ${retiring.until}` });
  }
  if (keys.wireguard) {
    const raw = Buffer.from(keys.wireguard.publicKey, 'base64');
    const spki = createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x: raw.toString('base64url') }, format: 'jwk' }).export({ type: 'spki', format: 'der' });
    rows.push(row({ type: 'wireguard', name: 'this host', id: 'home', algorithm: 'x25519', state: 'active', created: keys.wireguard.created, fingerprint: sha256Hex(spki), file: keys.wireguard.keyPath }));
  }
  for (const k of keys.tsig) {
    rows.push(row({ type: 'tsig', name: k.server, id: k.name, algorithm: 'hmac-sha256', state: 'active', created: k.created, fingerprint: '', file: k.secretPath }));
  }
  return rows;
}
