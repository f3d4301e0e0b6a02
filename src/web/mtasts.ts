/**
 * The MTA-STS policy (RFC 8461) of a mail domain. Its `id`, published in DNS, is derived from the
 * policy's bytes, so it changes exactly when the policy changes and senders refetch it.
 */
import { createHash, X509Certificate } from 'node:crypto';
import { selfSigned } from '../verify/maintained.js';
import type { Config } from '../config/types.js';

/** One week: RFC 8461 suggests weeks; senders cache the policy this long. */
export const MTA_STS_MAX_AGE = 604800;

/**
 * `enforce` tells senders to deliver only over TLS with a certificate they trust, which the
 * self-signed bootstrap certificate is not: until a CA-issued certificate for the bundle's key is
 * installed, the policy says `testing` (senders report, and deliver anyway).
 */
export type MtaStsMode = 'testing' | 'enforce';

/** The policy text served at `https://mta-sts.<domain>/.well-known/mta-sts.txt` (CRLF line ends, as RFC 8461 shows). */
export function mtaStsPolicy(config: Pick<Config, 'hostname'>, mode: MtaStsMode): string {
  return ['version: STSv1', `mode: ${mode}`, `mx: ${config.hostname}`, `max_age: ${MTA_STS_MAX_AGE}`, ''].join('\r\n');
}

/**
 * The mode for a host whose installed certificate is `installed` (PEM, leaf first; undefined when
 * none is installed): `enforce` only for a CA-issued certificate for the bundle's key (SPKI
 * SHA-256 `spkiSha256`) that is valid at `now`. Pure.
 */
/** SHA-256 of a certificate's SubjectPublicKeyInfo (what TLSA 3 1 1 pins), lower-case hex. */
export function certSpkiSha256(cert: X509Certificate | Buffer): string {
  const c = cert instanceof X509Certificate ? cert : new X509Certificate(cert);
  return createHash('sha256').update(c.publicKey.export({ type: 'spki', format: 'der' })).digest('hex');
}

export function mtaStsModeFor(installed: Buffer | undefined, spkiSha256: string, now: Date): MtaStsMode {
  if (!installed) return 'testing';
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(installed);
  } catch {
    return 'testing';
  }
  const spki = certSpkiSha256(cert);
  const valid = Date.parse(cert.validFrom) <= now.getTime() && now.getTime() < Date.parse(cert.validTo);
  return spki === spkiSha256 && valid && !selfSigned(cert) ? 'enforce' : 'testing';
}

/** The `id` for `_mta-sts` TXT: 20 hex digits of the policy's SHA-256 (RFC 8461 allows 1–32 alphanumerics). */
export function mtaStsId(policy: string): string {
  return createHash('sha256').update(policy).digest('hex').slice(0, 20);
}
