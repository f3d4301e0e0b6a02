/**
 * OpenPGP ASCII armor (RFC 4880 §6, RFC 9580 §6.2): the text form `gpg --export --armor` writes.
 * Pure: text in, the binary packets (or why not) out. Messages never repeat the file's content.
 */

const CRC24_INIT = 0xb704ce;
const CRC24_POLY = 0x1864cfb;

/** The CRC-24 of RFC 4880 §6.1 (the armor's `=XXXX` checksum line). */
export function crc24(data: Uint8Array): number {
  let crc = CRC24_INIT;
  for (const byte of data) {
    crc ^= byte << 16;
    for (let i = 0; i < 8; i++) {
      crc <<= 1;
      if (crc & 0x1000000) crc ^= CRC24_POLY;
    }
  }
  return crc & 0xffffff;
}

const BEGIN = /^-----BEGIN (PGP [A-Z0-9 ,/]+)-----$/;
const END = /^-----END (PGP [A-Z0-9 ,/]+)-----$/;
/** An armor header, `Key: Value` (RFC 9580 §6.2.2: Version, Comment, Hash, Charset, …). */
const HEADER = /^[A-Za-z][A-Za-z0-9-]*: /;
const BASE64_LINE = /^[A-Za-z0-9+/=]+$/;
const CHECKSUM = /^=([A-Za-z0-9+/]{4})$/;

/** The label of every armor block in `text` (`PGP PUBLIC KEY BLOCK`, `PGP PRIVATE KEY BLOCK`, …), in order. */
export function armorLabels(text: string): string[] {
  return lines(text).flatMap((l) => {
    const m = BEGIN.exec(l);
    return m ? [m[1]!] : [];
  });
}

/** True for a label that announces a private (secret) key: never published, never stored. */
export function isSecretLabel(label: string): boolean {
  return /\b(PRIVATE|SECRET) KEY\b/.test(label);
}

export type Dearmored = { ok: true; data: Buffer } | { ok: false; error: string };

/**
 * The binary data of the one `PGP PUBLIC KEY BLOCK` in `text`. The checksum line is optional
 * (RFC 9580 lets writers leave it out); when present it must match the data (RFC 4880 §6.1:
 * a damaged or altered file is not published).
 */
export function dearmor(text: string): Dearmored {
  const all = lines(text);
  const begins = all.flatMap((l, i) => (BEGIN.test(l) ? [i] : []));
  if (begins.length === 0) return { ok: false, error: 'has no "-----BEGIN PGP PUBLIC KEY BLOCK-----" line' };
  if (begins.length > 1) return { ok: false, error: `holds ${begins.length} armored blocks; give one public key per file` };
  const start = begins[0]!;
  const label = BEGIN.exec(all[start]!)![1]!;
  if (label !== 'PGP PUBLIC KEY BLOCK') return { ok: false, error: `is an armored "${label}", not a "PGP PUBLIC KEY BLOCK"` };
  let i = start + 1;
  while (i < all.length && HEADER.test(all[i]!)) i++;
  if (i < all.length && all[i] === '') i++;
  const body: string[] = [];
  let checksum: string | undefined;
  for (; i < all.length; i++) {
    const line = all[i]!;
    if (END.test(line)) break;
    const c = CHECKSUM.exec(line);
    if (c) {
      checksum = c[1];
      continue;
    }
    if (checksum !== undefined) return { ok: false, error: `has armor data after its checksum line (line ${i + 1})` };
    if (line === '') continue;
    if (!BASE64_LINE.test(line)) return { ok: false, error: `has a line that is not base64 inside the armor (line ${i + 1})` };
    body.push(line);
  }
  if (i >= all.length) return { ok: false, error: 'has no "-----END PGP PUBLIC KEY BLOCK-----" line (was it cut short?)' };
  const endLabel = END.exec(all[i]!)![1];
  if (endLabel !== label) return { ok: false, error: `ends with "-----END ${endLabel}-----", not the END line of its "${label}"` };
  const b64 = body.join('');
  if (b64.length === 0) return { ok: false, error: 'has an empty armor block' };
  if (b64.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(b64)) return { ok: false, error: 'has armor data that is not valid base64 (was it cut short or edited?)' };
  const data = Buffer.from(b64, 'base64');
  if (checksum !== undefined) {
    const want = Buffer.from(checksum, 'base64').readUIntBE(0, 3);
    if (crc24(data) !== want) return { ok: false, error: 'has an armor checksum (CRC-24) that does not match its data: the file was damaged or altered; export the key again' };
  }
  return { ok: true, data };
}

/** Lines without their end (LF or CRLF) and without trailing blanks, which the armor ignores. */
function lines(text: string): string[] {
  return text.split('\n').map((l) => l.replace(/[ \t\r]+$/, ''));
}
