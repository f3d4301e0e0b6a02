/**
 * Just enough of RFC 1035 presentation format and RFC 4034 to check a served zone: records,
 * RRSIG expiration times, DNSKEY key tags and DS digests. Pure functions; no I/O.
 */
import { createHash } from 'node:crypto';

export interface ZoneRecord {
  /** Absolute owner name, lower case, with the trailing dot. */
  owner: string;
  /** Upper case: `RRSIG`, `DNSKEY`, … */
  type: string;
  rdata: string[];
  /** Seconds: the record's own TTL, else the last `$TTL`; undefined when neither is given. */
  ttl?: number;
}

const UNIT: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400, w: 604800 };

/** A TTL token (`3600`, `1h30m`) in seconds. */
function ttlSeconds(tok: string): number {
  if (/^\d+$/.test(tok)) return Number(tok);
  let total = 0;
  for (const m of tok.matchAll(/(\d+)([smhdwSMHDW])/g)) total += Number(m[1]) * (UNIT[(m[2] as string).toLowerCase()] ?? 1);
  return total;
}

const CLASSES = new Set(['IN', 'CH', 'HS', 'CS']);
const TTL = /^\d+[smhdwSMHDW]?(\d+[smhdwSMHDW])*$/;

/** Logical lines of a zone file: comments removed, parenthesised continuations joined. */
function logicalLines(text: string): { tokens: string[]; indented: boolean }[] {
  const lines: { tokens: string[]; indented: boolean }[] = [];
  let tokens: string[] = [];
  let tok = '';
  let inQuote = false;
  let depth = 0;
  let indented = false;
  let atLineStart = true;
  const flushTok = () => {
    if (tok !== '') tokens.push(tok);
    tok = '';
  };
  for (let i = 0; i < text.length; i++) {
    const c = text[i] as string;
    if (atLineStart) {
      indented = c === ' ' || c === '\t';
      atLineStart = false;
    }
    if (inQuote) {
      tok += c;
      if (c === '\\' && i + 1 < text.length) tok += text[++i];
      else if (c === '"') inQuote = false;
      continue;
    }
    if (c === '"') {
      inQuote = true;
      tok += c;
    } else if (c === ';') {
      while (i + 1 < text.length && text[i + 1] !== '\n') i++;
    } else if (c === '(') {
      flushTok();
      depth++;
    } else if (c === ')') {
      flushTok();
      depth = Math.max(0, depth - 1);
    } else if (c === '\n') {
      flushTok();
      if (depth === 0) {
        if (tokens.length > 0) lines.push({ tokens, indented });
        tokens = [];
        atLineStart = true;
      }
    } else if (c === ' ' || c === '\t' || c === '\r') {
      flushTok();
    } else {
      tok += c;
    }
  }
  flushTok();
  if (tokens.length > 0) lines.push({ tokens, indented });
  return lines;
}

function absolute(name: string, origin: string): string {
  if (name === '@') return origin;
  const n = name.toLowerCase();
  if (n.endsWith('.')) return n;
  return origin === '.' ? `${n}.` : `${n}.${origin}`;
}

/** The SOA serial among parsed records, or undefined. */
export function soaSerialOfRecords(records: readonly ZoneRecord[]): number | undefined {
  const soa = records.find((r) => r.type === 'SOA');
  const n = Number(soa?.rdata[2]);
  return soa && Number.isInteger(n) ? n : undefined;
}

/**
 * The SOA serial of a zone file, whoever wrote it (selfmail's writer, ldns-signzone, the host's
 * re-signing): the one serial reader.
 */
export function soaSerial(text: string | undefined, origin = '.'): number | undefined {
  return text === undefined ? undefined : soaSerialOfRecords(parseZone(text, origin));
}

/** Parse a zone file's records. `origin` is the zone's name (used until a `$ORIGIN` line). */
export function parseZone(text: string, origin: string): ZoneRecord[] {
  let org = absolute(origin, '.');
  let last = org;
  let defaultTtl: number | undefined;
  const out: ZoneRecord[] = [];
  for (const { tokens, indented } of logicalLines(text)) {
    const first = tokens[0] ?? '';
    if (first.startsWith('$')) {
      if (first.toUpperCase() === '$ORIGIN' && tokens[1]) org = absolute(tokens[1], org);
      if (first.toUpperCase() === '$TTL' && tokens[1] && TTL.test(tokens[1])) defaultTtl = ttlSeconds(tokens[1]);
      continue;
    }
    let rest = tokens;
    if (!indented) {
      last = absolute(first, org);
      rest = tokens.slice(1);
    }
    let i = 0;
    let ttl = defaultTtl;
    while (i < rest.length && (TTL.test(rest[i] ?? '') || CLASSES.has((rest[i] ?? '').toUpperCase()))) {
      if (TTL.test(rest[i] ?? '')) ttl = ttlSeconds(rest[i] ?? '');
      i++;
    }
    const type = rest[i];
    if (!type) continue;
    const rec: ZoneRecord = { owner: last, type: type.toUpperCase(), rdata: rest.slice(i + 1) };
    if (ttl !== undefined) rec.ttl = ttl;
    out.push(rec);
  }
  return out;
}

