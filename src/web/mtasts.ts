/**
 * The MTA-STS policy (RFC 8461) of a mail domain. Its `id`, published in DNS, is derived from the
 * policy's bytes, so it changes exactly when the policy changes and senders refetch it.
 */
import { createHash } from 'node:crypto';
import { judgeCertificate } from '../verify/maintained.js';
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
 * none is installed): `enforce` only for a certificate a CA issued for the bundle's key that is
 * valid at `now` (the test verify and apply use: `judgeCertificate`). Pure.
 */
export function mtaStsModeFor(installed: Buffer | undefined, bundleCert: Buffer, now: Date): MtaStsMode {
  if (!installed) return 'testing';
  const v = judgeCertificate({ installed, bundleCert, now });
  return v.accepted && v.caIssued ? 'enforce' : 'testing';
}

/** The `id` for `_mta-sts` TXT: 20 hex digits of the policy's SHA-256 (RFC 8461 allows 1–32 alphanumerics). */
export function mtaStsId(policy: string): string {
  return createHash('sha256').update(policy).digest('hex').slice(0, 20);
}
