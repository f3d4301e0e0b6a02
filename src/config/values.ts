/**
 * Parsers for single values. Each takes what a person typed and returns either the canonical,
 * branded value or a sentence saying which rule it broke. The schema, the flag parser and the
 * wizard's in-place validation all use these, so a rule exists once.
 */
import { isIPv6 } from 'node:net';
import ipaddr from 'ipaddr.js';
import { domainToASCII } from 'node:url';
import type { Cidr, DomainName, Email, IPv4, IPv6 } from './types.js';

export type Parsed<T> = { ok: true; value: T; warning?: string } | { ok: false; error: string };

const ok = <T>(value: T, warning?: string): Parsed<T> => (warning ? { ok: true, value, warning } : { ok: true, value });
const fail = <T>(error: string): Parsed<T> => ({ ok: false, error });

/** Names the first character that can never appear in the value, in words a person understands. */
function hostileCharacter(s: string): string | undefined {
  for (const ch of s) {
    if (ch === '\n' || ch === '\r') return 'contains a line break';
    if (ch === '\0') return 'contains a NUL byte';
    if (ch === ' ' || ch === '\t') return 'contains a space';
    const code = ch.codePointAt(0) ?? 0;
    if (code < 0x20 || code === 0x7f) return `contains a control character (U+${code.toString(16).padStart(4, '0')})`;
    if (`"'\`{}[]();,\\|<>$&*!?=%#^~/:@`.includes(ch)) return `contains the character ${JSON.stringify(ch)}`;
  }
  return undefined;
}

/**
 * A DNS host or domain name: IDN converted to A-labels, case folded, one trailing dot removed,
 * at least two labels, LDH labels of 1–63 bytes, at most 253 bytes in all.
 */
export function parseDomainName(input: string): Parsed<DomainName> {
  if (input.length === 0) return fail('is empty');
  if (input.length > 1024) return fail('is far too long for a domain name (at most 253 characters)');
  const bad = hostileCharacter(input);
  if (bad) return fail(`${bad}; a domain name has only letters, digits, hyphens and dots`);
  let name = input.endsWith('.') ? input.slice(0, -1) : input;
  if (/[^\x20-\x7e]/.test(name)) {
    const ascii = domainToASCII(name);
    if (!ascii) return fail('is not a valid internationalised domain name');
    name = ascii;
  }
  name = name.toLowerCase();
  if (name.length > 253) return fail(`is ${name.length} characters long; a domain name has at most 253`);
  const labels = name.split('.');
  if (labels.length < 2) return fail('needs at least two labels (like example.org)');
  for (const label of labels) {
    if (label.length === 0) return fail('has an empty label (two dots in a row, or a leading dot)');
    if (label.length > 63) return fail(`has a label of ${label.length} characters; a label has at most 63`);
    if (!/^[a-z0-9-]+$/.test(label)) return fail(`has a label "${label}" with characters other than letters, digits and hyphens`);
    if (label.startsWith('-') || label.endsWith('-')) return fail(`has a label "${label}" that starts or ends with a hyphen`);
  }
  if (/^[0-9]+$/.test(labels[labels.length - 1]!)) return fail('ends in a numeric label; that is an address, not a name');
  return ok(name as DomainName);
}

interface Range {
  cidr: string;
  kind: 'reject' | 'documentation' | 'cgnat';
  why: string;
}

