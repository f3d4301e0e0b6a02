/**
 * What a user's key file holds (RFC 9580 §10.1, "transferable public key"): its binary form and
 * User IDs when it is one public key, or why not. A file with a private key is told apart from
 * anything else, so that it can be refused on principle (principle 8) rather than as a mistake.
 * Pure; no message repeats the file's bytes.
 */
import { armorLabels, dearmor, isSecretLabel } from './armor.js';
import { packetName, readPackets } from './packets.js';

/** Tags that carry a private key: Secret-Key (5) and Secret-Subkey (7). */
export const SECRET_TAGS: readonly number[] = [5, 7];
/** What may follow the public key packet: signatures, trust, User IDs, subkeys, user attributes, padding. */
const FOLLOWING_TAGS = new Set([2, 12, 13, 14, 17, 21]);
const PUBLIC_KEY = 6;
const USER_ID = 13;

/**
 * The largest key published, in bytes (binary): the OPENPGPKEY record and its signature must fit
 * in one DNS message (64 KiB), and ldns reads a record's base64 as one token of at most 64 KiB
 * of text. An exported key with one User ID is a few kilobytes; other people's signatures on it
 * are what makes keys large (`gpg --export --export-options export-minimal` drops them).
 */
export const MAX_KEY_BYTES = 32768;

export type KeyFile =
  | { kind: 'public'; binary: Buffer; userIds: string[] }
  | { kind: 'secret' }
  | { kind: 'invalid'; error: string };

/** True when `file` is text (ASCII armor) rather than binary packets, whose first byte has bit 7 set. */
function isText(file: Buffer): boolean {
  const first = file[0]!;
  const bom = first === 0xef && file[1] === 0xbb && file[2] === 0xbf;
  return bom || !(first & 0x80);
}

/** The binary packets of a key file, armored or not; or that it holds a private key; or why it is no OpenPGP data. */
export function keyFileData(file: Buffer): { kind: 'data'; data: Buffer } | { kind: 'secret' } | { kind: 'invalid'; error: string } {
  if (file.length === 0) return { kind: 'invalid', error: 'is empty' };
  if (!isText(file)) return { kind: 'data', data: file };
  const text = file.toString('utf8').replace(/^\uFEFF/, '');
  if (armorLabels(text).some(isSecretLabel)) return { kind: 'secret' };
  if (armorLabels(text).length === 0) {
    return { kind: 'invalid', error: 'is not an OpenPGP key: neither ASCII armor ("-----BEGIN PGP PUBLIC KEY BLOCK-----") nor binary OpenPGP packets' };
  }
  const d = dearmor(text);
  return d.ok ? { kind: 'data', data: d.data } : { kind: 'invalid', error: d.error };
}

/**
 * Read a key file: one public key packet first (version 4 or later), then only what belongs to a
 * public key, at least one User ID, at most MAX_KEY_BYTES. Any secret key packet, anywhere, makes
 * it `secret` before any other judgement.
 */
export function readKeyFile(file: Buffer): KeyFile {
  const d = keyFileData(file);
  if (d.kind !== 'data') return d;
  const { packets, tags, error } = readPackets(d.data);
  if (tags.some((t) => SECRET_TAGS.includes(t))) return { kind: 'secret' };
  if (error) return { kind: 'invalid', error };
  const first = packets[0];
  if (!first) return { kind: 'invalid', error: 'holds no OpenPGP packet' };
  if (first.tag !== PUBLIC_KEY) {
    return { kind: 'invalid', error: `starts with a ${packetName(first.tag)}, not a public key packet (tag 6): export the public key with gpg --export --armor EMAIL` };
  }
  const keys = packets.filter((p) => p.tag === PUBLIC_KEY).length;
  if (keys > 1) return { kind: 'invalid', error: `holds ${keys} public keys; export only the mailbox's own: gpg --export --armor EMAIL` };
  const stray = packets.findIndex((p, i) => i > 0 && !FOLLOWING_TAGS.has(p.tag));
  if (stray >= 0) return { kind: 'invalid', error: `holds a ${packetName(packets[stray]!.tag)} (packet ${stray + 1}), which has no place in a public key` };
  const version = first.body[0];
  if (version === undefined) return { kind: 'invalid', error: 'has an empty public key packet' };
  if (version < 4) return { kind: 'invalid', error: `is a version ${version} key, which OpenPGP no longer accepts (RFC 9580); make a new key` };
  const userIds = packets.filter((p) => p.tag === USER_ID).map((p) => p.body.toString('utf8'));
  if (userIds.length === 0) return { kind: 'invalid', error: 'has no User ID, so nothing in it names the mailbox' };
  if (d.data.length > MAX_KEY_BYTES) {
    return {
      kind: 'invalid',
      error: `is ${d.data.length} bytes, more than the ${MAX_KEY_BYTES} a DNS record can carry here; export it without other people's signatures: gpg --export --export-options export-minimal --armor EMAIL`,
    };
  }
  return { kind: 'public', binary: Buffer.from(d.data), userIds };
}

/**
 * True when one of `userIds` names `email`: `Name <email>` or the bare address, without regard
 * to case (RFC 9580 §5.11 suggests the RFC 2822 name-addr form; GnuPG matches this way).
 */
export function holdsAddress(userIds: readonly string[], email: string): boolean {
  const want = email.toLowerCase();
  return userIds.some((u) => {
    const id = u.toLowerCase();
    return id.trim() === want || id.includes(`<${want}>`);
  });
}
