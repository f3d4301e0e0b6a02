/**
 * DKIM keys (RFC 6376, RFC 8463, RFC 8301): the TXT value for a private key, and the dated
 * selector names. Pure apart from parsing keys with node:crypto.
 */
import { createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';

export type DkimAlgorithm = 'rsa' | 'ed25519';

/** What a selector we made looks like: `<yyyymm><r|e>` and an optional counter (`202611r2`). */
export const SELECTOR_RE = /^[0-9]{6}[re](?:[2-9]|[1-9][0-9]+)?$/;

/** Which algorithm a selector name says (its letter). */
export function algorithmOfSelector(selector: string): DkimAlgorithm {
  return /^[0-9]{6}r/.test(selector) ? 'rsa' : 'ed25519';
}

/**
 * The selector pair for a new key generation in the month of `now`, skipping every name this
 * domain ever used (published or retired): a selector name never comes back with another key,
 * because resolvers and verifiers may still cache the old one.
 */
export function nextSelectorPair(now: Date, used: ReadonlySet<string>): { rsa: string; ed25519: string } {
  const ym = `${now.getUTCFullYear()}${String(now.getUTCMonth() + 1).padStart(2, '0')}`;
  for (let n = 1; ; n++) {
    const suffix = n === 1 ? '' : String(n);
    const pair = { rsa: `${ym}r${suffix}`, ed25519: `${ym}e${suffix}` };
    if (!used.has(pair.rsa) && !used.has(pair.ed25519)) return pair;
  }
}

/**
 * Parse a stored DKIM private key and check it is what we generate: RSA of 2048 bits with
 * e = 65537, or Ed25519. Throws on anything else.
 */
export function loadDkimKey(pem: Buffer, algorithm: DkimAlgorithm): KeyObject {
  const key = createPrivateKey({ key: pem, format: 'pem' });
  if (algorithm === 'rsa') {
    const d = key.asymmetricKeyDetails;
    if (key.asymmetricKeyType !== 'rsa' || d?.modulusLength !== 2048 || d.publicExponent !== 65537n) {
      throw new Error('not an RSA-2048 key');
    }
  } else if (key.asymmetricKeyType !== 'ed25519') {
    throw new Error('not an Ed25519 key');
  }
  return key;
}

/** The TXT value to publish: `v=DKIM1; k=rsa; p=<SPKI DER>` or `v=DKIM1; k=ed25519; p=<raw 32 bytes>`. */
export function dkimTxt(privateKey: KeyObject): string {
  const pub = createPublicKey(privateKey);
  if (privateKey.asymmetricKeyType === 'ed25519') {
    const jwk = pub.export({ format: 'jwk' });
    const raw = Buffer.from(jwk.x ?? '', 'base64url');
    return `v=DKIM1; k=ed25519; p=${raw.toString('base64')}`;
  }
  return `v=DKIM1; k=rsa; p=${pub.export({ type: 'spki', format: 'der' }).toString('base64')}`;
}

/**
 * An Ed25519 private key as rspamd's DKIM signer reads it: base64 of the 32-byte seed followed by
 * the 32-byte public key (libsodium's secret-key layout). rspamd 3.4 (Debian 12) takes PEM for RSA
 * only ("cannot extract rsa key from evp key" for an Ed25519 PEM); this form both releases read.
 * It is derived from the PEM, so it holds the same key and changes only when the key does.
 */
export function rspamdEd25519Key(privateKey: KeyObject): string {
  if (privateKey.asymmetricKeyType !== 'ed25519') throw new Error('not an Ed25519 key');
  const jwk = privateKey.export({ format: 'jwk' });
  const seed = Buffer.from(jwk.d ?? '', 'base64url');
  const pub = Buffer.from(jwk.x ?? '', 'base64url');
  if (seed.length !== 32 || pub.length !== 32) throw new Error('an Ed25519 key has a 32-byte seed and a 32-byte public key');
  return Buffer.concat([seed, pub]).toString('base64');
}
