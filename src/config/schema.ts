/**
 * The one definition of a valid setup: raw request (flags, file, wizard) → `Config`, or every
 * problem at once. Refusals (src/policy/) are checked in the same pass; any refusal makes the
 * whole request fail with exit 3, and the input problems found are listed with it.
 */
import { SPAM_LOOKUP_NAMES } from '../rspamd/lookups.js';
import { checkRecipient, parseHostKey, parseTargetSpec, targetText } from '../backup/format.js';
import { MESSAGE_SIZE_LIMIT } from '../mail/limits.js';
import { InputError, type InputIssue, RefusalError } from '../errors.js';
import { refusals } from '../policy/refusals.js';
import { TUNNEL, parseWgPublicKey } from '../vps/wireguard.js';
import { isThisHost } from '../ssh/sshfp.js';
import { type Release, SUPPORTED_TEXT, parseRelease } from './release.js';
import { type RawKey, type SourcedInput, fieldName } from './raw.js';
import {
  type Parsed,
  type PublicParsed,
  parseCidr,
  parseDomainName,
  parseEmail,
  parseLanIPv4,
  parseLanIPv6,
  parsePublicAddress,
  parsePublicIPv4,
  parsePublicIPv6,
} from './values.js';
import {
  type Cidr,
  type BackupSettings,
  type Config,
  type DomainName,
  type Email,
  type IPv4,
  type IPv6,
  type Ingress,
  type MailAlias,
  type MailQuota,
  type NameServer,
  domainOf,
  isInZone,
  localPartOf,
  ROLE_LOCAL_PARTS,
  zoneOf,
} from './types.js';

export const DEFAULT_ACME_CA = 'letsencrypt.org';
export const INGRESS_CHOICES: Ingress[] = ['direct', 'port-forward', 'own-vps'];

export interface Resolved {
  config: Config;
  warnings: string[];
}

/**
 * One pass over the request: where each value came from (to name the flag or file key in a
 * message), and the problems and warnings found so far. Each part of the setup is resolved by a
 * function of its own below, in the order a reader meets them in DESIGN.md.
 */
interface Pass {
  v: SourcedInput['values'];
  issues: InputIssue[];
  warnings: string[];
  problem(key: RawKey, message: string): void;
  /** Where a value came from (a flag, the file, the bundle's selfmail.yaml, …). */
  origin(key: RawKey): SourcedInput['origins'][RawKey];
  /** The parsed value, or undefined with the parser's problem (or warning) recorded. */
  take<T>(key: RawKey, raw: string, parsed: Parsed<T> | PublicParsed<T>): T | undefined;
}

function pass(input: SourcedInput): Pass {
  const issues: InputIssue[] = [];
  const warnings: string[] = [];
  const at = (key: RawKey) => fieldName(input, key);
  return {
    v: input.values,
    issues,
    warnings,
    problem: (key, message) => issues.push({ field: at(key), message }),
    origin: (key) => input.origins[key],
    take(key, raw, parsed) {
      if (parsed.ok) {
        // Warnings reach REPORT.md, so they name the setting, not where it came from this time.
        if (parsed.warning) warnings.push(`${key}: ${parsed.warning}`);
        return parsed.value;
      }
      // Carrier-grade NAT is a refusal (already listed); do not report it twice.
      if ('cgnat' in parsed) return undefined;
      issues.push({ field: at(key), message: `${JSON.stringify(raw)} ${parsed.error}` });
      return undefined;
    },
  };
}

/**
 * Validate `input` and fill in the documented defaults. Throws RefusalError (exit 3) when anything
 * refused was asked, otherwise InputError (exit 2) listing every problem, otherwise returns.
 */
