/**
 * `selfmail doctor`'s judgements on the network around the host: the parent zone's delegation and
 * DS, reverse DNS, port 25 outbound, DNS blocklists, UPnP/NAT-PMP on the router, NAT and
 * carrier-grade NAT. Pure: facts in, a status and what to do out. The gathering is in ./network.ts.
 */
import { classifyV4 } from '../config/values.js';
import type { CheckResult, CheckStatus } from './checks.js';

/** One resource record of a dig answer: owner lower case without the final dot, type, data. */
export interface DnsRr {
  name: string;
  type: string;
  data: string;
}

/** One dig query's outcome; `error` when dig got no answer at all. */
export interface DnsReply {
  status: string;
  flags: string[];
  answer: DnsRr[];
  authority: DnsRr[];
  additional: DnsRr[];
  error?: string;
}

/** `dig +noall +comments +answer +authority +additional` output → its sections. Pure. */
export function parseDig(stdout: string): DnsReply {
  const reply: DnsReply = { status: '', flags: [], answer: [], authority: [], additional: [] };
  let section: 'answer' | 'authority' | 'additional' | undefined;
  for (const raw of stdout.split('\n')) {
    const line = raw.trim();
    const status = /status: ([A-Z]+)/.exec(line);
    if (status && line.includes('->>HEADER<<-')) reply.status = status[1]!;
    const flags = /^;; flags: ([a-z ]+);/.exec(line);
    if (flags) reply.flags = flags[1]!.trim().split(/\s+/);
    const head = /^;; (ANSWER|AUTHORITY|ADDITIONAL) SECTION:/.exec(line);
    if (head) section = head[1]!.toLowerCase() as typeof section;
    if (!line || line.startsWith(';') || !section) continue;
    const f = line.split(/\s+/);
    // name ttl class type data…
    if (f.length < 5 || f[2] !== 'IN') continue;
    reply[section].push({ name: f[0]!.toLowerCase().replace(/\.$/, ''), type: f[3]!, data: f.slice(4).join(' ') });
  }
  return reply;
}

const RESOLVER_ASKED = 'this host\'s resolver (unbound, validating, on 127.0.0.1)';

// ---------------------------------------------------------------------------------------------
// delegation and ds-at-parent

export interface ParentServerView {
  /** The parent server's name and the address asked. */
  server: string;
  address: string;
  /** NS names it delegates the zone to (lower case, no final dot); undefined when it gave no answer. */
  ns?: string[];
  /** Glue it gives for those names: name → addresses. */
  glue?: Record<string, string[]>;
  /** DS records it serves for the zone: "tag alg type DIGEST" (digest upper case, no spaces). */
  ds?: string[];
  error?: string;
}

export interface ParentFacts {
  zone: string;
  /** The parent zone, when the resolver found it. */
  parent?: string;
  /** Why the parent or its servers could not be found. */
  error?: string;
  views: ParentServerView[];
}

export interface ExpectedNameServer {
  name: string;
  ipv4: readonly string[];
  ipv6: readonly string[];
  /** Inside the zone: the parent must hold its addresses as glue. */
  glue: boolean;
}

const sameSet = (a: readonly string[], b: readonly string[]) => a.length === b.length && [...a].sort().every((x, i) => x === [...b].sort()[i]);

function parentAsked(facts: readonly ParentFacts[]): string {
  const servers = [...new Set(facts.flatMap((f) => f.views.map((v) => `${v.server} (${v.address})`)))];
  return `${RESOLVER_ASKED}, to find the parent zones' servers; then those servers directly${servers.length ? `: ${servers.join(', ')}` : ''}`;
}

