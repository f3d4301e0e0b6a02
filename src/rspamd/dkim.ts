/**
 * What rspamd's DKIM signer is told, as prepared values: pure, no I/O. Each mail domain signs
 * with its two active keys (RSA and Ed25519), named by selector and the path the key is installed
 * at; published-only selectors (after a rotation) stay in DNS and sign nothing.
 */
import type { Profile } from '../bundle/layout.js';
import type { Config, DomainName } from '../config/types.js';
import type { DkimKey } from '../keys/types.js';
import { installed } from '../mail/paths.js';

/**
 * The login Postfix's loopback listener hands rspamd for the mail this host writes itself
 * (Sieve's vacation replies), so that rspamd signs it as it signs a submission. Not an account:
 * no one can log in with it; it only ever appears in rspamd's view of those messages.
 */
export const LOCAL_SENDER_LOGIN = 'selfmail-local-sender';

export interface DkimSigningModel {
  localUser: string;
  domains: Array<{ name: DomainName; selectors: Array<{ selector: string; path: string }> }>;
}

/** One active RSA and one active Ed25519 key per domain, RSA first. Throws when one is missing. */
export function dkimSigningModel(config: Pick<Config, 'domains'>, dkim: readonly DkimKey[], profile: Profile): DkimSigningModel {
  const domains = [...config.domains].sort().map((name) => {
    const selectors = (['rsa', 'ed25519'] as const).map((algorithm) => {
      const active = dkim.filter((k) => k.domain === name && k.algorithm === algorithm && k.state === 'active');
      if (active.length !== 1) throw new Error(`expected one active ${algorithm} DKIM key for ${name}, found ${active.length}`);
      const k = active[0]!;
      return { selector: k.selector, path: installed(profile, k.signingKeyPath) };
    });
    return { name, selectors };
  });
  return { localUser: LOCAL_SENDER_LOGIN, domains };
}