export function resolveConfig(input: SourcedInput): Resolved {
  const refused = refusals(input);
  const r = pass(input);
  const domains = resolveDomains(r);
  const hostname = resolveHostname(r, domains);
  const addresses = resolveAddresses(r);
  const nameServers = resolveNameServers(r, domains, addresses);
  const { users, admin } = resolveMailboxes(r, domains);
  const adminSshFrom = resolveSsh(r);
  const target = resolveTarget(r);
  const spamLookups = resolveSpamLookups(r);
  const aliases = resolveAliases(r, domains, users, admin);
  const quotas = resolveQuotas(r, users);
  const backup = resolveBackup(r);
  const openpgpKeys = resolveOpenpgpKeys(r, users);
  const acmeCa = r.v.acmeCa !== undefined ? r.take('acmeCa', r.v.acmeCa, parseDomainName(r.v.acmeCa)) : (DEFAULT_ACME_CA as DomainName);

  if (refused.length > 0) throw new RefusalError(refused, r.issues);
  if (r.issues.length > 0) throw new InputError(r.issues);

  const { ipv4, ipv6, listenIpv4, listenIpv6, ingress, vpsWgKey } = addresses;
  const config: Config = {
    domains,
    hostname: hostname!,
    ...(ipv4 ? { ipv4 } : {}),
    ...(ipv6 ? { ipv6 } : {}),
    ...(listenIpv4 ? { listenIpv4 } : {}),
    ...(listenIpv6 ? { listenIpv6 } : {}),
    nameServers,
    admin: admin!,
    users,
    adminSshFrom,
    ingress,
    ...(vpsWgKey ? { vpsWgKey } : {}),
    acmeCa: acmeCa!,
    dnssec: r.v.dnssec ?? true,
    target: target!,
    spamLookups,
    aliases,
    quotas,
    ...(backup ? { backup } : {}),
    openpgpKeys,
  };
  return { config, warnings: r.warnings };
}

/** Domains: at least one, no duplicates, none inside another. */
function resolveDomains({ v, take, problem }: Pass): DomainName[] {
  const domains: DomainName[] = [];
  if (!v.domains || v.domains.length === 0) problem('domains', 'is required: give the mail domain, like --domain example.org');
  for (const raw of v.domains ?? []) {
    const d = take('domains', raw, parseDomainName(raw));
    if (!d) continue;
    if (domains.includes(d)) problem('domains', `${d} is listed twice`);
    else domains.push(d);
  }
  for (const d of domains) {
    const parent = domains.find((o) => o !== d && isInZone(d, o));
    if (parent) problem('domains', `${d} lies inside ${parent}, another mail domain; each mail domain is a zone of its own, give only ${parent}`);
  }
  return domains;
}

/** Host name: defaults to mail.<primary>; must be inside one of our zones, and not a domain itself. */
function resolveHostname({ v, take, problem }: Pass, domains: DomainName[]): DomainName | undefined {
  const primary = domains[0];
  let hostname: DomainName | undefined;
  if (v.hostname !== undefined) hostname = take('hostname', v.hostname, parseDomainName(v.hostname));
  else if (primary) hostname = `mail.${primary}` as DomainName;
  if (hostname && v.hostname !== undefined && domains.length > 0 && !zoneOf({ domains }, hostname)) {
    problem('hostname', `${hostname} is not inside any of the mail domains (${domains.join(', ')}); its A, AAAA and TLSA records must be in a zone you publish`);
  }
  if (hostname && domains.includes(hostname)) {
    problem('hostname', `${hostname} is a mail domain itself; give the host a name of its own, like mail.${hostname}`);
  }
  return hostname;
}

interface Addresses {
  ipv4: IPv4 | undefined;
  ipv6: IPv6 | undefined;
  listenIpv4: IPv4 | undefined;
  listenIpv6: IPv6 | undefined;
  ingress: Ingress;
  vpsWgKey: string | undefined;
}

/**
 * The public addresses, how mail reaches them (ingress), and the addresses the services bind to:
 * the public ones (direct), the LAN ones behind a port forward, or this end of the WireGuard tunnel
 * to the user's own VPS, whose public addresses are then the ones published.
 */