/** `delegation`: every server of the parent delegates each zone to the bundle's name servers, with the bundle's glue. */
export function judgeDelegation(facts: readonly ParentFacts[], expected: readonly ExpectedNameServer[]): CheckResult {
  const id = 'delegation';
  const asked = parentAsked(facts);
  const fails: string[] = [];
  const unknown: string[] = [];
  const good: string[] = [];
  const names = expected.map((n) => n.name);
  for (const f of facts) {
    if (f.error || !f.parent) {
      unknown.push(`${f.zone}: ${f.error ?? 'no parent zone found'}`);
      continue;
    }
    const answered = f.views.filter((v) => v.ns !== undefined);
    if (answered.length === 0) {
      unknown.push(`${f.zone}: no server of ${f.parent}. answered (${f.views.map((v) => `${v.address}: ${v.error ?? 'no answer'}`).join('; ') || 'none found'})`);
      continue;
    }
    const wrong: string[] = [];
    for (const v of answered) {
      if (v.ns!.length === 0) {
        wrong.push(`${v.server} does not delegate ${f.zone} (no NS)`);
        continue;
      }
      if (!sameSet(v.ns!, names)) wrong.push(`${v.server} delegates ${f.zone} to ${v.ns!.join(', ')}, the bundle to ${names.join(', ')}`);
      for (const n of expected.filter((e) => e.glue && v.ns!.includes(e.name))) {
        const want = [...n.ipv4, ...n.ipv6];
        const got = v.glue?.[n.name] ?? [];
        if (!sameSet(got, want)) wrong.push(`${v.server} gives glue ${n.name} ${got.join(' ') || '(none)'}, the bundle ${want.join(' ')}`);
      }
    }
    if (wrong.length > 0) fails.push(...[...new Set(wrong)]);
    else good.push(`${f.zone} (${answered.length} server${answered.length === 1 ? '' : 's'} of ${f.parent}.)`);
  }
  if (fails.length > 0) {
    return { id, status: 'fail', summary: fails.join('; '), fix: 'at the registrar, set the name servers and glue to those in REPORT.md ("At the registrar"); the parent may take a few hours to publish them', asked };
  }
  if (unknown.length > 0) return { id, status: 'unknown', summary: unknown.join('; '), fix: 'check that the host reaches the internet (its resolver resolves from the root); then run doctor again', asked };
  return { id, status: 'pass', summary: `${good.join(', ')}: delegated to ${names.join(', ')} with the bundle's glue`, asked };
}

export interface BundleDs {
  zone: string;
  /** The bundle's DS for the zone's KSK(s): "tag alg type DIGEST". */
  ds: string[];
  dnssec: boolean;
  /** The DS of a new KSK the zone names in CDS (a KSK rollover waiting for the parent); empty otherwise. */
  rolling?: string[];
}

