/** ASCII armor (RFC 4880 §6, RFC 9580 §6.2): the checksum, the block's frame and its label, one rule each. */
import { describe, expect, it } from 'vitest';
import { armorLabels, crc24, dearmor, isSecretLabel } from '../../src/openpgp/armor.js';
import { ALICE_ARMORED, ALICE_BINARY, armor, handKey } from '../helpers/openpgp.js';

const ok = (text: string) => {
  const d = dearmor(text);
  if (!d.ok) throw new Error(d.error);
  return d.data;
};
const error = (text: string) => {
  const d = dearmor(text);
  if (d.ok) throw new Error('dearmored');
  return d.error;
};

describe('CRC-24', () => {
  it('is CRC-24/OPENPGP: the catalogue\'s check value, and the initial value for no data', () => {
    expect(crc24(Buffer.from('123456789'))).toBe(0x21cf02);
    expect(crc24(Buffer.alloc(0))).toBe(0xb704ce);
  });
  it('matches the checksum line GnuPG wrote', () => {
    expect(Buffer.from('Q8rg', 'base64').readUIntBE(0, 3)).toBe(crc24(ALICE_BINARY));
  });
});

describe('dearmor', () => {
  it('reads GnuPG\'s armored export into the binary export', () => {
    expect(ok(ALICE_ARMORED).equals(ALICE_BINARY)).toBe(true);
  });
  it('takes CRLF line ends, trailing blanks and armor headers', () => {
    expect(ok(armor(ALICE_BINARY).replace(/\n/g, ' \r\n')).equals(ALICE_BINARY)).toBe(true);
  });
  it('accepts a block without a checksum line (RFC 9580 lets writers leave it out)', () => {
    expect(ok(armor(ALICE_BINARY, { crc: false })).equals(ALICE_BINARY)).toBe(true);
  });
  it('refuses a checksum that does not match the data', () => {
    expect(error(armor(ALICE_BINARY, { crc: crc24(ALICE_BINARY) ^ 1 }))).toMatch(/checksum \(CRC-24\) that does not match/);
    // One character of the data changed, the checksum left as it was.
    const altered = ALICE_ARMORED.replace('mDMEaxbS', 'mDMEaxbT');
    expect(error(altered)).toMatch(/CRC-24/);
  });
  it('refuses data after the checksum line', () => {
    expect(error(ALICE_ARMORED.replace('=Q8rg\n', '=Q8rg\nAAAA\n'))).toMatch(/after its checksum line/);
  });
  it('refuses a line that is not base64', () => {
    expect(error(ALICE_ARMORED.replace('t18NMkC0', 't18N*kC0'))).toMatch(/not base64 .*line 4/);
  });
  it('refuses base64 that does not decode whole (a character lost), or padding inside the data', () => {
    expect(error(ALICE_ARMORED.replace('t18NMkC0', 't18NMkC'))).toMatch(/not valid base64/);
    expect(error(ALICE_ARMORED.replace('t18NMkC0', 't18NMk=='))).toMatch(/not valid base64/);
  });
  it('refuses a block cut short (no END line)', () => {
    expect(error(ALICE_ARMORED.slice(0, 200))).toMatch(/no "-----END PGP PUBLIC KEY BLOCK-----" line/);
  });
  it('refuses an END line of another label', () => {
    expect(error(ALICE_ARMORED.replace('-----END PGP PUBLIC KEY BLOCK-----', '-----END PGP MESSAGE-----'))).toMatch(/not the END line/);
  });
  it('refuses text without armor', () => {
    expect(error('hello\n')).toMatch(/no "-----BEGIN PGP PUBLIC KEY BLOCK-----" line/);
  });
  it('refuses two blocks in one file', () => {
    expect(error(ALICE_ARMORED + ALICE_ARMORED)).toMatch(/holds 2 armored blocks/);
  });
  it('refuses a block of another kind', () => {
    expect(error(armor(handKey(['a <a@example.org>']), { label: 'PGP MESSAGE' }))).toMatch(/is an armored "PGP MESSAGE", not a "PGP PUBLIC KEY BLOCK"/);
  });
  it('refuses an empty block', () => {
    expect(error('-----BEGIN PGP PUBLIC KEY BLOCK-----\n\n-----END PGP PUBLIC KEY BLOCK-----\n')).toMatch(/empty armor block/);
  });
});

describe('armor labels', () => {
  it('lists every block\'s label, in order', () => {
    expect(armorLabels(`${ALICE_ARMORED}\n-----BEGIN PGP PRIVATE KEY BLOCK-----\n`)).toEqual(['PGP PUBLIC KEY BLOCK', 'PGP PRIVATE KEY BLOCK']);
  });
  it('tells a private key\'s label (GnuPG\'s PRIVATE, PGP 2\'s SECRET) from the others', () => {
    expect(isSecretLabel('PGP PRIVATE KEY BLOCK')).toBe(true);
    expect(isSecretLabel('PGP SECRET KEY BLOCK')).toBe(true);
    expect(isSecretLabel('PGP PUBLIC KEY BLOCK')).toBe(false);
    expect(isSecretLabel('PGP MESSAGE')).toBe(false);
  });
});
