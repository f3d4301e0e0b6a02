/**
 * The DKIM keys as a real verifier sees them: mailauth signs a message with each stored private
 * key and verifies it against the TXT value the store publishes (resolved by a fake DNS built
 * from the KeySet), dual-signed with both algorithms as rspamd does on the host.
 */
import { describe, expect, it } from 'vitest';
import { dkimSign } from 'mailauth/lib/dkim/sign.js';
import { dkimVerify } from 'mailauth/lib/dkim/verify.js';
import type { KeySet } from '../../src/keys/types.js';
import { fixtureKeys } from '../helpers/keys.js';

const message = [
  'From: alice@example.org',
  'To: bob@example.net',
  'Subject: key test',
  'Date: Sun, 15 Mar 2026 10:00:00 +0000',
  'Message-ID: <keys-test@example.org>',
  '',
  'Signed with keys generated here.',
  '',
].join('\r\n');

function resolverFor(keys: KeySet, tamper?: string) {
  return async (name: string, rrtype: string): Promise<string[][]> => {
    const k = keys.dkim.find((x) => `${x.selector}._domainkey.${x.domain}` === name);
    if (rrtype !== 'TXT' || !k) throw Object.assign(new Error('NXDOMAIN'), { code: 'ENOTFOUND' });
    return [[k.selector === tamper ? k.txt.replace(/p=./, 'p=A') : k.txt]];
  };
}

describe('DKIM keys with a real DKIM verifier', () => {
  it('both active selectors sign and verify (rsa-sha256 and ed25519-sha256)', async () => {
    const keys = await fixtureKeys();
    const signatureData = keys.dkim.map((k) => ({
      signingDomain: k.domain,
      selector: k.selector,
      privateKey: keys.read(k.privateKeyPath),
      algorithm: k.algorithm === 'rsa' ? 'rsa-sha256' : 'ed25519-sha256',
    }));
    const signed = await dkimSign(message, { signingDomain: 'example.org', selector: 'unused', privateKey: '', signatureData });
    expect(signed.errors ?? []).toEqual([]);
    const full = signed.signatures + message;
    const ok = await dkimVerify(full, { resolver: resolverFor(keys) });
    expect(ok.results.map((r) => [r.selector, r.status.result]).sort()).toEqual([
      ['202603e', 'pass'],
      ['202603r', 'pass'],
    ]);
    // A changed public key makes the same signature fail: the check can fail.
    const bad = await dkimVerify(full, { resolver: resolverFor(keys, '202603e') });
    expect(bad.results.find((r) => r.selector === '202603e')?.status.result).not.toBe('pass');
  });
});