/** `ds-at-parent`: the parent serves a DS for the bundle's KSK, and none for a key the bundle does not hold. */
export function judgeDsAtParent(facts: readonly ParentFacts[], bundle: readonly BundleDs[]): CheckResult {
  const id = 'ds-at-parent';
  const asked = parentAsked(facts);
  const fails: string[] = [];
  const warns: string[] = [];
  const unknown: string[] = [];
  const good: string[] = [];
  let fix: string | undefined;
  for (const f of facts) {
    const want = bundle.find((b) => b.zone === f.zone);
    if (f.error || !f.parent) {
      unknown.push(`${f.zone}: ${f.error ?? 'no parent zone found'}`);
      continue;
    }
    const answered = f.views.filter((v) => v.ds !== undefined);
    if (answered.length === 0) {
      unknown.push(`${f.zone}: no server of ${f.parent}. answered for DS`);
      continue;
    }
    const served = [...new Set(answered.flatMap((v) => v.ds!))];
    const disagree = answered.some((v) => !sameSet(v.ds!, answered[0]!.ds!));
    if (!want?.dnssec) {
      if (served.length > 0) {
        fails.push(`${f.zone}: DNSSEC is off in the bundle, but ${f.parent}. serves DS ${served.map(tagOf).join(', ')}: validating resolvers refuse the whole domain`);
        fix ??= 'remove the DS at the registrar, or turn DNSSEC back on (init without --no-dnssec) and apply';
      } else good.push(`${f.zone}: no DS (DNSSEC is off)`);
      continue;
    }
    const matching = served.filter((d) => want.ds.includes(d));
    const stale = served.filter((d) => !want.ds.includes(d));
    if (served.length === 0) {
      fails.push(`${f.zone}: ${f.parent}. serves no DS: resolvers see the zone as unsigned, so DANE and DNSSEC protect nothing`);
      fix ??= `give the registrar the DS in dns/${f.zone}.ds (REPORT.md, "At the registrar")`;
    } else if (matching.length === 0) {
      fails.push(`${f.zone}: ${f.parent}. serves DS ${stale.map(tagOf).join(', ')}, for no key of the bundle (its KSK is ${want.ds.map(tagOf).join(', ')}): validating resolvers refuse the whole domain`);
      fix ??= `replace the DS at the registrar with the one in dns/${f.zone}.ds`;
    } else if (stale.length > 0) {
      warns.push(`${f.zone}: besides the bundle's (${matching.map(tagOf).join(', ')}), ${f.parent}. serves DS ${stale.map(tagOf).join(', ')}, for a key the bundle does not hold`);
      fix ??= `remove the other DS at the registrar; keep only the one in dns/${f.zone}.ds`;
    } else if (disagree) {
      warns.push(`${f.zone}: the servers of ${f.parent}. do not all serve the same DS yet (the registry is publishing a change)`);
      fix ??= 'wait an hour and run doctor again';
    } else if ((want.rolling ?? []).length > 0) {
      const rolling = want.rolling!;
      if (rolling.every((d) => served.includes(d))) {
        warns.push(`${f.zone}: KSK rollover: ${f.parent}. serves the new KSK's DS (${rolling.map(tagOf).join(', ')})`);
        fix ??= 'end the rollover: selfmail keys rotate dnssec --ksk --parent-confirmed --bundle DIR, then apply (the old KSK leaves two days later; then remove its DS at the registrar)';
      } else {
        warns.push(`${f.zone}: KSK rollover: ${f.parent}. does not serve the new KSK's DS (${rolling.map(tagOf).join(', ')}) yet`);
        fix ??= `add the new DS from dns/${f.zone}.ds at the registrar (or wait for the registry to read the zone's CDS), then run doctor again`;
      }
    } else good.push(`${f.zone}: ${f.parent}. serves the DS of the bundle's KSK (${matching.map(tagOf).join(', ')})`);
  }
  const status: CheckStatus = fails.length > 0 ? 'fail' : unknown.length > 0 ? 'unknown' : warns.length > 0 ? 'warn' : 'pass';
  const summary = [...fails, ...unknown, ...warns].join('; ') || good.join('; ');
  const fixFor = status === 'unknown' ? 'check that the host reaches the internet (its resolver resolves from the root); then run doctor again' : fix;
  return { id, status, summary, ...(status === 'pass' ? {} : { fix: fixFor }), asked };
}

/** "12345 13 2 ABCD…" → "key 12345". */
function tagOf(ds: string): string {
  return `key ${ds.split(' ')[0]}`;
}

/**
 * The zone unbound answers from itself (RFC 6303: private, documentation and other reverse zones
 * it serves as empty), recognised by the SOA it puts in such an answer; undefined otherwise. Pure.
 */
export function locallyServed(r: DnsReply): string | undefined {
  const soa = r.authority.find((x) => x.type === 'SOA');
  return soa && /^localhost\.\s+nobody\.invalid\./.test(soa.data) ? soa.name : undefined;
}

/** The DS records of a bundle's `dns/<zone>.ds` file, normalized ("tag alg type DIGEST"). Pure. */
export function dsOfFile(text: string): string[] {
  return text
    .split('\n')
    .filter((l) => !l.startsWith(';') && /\sIN\s+DS\s/.test(l))
    .map((l) => normalizeDs(l.slice(l.indexOf(' DS ') + 4)));
}

/** The DS records a zone file names in CDS (RFC 7344), normalized like `dsOfFile`. Pure. */
export function cdsOfZone(text: string): string[] {
  return text
    .split('\n')
    .filter((l) => !l.startsWith(';') && /\sIN\s+CDS\s/.test(l))
    .map((l) => normalizeDs(l.slice(l.indexOf(' CDS ') + 5)));
}

