/** The mail domains, the primary first, and the mail host's name inside one of them. */
import { parseDomainName } from '../../config/values.js';
import { validatorFor } from '../check.js';
import { type WizardContext, acceptable, answer, prior, settled, words } from './context.js';

/** The primary domain as answered so far ('' before it is valid). */
export function primaryDomain(c: WizardContext): string {
  const parsed = parseDomainName(c.draft.values.domains?.[0] ?? '');
  return parsed.ok ? parsed.value : '';
}

export async function askNames(c: WizardContext): Promise<void> {
  if (!settled(c, 'domains')) {
    const ans = await c.p.input({
      message: 'Mail domain(s), the primary first',
      why: 'The domains you receive mail for. Each becomes a DNS zone that this host signs and serves itself.',
      default: prior(c, 'domains')?.join(' '),
      validate: validatorFor(c.draft, 'domains', (a) => words(a)),
    });
    answer(c, 'domains', words(ans));
  }
  if (!settled(c, 'hostname')) {
    const before = prior(c, 'hostname');
    const ans = await c.p.input({
      message: 'Mail host name',
      why: 'The name other mail servers connect to (MX); its TLS key is pinned in DNS (DANE). It must lie inside one of your domains.',
      default: acceptable(c, 'hostname', before) ? before : `mail.${primaryDomain(c)}`,
      validate: validatorFor(c.draft, 'hostname', (a) => a.trim()),
    });
    answer(c, 'hostname', ans.trim());
  }
}
