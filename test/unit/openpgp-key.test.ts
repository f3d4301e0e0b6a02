/**
 * What a key file holds and which key each mailbox publishes: one rule each, each refusal, and
 * that a private key is named without a byte of it repeated.
 */
import { describe, expect, it } from 'vitest';
import type { Email } from '../../src/config/types.js';
import { MAX_KEY_BYTES, holdsAddress, readKeyFile } from '../../src/openpgp/key.js';
import { PRINCIPLE_8, chooseKeys, judgeGivenKeys, type GivenKey } from '../../src/openpgp/publish.js';
import { ALICE_ARMORED, ALICE_BINARY, armor, handKey, keyBody, newPacket } from '../helpers/openpgp.js';

const alice = 'alice@example.org' as Email;
const invalid = (file: Buffer | string) => {
  const r = readKeyFile(Buffer.isBuffer(file) ? file : Buffer.from(file));
  if (r.kind !== 'invalid') throw new Error(`not invalid: ${r.kind}`);
  return r.error;
};
/** A secret key packet body that stands out, so that a test can look for it in every message. */
const SECRET_BODY = Buffer.concat([keyBody(4), Buffer.from('SECRET-MATERIAL-0123456789')]);
const secretKey = Buffer.concat([newPacket(5, SECRET_BODY), newPacket(13, Buffer.from('Alice <alice@example.org>')), newPacket(2, Buffer.alloc(60, 2))]);

describe('a public key', () => {
  it('is read from GnuPG\'s armored export: the binary form and the User IDs', () => {
    const r = readKeyFile(Buffer.from(ALICE_ARMORED));
    expect(r.kind).toBe('public');
    if (r.kind !== 'public') return;
    expect(r.binary.equals(ALICE_BINARY)).toBe(true);
    expect(r.userIds).toEqual(['Alice <alice@example.org>']);
  });
  it('is read the same from the binary export', () => {
    const r = readKeyFile(ALICE_BINARY);
    expect(r.kind === 'public' && r.binary.equals(ALICE_BINARY)).toBe(true);
  });
  it('is read with a byte-order mark before the armor', () => {
    expect(readKeyFile(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(ALICE_ARMORED)])).kind).toBe('public');
  });
  it('may carry subkeys, user attributes, trust and padding packets', () => {
    const key = Buffer.concat([handKey(['a <alice@example.org>']), newPacket(14, keyBody()), newPacket(2, Buffer.alloc(9)), newPacket(17, Buffer.alloc(9)), newPacket(12, Buffer.alloc(2)), newPacket(21, Buffer.alloc(8))]);
    expect(readKeyFile(key).kind).toBe('public');
  });
});

describe('a private key is told apart, before any other judgement', () => {
  it('by the armor\'s label, whatever the block holds', () => {
    expect(readKeyFile(Buffer.from('-----BEGIN PGP PRIVATE KEY BLOCK-----\n\n!!!\n')).kind).toBe('secret');
  });
  it('by a secret key packet (tag 5) first', () => {
    expect(readKeyFile(secretKey).kind).toBe('secret');
    expect(readKeyFile(Buffer.from(armor(secretKey))).kind).toBe('secret');
  });
  it('by a secret subkey packet (tag 7) after a public key', () => {
    expect(readKeyFile(Buffer.concat([handKey(['<alice@example.org>']), newPacket(7, keyBody())])).kind).toBe('secret');
  });
  it('by the header alone, when the packet is cut short', () => {
    expect(readKeyFile(secretKey.subarray(0, 10)).kind).toBe('secret');
  });
});