/** A DS as dig prints it (digest maybe split by spaces) → "tag alg type DIGEST". Pure. */
export function normalizeDs(data: string): string {
  const [tag, alg, type, ...digest] = data.trim().split(/\s+/);
  return `${tag} ${alg} ${type} ${digest.join('').toUpperCase()}`;
}

// ---------------------------------------------------------------------------------------------
// ptr

export interface PtrFacts {
  address: string;
  /** The PTR names (lower case, no final dot); empty: none. */
  names: string[];
  /** The resolver's status for the PTR query (NOERROR, NXDOMAIN, SERVFAIL…), `LOCAL <zone>` when it answered from a zone it serves itself, or why no answer. */
  status: string;
  /** For each PTR name: the addresses it resolves to. */
  forward: Record<string, string[]>;
}

/** `ptr`: each public address has one PTR, the mail host's name, which resolves back to it (FCrDNS). */
export function judgePtr(facts: readonly PtrFacts[], hostname: string): CheckResult {
  const id = 'ptr';
  const asked = `${RESOLVER_ASKED}, which asks the reverse zones' servers (your ISP's or VPS provider's)`;
  const fails: string[] = [];
  const unknown: string[] = [];
  for (const f of facts) {
    if (f.status.startsWith('LOCAL')) {
      unknown.push(`${f.address}: this host's resolver serves its reverse zone (${f.status.slice(6)}) itself, as empty: a private or documentation range has no PTR in the public DNS`);
      continue;
    }
    if (f.status !== 'NOERROR' && f.status !== 'NXDOMAIN') {
      unknown.push(`${f.address}: the resolver could not tell (${f.status})`);
      continue;
    }
    if (f.names.length === 0) fails.push(`${f.address} has no PTR`);
    else if (!f.names.includes(hostname)) fails.push(`${f.address} has PTR ${f.names.join(', ')}, not ${hostname}`);
    else if (f.names.length > 1) fails.push(`${f.address} has several PTR (${f.names.join(', ')}); receivers expect one`);
    else if (!(f.forward[hostname] ?? []).includes(f.address)) fails.push(`${f.address}: PTR ${hostname}, but ${hostname} resolves to ${(f.forward[hostname] ?? []).join(', ') || 'nothing'}`);
  }
  if (fails.length > 0) {
    return { id, status: 'fail', summary: fails.join('; '), fix: `receivers (Gmail, Microsoft, most spam filters) refuse or junk mail from an address without a matching PTR: ask whoever owns the address (ISP or VPS provider) to set its PTR to ${hostname}`, asked };
  }
  if (facts.length === 0) return { id, status: 'unknown', summary: 'the bundle names no public address', asked };
  if (unknown.length > 0) return { id, status: 'unknown', summary: unknown.join('; '), fix: 'check that the host reaches the internet; then run doctor again', asked };
  return { id, status: 'pass', summary: `${facts.map((f) => f.address).join(', ')}: PTR ${hostname}, which resolves back`, asked };
}

// ---------------------------------------------------------------------------------------------
// port25-out, port25-in

export interface Port25OutFacts {
  /** The domain whose MX was tried, when the user asked for the check. */
  via?: string;
  mx?: string;
  address?: string;
  /** The server's greeting line when the connection opened. */
  greeting?: string;
  /** Why no MX was found (unknown) … */
  lookupError?: string;
  /** … or why the connection did not open (fail). */
  connectError?: string;
}

export const PORT25_FLAG = '--port25-via';

