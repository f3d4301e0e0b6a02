/**
 * The zone writer (RFC 1035 §5 presentation format) and the SOA serial rule. Pure: the same
 * records give the same bytes.
 */
import { soaSerial } from '../verify/dns.js';
import type { DomainName } from '../config/types.js';
import { DEFAULT_TTL, type RrGroup } from './records.js';

/** The owner name relative to `$ORIGIN`: `@` for the apex, the leading labels otherwise. */
export function relativeName(name: string, zone: string): string {
  if (name === zone) return '@';
  if (!name.endsWith(`.${zone}`)) throw new Error(`${name} is outside the zone ${zone}`);
  return name.slice(0, -(zone.length + 1));
}

/**
 * The zone file text: a header, `$ORIGIN` and `$TTL`, then each group under its comment. Owner
 * names are relative to the origin (easier to read); names inside RDATA are absolute.
 */
export function writeZone(zone: DomainName, groups: readonly RrGroup[]): string {
  const lines: string[] = [
    `; Zone ${zone}, written by selfmail. This unsigned file is the source of truth: edit the`,
    '; selfmail configuration and re-run rather than this file, and sign it again after any change.',
    `$ORIGIN ${zone}.`,
    `$TTL ${DEFAULT_TTL}`,
  ];
  // OPENPGPKEY owners (a 56-digit hash) would push every other record far to the right: they
  // stay out of the column.
  const width = Math.max(
    1,
    ...groups.flatMap((g) => g.records.filter((r) => r.type !== 'OPENPGPKEY').map((r) => relativeName(r.name, zone).length)),
  );
  for (const g of groups) {
    lines.push('');
    for (const c of g.comment) lines.push(`; ${c}`);
    for (const r of g.records) {
      lines.push(`${relativeName(r.name, zone).padEnd(width)} IN ${r.type.padEnd(5)} ${r.rdata}`);
    }
  }
  return `${lines.join('\n')}\n`;
}

const SOA_LINE = /^(@\s+IN\s+SOA\s+\S+\s+\S+\s+)(\d+)(\s)/m;

/** The SOA serial of a zone file (the one reader, verify/dns.ts's `soaSerial`). */
export function serialOf(text: string): number | undefined {
  return soaSerial(text);
}

/** The zone text with its serial replaced, to compare two zones' contents apart from the serial. */
export function withSerial(text: string, serial: number): string {
  return text.replace(SOA_LINE, (_m, a: string, _s: string, b: string) => `${a}${serial}${b}`);
}

/** `YYYYMMDD00` of a date in UTC. */
export function dayBase(now: Date): number {
  const y = now.getUTCFullYear();
  const m = now.getUTCMonth() + 1;
  const d = now.getUTCDate();
  return (y * 10000 + m * 100 + d) * 100;
}

/**
 * The next serial after `old` (`YYYYMMDDnn`, RFC 1912 §2.2): today's first serial, or one more than
 * the old one when that is already today or later, so secondaries always see it grow.
 */
export function nextSerial(old: number | undefined, now: Date): number {
  const today = dayBase(now) + 1;
  return old === undefined ? today : Math.max(today, old + 1);
}
