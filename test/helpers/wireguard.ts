/** WireGuard keys for tests, made when the test runs (never committed). */
import { isX25519PublicKey, newWgPrivateKey, wgPublicKey } from '../../src/vps/wireguard.js';

/** A private key as `wg genkey` makes it, of the 15 in 16 that are no point a public key can be. */
export function privateKeyNoPoint(): string {
  for (;;) {
    const k = newWgPrivateKey();
    if (!isX25519PublicKey(Buffer.from(k, 'base64'))) return k;
  }
}

/** A real public key (of a private key made and forgotten here). */
export function somePublicKey(): string {
  return wgPublicKey(newWgPrivateKey());
}