/** `port25-out`: a TCP connection from this host to port 25 of a real MX opens (only when asked: it tells that MX this host's address). */
export function judgePort25Out(f: Port25OutFacts): CheckResult {
  const id = 'port25-out';
  if (!f.via) {
    return { id, status: 'unknown', summary: 'not tried: it would connect to another domain\'s mail server, which learns this host\'s address', fix: `run doctor with ${PORT25_FLAG} DOMAIN (a domain you are happy to show this host to, like your own at another provider)`, asked: 'nobody (not asked for)' };
  }
  const asked = `${RESOLVER_ASKED} for the MX of ${f.via}; then that MX${f.mx ? ` (${f.mx}${f.address ? `, ${f.address}` : ''})` : ''} on port 25, which learns this host's address`;
  if (f.lookupError) return { id, status: 'unknown', summary: `no MX of ${f.via} found: ${f.lookupError}`, fix: `check the name; try ${PORT25_FLAG} with another domain`, asked };
  if (f.connectError || !f.greeting) {
    return { id, status: 'fail', summary: `port 25 of ${f.mx} (${f.address}) does not open from here: ${f.connectError ?? 'no greeting'}`, fix: 'most home ISPs block outbound port 25: ask the ISP to unblock it, or send through a VPS of your own (--ingress own-vps); never a third-party relay', asked };
  }
  return { id, status: 'pass', summary: `port 25 of ${f.mx} (${f.address}) opens: ${f.greeting.slice(0, 80)}`, asked };
}

/** `port25-in`: only a vantage point the user owns may tell; without one, doctor says so instead of asking a vendor. */
export function judgePort25In(ingress: string): CheckResult {
  return {
    id: 'port25-in',
    status: 'unknown',
    summary: ingress === 'own-vps' ? 'the check from your VPS is not built yet' : 'inbound reachability can only be seen from outside; doctor asks no vendor\'s server to look',
    fix: 'from a machine of yours outside this network: swaks --to postmaster@YOUR-DOMAIN --server MX-HOST --quit-after EHLO (or nc -v MX-HOST 25)',
    asked: 'nobody',
  };
}

// ---------------------------------------------------------------------------------------------
// blocklists

export interface BlocklistFacts {
  list: string;
  address: string;
  /** The A records answered (127.0.0.x): listed. Empty with NXDOMAIN: not listed. */
  codes: string[];
  status: string;
}

export const BLOCKLIST_FLAG = '--ask-blocklists';

/** `blocklists`: none of the named lists holds the host's addresses (only when asked: it tells each list's operator). */
export function judgeBlocklists(facts: readonly BlocklistFacts[], lists: readonly string[]): CheckResult {
  const id = 'blocklists';
  if (lists.length === 0) {
    return { id, status: 'unknown', summary: 'not asked: each blocklist\'s operator would learn that this host asks about itself', fix: `run doctor with ${BLOCKLIST_FLAG} LIST[,LIST] (like zen.spamhaus.org)`, asked: 'nobody (not asked for)' };
  }
  const asked = `${RESOLVER_ASKED}, which asks the servers of ${lists.join(', ')}: their operators learn this host's addresses`;
  const listed = facts.filter((f) => f.status === 'NOERROR' && f.codes.some((c) => /^127\.0\.0\.\d+$/.test(c)));
  const refused = facts.filter((f) => f.status === 'NOERROR' && f.codes.length > 0 && !f.codes.some((c) => /^127\.0\.0\.\d+$/.test(c)));
  const failed = facts.filter((f) => f.status !== 'NOERROR' && f.status !== 'NXDOMAIN');
  if (listed.length > 0) {
    return { id, status: 'fail', summary: listed.map((f) => `${f.address} is on ${f.list} (${f.codes.join(', ')})`).join('; '), fix: 'many receivers refuse mail from a listed address: follow the list\'s delisting page, after finding why it was listed (an open relay, a hacked account: see the mail log)', asked };
  }
  if (refused.length + failed.length > 0) {
    return { id, status: 'unknown', summary: [...refused.map((f) => `${f.list} answered ${f.codes.join(', ')} (an error code: the list refuses this resolver)`), ...failed.map((f) => `${f.list}: ${f.status}`)].join('; '), fix: 'check the list\'s name and its terms for queries', asked };
  }
  return { id, status: 'pass', summary: `${[...new Set(facts.map((f) => f.address))].join(', ')}: on none of ${lists.join(', ')}`, asked };
}

