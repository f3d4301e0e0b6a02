/**
 * DNSSEC keys, algorithm 13 (ECDSAP256SHA256, RFC 6605): DNSKEY RDATA, the RFC 4034 appendix B key
 * tag, DS digest type 2 (RFC 4509), and the BIND key-file format that ldns, BIND and Knot read.
 * Everything here is pure; key generation is in gen.ts.
 */
import { createECDH, createHash, createPublicKey } from 'node:crypto';
import type { DomainName } from '../config/types.js';

export const DNSSEC_ALGORITHM = 13;
export const FLAGS = { ksk: 257, zsk: 256 } as const;

/** A P-256 key as the DNS sees it: the 32-byte private scalar and the 64-byte public point x‖y. */
export interface EcKeyMaterial {
  scalar: Buffer;
  publicXY: Buffer;
}

/** Derive the public point from the private scalar (so a stored `.private` is all we need). */
export function p256FromScalar(scalar: Buffer): EcKeyMaterial {
  if (scalar.length !== 32) throw new Error(`a P-256 private key is 32 bytes, not ${scalar.length}`);
  const ecdh = createECDH('prime256v1');
  ecdh.setPrivateKey(scalar);
  const point = ecdh.getPublicKey(); // 0x04 ‖ x ‖ y
  return { scalar, publicXY: point.subarray(1) };
}

/** DNSKEY RDATA in wire form: flags, protocol 3, algorithm 13, public key (RFC 6605 §4: x‖y). */
export function dnskeyRdata(flags: number, publicXY: Buffer): Buffer {
  const head = Buffer.alloc(4);
  head.writeUInt16BE(flags, 0);
  head.writeUInt8(3, 2);
  head.writeUInt8(DNSSEC_ALGORITHM, 3);
  return Buffer.concat([head, publicXY]);
}

/** RFC 4034 appendix B key tag (the algorithm-1 special case does not apply to algorithm 13). */
export function keyTag(rdata: Buffer): number {
  let ac = 0;
  for (let i = 0; i < rdata.length; i++) ac += i & 1 ? rdata[i]! : rdata[i]! << 8;
  ac += (ac >> 16) & 0xffff;
  return ac & 0xffff;
}

/** Owner name in canonical (lower-case) wire form, RFC 4034 §6.2. */
export function nameToWire(name: string): Buffer {
  const parts: Buffer[] = [];
  for (const label of name.toLowerCase().replace(/\.$/, '').split('.')) {
    if (label.length === 0) continue;
    const l = Buffer.from(label, 'ascii');
    parts.push(Buffer.from([l.length]), l);
  }
  parts.push(Buffer.from([0]));
  return Buffer.concat(parts);
}

/** DS RDATA presentation (digest type 2): `<tag> 13 2 <HEX>`, RFC 4509. */
export function dsRecord(zone: string, rdata: Buffer): string {
  const digest = createHash('sha256').update(nameToWire(zone)).update(rdata).digest('hex').toUpperCase();
  return `${keyTag(rdata)} ${DNSSEC_ALGORITHM} 2 ${digest}`;
}

/** SPKI DER of the key, for fingerprints and PEM conversion. */
export function p256Spki(publicXY: Buffer): Buffer {
  const key = createPublicKey({
    key: { kty: 'EC', crv: 'P-256', x: b64url(publicXY.subarray(0, 32)), y: b64url(publicXY.subarray(32)) },
    format: 'jwk',
  });
  return key.export({ type: 'spki', format: 'der' });
}

function b64url(b: Buffer): string {
  return b.toString('base64url');
}

/** `K<zone>.+013+<tag>` with the tag zero-padded to five digits, as BIND and ldns name key files. */
export function keyFileBase(zone: string, tag: number): string {
  return `K${zone}.+013+${String(tag).padStart(5, '0')}`;
}

/** BIND timestamp `YYYYMMDDHHMMSS` (UTC). */
function bindTime(d: Date): string {
  return d.toISOString().replace(/[-:T]/g, '').slice(0, 14);
}

const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** ctime(3)-style date in UTC, as BIND writes it in key-file comments. */
function ctime(d: Date): string {
  const pad = (n: number): string => String(n).padStart(2, '0');
  return `${DAYS[d.getUTCDay()]} ${MONTHS[d.getUTCMonth()]} ${String(d.getUTCDate()).padStart(2, ' ')} ${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())} ${d.getUTCFullYear()}`;
}

/** The public `.key` file: BIND's comment header, then the DNSKEY record. */
export function keyFileText(zone: DomainName, role: 'ksk' | 'zsk', key: EcKeyMaterial, created: Date): string {
  const rdata = dnskeyRdata(FLAGS[role], key.publicXY);
  const t = `${bindTime(created)} (${ctime(created)})`;
  const kind = role === 'ksk' ? 'key-signing' : 'zone-signing';
  return (
    `; This is a ${kind} key, keyid ${keyTag(rdata)}, for ${zone}.\n` +
    `; Created: ${t}\n; Publish: ${t}\n; Activate: ${t}\n` +
    `${zone}. IN DNSKEY ${FLAGS[role]} 3 13 ${key.publicXY.toString('base64')}\n`
  );
}

/** The `.private` file, format v1.3 with the timing metadata BIND uses to decide what signs. */
export function privateFileText(key: EcKeyMaterial, created: Date): string {
  const t = bindTime(created);
  return (
    'Private-key-format: v1.3\n' +
    'Algorithm: 13 (ECDSAP256SHA256)\n' +
    `PrivateKey: ${key.scalar.toString('base64')}\n` +
    `Created: ${t}\nPublish: ${t}\nActivate: ${t}\n`
  );
}

/**
 * Read the private scalar back from a `.private` file we wrote. Anything else (another algorithm,
 * a wrong length) is an error: keys are only ever ours.
 */
export function parsePrivateFile(text: string): Buffer {
  const alg = /^Algorithm:\s*(\d+)/m.exec(text);
  const pk = /^PrivateKey:\s*([A-Za-z0-9+/=]+)\s*$/m.exec(text);
  if (!alg || alg[1] !== '13' || !pk) throw new Error('not an algorithm 13 private key file');
  const scalar = Buffer.from(pk[1]!, 'base64');
  if (scalar.length !== 32) throw new Error('the private key is not 32 bytes');
  return scalar;
}