function resolveAddresses(pass: Pass): Addresses {
  const { v, take, problem } = pass;
  let ingress: Ingress = 'direct';
  if (v.ingress !== undefined) {
    const i = v.ingress.toLowerCase();
    if (i === 'direct' || i === 'port-forward' || i === 'own-vps') {
      ingress = i;
    } else if (!['upnp', 'nat-pmp', 'natpmp', 'pcp', 'tunnel', 'relay'].includes(i)) {
      // The refused ways are the policy's to report (exit 3); anything else is a typo.
      problem('ingress', `${JSON.stringify(v.ingress)} is not one of: direct, port-forward, own-vps`);
    }
  }
  if (ingress === 'own-vps') return resolveVpsAddresses(pass);
  for (const key of ['vpsIpv4', 'vpsIpv6', 'vpsWgKey'] as const) {
    // The bundle's own (it was own-vps, and a flag changed that) simply no longer apply.
    if (v[key] !== undefined && pass.origin(key) !== 'bundle') problem(key, 'is only used with --ingress own-vps (mail through a VPS of your own)');
  }
  const ipv4 = v.ipv4 !== undefined ? take('ipv4', v.ipv4, parsePublicIPv4(v.ipv4)) : undefined;
  const ipv6 = v.ipv6 !== undefined ? take('ipv6', v.ipv6, parsePublicIPv6(v.ipv6)) : undefined;
  if (v.ipv4 === undefined && v.ipv6 === undefined) {
    problem('ipv4', 'is required (or --ipv6): the public address where mail reaches this host');
  }
  const listenIpv4 = v.listenIpv4 !== undefined ? take('listenIpv4', v.listenIpv4, parseLanIPv4(v.listenIpv4)) : undefined;
  const listenIpv6 = v.listenIpv6 !== undefined ? take('listenIpv6', v.listenIpv6, parseLanIPv6(v.listenIpv6)) : undefined;
  if (ingress === 'port-forward') {
    if (v.ipv4 !== undefined && v.listenIpv4 === undefined) {
      problem('listenIpv4', 'is required with --ingress port-forward: the LAN address of this host that the router forwards to (like 192.168.1.20)');
    }
  } else {
    if (v.listenIpv4 !== undefined) problem('listenIpv4', 'is only used with --ingress port-forward; with direct ingress the services bind to --ipv4');
    if (v.listenIpv6 !== undefined) problem('listenIpv6', 'is only used with --ingress port-forward; with direct ingress the services bind to --ipv6');
  }
  if (listenIpv6 && v.ipv6 === undefined) problem('listenIpv6', 'needs --ipv6, the public address that is forwarded to it');
  return { ipv4, ipv6, listenIpv4, listenIpv6, ingress, vpsWgKey: undefined };
}

/**
 * `--ingress own-vps`: the VPS's public addresses are the host's published ones, the services bind
 * to this end of the tunnel, and the VPS's WireGuard public key comes when the user has made it there.
 */
function resolveVpsAddresses({ v, take, problem, origin }: Pass): Addresses {
  for (const key of ['ipv4', 'ipv6', 'listenIpv4', 'listenIpv6'] as const) {
    // The bundle's own addresses (it took mail directly, and a flag changed that) simply no longer apply.
    if (v[key] !== undefined && origin(key) !== 'bundle') problem(key, 'is not used with --ingress own-vps: mail reaches your VPS (--vps-ipv4, --vps-ipv6), which forwards it over WireGuard; this host needs no public address');
  }
  if (v.vpsIpv4 === undefined && v.vpsIpv6 === undefined) {
    problem('vpsIpv4', 'is required with --ingress own-vps (or --vps-ipv6): the public address of your VPS');
  }
  const publicOf = <T>(key: 'vpsIpv4' | 'vpsIpv6', raw: string | undefined, parsed: (s: string) => Parsed<T> | PublicParsed<T>): T | undefined => {
    if (raw === undefined) return undefined;
    const p = parsed(raw);
    if (!p.ok && 'cgnat' in p) {
      problem(key, `${JSON.stringify(raw)} ${p.error}: a VPS has a public address; give that one`);
      return undefined;
    }
    const value = take(key, raw, p.ok ? p : { ok: false, error: p.error.replace(/Give the host's public address$/, 'Give the VPS\'s public address') });
    if (value !== undefined && isThisHost([String(value)])) {
      problem(key, `${JSON.stringify(raw)} is an address of this machine: give your VPS's public address (this host reaches the VPS over WireGuard and needs no public address of its own)`);
      return undefined;
    }
    return value;
  };
  const ipv4 = publicOf('vpsIpv4', v.vpsIpv4, parsePublicIPv4);
  const ipv6 = publicOf('vpsIpv6', v.vpsIpv6, parsePublicIPv6);
  let vpsWgKey: string | undefined;
  if (v.vpsWgKey !== undefined) {
    // Never echoed: what was pasted may be a private key.
    const k = parseWgPublicKey(v.vpsWgKey);
    if (k.ok) vpsWgKey = k.value;
    else problem('vpsWgKey', `the key given ${k.error}`);
  }
  return {
    ipv4,
    ipv6,
    listenIpv4: ipv4 ? TUNNEL.home4 : undefined,
    listenIpv6: ipv6 ? TUNNEL.home6 : undefined,
    ingress: 'own-vps',
    vpsWgKey,
  };
}

