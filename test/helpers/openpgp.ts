/**
 * OpenPGP test material: a real public key made by GnuPG (Ed25519, `Alice <alice@example.org>`,
 * no subkey: `gpg --quick-gen-key … ed25519 default never`, then `gpg --export --armor`), and
 * packets put together by hand for the rules a real key never breaks. The parser checks framing
 * and structure, not cryptography, so hand-made bodies serve.
 */
import { crc24 } from '../../src/openpgp/armor.js';

/** `gpg --export --armor alice@example.org`, as GnuPG 2.2 wrote it (old-format packet headers). */
export const ALICE_ARMORED = `-----BEGIN PGP PUBLIC KEY BLOCK-----

mDMEaxbSOBYJKwYBBAHaRw8BAQdAI04p7giMPKAg1ACGwx+bLdGs1WQIJTX0cdvg
t18NMkC0GUFsaWNlIDxhbGljZUBleGFtcGxlLm9yZz6IkAQTFggAOBYhBA+7Kc1K
ZwJmnxnFUDbV8ycMeYpmBQJrFtI4AhsDBQsJCAcCBhUKCQgLAgQWAgMBAh4BAheA
AAoJEDbV8ycMeYpm/NYA/1yCFyzQdi4O7BZsjSMTtpVuEtL7jRbUa41g3+KhOYRm
AP9BiZqi/AfiuByhIRT26+9DbGE45H3nda97zvkoB8l3DQ==
=Q8rg
-----END PGP PUBLIC KEY BLOCK-----
`;

/** The binary key of ALICE_ARMORED (`gpg --export alice@example.org`). */
export const ALICE_BINARY = Buffer.from(
  ALICE_ARMORED.split('\n').filter((l) => /^[A-Za-z0-9+/]+=*$/.test(l) && !l.startsWith('=')).join(''),
  'base64',
);

/** What `gpg --export --export-options export-dane alice@example.org` names for ALICE_BINARY. */
export const ALICE_DANE_LABEL = '2bd806c97f0e00af1a1fc3328fa763a9269723c8db8fac4f93af71db';
/** What `gpg-wks-client --print-wkd-hash alice@example.org` prints for it. */
export const ALICE_WKD_HASH = 'kei1q4tipxxu1yj79k9kfukdhfy631xe';

/** One packet with a new-format header (RFC 9580 §4.2.1): one, two or five octets of length. */
export function newPacket(tag: number, body: Buffer): Buffer {
  const n = body.length;
  let len: Buffer;
  if (n < 192) len = Buffer.from([n]);
  else if (n < 8384) len = Buffer.from([((n - 192) >> 8) + 192, (n - 192) & 0xff]);
  else {
    len = Buffer.alloc(5);
    len[0] = 255;
    len.writeUInt32BE(n, 1);
  }
  return Buffer.concat([Buffer.from([0xc0 | tag]), len, body]);
}

/** One packet with an old-format header (RFC 4880 §4.2.1): length type 0, 1, 2 (1, 2, 4 octets) or 3 (indeterminate). */
export function oldPacket(tag: number, body: Buffer, lengthType: 0 | 1 | 2 | 3 = body.length < 256 ? 0 : 1): Buffer {
  const ctb = 0x80 | (tag << 2) | lengthType;
  if (lengthType === 3) return Buffer.concat([Buffer.from([ctb]), body]);
  const size = [1, 2, 4][lengthType]!;
  const len = Buffer.alloc(size);
  len.writeUIntBE(body.length, 0, size);
  return Buffer.concat([Buffer.from([ctb]), len, body]);
}

/** A key packet body of `version` (the rest stands in for time, algorithm and key material). */
export function keyBody(version = 4): Buffer {
  return Buffer.concat([Buffer.from([version]), Buffer.alloc(40, 7)]);
}

/** A hand-made transferable public key: key packet, User IDs, each followed by a stand-in signature. */
export function handKey(userIds: string[], opts: { version?: number; keyTag?: number } = {}): Buffer {
  return Buffer.concat([
    newPacket(opts.keyTag ?? 6, keyBody(opts.version)),
    ...userIds.flatMap((u) => [newPacket(13, Buffer.from(u, 'utf8')), newPacket(2, Buffer.alloc(60, 2))]),
  ]);
}

/** ASCII armor around `data` (64 columns, the CRC-24 line unless `crc: false`, or a given wrong one). */
export function armor(data: Buffer, opts: { label?: string; crc?: boolean | number } = {}): string {
  const label = opts.label ?? 'PGP PUBLIC KEY BLOCK';
  const b64 = data.toString('base64');
  const lines = b64.match(/.{1,64}/g) ?? [];
  const sum = typeof opts.crc === 'number' ? opts.crc : crc24(data);
  const crcLine = opts.crc === false ? [] : [`=${Buffer.from([sum >> 16, (sum >> 8) & 0xff, sum & 0xff]).toString('base64')}`];
  return [`-----BEGIN ${label}-----`, 'Comment: made by hand', '', ...lines, ...crcLine, `-----END ${label}-----`, ''].join('\n');
}
