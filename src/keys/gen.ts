/**
 * Key generation, the one place private keys are born. Every call is the async node:crypto
 * `generateKeyPair`, which runs in libuv's thread pool, so keys for many domains are made on
 * every core at once. The randomness is OpenSSL's CSPRNG; nothing here accepts outside material.
 */
import { generateKeyPair, randomBytes, type KeyObject } from 'node:crypto';
import { promisify } from 'node:util';
import { p256FromScalar, type EcKeyMaterial } from './dnssec.js';

const genKeyPair = promisify(generateKeyPair);

/** An RSA-2048 key (e = 65537), PKCS#8 PEM. */
export async function newRsa2048Pem(): Promise<string> {
  const { privateKey } = await genKeyPair('rsa', { modulusLength: 2048, publicExponent: 0x10001 });
  return pkcs8Pem(privateKey);
}

/** An Ed25519 key, PKCS#8 PEM. */
export async function newEd25519Pem(): Promise<string> {
  const { privateKey } = await genKeyPair('ed25519', undefined);
  return pkcs8Pem(privateKey);
}

/** A P-256 key as DNSSEC needs it (scalar and public point). */
export async function newP256(): Promise<EcKeyMaterial> {
  const { privateKey } = await genKeyPair('ec', { namedCurve: 'P-256' });
  const jwk = privateKey.export({ format: 'jwk' });
  if (!jwk.d) throw new Error('P-256 key without a private scalar');
  return p256FromScalar(Buffer.from(jwk.d, 'base64url'));
}

/** A TSIG secret: 32 bytes from the CSPRNG (the HMAC-SHA256 output size, RFC 8945 §6). */
export async function newTsigSecret(): Promise<Buffer> {
  return promisify(randomBytes)(32);
}

function pkcs8Pem(key: KeyObject): string {
  return key.export({ type: 'pkcs8', format: 'pem' }).toString();
}