/**
 * Name servers: NAME (inside our zones: this host) or NAME=ADDR[,ADDR] (a secondary the user
 * runs, or this host by its address). At least one must be this host, which signs and serves.
 */
function resolveNameServers({ v, take, problem }: Pass, domains: DomainName[], { ipv4, ipv6 }: Addresses): NameServer[] {
  const primary = domains[0];
  const nameServers: NameServer[] = [];
  const nsSpecs = v.ns && v.ns.length > 0 ? v.ns : primary ? [`ns1.${primary}`] : [];
  for (const spec of nsSpecs) {
    const eq = spec.indexOf('=');
    const name = take('ns', spec, parseDomainName(eq < 0 ? spec : spec.slice(0, eq)));
    if (!name) continue;
    const ns: NameServer = { name, ipv4: [], ipv6: [], self: false };
    let addressOk = true;
    if (eq >= 0) {
      for (const a of spec.slice(eq + 1).split(',')) {
        const addr = take('ns', spec, parsePublicAddress(a));
        if (!addr) {
          addressOk = false;
          continue;
        }
        if (addr.includes(':')) ns.ipv6.push(addr as IPv6);
        else ns.ipv4.push(addr as IPv4);
      }
    }
    if (!addressOk) continue;
    const given = ns.ipv4.length + ns.ipv6.length > 0;
    const ours = domains.length > 0 && zoneOf({ domains }, name) !== undefined;
    if (!given && ours) {
      // A name server inside our zone without an address is this host.
      ns.self = true;
      if (ipv4) ns.ipv4.push(ipv4);
      if (ipv6) ns.ipv6.push(ipv6);
    } else if (given) {
      ns.self = ns.ipv4.some((a) => a === ipv4) || ns.ipv6.some((a) => a === ipv6);
    } else {
      problem('ns', `${name} is outside your domains and has no address; a secondary name server needs one (--ns ${name}=ADDR) so that NSD can notify it and allow it zone transfers`);
      continue;
    }
    if (nameServers.some((o) => o.name === name)) problem('ns', `${name} is listed twice`);
    else nameServers.push(ns);
  }
  if (nameServers.length > 0 && !nameServers.some((n) => n.self)) {
    problem('ns', 'none of the name servers is this host; at least one must be (give a name inside your domain without an address, or with this host\'s address), because this host signs and serves the zone');
  }
  return nameServers;
}

/** Mailboxes (each in one of the domains) and the admin address (a mailbox when in our domains). */
function resolveMailboxes({ v, take, problem, warnings }: Pass, domains: DomainName[]): { users: Email[]; admin: Email | undefined } {
  const primary = domains[0];
  const users: Email[] = [];
  for (const raw of v.users ?? []) {
    const u = take('users', raw, parseEmail(raw));
    if (!u) continue;
    if (users.includes(u)) problem('users', `${u} is listed twice`);
    else if (domains.length > 0 && !domains.includes(domainOf(u))) problem('users', `${u} is not in one of the mail domains (${domains.join(', ')})`);
    else users.push(u);
  }
  if (!v.users || v.users.length === 0) problem('users', 'is required: at least one mailbox, like --user alice@example.org');

  let admin: Email | undefined;
  if (v.admin !== undefined) admin = take('admin', v.admin, parseEmail(v.admin, { allowPlus: true }));
  else if (users[0]) admin = users[0];
  else if (primary) admin = `postmaster@${primary}` as Email;
  // An address tag (bob+reports@) is delivered to the mailbox without it.
  const untagged = admin ? (admin.replace(/\+[^@]*@/, '@') as Email) : undefined;
  if (admin && untagged && v.admin !== undefined && domains.includes(domainOf(admin)) && !users.includes(untagged)) {
    problem('admin', `${admin} is in one of your domains but is not a mailbox; make it one of the --user addresses so that postmaster mail and reports land where you read them`);
  }
  if (admin && !domains.includes(domainOf(admin)) && domains.length > 0) {
    warnings.push(`admin: ${admin} is outside your domains; DMARC and TLS reports go there, and ${domainOf(admin)} must publish the DMARC report authorization record (REPORT.md says which)`);
  }
  return { users, admin };
}

