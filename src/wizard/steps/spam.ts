/** Outside spam lookups: none unless the user names them, with who would learn what. */
import { SPAM_LOOKUPS } from '../../rspamd/lookups.js';
import { validatorFor } from '../check.js';
import { type WizardContext, answer, prior, settled, words } from './context.js';

export async function askSpamLookups(c: WizardContext): Promise<void> {
  if (settled(c, 'spamLookups')) return;
  const before = (prior(c, 'spamLookups') ?? []).flatMap((x) => x.split(',')).filter(Boolean);
  const each = SPAM_LOOKUPS.map((l) => `${l.name}: ${l.operator} learns ${l.learns}`).join('. ');
  const ans = await c.p.input({
    message: `Outside spam blocklists to ask about each message (${SPAM_LOOKUPS.map((l) => l.name).join(', ')}; none for none)`,
    why: `None by default: rspamd filters with local checks only, and no one learns who writes to you. A blocklist catches more spam, and its operator learns about every message. ${each}.`,
    default: before.length > 0 ? before.join(' ') : 'none',
    validate: validatorFor(c.draft, 'spamLookups', (a) => words(a)),
  });
  answer(c, 'spamLookups', words(ans));
}
