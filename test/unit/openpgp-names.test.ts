/** Where a key is published: the OPENPGPKEY owner (RFC 7929) and the WKD file name (z-base-32 of SHA-1), one rule each. */
import { describe, expect, it } from 'vitest';
import type { Email } from '../../src/config/types.js';
import { keyPath, openpgpDomains, openpgpkeyLabel, openpgpkeyOwner, wkdHash, wkdHost, wkdPaths, zbase32 } from '../../src/openpgp/names.js';
import { ALICE_DANE_LABEL, ALICE_WKD_HASH } from '../helpers/openpgp.js';

const e = (s: string) => s as Email;

describe('OPENPGPKEY owner name (RFC 7929 §3)', () => {
  it('is the hex of the first 28 octets of the SHA-256 of the local part, under _openpgpkey (the RFC\'s own example)', () => {
    expect(openpgpkeyOwner(e('hugh@example.com'))).toBe('c93f1e400f26708f98cb19d936620da35eec8f72e57f9eec01c1afd6._openpgpkey.example.com');
  });
  it('gives the owner GnuPG\'s export-dane gives', () => {
    expect(openpgpkeyLabel('alice')).toBe(ALICE_DANE_LABEL);
  });
  it('hashes the local part as written: no case folding', () => {
    expect(openpgpkeyLabel('Hugh')).not.toBe(openpgpkeyLabel('hugh'));
    expect(openpgpkeyLabel('hugh')).toHaveLength(56);
  });
});

describe('z-base-32', () => {
  it('encodes most significant bit first with its own alphabet (the spec\'s examples)', () => {
    expect(zbase32(Buffer.from([0xf0, 0xbf, 0xc7]))).toBe('6n9hq');
    expect(zbase32(Buffer.from([0xd4, 0x7a, 0x04]))).toBe('4t7ye');
  });
  it('pads the last group with zero bits and writes no padding character', () => {
    expect(zbase32(Buffer.from([0xff]))).toBe('9h');
    expect(zbase32(Buffer.alloc(20))).toBe('y'.repeat(32));
    expect(zbase32(Buffer.alloc(0))).toBe('');
  });
});

describe('Web Key Directory, advanced method', () => {
  it('names the file by z-base-32 of the SHA-1 of the lower-cased local part (the draft\'s example)', () => {
    expect(wkdHash('Joe.Doe')).toBe('iy9q119eutrkn8s1mk4r39qejnbu3n5q');
  });
  it('gives the name gpg-wks-client --print-wkd-hash gives', () => {
    expect(wkdHash('alice')).toBe(ALICE_WKD_HASH);
  });
  it('serves under openpgpkey.<domain>, the domain named again in the path, from the domain\'s web folder', () => {
    expect(wkdHost('example.org' as never)).toBe('openpgpkey.example.org');
    expect(wkdPaths(e('alice@example.org'))).toEqual({
      key: `www/example.org/.well-known/openpgpkey/example.org/hu/${ALICE_WKD_HASH}`,
      policy: 'www/example.org/.well-known/openpgpkey/example.org/policy',
      url: `https://openpgpkey.example.org/.well-known/openpgpkey/example.org/hu/${ALICE_WKD_HASH}`,
    });
  });
  it('keeps the bundle\'s copy of each key under openpgp/', () => {
    expect(keyPath(e('alice@example.org'))).toBe('openpgp/alice@example.org.pgp');
  });
  it('gives openpgpkey.<domain> only to domains with a key, each once', () => {
    expect(openpgpDomains({ openpgpKeys: [e('b@example.net'), e('a@example.org'), e('c@example.org')] })).toEqual(['example.net', 'example.org']);
    expect(openpgpDomains({ openpgpKeys: [] })).toEqual([]);
  });
});