/** The networks allowed to reach SSH (none: closed to the network). */
function resolveSsh({ v, take, problem }: Pass): Cidr[] {
  const adminSshFrom: Cidr[] = [];
  for (const raw of v.adminSshFrom ?? []) {
    const c = take('adminSshFrom', raw, parseCidr(raw));
    if (!c) continue;
    if (adminSshFrom.includes(c)) problem('adminSshFrom', `${c} is listed twice`);
    else adminSshFrom.push(c);
  }
  return adminSshFrom;
}

/**
 * The spam filter's outside lookups: names from src/rspamd/lookups.ts, each value a name or a
 * comma-separated list of names; `none` alone for none (the default).
 */
function resolveSpamLookups({ v, problem }: Pass): string[] {
  const names = (v.spamLookups ?? []).flatMap((x) => x.split(',')).map((x) => x.trim().toLowerCase());
  if (names.length === 1 && names[0] === 'none') return [];
  const out: string[] = [];
  const known = `the lookups are ${SPAM_LOOKUP_NAMES.join(', ')} (or none)`;
  for (const n of names) {
    if (n === '') problem('spamLookups', `has an empty name; ${known}`);
    else if (n === 'none') problem('spamLookups', `"none" cannot be combined with other lookups`);
    else if (!SPAM_LOOKUP_NAMES.includes(n)) problem('spamLookups', `${JSON.stringify(n.slice(0, 40))} is not a lookup selfmail knows; ${known}`);
    else if (out.includes(n)) problem('spamLookups', `${n} is listed twice`);
    else out.push(n);
  }
  return SPAM_LOOKUP_NAMES.filter((n) => out.includes(n));
}

/**
 * Aliases, `SOURCE=TARGET[,TARGET…]`: SOURCE an address in one of the domains that is not a
 * mailbox or a role address, or `@domain` for a catch-all, which takes only mail for addresses
 * that are neither a mailbox nor an alias (the Postfix map gets an entry for each of those). A
 * TARGET in our domains must be a mailbox or an alias; no alias may lead back to itself.
 */