/** An RRSIG time field (YYYYMMDDHHmmSS, UTC, or seconds since the epoch). */
export function parseDnsTime(s: string): Date | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})$/.exec(s);
  if (m) {
    const [, y, mo, d, h, mi, se] = m.map(Number) as number[];
    return new Date(Date.UTC(y as number, (mo as number) - 1, d, h, mi, se));
  }
  if (/^\d{1,10}$/.test(s)) return new Date(Number(s) * 1000);
  return undefined;
}

/** The earliest RRSIG expiration in a zone's records, or undefined when it has none. */
export function earliestRrsigExpiry(records: readonly ZoneRecord[]): Date | undefined {
  let min: Date | undefined;
  for (const r of records) {
    if (r.type !== 'RRSIG') continue;
    const t = parseDnsTime(r.rdata[4] ?? '');
    if (t && (!min || t < min)) min = t;
  }
  return min;
}

/** A name in DNS wire format, lower-cased (the canonical form RFC 4034 §6.2 hashes). */
export function nameToWire(name: string): Buffer {
  const labels = name.toLowerCase().replace(/\.$/, '').split('.').filter((l) => l !== '');
  const parts: Buffer[] = [];
  for (const l of labels) {
    const b = Buffer.from(l, 'ascii');
    parts.push(Buffer.from([b.length]), b);
  }
  parts.push(Buffer.from([0]));
  return Buffer.concat(parts);
}

export interface Dnskey {
  flags: number;
  protocol: number;
  algorithm: number;
  /** The RDATA in wire form. */
  wire: Buffer;
  tag: number;
}

/** RFC 4034 appendix B key tag of a DNSKEY RDATA (any algorithm but the retired RSA/MD5). */
export function keyTag(rdata: Buffer): number {
  let ac = 0;
  for (let i = 0; i < rdata.length; i++) ac += i & 1 ? (rdata[i] as number) : (rdata[i] as number) << 8;
  ac += (ac >> 16) & 0xffff;
  return ac & 0xffff;
}

/** A DNSKEY from its presentation RDATA (`257 3 13 <base64…>`), or undefined when malformed. */
export function parseDnskey(rdata: readonly string[]): Dnskey | undefined {
  const [f, p, a, ...key] = rdata;
  const flags = Number(f);
  const protocol = Number(p);
  const algorithm = Number(a);
  if (![flags, protocol, algorithm].every(Number.isInteger) || key.length === 0) return undefined;
  const pub = Buffer.from(key.join(''), 'base64');
  const wire = Buffer.concat([Buffer.from([flags >> 8, flags & 0xff, protocol, algorithm]), pub]);
  return { flags, protocol, algorithm, wire, tag: keyTag(wire) };
}

export interface Ds {
  owner: string;
  keyTag: number;
  algorithm: number;
  digestType: number;
  /** Upper-case hex. */
  digest: string;
}

export function parseDs(rec: ZoneRecord): Ds | undefined {
  const [t, a, d, ...hex] = rec.rdata;
  const ds = { owner: rec.owner, keyTag: Number(t), algorithm: Number(a), digestType: Number(d), digest: hex.join('').toUpperCase() };
  if (![ds.keyTag, ds.algorithm, ds.digestType].every(Number.isInteger) || !/^[0-9A-F]+$/.test(ds.digest)) return undefined;
  return ds;
}

const DIGEST_ALG: Record<number, string> = { 1: 'sha1', 2: 'sha256', 4: 'sha384' };

/** The DS digest of a DNSKEY (RFC 4034 §5.1.4, RFC 4509): hash(owner wire name ‖ DNSKEY RDATA). */
export function dsDigest(owner: string, key: Dnskey, digestType: number): string | undefined {
  const alg = DIGEST_ALG[digestType];
  if (!alg) return undefined;
  return createHash(alg).update(nameToWire(owner)).update(key.wire).digest('hex').toUpperCase();
}

/** TLSA `3 1 1` data (SHA-256 of a SubjectPublicKeyInfo) published in a zone, lower-case hex, with owners. */
export function tlsaPins(records: readonly ZoneRecord[]): { owner: string; sha256: string }[] {
  return records
    .filter((r) => r.type === 'TLSA' && r.rdata[0] === '3' && r.rdata[1] === '1' && r.rdata[2] === '1')
    .map((r) => ({ owner: r.owner, sha256: r.rdata.slice(3).join('').toLowerCase() }));
}