describe('what is not a public key (exit 2)', () => {
  it('an empty file', () => expect(invalid(Buffer.alloc(0))).toBe('is empty'));
  it('text without OpenPGP armor (an SSH key, a PEM file)', () => {
    expect(invalid('-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEA\n')).toMatch(/is not an OpenPGP key/);
  });
  it('a damaged armor', () => expect(invalid(ALICE_ARMORED.replace('=Q8rg', '=Q8rh'))).toMatch(/CRC-24/));
  it('a truncated packet', () => expect(invalid(ALICE_BINARY.subarray(0, 100))).toMatch(/cut short/));
  it('data whose first packet is not a public key', () => {
    expect(invalid(Buffer.concat([newPacket(11, Buffer.from('b\0hello')), handKey(['<alice@example.org>'])]))).toMatch(/starts with a literal data packet \(tag 11\), not a public key packet \(tag 6\)/);
  });
  it('a subkey alone', () => expect(invalid(handKey(['<alice@example.org>'], { keyTag: 14 }))).toMatch(/starts with a public subkey packet/));
  it('two keys in one file', () => {
    expect(invalid(Buffer.concat([handKey(['<alice@example.org>']), handKey(['<bob@example.org>'])]))).toMatch(/holds 2 public keys; export only the mailbox's own/);
  });
  it('a packet that has no place in a key', () => {
    expect(invalid(Buffer.concat([handKey(['<alice@example.org>']), newPacket(11, Buffer.from('b\0x'))]))).toMatch(/literal data packet \(tag 11\) \(packet 4\), which has no place in a public key/);
  });
  it('a version 3 key', () => expect(invalid(handKey(['<alice@example.org>'], { version: 3 }))).toMatch(/version 3 key/));
  it('a key without a User ID', () => expect(invalid(newPacket(6, keyBody()))).toMatch(/no User ID/));
  it(`a key of more than ${MAX_KEY_BYTES} bytes`, () => {
    const big = Buffer.concat([handKey(['<alice@example.org>']), newPacket(2, Buffer.alloc(MAX_KEY_BYTES))]);
    expect(invalid(big)).toMatch(/more than the 32768 a DNS record can carry here; .*export-minimal/);
  });
});

describe('the User ID names the mailbox', () => {
  it('as name-addr or as the bare address, without regard to case', () => {
    expect(holdsAddress(['Alice <alice@example.org>'], alice)).toBe(true);
    expect(holdsAddress(['ALICE@Example.ORG'], alice)).toBe(true);
    expect(holdsAddress(['Alice <Alice@EXAMPLE.org>'], alice)).toBe(true);
  });
  it('and no other address that merely contains it', () => {
    expect(holdsAddress(['Mallory <malice@example.org>'], alice)).toBe(false);
    expect(holdsAddress(['alice@example.org.evil'], alice)).toBe(false);
    expect(holdsAddress(['<alice@example.org.evil>'], alice)).toBe(false);
  });
});

const given = (data: Buffer, file = 'key.asc', field = '--openpgp-key'): GivenKey => ({ data, file, field });

describe('judging the files given for mailboxes', () => {
  it('keeps the binary key of a file that names its mailbox', () => {
    const j = judgeGivenKeys(new Map([['Alice@Example.org', given(Buffer.from(ALICE_ARMORED))]]));
    expect(j.issues).toEqual([]);
    expect(j.keys.get(alice)?.equals(ALICE_BINARY)).toBe(true);
  });
  it('names the flag, the file and the User IDs when the key is for another address', () => {
    const j = judgeGivenKeys(new Map([['bob@example.org', given(ALICE_BINARY, 'alice.asc')]]));
    expect(j.issues).toEqual([{ field: '--openpgp-key', message: expect.stringMatching(/^alice\.asc \(for bob@example\.org\) has the User ID "Alice <alice@example\.org>", not bob@example\.org/) }]);
    expect(j.keys.size).toBe(0);
  });
  it('names the config file\'s key when the file came from there', () => {
    const j = judgeGivenKeys(new Map([['alice@example.org', given(Buffer.from('nope'), 'k.asc', 'setup.yaml: openpgpKeys')]]));
    expect(j.issues[0]?.field).toBe('setup.yaml: openpgpKeys');
  });
  it('refuses a private key on principle 8, and says to export the public key', () => {
    const j = judgeGivenKeys(new Map([['alice@example.org', given(secretKey, 'alice-secret.gpg')]]));
    expect(j.issues).toEqual([]);
    expect(j.refusals).toHaveLength(1);
    const r = j.refusals[0]!;
    expect(r.principle).toBe(PRINCIPLE_8);
    expect(r.field).toBe('--openpgp-key alice@example.org=alice-secret.gpg');
    expect(r.instead).toContain('gpg --export --armor alice@example.org');
  });
  it('repeats no byte of a private key in any message', () => {
    for (const data of [secretKey, Buffer.from(armor(secretKey))]) {
      const text = JSON.stringify(judgeGivenKeys(new Map([['alice@example.org', given(data)]])));
      expect(text).not.toContain('SECRET-MATERIAL');
      expect(text).not.toContain(SECRET_BODY.toString('base64').slice(8, 40));
      expect(text).not.toContain(SECRET_BODY.toString('hex').slice(0, 16));
    }
  });
});

describe('choosing each publishing mailbox\'s key', () => {
  const none = () => undefined;
  it('takes the file given this run', () => {
    const c = chooseKeys([alice], judgeGivenKeys(new Map([[alice, given(ALICE_BINARY)]])), none);
    expect(c.keys.get(alice)?.equals(ALICE_BINARY)).toBe(true);
  });
  it('else reuses the bundle\'s copy', () => {
    const c = chooseKeys([alice], judgeGivenKeys(new Map()), (p) => (p === 'openpgp/alice@example.org.pgp' ? ALICE_BINARY : undefined));
    expect(c.issues).toEqual([]);
    expect(c.keys.get(alice)?.equals(ALICE_BINARY)).toBe(true);
  });
  it('says how to give a key again when the bundle has lost its copy', () => {
    const c = chooseKeys([alice], judgeGivenKeys(new Map()), none);
    expect(c.issues).toEqual([{ field: '--openpgp-key', message: expect.stringMatching(/holds no openpgp\/alice@example\.org\.pgp: give it again with --openpgp-key alice@example\.org=FILE, or drop it with --openpgp-key alice@example\.org=none/) }]);
  });
  it('does not report a given file twice', () => {
    const judged = judgeGivenKeys(new Map([[alice, given(Buffer.from('nope'))]]));
    expect(judged.issues).toHaveLength(1);
    const c = chooseKeys([alice], judged, () => ALICE_BINARY);
    expect(c.issues).toEqual([]);
    expect(c.keys.size).toBe(0);
  });
  it('judges the bundle\'s copy too: a private key put there by hand is refused', () => {
    const c = chooseKeys([alice], judgeGivenKeys(new Map()), () => secretKey);
    expect(c.refusals.map((r) => r.field)).toEqual(['openpgp/alice@example.org.pgp']);
  });
});
