/**
 * OpenPGP packet framing (RFC 4880 §4.2, RFC 9580 §4.2): the header of each packet, old or new
 * format, and its body. Pure; nothing here looks inside a body beyond what the caller asks.
 */

/** Packet tags selfmail names in its messages (RFC 9580 §5). */
export const PACKET_NAMES: Readonly<Record<number, string>> = {
  1: 'public-key encrypted session key',
  2: 'signature',
  3: 'symmetric-key encrypted session key',
  4: 'one-pass signature',
  5: 'secret key',
  6: 'public key',
  7: 'secret subkey',
  8: 'compressed data',
  9: 'symmetrically encrypted data',
  10: 'marker',
  11: 'literal data',
  12: 'trust',
  13: 'user ID',
  14: 'public subkey',
  17: 'user attribute',
  18: 'encrypted and integrity-protected data',
  19: 'modification detection code',
  20: 'AEAD encrypted data',
  21: 'padding',
};

/** A packet's name for a message: `public key packet (tag 6)`. */
export function packetName(tag: number): string {
  return `${PACKET_NAMES[tag] ?? 'unknown'} packet (tag ${tag})`;
}

export interface Packet {
  tag: number;
  /** Where its header starts in the data. */
  offset: number;
  body: Buffer;
}

export interface PacketList {
  packets: Packet[];
  /**
   * The tag of every header read, the last one included even when its body is cut short: a
   * secret key is recognised from its header alone.
   */
  tags: number[];
  /** Why the data is not a well-framed packet sequence; undefined when it is. */
  error?: string;
}

/**
 * Split `data` into packets. Old format (bit 6 clear): tag in bits 5–2, length of 1, 2 or 4
 * octets, or indeterminate (to the end of the data). New format: tag in bits 5–0, length of 1, 2
 * or 5 octets; partial body lengths are allowed only for data packets (RFC 9580 §4.2.1.4), never
 * in a key, so they are an error here.
 */
export function readPackets(data: Buffer): PacketList {
  const packets: Packet[] = [];
  const tags: number[] = [];
  const fail = (error: string): PacketList => ({ packets, tags, error });
  let pos = 0;
  while (pos < data.length) {
    const n = packets.length + 1;
    const ctb = data[pos]!;
    if (!(ctb & 0x80)) return fail(`has no OpenPGP packet header at byte ${pos} (packet ${n})`);
    let tag: number;
    let length: number;
    let headerLength: number;
    const left = data.length - pos;
    if (ctb & 0x40) {
      tag = ctb & 0x3f;
      tags.push(tag);
      const first = data[pos + 1];
      if (first === undefined) return fail(`is cut short in the header of packet ${n}`);
      if (first < 192) {
        length = first;
        headerLength = 2;
      } else if (first < 224) {
        if (left < 3) return fail(`is cut short in the header of packet ${n}`);
        length = ((first - 192) << 8) + data[pos + 2]! + 192;
        headerLength = 3;
      } else if (first === 255) {
        if (left < 6) return fail(`is cut short in the header of packet ${n}`);
        length = data.readUInt32BE(pos + 2);
        headerLength = 6;
      } else {
        return fail(`uses a partial body length in packet ${n}, a ${packetName(tag)}; OpenPGP allows them only in data packets, never in a key`);
      }
    } else {
      tag = (ctb >> 2) & 0x0f;
      tags.push(tag);
      const type = ctb & 0x03;
      if (type === 3) {
        length = left - 1;
        headerLength = 1;
      } else {
        const size = [1, 2, 4][type]!;
        if (left < 1 + size) return fail(`is cut short in the header of packet ${n}`);
        length = data.readUIntBE(pos + 1, size);
        headerLength = 1 + size;
      }
    }
    if (tag === 0) return fail(`has a packet with the reserved tag 0 (packet ${n})`);
    if (headerLength + length > left) {
      return fail(`is cut short: packet ${n}, a ${packetName(tag)}, declares ${length} bytes and only ${left - headerLength} follow`);
    }
    packets.push({ tag, offset: pos, body: data.subarray(pos + headerLength, pos + headerLength + length) });
    pos += headerLength + length;
  }
  return { packets, tags };
}