function resolveAliases({ v, problem, warnings }: Pass, domains: DomainName[], users: Email[], admin: Email | undefined): MailAlias[] {
  const out: MailAlias[] = [];
  const sources = new Set<string>();
  const parsedAll: Array<{ from: string; to: Email[] }> = [];
  for (const raw of v.aliases ?? []) {
    const eq = raw.indexOf('=');
    const shown = JSON.stringify(raw.slice(0, 80));
    if (eq < 0) {
      problem('aliases', `${shown} is not SOURCE=TARGET[,TARGET…] (like info@example.org=alice@example.org)`);
      continue;
    }
    const src = raw.slice(0, eq).trim().toLowerCase();
    let from: string | undefined;
    if (src.startsWith('@')) {
      const d = parseDomainName(src.slice(1));
      if (!d.ok) problem('aliases', `the catch-all ${JSON.stringify(src.slice(0, 80))} ${d.error}`);
      else if (!domains.includes(d.value)) problem('aliases', `the catch-all @${d.value} is not one of the mail domains (${domains.join(', ')})`);
      else from = `@${d.value}`;
    } else {
      const e = parseEmail(src);
      if (!e.ok) problem('aliases', `the source ${JSON.stringify(src.slice(0, 80))} ${e.error}`);
      else if (!domains.includes(domainOf(e.value))) problem('aliases', `${e.value} is not in one of the mail domains (${domains.join(', ')})`);
      else if (users.includes(e.value)) problem('aliases', `${e.value} is a mailbox; an alias cannot take its mail (remove the mailbox first)`);
      else if ((ROLE_LOCAL_PARTS as readonly string[]).includes(localPartOf(e.value))) problem('aliases', `${e.value} always reaches the admin${admin ? ` (${admin})` : ''} (RFC 2142); it cannot be an alias of its own`);
      else from = e.value;
    }
    const to: Email[] = [];
    const targets = raw.slice(eq + 1).split(',').map((t) => t.trim()).filter(Boolean);
    if (targets.length === 0) problem('aliases', `${shown} has no target after "="`);
    for (const t of targets) {
      const e = parseEmail(t, { allowPlus: true });
      if (!e.ok) problem('aliases', `the target ${JSON.stringify(t.slice(0, 80))} ${e.error}`);
      else if (to.includes(e.value)) problem('aliases', `${shown} names ${e.value} twice`);
      else to.push(e.value);
    }
    if (!from) continue;
    if (sources.has(from)) {
      problem('aliases', `${from} is given twice`);
      continue;
    }
    sources.add(from);
    parsedAll.push({ from, to });
  }
  // Targets in our domains must exist; catch-alls deliver to real addresses only.
  for (const a of parsedAll) {
    for (const t of a.to) {
      const untagged = t.replace(/\+[^@]*@/, '@');
      if (t === a.from) problem('aliases', `${a.from} delivers to itself`);
      else if (domains.includes(domainOf(t)) && !users.includes(untagged as Email) && !sources.has(untagged) && !(ROLE_LOCAL_PARTS as readonly string[]).includes(localPartOf(untagged as Email))) {
        problem('aliases', `${a.from} delivers to ${t}, which is in your domains but is neither a mailbox nor an alias`);
      }
    }
    const outside = a.to.filter((t) => !domains.includes(domainOf(t)));
    if (outside.length > 0) warnings.push(`aliases: ${a.from} forwards to ${outside.join(', ')} outside your domains; forwarded mail keeps its sender, so a receiver that checks SPF strictly may refuse it`);
  }
  // No alias leads back to itself through others (Postfix would bounce such mail as a loop).
  const next = new Map(parsedAll.map((a) => [a.from, a.to.map((t) => t.replace(/\+[^@]*@/, '@')).filter((t) => sources.has(t))]));
  const reported = new Set<string>();
  const walk = (at: string, path: string[]): void => {
    for (const n of next.get(at) ?? []) {
      if (path.includes(n)) {
        const cycle = [...path.slice(path.indexOf(n)), n];
        const key = path.slice(path.indexOf(n)).sort().join(' ');
        if (!reported.has(key)) {
          reported.add(key);
          problem('aliases', `${cycle.join(' → ')} is a loop: mail to any of them would never arrive`);
        }
        continue;
      }
      walk(n, [...path, n]);
    }
  };
  for (const a of parsedAll) walk(a.from, [a.from]);
  for (const a of parsedAll) out.push(a);
  return out.sort((x, y) => (x.from < y.from ? -1 : x.from > y.from ? 1 : 0));
}

/** The smallest quota taken. */
export const MIN_QUOTA_BYTES = 1024 * 1024;

/** `2G`, `500M`, `1T`, `1048576K`: a whole number and a unit (powers of 1024). Pure. */
export function parseQuotaSize(text: string): { size: string; bytes: number } | undefined {
  const m = /^([1-9][0-9]{0,6})\s*([KMGT])i?B?$/i.exec(text.trim());
  if (!m) return undefined;
  const unit = m[2]!.toUpperCase();
  const bytes = Number(m[1]) * 1024 ** ('KMGT'.indexOf(unit) + 1);
  return { size: `${m[1]}${unit}`, bytes };
}

