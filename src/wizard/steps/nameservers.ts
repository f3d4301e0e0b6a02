/** The name servers: this host first, then secondaries the user runs; and whether to sign the zones. */
import { validatorFor } from '../check.js';
import { type WizardContext, acceptable, answer, isGiven, prior, settled, spaced } from './context.js';
import { primaryDomain } from './names.js';

export async function askNameServers(c: WizardContext): Promise<void> {
  if (!settled(c, 'ns')) {
    const before = prior(c, 'ns') ?? [];
    const selfBefore = before.find((s) => !s.includes('=')) ?? before[0];
    const ans = await c.p.input({
      message: 'Name of the name server on this host',
      why: 'This host serves your signed zones itself (NSD), so no DNS provider can change your records; the registrar gets this name.',
      default: acceptable(c, 'ns', selfBefore === undefined ? undefined : [selfBefore]) ? selfBefore : `ns1.${primaryDomain(c)}`,
      validate: validatorFor(c.draft, 'ns', (a) => [a.trim()]),
    });
    const self = ans.trim();
    const secondariesBefore = before.filter((s) => s !== selfBefore);
    const more = await c.p.input({
      message: 'Secondary name servers you run, as NAME=ADDR (none for none)',
      why: 'Optional: a second server of yours keeps your domains resolvable while this host is down; it gets the zones over TSIG-signed transfers.',
      default: secondariesBefore.length > 0 ? secondariesBefore.join(' ') : undefined,
      // NAME=ADDR,ADDR keeps its commas: secondaries are separated by spaces only.
      validate: validatorFor(c.draft, 'ns', (a) => [self, ...spaced(a)]),
    });
    answer(c, 'ns', [self, ...spaced(more)]);
  }
  if (!isGiven(c, 'dnssec')) {
    const yes = await c.p.confirm({
      message: 'Sign the zones with DNSSEC?',
      why: 'Signing lets resolvers detect forged answers, and DANE (your TLS key pinned for other mail servers) needs it. Say no only if your registrar takes no DS record.',
      default: prior(c, 'dnssec') ?? true,
    });
    answer(c, 'dnssec', yes);
  }
}