/** The name to ask a DNS blocklist for an address: reversed octets (IPv4) or nibbles (IPv6). Pure. */
export function blocklistName(address: string, list: string): string {
  if (!address.includes(':')) return `${address.split('.').reverse().join('.')}.${list}`;
  return `${expandV6(address).split('').reverse().join('.')}.${list}`;
}

/** The PTR owner of an address: in-addr.arpa (IPv4) or ip6.arpa (IPv6). Pure. */
export function reverseName(address: string): string {
  return blocklistName(address, address.includes(':') ? 'ip6.arpa' : 'in-addr.arpa');
}

/** 32 hex digits of an IPv6 address. */
export function expandV6(address: string): string {
  const [head, tail] = address.split('::');
  const h = head ? head.split(':') : [];
  const t = tail !== undefined && tail ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
  return groups.map((g) => g.padStart(4, '0')).join('').toLowerCase();
}

// ---------------------------------------------------------------------------------------------
// upnp, nat, cgnat

export interface NatPmpReply {
  /** NAT-PMP result code (0 success, 3 network failure: the router has no public address…). */
  result: number;
  /** The router's external address when it gave one (not 0.0.0.0). */
  externalAddress?: string;
  /** A PCP server answering a NAT-PMP request (version 2 reply). */
  pcp?: boolean;
}

export interface RouterFacts {
  /** The default gateway, when the host has one. */
  gateway?: string;
  /** The NAT-PMP/PCP answer of the gateway on UDP 5351; undefined: none within the wait. */
  natPmp?: NatPmpReply;
  /** SSDP answers (their SERVER or ST line) to an M-SEARCH for an Internet Gateway Device. */
  ssdp: string[];
  error?: string;
}

/** `upnp`: nothing on the LAN answers UPnP IGD discovery, and the gateway answers no NAT-PMP/PCP. Doctor only asks, never maps a port. */
export function judgeUpnp(f: RouterFacts): CheckResult {
  const id = 'upnp';
  const asked = `the router on the LAN (the gateway ${f.gateway ?? 'none'}): one SSDP M-SEARCH for an Internet Gateway Device (to the gateway and to the LAN's multicast group) and one NAT-PMP address request (UDP 5351); nothing is mapped or changed`;
  if (!f.gateway) return { id, status: 'unknown', summary: `this host has no default gateway${f.error ? ` (${f.error})` : ''}`, asked };
  const found: string[] = [];
  if (f.ssdp.length > 0) found.push(`UPnP IGD answers on the LAN (${[...new Set(f.ssdp)].join('; ')})`);
  if (f.natPmp) found.push(`the gateway answers ${f.natPmp.pcp ? 'PCP' : 'NAT-PMP'} on UDP 5351`);
  if (found.length > 0) {
    return { id, status: 'fail', summary: found.join('; '), fix: 'switch UPnP IGD and NAT-PMP/PCP off in the router\'s settings (often "UPnP" under advanced or NAT): while they are on, any program on any device of the LAN can open ports of the router to itself; forward the mail ports by hand instead', asked };
  }
  return { id, status: 'pass', summary: `no UPnP IGD answered on the LAN, and the gateway ${f.gateway} answers no NAT-PMP/PCP`, asked };
}

export interface NatFacts {
  /** The bundle's public addresses. */
  public: string[];
  /** Every address on the host's interfaces (loopback excluded). */
  local: string[];
  ingress: string;
  router: RouterFacts;
  /** With own-vps: this end of the tunnel to the VPS (the address the services bind to). */
  tunnel?: string;
}

/** With own-vps, NAT in front of the host is expected: what counts is that the tunnel to the VPS is up. */
function judgeTunnel(id: string, f: NatFacts, asked: string): CheckResult {
  if (f.tunnel && f.local.includes(f.tunnel)) {
    return { id, status: 'pass', summary: `mail comes through your VPS (${f.public.join(', ')}): this end of the tunnel, ${f.tunnel}, is up`, asked };
  }
  return { id, status: 'fail', summary: `the tunnel to your VPS is down: ${f.tunnel ?? 'its address'} is on no interface of this host`, fix: 'systemctl status wg-quick@selfmail (and on the VPS: systemctl status wg-quick@selfmail selfmail-vps-firewall)', asked };
}