/** Storage limits, `EMAIL=SIZE`: one per mailbox at most, each a size of at least 1M. */
function resolveQuotas({ v, problem, warnings }: Pass, users: Email[]): MailQuota[] {
  const out: MailQuota[] = [];
  for (const raw of v.quotas ?? []) {
    const eq = raw.lastIndexOf('=');
    const shown = JSON.stringify(raw.slice(0, 80));
    if (eq < 0) {
      problem('quotas', `${shown} is not EMAIL=SIZE (like alice@example.org=2G)`);
      continue;
    }
    const e = parseEmail(raw.slice(0, eq).trim());
    const size = parseQuotaSize(raw.slice(eq + 1));
    if (!e.ok) problem('quotas', `the mailbox ${JSON.stringify(raw.slice(0, eq).slice(0, 80))} ${e.error}`);
    else if (!users.includes(e.value)) problem('quotas', `${e.value} is not one of the mailboxes`);
    else if (out.some((q) => q.user === e.value)) problem('quotas', `${e.value} has two quotas`);
    if (!size) problem('quotas', `${JSON.stringify(raw.slice(eq + 1).slice(0, 40))} is not a size: a whole number and K, M, G or T (like 500M or 2G)`);
    else if (size.bytes < MIN_QUOTA_BYTES) problem('quotas', `${size.size} is below 1M`);
    else if (size.bytes < MESSAGE_SIZE_LIMIT) warnings.push(`quotas: ${size.size} is less than the largest message accepted (25 MiB): a message above it can never reach ${raw.slice(0, eq).trim()}`);
    if (e.ok && size && users.includes(e.value) && size.bytes >= MIN_QUOTA_BYTES && !out.some((q) => q.user === e.value)) out.push({ user: e.value, ...size });
  }
  return out.sort((x, y) => (x.user < y.user ? -1 : x.user > y.user ? 1 : 0));
}

/**
 * The daily backup: a target (`none` for none), the recipients it is encrypted to (public keys
 * only), and for an sftp:// target the one host key the connection accepts.
 */
function resolveBackup({ v, problem, origin }: Pass): BackupSettings | undefined {
  const to = v.backupTo?.trim();
  const off = to === undefined || to.toLowerCase() === 'none';
  if (off) {
    if (to === undefined && (v.backupRecipients?.length || v.backupHostKey !== undefined)) {
      problem('backupTo', 'is required with --backup-recipient and --backup-host-key: where the backups go (a folder of this host, or sftp://USER@HOST/PATH)');
    }
    return undefined;
  }
  const spec = parseTargetSpec(to);
  if (!spec.ok) problem('backupTo', spec.error);
  const recipients: string[] = [];
  if (!v.backupRecipients?.length) {
    problem('backupRecipients', 'is required with --backup-to: the age public key of a device of yours, which alone reads the backups (make it there: age-keygen -o key.txt prints it); repeatable');
  }
  for (const raw of v.backupRecipients ?? []) {
    const c = checkRecipient(raw);
    if (!c.ok) problem('backupRecipients', c.error);
    else if (recipients.includes(c.value)) problem('backupRecipients', `${c.value} is listed twice`);
    else recipients.push(c.value);
  }
  let hostKey: string | undefined;
  if (spec.ok && spec.value.kind === 'sftp') {
    if (v.backupHostKey === undefined) {
      problem('backupHostKey', `is required with an sftp:// target: the host public key of ${spec.value.host}, the only one the backup connection will accept (on that machine: cat /etc/ssh/ssh_host_ed25519_key.pub)`);
    } else {
      const k = parseHostKey(v.backupHostKey);
      if (k.ok) hostKey = k.value;
      else problem('backupHostKey', k.error);
    }
  } else if (spec.ok && v.backupHostKey !== undefined && origin('backupHostKey') !== 'bundle') {
    // (One the bundle kept from an earlier sftp:// target is simply dropped.)
    problem('backupHostKey', 'is only for an sftp:// target; a folder of this host needs no host key');
  }
  if (!spec.ok || recipients.length === 0) return undefined;
  return { to: spec.value, recipients, ...(hostKey ? { hostKey } : {}) };
}

/**
 * The mailboxes that publish an OpenPGP public key: entries `EMAIL=FILE` (the file is the CLI's
 * to read, src/openpgp/publish.ts's to judge), `EMAIL` (the bundle's copy) or `EMAIL=none`
 * (dropped). Only a mailbox of this host publishes one. Without DNSSEC, the Web Key Directory
 * alone: an unsigned OPENPGPKEY record proves nothing.
 */
