/**
 * Client autoconfiguration documents: Thunderbird's `config-v1.1.xml` and Outlook's autodiscover
 * response. Both say: IMAP with implicit TLS on 993, submission with implicit TLS on 465
 * (RFC 8314 prefers both), the full address as the user name.
 */
import type { Config, DomainName } from '../config/types.js';
import type { Ports } from '../bundle/layout.js';
import { render } from '../render/index.js';

export interface ClientSettings {
  domain: DomainName;
  host: DomainName;
  imapsPort: number;
  submissionsPort: number;
}

/** What a mail client of `domain` should use (pure). */
export function clientSettings(config: Pick<Config, 'hostname'>, ports: Pick<Ports, 'imaps' | 'submissions'>, domain: DomainName): ClientSettings {
  return { domain, host: config.hostname, imapsPort: ports.imaps, submissionsPort: ports.submissions };
}

/** Thunderbird's autoconfig file, served at `https://autoconfig.<domain>/mail/config-v1.1.xml`. */
export function thunderbirdConfig(s: ClientSettings): Promise<string> {
  return render('web', 'config-v1.1.xml', s);
}

/** Outlook's autodiscover response, served at `https://autoconfig.<domain>/autodiscover/autodiscover.xml` (found through the `_autodiscover._tcp` SRV record). */
export function outlookAutodiscover(s: ClientSettings): Promise<string> {
  return render('web', 'autodiscover.xml', s);
}