/** `nat`: the bundle's public address is on this host (direct), or the host is behind a NAT whose forwarding the user set up. */
export function judgeNat(f: NatFacts): CheckResult {
  const id = 'nat';
  const asked = 'this host\'s own interfaces';
  if (f.ingress === 'own-vps') return judgeTunnel(id, f, asked);
  const missing = f.public.filter((a) => !f.local.includes(a));
  if (f.public.length === 0) return { id, status: 'unknown', summary: 'the bundle names no public address', asked };
  if (missing.length === 0) return { id, status: 'pass', summary: `${f.public.join(', ')} on this host's interfaces: no NAT in front`, asked };
  if (f.ingress === 'port-forward') {
    return { id, status: 'warn', summary: `behind NAT: ${missing.join(', ')} is the router's; it must forward the mail ports to this host (doctor cannot see from inside whether it does)`, fix: 'forward 25, 53, 80, 443, 465, 587, 993, 4190 by hand in the router (REPORT.md lists them); port25-in tells from outside', asked };
  }
  return { id, status: 'fail', summary: `${missing.join(', ')} is not on any interface of this host, yet the bundle says direct ingress (${f.local.join(', ') || 'no address'} here)`, fix: 'if a router forwards to this host, init again with --ingress port-forward --listen-ipv4 LAN-ADDRESS; otherwise correct --ipv4/--ipv6', asked };
}

/** `cgnat`: behind NAT, the router says its own outside address is a carrier-grade NAT one (or it has none): mail cannot come in. */
export function judgeCgnat(f: NatFacts): CheckResult {
  const id = 'cgnat';
  const asked = `this host's own interfaces, and the router (NAT-PMP at ${f.router.gateway ?? 'no gateway'})`;
  const cgnatLocal = f.local.filter((a) => !a.includes(':') && classifyV4(a).kind === 'cgnat');
  const behind = f.public.some((a) => !f.local.includes(a));
  if (f.ingress === 'own-vps') return judgeTunnel(id, f, asked);
  const fix = 'inbound mail cannot reach a host behind carrier-grade NAT: ask the ISP for a public address, or use a VPS of your own that only forwards packets (--ingress own-vps); never a third-party tunnel';
  if (cgnatLocal.length > 0) return { id, status: 'fail', summary: `this host's address ${cgnatLocal.join(', ')} is in 100.64.0.0/10, the carrier-grade NAT range`, fix, asked };
  if (!behind) return { id, status: 'pass', summary: 'the public address is on this host: no NAT, carrier-grade or other', asked };
  const ext = f.router.natPmp?.externalAddress;
  if (ext && classifyV4(ext).kind === 'cgnat') return { id, status: 'fail', summary: `the router's outside address is ${ext}, in 100.64.0.0/10: carrier-grade NAT`, fix, asked };
  if (f.router.natPmp && f.router.natPmp.result === 3) return { id, status: 'fail', summary: 'the router says (NAT-PMP result 3) it has no public address of its own: another NAT, likely carrier-grade, sits in front of it', fix, asked };
  if (ext) {
    const match = f.public.includes(ext);
    return { id, status: match ? 'pass' : 'warn', summary: match ? `the router's outside address is ${ext}, the bundle's` : `the router's outside address is ${ext}, not the bundle's ${f.public.join(', ')}`, ...(match ? {} : { fix: 'correct --ipv4 with selfmail init, or find which NAT sits in front of the router' }), asked };
  }
  return { id, status: 'unknown', summary: 'behind NAT, and the router does not say its outside address (no NAT-PMP, which is as it should be)', fix: 'compare the WAN address in the router\'s status page with the bundle\'s: 100.64.x.x there means carrier-grade NAT', asked };
}
