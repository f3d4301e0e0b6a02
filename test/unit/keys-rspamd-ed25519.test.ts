/**
 * The Ed25519 DKIM key in the form rspamd signs with: the same key as the PEM, whose public half
 * the zone publishes. A file holding another key, or the halves swapped, would sign with
 * signatures no verifier accepts: the test proves it is the PEM's key by signing with it.
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { dkimTxt, rspamdEd25519Key } from '../../src/keys/dkim.js';

describe("rspamd's form of an Ed25519 DKIM key", () => {
  const { privateKey } = generateKeyPairSync('ed25519');

  it('is the seed then the public key the TXT publishes, 64 bytes in base64', () => {
    const raw = Buffer.from(rspamdEd25519Key(privateKey), 'base64');
    expect(raw).toHaveLength(64);
    const p = /p=([A-Za-z0-9+/=]+)$/.exec(dkimTxt(privateKey))![1]!;
    expect(raw.subarray(32).toString('base64')).toBe(p);
  });

  it('holds the key itself: its seed signs what the published key verifies', () => {
    const raw = Buffer.from(rspamdEd25519Key(privateKey), 'base64');
    const fromFile = createPrivateKey({ key: { kty: 'OKP', crv: 'Ed25519', d: raw.subarray(0, 32).toString('base64url'), x: raw.subarray(32).toString('base64url') }, format: 'jwk' });
    const message = Buffer.from('DKIM-Signature: v=1; a=ed25519-sha256');
    expect(verify(null, message, createPublicKey(privateKey), sign(null, message, fromFile))).toBe(true);
    const other = generateKeyPairSync('ed25519').privateKey;
    expect(verify(null, message, createPublicKey(other), sign(null, message, fromFile))).toBe(false);
  });

  it('is derived, so the same key always gives the same file', () => {
    expect(rspamdEd25519Key(privateKey)).toBe(rspamdEd25519Key(privateKey));
  });

  it('refuses an RSA key', () => {
    expect(() => rspamdEd25519Key(generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey)).toThrow(/not an Ed25519 key/);
  });
});
