/** OpenPGP packet framing (RFC 4880 §4.2, RFC 9580 §4.2): old and new headers, each length form, each way to be broken. */
import { describe, expect, it } from 'vitest';
import { packetName, readPackets } from '../../src/openpgp/packets.js';
import { ALICE_BINARY, newPacket, oldPacket } from '../helpers/openpgp.js';

const body = (n: number) => Buffer.alloc(n, 0x41);

describe('old-format headers', () => {
  it.each([
    ['one octet', 0, 200],
    ['two octets', 1, 300],
    ['four octets', 2, 70000],
  ] as const)('reads a length of %s', (_name, type, n) => {
    const r = readPackets(Buffer.concat([oldPacket(13, body(n), type), oldPacket(2, body(3), 0)]));
    expect(r.error).toBeUndefined();
    expect(r.packets.map((p) => [p.tag, p.body.length])).toEqual([
      [13, n],
      [2, 3],
    ]);
  });
  it('reads an indeterminate length to the end of the data', () => {
    const r = readPackets(Buffer.concat([oldPacket(6, body(5), 0), oldPacket(13, body(9), 3)]));
    expect(r.packets.map((p) => [p.tag, p.body.length])).toEqual([
      [6, 5],
      [13, 9],
    ]);
  });
  it('reads GnuPG\'s export: key, User ID, signature', () => {
    const r = readPackets(ALICE_BINARY);
    expect(r.error).toBeUndefined();
    expect(r.packets.map((p) => p.tag)).toEqual([6, 13, 2]);
    expect(r.packets[1]!.body.toString()).toBe('Alice <alice@example.org>');
  });
});

describe('new-format headers', () => {
  it.each([0, 191, 192, 8383, 8384, 100000])('reads a body of %i bytes (one, two and five octets of length at their edges)', (n) => {
    const r = readPackets(Buffer.concat([newPacket(17, body(n)), newPacket(2, body(1))]));
    expect(r.error).toBeUndefined();
    expect(r.packets.map((p) => [p.tag, p.body.length])).toEqual([
      [17, n],
      [2, 1],
    ]);
  });
  it('reads tags above 15, which only the new format has', () => {
    expect(readPackets(newPacket(21, body(4))).packets[0]!.tag).toBe(21);
  });
  it('refuses a partial body length, which a key never has', () => {
    const r = readPackets(Buffer.from([0xc0 | 13, 0xe1, 0x41, 0x41]));
    expect(r.error).toMatch(/partial body length in packet 1, a user ID packet \(tag 13\)/);
    expect(r.tags).toEqual([13]);
  });
});

describe('broken framing', () => {
  it('refuses a byte that is no packet header (bit 7 clear)', () => {
    expect(readPackets(Buffer.concat([newPacket(6, body(3)), Buffer.from('hello')])).error).toMatch(/no OpenPGP packet header at byte 5 \(packet 2\)/);
  });
  it('refuses a body cut short, and still tells its tag', () => {
    const whole = newPacket(5, body(50));
    const r = readPackets(whole.subarray(0, 20));
    expect(r.error).toMatch(/cut short: packet 1, a secret key packet \(tag 5\), declares 50 bytes and only 18 follow/);
    expect(r.tags).toEqual([5]);
  });
  it.each([
    ['new, two octets', Buffer.from([0xc0 | 6, 200])],
    ['new, five octets', Buffer.from([0xc0 | 6, 255, 0, 0])],
    ['old, four octets', Buffer.from([0x80 | (6 << 2) | 2, 0, 0])],
    ['new, no length at all', Buffer.from([0xc0 | 6])],
  ])('refuses a header cut short (%s)', (_name, data) => {
    expect(readPackets(data).error).toMatch(/cut short in the header of packet 1/);
  });
  it('refuses the reserved tag 0', () => {
    expect(readPackets(newPacket(0, body(1))).error).toMatch(/reserved tag 0/);
  });
  it('names packets in messages', () => {
    expect(packetName(6)).toBe('public key packet (tag 6)');
    expect(packetName(60)).toBe('unknown packet (tag 60)');
  });
});