function resolveOpenpgpKeys({ v, problem, warnings }: Pass, users: Email[]): Email[] {
  const out: Email[] = [];
  const seen = new Set<Email>();
  for (const raw of v.openpgpKeys ?? []) {
    const eq = raw.indexOf('=');
    const address = (eq < 0 ? raw : raw.slice(0, eq)).trim();
    const file = eq < 0 ? undefined : raw.slice(eq + 1).trim();
    const e = parseEmail(address);
    if (!e.ok) {
      problem('openpgpKeys', `the address ${JSON.stringify(address.slice(0, 80))} ${e.error}; give EMAIL=FILE, FILE a public key exported with gpg --export --armor EMAIL`);
      continue;
    }
    if (seen.has(e.value)) {
      problem('openpgpKeys', `${e.value} is given twice`);
      continue;
    }
    seen.add(e.value);
    if (file === '') problem('openpgpKeys', `${JSON.stringify(raw.slice(0, 80))} has no file after "="; give EMAIL=FILE, or EMAIL=none to drop the key`);
    else if (file?.toLowerCase() === 'none') continue;
    else if (!users.includes(e.value)) {
      problem(
        'openpgpKeys',
        file === undefined
          ? `${e.value} publishes an OpenPGP key but is no longer a mailbox; drop the key with --openpgp-key ${e.value}=none`
          : `${e.value} is not one of the mailboxes (--user); only a mailbox of this host publishes a key here`,
      );
    } else out.push(e.value);
  }
  if (out.length > 0 && v.dnssec === false) {
    warnings.push('openpgpKeys: DNSSEC is off, so the OpenPGP keys are published in the Web Key Directory only, with no OPENPGPKEY record: unsigned, such a record would prove nothing');
  }
  return out.sort();
}

/** The release: the host's (a default layer the caller adds), the bundle's, or --target. */
function resolveTarget({ v, problem }: Pass): Release | undefined {
  if (v.target === undefined) {
    problem('target', `is required: this machine is not one of the supported releases, so say which one the mail host runs: --target debian-13 or --target debian-12 (${SUPPORTED_TEXT})`);
    return undefined;
  }
  const r = parseRelease(v.target);
  if (r.ok) return r.value;
  problem('target', `${JSON.stringify(v.target)} ${r.error}`);
  return undefined;
}

/** The raw form of a resolved config, with every default spelled out: what selfmail.yaml holds. */
export function toRaw(config: Config): Record<string, unknown> {
  return {
    domains: config.domains,
    hostname: config.hostname,
    ...(config.ingress === 'own-vps'
      ? {
          ingress: config.ingress,
          ...(config.ipv4 ? { vpsIpv4: config.ipv4 } : {}),
          ...(config.ipv6 ? { vpsIpv6: config.ipv6 } : {}),
          ...(config.vpsWgKey ? { vpsWgKey: config.vpsWgKey } : {}),
        }
      : {
          ...(config.ipv4 ? { ipv4: config.ipv4 } : {}),
          ...(config.ipv6 ? { ipv6: config.ipv6 } : {}),
          ingress: config.ingress,
          ...(config.listenIpv4 ? { listenIpv4: config.listenIpv4 } : {}),
          ...(config.listenIpv6 ? { listenIpv6: config.listenIpv6 } : {}),
        }),
    // A name server that is this host and lies in our zones takes the host's addresses; write
    // only its name, so that changing --ipv4 later moves it too.
    ns: config.nameServers.map((n) =>
      n.self && zoneOf(config, n.name) ? n.name : `${n.name}=${[...n.ipv4, ...n.ipv6].join(',')}`,
    ),
    admin: config.admin,
    users: config.users,
    adminSshFrom: config.adminSshFrom,
    acmeCa: config.acmeCa,
    dnssec: config.dnssec,
    target: config.target,
    spamLookups: config.spamLookups,
    aliases: config.aliases.map((a) => `${a.from}=${a.to.join(',')}`),
    quotas: config.quotas.map((q) => `${q.user}=${q.size}`),
    ...(config.backup
      ? {
          backupTo: targetText(config.backup.to),
          backupRecipients: config.backup.recipients,
          ...(config.backup.hostKey ? { backupHostKey: config.backup.hostKey } : {}),
        }
      : {}),
    // Only the mailboxes: the keys are files of the bundle (openpgp/). Left out when there are
    // none, so that bundles without keys keep their selfmail.yaml byte for byte.
    ...(config.openpgpKeys.length > 0 ? { openpgpKeys: config.openpgpKeys } : {}),
  };
}