const V4_RANGES: Range[] = [
  { cidr: '0.0.0.0/8', kind: 'reject', why: 'is in 0.0.0.0/8 ("this network"), not a host address' },
  { cidr: '10.0.0.0/8', kind: 'reject', why: 'is a private address (10.0.0.0/8)' },
  { cidr: '100.64.0.0/10', kind: 'cgnat', why: 'is a carrier-grade NAT address (100.64.0.0/10)' },
  { cidr: '127.0.0.0/8', kind: 'reject', why: 'is a loopback address (127.0.0.0/8)' },
  { cidr: '169.254.0.0/16', kind: 'reject', why: 'is a link-local address (169.254.0.0/16)' },
  { cidr: '172.16.0.0/12', kind: 'reject', why: 'is a private address (172.16.0.0/12)' },
  { cidr: '192.0.0.0/24', kind: 'reject', why: 'is reserved for IETF protocol assignments (192.0.0.0/24)' },
  { cidr: '192.0.2.0/24', kind: 'documentation', why: 'is a documentation address (192.0.2.0/24, TEST-NET-1)' },
  { cidr: '192.88.99.0/24', kind: 'reject', why: 'is the deprecated 6to4 relay range (192.88.99.0/24)' },
  { cidr: '192.168.0.0/16', kind: 'reject', why: 'is a private address (192.168.0.0/16)' },
  { cidr: '198.18.0.0/15', kind: 'reject', why: 'is reserved for benchmarking (198.18.0.0/15)' },
  { cidr: '198.51.100.0/24', kind: 'documentation', why: 'is a documentation address (198.51.100.0/24, TEST-NET-2)' },
  { cidr: '203.0.113.0/24', kind: 'documentation', why: 'is a documentation address (203.0.113.0/24, TEST-NET-3)' },
  { cidr: '224.0.0.0/4', kind: 'reject', why: 'is a multicast address (224.0.0.0/4)' },
  { cidr: '240.0.0.0/4', kind: 'reject', why: 'is reserved (240.0.0.0/4)' },
];

const V6_RANGES: Range[] = [
  { cidr: '::/128', kind: 'reject', why: 'is the unspecified address (::)' },
  { cidr: '::1/128', kind: 'reject', why: 'is the loopback address (::1)' },
  { cidr: '::ffff:0:0/96', kind: 'reject', why: 'is an IPv4-mapped address (::ffff:0:0/96); give the IPv4 address with --ipv4' },
  { cidr: '64:ff9b::/96', kind: 'reject', why: 'is a NAT64 address (64:ff9b::/96)' },
  { cidr: '64:ff9b:1::/48', kind: 'reject', why: 'is a local-use NAT64 address (64:ff9b:1::/48)' },
  { cidr: '100::/64', kind: 'reject', why: 'is in the discard-only range (100::/64)' },
  { cidr: '2001:db8::/32', kind: 'documentation', why: 'is a documentation address (2001:db8::/32)' },
  { cidr: '3fff::/20', kind: 'documentation', why: 'is a documentation address (3fff::/20)' },
  { cidr: '2001::/23', kind: 'reject', why: 'is reserved for IETF protocol assignments (2001::/23, Teredo among them)' },
  { cidr: '2002::/16', kind: 'reject', why: 'is a 6to4 address (2002::/16)' },
  { cidr: 'fc00::/7', kind: 'reject', why: 'is a unique local address (fc00::/7), private to a site' },
  { cidr: 'fe80::/10', kind: 'reject', why: 'is a link-local address (fe80::/10)' },
  { cidr: 'ff00::/8', kind: 'reject', why: 'is a multicast address (ff00::/8)' },
];

export const V4_RE = /^(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])(\.(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])){3}$/;

// Range tests, canonical IPv6 text (RFC 5952) and network addresses come from ipaddr.js, the
// address library the rest of selfmail uses; this file keeps only the rules and their words.
function inV4(addr: string, cidr: string): boolean {
  return ipaddr.IPv4.parse(addr).match(ipaddr.IPv4.parseCIDR(cidr));
}

function inV6(addr: string, cidr: string): boolean {
  return ipaddr.IPv6.parse(addr).match(ipaddr.IPv6.parseCIDR(cidr));
}

/** The RFC 5952 text of a strictly written IPv6 address, or undefined. */
function strictV6(input: string): string | undefined {
  if (!/^[0-9a-fA-F:.]+$/.test(input)) return undefined;
  // node:net's isIPv6 is strict about group counts and "::" use; it accepts no zone index here.
  if (!isIPv6(input)) return undefined;
  return ipaddr.IPv6.parse(input).toRFC5952String();
}

export type AddressClass = { kind: 'public' } | { kind: 'documentation' | 'cgnat' | 'reject'; why: string };

