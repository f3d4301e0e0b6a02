/**
 * WireGuard for `--ingress own-vps`: the tunnel's fixed addresses, the home host's key, and the
 * check of the VPS's public key the user pastes. Pure, except key generation (node's X25519).
 *
 * Keys are born where they are used (principle 1): the VPS makes its own private key (vps/setup.sh)
 * and only its public key reaches selfmail; the home key is made here, in the bundle, 0600.
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync } from 'node:crypto';
import type { IPv4, IPv6 } from '../config/types.js';
import type { Parsed } from '../config/values.js';

/** The tunnel: a /30 and a /126 of their own, picked to stay clear of common home LANs. */
export const TUNNEL = {
  vps4: '10.77.77.1' as IPv4,
  home4: '10.77.77.2' as IPv4,
  prefix4: 30,
  vps6: 'fd77:77::1' as IPv6,
  home6: 'fd77:77::2' as IPv6,
  prefix6: 126,
  port: 51820,
  /** The interface name on both sides (wg-quick@selfmail). */
  name: 'selfmail',
  /** The routing table home replies and outbound mail leave by (policy routing). */
  table: 77,
} as const;

/** Bundle path of the home host's WireGuard private key (base64, 0600). */
export const HOME_WG_KEY_PATH = 'keys/wireguard/home.key';
/** Bundle path of its public key (what vps/wireguard.conf names). */
export const HOME_WG_PUB_PATH = 'keys/wireguard/home.pub';

const B64_KEY = /^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=$/;

/** A WireGuard key as `wg` writes one: 32 bytes in canonical base64 (44 characters, one `=`). */
export function isWgKeyText(text: string): boolean {
  return B64_KEY.test(text) && Buffer.from(text, 'base64').length === 32;
}

/**
 * The VPS's WireGuard public key as pasted: 32 bytes of base64 (44 characters, one `=`). A line of
 * a WireGuard config (`PrivateKey = …`) is refused with the reason, never echoed.
 */
export function parseWgPublicKey(input: string): Parsed<string> {
  const text = input.trim();
  if (/^\s*PrivateKey\s*=/i.test(text) || /private/i.test(text)) {
    return { ok: false, error: 'is a WireGuard private key: give the VPS\'s public key, the line vps/setup.sh prints (wg pubkey); the private key never leaves the VPS' };
  }
  const bare = text.replace(/^PublicKey\s*=\s*/i, '');
  if (!isWgKeyText(bare)) {
    return { ok: false, error: 'is not a WireGuard public key (32 bytes of base64, 44 characters ending in "="): paste the line vps/setup.sh prints on the VPS' };
  }
  if (!isX25519PublicKey(Buffer.from(bare, 'base64'))) {
    // Any 32 bytes look alike; but a public key is a point of the curve's prime-order subgroup,
    // which a private key (random bytes) is 15 times out of 16 not.
    return { ok: false, error: 'is not a WireGuard public key (not a point a public key can be: most likely the private key, which never leaves the VPS): paste the line vps/setup.sh prints, the output of wg pubkey' };
  }
  return { ok: true, value: bare };
}

const P = 2n ** 255n - 19n;
/** The prime order of Curve25519's base point subgroup (RFC 7748 §4.1). */
const L = 2n ** 252n + 27742317777372353535851937790883648493n;
const A24 = 121665n;

/**
 * Whether `u` (32 bytes, little-endian) is what `wg pubkey` can print: a canonical u-coordinate of
 * a point of the prime-order subgroup, [L]·u being the identity (x-only Montgomery ladder, RFC 7748 §5).
 */
export function isX25519PublicKey(bytes: Buffer): boolean {
  if (bytes.length !== 32) return false;
  let u = 0n;
  for (let i = 31; i >= 0; i--) u = (u << 8n) | BigInt(bytes[i]!);
  if (u === 0n || u >= P) return false;
  const m = (x: bigint) => ((x % P) + P) % P;
  let [x2, z2, x3, z3, swap] = [1n, 0n, u, 1n, 0n];
  for (let t = L.toString(2).length - 1; t >= 0; t--) {
    const bit = (L >> BigInt(t)) & 1n;
    swap ^= bit;
    if (swap) [x2, x3, z2, z3] = [x3, x2, z3, z2];
    swap = bit;
    const a = m(x2 + z2);
    const b = m(x2 - z2);
    const aa = m(a * a);
    const bb = m(b * b);
    const e = m(aa - bb);
    const c = m(x3 + z3);
    const d = m(x3 - z3);
    const da = m(d * a);
    const cb = m(c * b);
    x3 = m((da + cb) ** 2n);
    z3 = m(u * (da - cb) ** 2n);
    x2 = m(aa * bb);
    z2 = m(e * (aa + A24 * e));
  }
  if (swap) z2 = z3;
  return z2 === 0n;
}

/** A new WireGuard private key, clamped as `wg genkey` makes it (RFC 7748 §5), base64. */
export function newWgPrivateKey(): string {
  const jwk = generateKeyPairSync('x25519').privateKey.export({ format: 'jwk' });
  const raw = Buffer.from(jwk.d!, 'base64url');
  raw[0]! &= 248;
  raw[31]! &= 127;
  raw[31]! |= 64;
  return raw.toString('base64');
}

/** The public key of a base64 WireGuard private key (what `wg pubkey` prints). */
export function wgPublicKey(privateB64: string): string {
  const d = Buffer.from(privateB64.trim(), 'base64');
  if (d.length !== 32) throw new Error('a WireGuard private key is 32 bytes');
  const key = createPrivateKey({ key: { kty: 'OKP', crv: 'X25519', d: d.toString('base64url'), x: '' }, format: 'jwk' });
  return Buffer.from(createPublicKey(key).export({ format: 'jwk' }).x!, 'base64url').toString('base64');
}
