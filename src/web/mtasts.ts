/**
 * The MTA-STS policy (RFC 8461) of a mail domain. Its `id`, published in DNS, is derived from the
 * policy's bytes, so it changes exactly when the policy changes and senders refetch it.
 */
import { createHash } from 'node:crypto';
import type { Config } from '../config/types.js';

/** One week: RFC 8461 suggests weeks; senders cache the policy this long. */
export const MTA_STS_MAX_AGE = 604800;

/** The policy text served at `https://mta-sts.<domain>/.well-known/mta-sts.txt` (CRLF line ends, as RFC 8461 shows). */
export function mtaStsPolicy(config: Pick<Config, 'hostname'>): string {
  return ['version: STSv1', 'mode: enforce', `mx: ${config.hostname}`, `max_age: ${MTA_STS_MAX_AGE}`, ''].join('\r\n');
}

/** The `id` for `_mta-sts` TXT: 20 hex digits of the policy's SHA-256 (RFC 8461 allows 1–32 alphanumerics). */
export function mtaStsId(policy: string): string {
  return createHash('sha256').update(policy).digest('hex').slice(0, 20);
}