/** Where an address falls among the special-purpose ranges (IANA registries). */
export function classifyV4(addr: string): AddressClass {
  for (const r of V4_RANGES) if (inV4(addr, r.cidr)) return { kind: r.kind, why: r.why };
  return { kind: 'public' };
}

export function classifyV6(addr: string): AddressClass {
  for (const r of V6_RANGES) if (inV6(addr, r.cidr)) return { kind: r.kind, why: r.why };
  if (!inV6(addr, '2000::/3')) return { kind: 'reject', why: 'is outside global unicast space (2000::/3)' };
  return { kind: 'public' };
}

/** Outcome for a public address: documentation ranges pass with a warning; CGNAT is reported apart (a refusal). */
export type PublicParsed<T> = Parsed<T> | { ok: false; cgnat: true; error: string };

const DOC_WARNING = 'is a documentation address: fine for examples and tests, but no mail will ever reach it';

/** A public IPv4 address of the mail host. */
export function parsePublicIPv4(input: string): PublicParsed<IPv4> {
  if (!V4_RE.test(input)) return fail(`is not an IPv4 address in dotted-quad form (like 192.0.2.10)${hostileHint(input)}`);
  const c = classifyV4(input);
  if (c.kind === 'public') return ok(input as IPv4);
  if (c.kind === 'documentation') return ok(input as IPv4, `${input} ${DOC_WARNING}`);
  if (c.kind === 'cgnat') return { ok: false, cgnat: true, error: c.why };
  return fail(`${c.why}; mail from the internet cannot reach it. Give the host's public address`);
}

/** A public IPv6 address of the mail host. */
export function parsePublicIPv6(input: string): PublicParsed<IPv6> {
  const canonical = strictV6(input);
  if (canonical === undefined) return fail(`is not an IPv6 address (like 2001:db8::25)${hostileHint(input)}`);
  const text = canonical as IPv6;
  const c = classifyV6(text);
  if (c.kind === 'public') return ok(text);
  if (c.kind === 'documentation') return ok(text, `${text} ${DOC_WARNING}`);
  return fail(`${c.why}; mail from the internet cannot reach it. Give the host's public address`);
}

/** The LAN IPv4 address that services bind to behind a port forward: a private (RFC 1918) address. */
export function parseLanIPv4(input: string): Parsed<IPv4> {
  if (!V4_RE.test(input)) return fail(`is not an IPv4 address in dotted-quad form (like 192.168.1.20)${hostileHint(input)}`);
  const isPrivate = ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16'].some((r) => inV4(input, r));
  if (!isPrivate) return fail('must be the host\'s private LAN address (10.0.0.0/8, 172.16.0.0/12 or 192.168.0.0/16)');
  return ok(input as IPv4);
}

/** The address IPv6 services bind to behind a router: global or unique local unicast. */
export function parseLanIPv6(input: string): Parsed<IPv6> {
  const canonical = strictV6(input);
  if (canonical === undefined) return fail(`is not an IPv6 address${hostileHint(input)}`);
  const text = canonical as IPv6;
  if (inV6(text, 'fc00::/7')) return ok(text);
  const c = classifyV6(text);
  if (c.kind === 'public' || c.kind === 'documentation') return ok(text);
  return fail(`${c.kind === 'reject' || c.kind === 'cgnat' ? c.why : 'is not usable'}; give the host's own unicast address`);
}

/** Any unicast host address (v4 or v6) used for a name server: must be publicly reachable. */
export function parsePublicAddress(input: string): PublicParsed<IPv4 | IPv6> {
  return input.includes(':') ? parsePublicIPv6(input) : parsePublicIPv4(input);
}

function hostileHint(input: string): string {
  const bad = hostileCharacter(input.replace(/[:.]/g, ''));
  return bad ? ` (it ${bad})` : '';
}

/**
 * A network in CIDR form. A bare address means just that host. Host bits are cleared, with a
 * warning, because a firewall rule matches the network.
 */
