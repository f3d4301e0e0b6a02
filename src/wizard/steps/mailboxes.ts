/** The mailboxes, then a password for each that has neither one from the file nor a kept hash. */
import type { Io } from '../../cli/io.js';
import { validatorFor } from '../check.js';
import type { Prompter } from '../prompter.js';
import { type WizardContext, answer, canonicalEmail, prior, settled, words } from './context.js';

/**
 * The shortest mailbox password the wizard accepts. The IMAP and submission ports face the
 * internet, where bots guess passwords all day; fail2ban slows them down, and 12 characters put a
 * password out of their reach.
 */
export const MIN_PASSWORD_LENGTH = 12;

export async function askMailboxes(c: WizardContext): Promise<void> {
  if (!settled(c, 'users')) {
    const ans = await c.p.input({
      message: 'Mailboxes (addresses, space-separated)',
      why: 'Each mailbox gets an IMAP and submission login with a password you choose now; each must be in one of your domains.',
      default: prior(c, 'users')?.join(' '),
      validate: validatorFor(c.draft, 'users', (a) => words(a)),
    });
    answer(c, 'users', words(ans));
  }
  const users = (c.draft.values.users ?? []).map(canonicalEmail);
  // A mailbox dropped on a second pass takes the password typed for it along.
  for (const u of c.typedHere) {
    if (!users.includes(u)) {
      c.passwords.delete(u);
      c.typedHere.delete(u);
    }
  }
  for (const u of users) {
    if ([...c.passwords.keys()].some((k) => canonicalEmail(k) === u)) continue;
    if (c.bundleUsers.has(u)) {
      const keep = await c.p.confirm({
        message: `Keep the current password of ${u}?`,
        why: 'The bundle already holds its hash; keeping it changes nothing.',
        default: true,
      });
      if (keep) continue;
    }
    c.passwords.set(u, await newPassword(c.p, u, c.io));
    c.typedHere.add(u);
  }
}

/** A problem with a new password, or true. Only hashes are stored; the rule exists for the login ports. */
export function passwordProblem(pw: string): true | string {
  if (pw.length < MIN_PASSWORD_LENGTH) {
    return `is ${pw.length} characters long; use at least ${MIN_PASSWORD_LENGTH}: the login ports face the internet, where bots guess passwords all day`;
  }
  if (/[\x00-\x1f\x7f]/.test(pw)) return 'contains a control character, which a mail client cannot send reliably';
  return true;
}

/** A hidden password typed twice; a mismatch asks again. */
async function newPassword(p: Prompter, user: string, io: Io): Promise<string> {
  for (;;) {
    const pw = await p.password({
      message: `Password for ${user}`,
      why: `Hidden as you type. Only its hash is stored, and never in selfmail.yaml. At least ${MIN_PASSWORD_LENGTH} characters.`,
      validate: (a) => {
        const problem = passwordProblem(a);
        return problem === true ? true : `The password ${problem}`;
      },
    });
    const again = await p.password({ message: `The same password again for ${user}`, why: 'To catch a typing mistake you could not see.' });
    if (pw === again) return pw;
    io.warn('The two passwords differ; type them again.');
  }
}
