/** The admin address (postmaster, abuse, reports) and the networks allowed to reach SSH. */
import { validatorFor } from '../check.js';
import { type WizardContext, acceptable, answer, canonicalEmail, prior, settled, words } from './context.js';

export async function askAdmin(c: WizardContext): Promise<void> {
  if (!settled(c, 'admin')) {
    const before = prior(c, 'admin');
    const ans = await c.p.input({
      message: 'Admin address (postmaster, abuse, DMARC and TLS reports)',
      why: 'Bounces, abuse complaints and the daily DMARC and TLS reports go there; it may be outside your domains.',
      default: acceptable(c, 'admin', before) ? before : (c.draft.values.users ?? []).map(canonicalEmail)[0],
      validate: validatorFor(c.draft, 'admin', (a) => a.trim()),
    });
    answer(c, 'admin', ans.trim());
  }
  if (!settled(c, 'adminSshFrom')) {
    const before = prior(c, 'adminSshFrom') ?? [];
    const ans = await c.p.input({
      message: 'Networks allowed to reach SSH, in CIDR form (none: SSH closed to the network)',
      why: 'Your LAN is not trusted by default: any machine on it may be infected. Name only the addresses you administer from.',
      default: before.length > 0 ? before.join(' ') : undefined,
      validate: validatorFor(c.draft, 'adminSshFrom', (a) => words(a)),
    });
    answer(c, 'adminSshFrom', words(ans));
  }
}