export function parseCidr(input: string): Parsed<Cidr> {
  const bad = hostileCharacter(input.replace(/[:./]/g, ''));
  if (bad) return fail(`${bad}; a network is written like 203.0.113.0/24 or 2001:db8::/48`);
  const slash = input.indexOf('/');
  const addr = slash < 0 ? input : input.slice(0, slash);
  const lenText = slash < 0 ? undefined : input.slice(slash + 1);
  if (lenText !== undefined && !/^(0|[1-9][0-9]{0,2})$/.test(lenText)) return fail(`has a prefix length "${lenText}" that is not a number`);
  if (V4_RE.test(addr)) {
    const len = lenText === undefined ? 32 : Number(lenText);
    if (len > 32) return fail(`has a prefix length of ${len}; IPv4 allows at most 32`);
    const netText = ipaddr.IPv4.networkAddressFromCIDR(`${addr}/${len}`).toString();
    const value = `${netText}/${len}` as Cidr;
    const warnings: string[] = [];
    if (netText !== addr) warnings.push(`${input} has host bits set; using the network ${value}`);
    if (len === 0) warnings.push(`${value} lets every IPv4 address on the internet reach SSH`);
    return ok(value, warnings.join('; ') || undefined);
  }
  const canonical = strictV6(addr);
  if (canonical === undefined) return fail(`is not an address or network in CIDR form (like 203.0.113.0/24 or 2001:db8::/48)${hostileHint(input)}`);
  const len = lenText === undefined ? 128 : Number(lenText);
  if (len > 128) return fail(`has a prefix length of ${len}; IPv6 allows at most 128`);
  const net = ipaddr.IPv6.networkAddressFromCIDR(`${canonical}/${len}`).toRFC5952String();
  const value = `${net}/${len}` as Cidr;
  const warnings: string[] = [];
  if (net !== canonical) warnings.push(`${input} has host bits set; using the network ${value}`);
  if (len === 0) warnings.push(`${value} lets every IPv6 address on the internet reach SSH`);
  return ok(value, warnings.join('; ') || undefined);
}

/**
 * An e-mail address: ASCII local part of letters, digits, `.`, `_`, `-` (and `+` when `allowPlus`),
 * no leading, trailing or doubled dot, at most 64 bytes; a valid domain; at most 254 in all.
 * Case is folded: mailboxes here are case-insensitive.
 */
export function parseEmail(input: string, opts: { allowPlus?: boolean } = {}): Parsed<Email> {
  if (input.length === 0) return fail('is empty');
  if (input.length > 1024) return fail('is far too long for an e-mail address (at most 254 characters)');
  const at = input.lastIndexOf('@');
  if (at < 0) return fail('is not an e-mail address (like alice@example.org)');
  const local = input.slice(0, at).toLowerCase();
  if (local.length === 0) return fail('has an empty local part (before the @)');
  if (/[^\x21-\x7e]/.test(local)) {
    const bad = hostileCharacter(local);
    return fail(`has a local part (before the @) that ${bad ?? 'contains a non-ASCII character'}; use ASCII letters, digits, ".", "_" and "-"`);
  }
  if (local.length > 64) return fail(`has a local part of ${local.length} characters; at most 64`);
  const allowed = opts.allowPlus ? /^[a-z0-9._+-]+$/ : /^[a-z0-9._-]+$/;
  if (!allowed.test(local)) {
    const plus = !opts.allowPlus && local.includes('+') ? ' ("+" separates address tags here, so a mailbox name cannot have one)' : '';
    return fail(`has a local part with characters other than letters, digits, ".", "_" and "-"${plus}`);
  }
  if (local.startsWith('.') || local.endsWith('.') || local.includes('..')) return fail('has a local part that starts or ends with a dot, or has two dots in a row');
  const domain = parseDomainName(input.slice(at + 1));
  if (!domain.ok) return fail(`has a domain part that ${domain.error}`);
  const value = `${local}@${domain.value}`;
  if (value.length > 254) return fail(`is ${value.length} characters long; an address has at most 254`);
  return ok(value as Email);
}
