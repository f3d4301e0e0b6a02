/**
 * The interactive wizard: the same setup as the flags, asked for in a terminal. It only asks: each
 * answer lands in the same raw request (`SourcedInput`) that flags and config files fill, every
 * answer is checked in place by the schema (./check.ts), and what it returns goes through the
 * very same `resolveConfig` and pipeline as a non-interactive run. Nothing is written here.
 *
 * Answers already given by flags or `--config` are not asked again (unless the schema rejects
 * them: then the wizard says so and asks). Values from the previous bundle's selfmail.yaml are
 * the defaults. Every default is the safe choice.
 */
import { networkInterfaces } from 'node:os';
import type { Ask, EndScreen } from '../generate.js';
import type { Io } from '../cli/io.js';
import { RefusalError } from '../errors.js';
import type { SourcedInput } from '../config/raw.js';
import { refusals } from '../policy/refusals.js';
import { type Interfaces, localAddresses } from './addresses.js';
import { type Prompter, guarded, inquirerPrompter } from './prompter.js';
import { type Step, type WizardContext, canonicalEmail } from './steps/context.js';
import { askNames } from './steps/names.js';
import { askIngress } from './steps/ingress.js';
import { askNameServers } from './steps/nameservers.js';
import { askMailboxes } from './steps/mailboxes.js';
import { askAdmin } from './steps/admin.js';
import { askSpamLookups } from './steps/spam.js';
import { askBackup } from './steps/backup.js';
import { review } from './steps/review.js';

export type { Prompter } from './prompter.js';
export { type IngressChoice, ingressChoices } from './steps/ingress.js';
export { MIN_PASSWORD_LENGTH, passwordProblem } from './steps/mailboxes.js';
export { reviewLines } from './steps/review.js';

export interface WizardDeps {
  prompter: Prompter;
  /** Mailboxes whose password hash the previous bundle already holds (keeping it is offered). */
  hashed?: ReadonlySet<string>;
  /** This machine's interfaces (os.networkInterfaces); tests pass a fixed set. */
  interfaces?: () => Interfaces;
}

export const WELCOME = [
  'selfmail builds a mail host for your own domains: keys, signed DNS zones, Postfix, Dovecot, firewall, all made on this machine.',
  'It never uses UPnP, a third-party tunnel or relay, hosted DNS or a key made elsewhere, and asks no web service anything.',
  'Nothing is written before you confirm the review at the end, and nothing is installed (that is selfmail apply). Ctrl-C quits.',
];

/** The end screen of an interactive run (src/wizard/end.ts, loaded only once the bundle is written). */
export const showEndScreen: EndScreen = async (done, io) => {
  const { printEndScreen } = await import('./end.js');
  printEndScreen(done, io);
};

/** `runWizard` as `generate` calls it: the terminal prompter and this machine's interfaces. */
export const runWizard: Ask = async (input, passwords, io, hashed) =>
  wizard(input, passwords, io, { prompter: await inquirerPrompter(io), interfaces: networkInterfaces, ...(hashed ? { hashed } : {}) });

/** The questions in order, one step per file under ./steps/; the review comes after them. */
const STEPS: readonly Step[] = [askNames, askIngress, askNameServers, askMailboxes, askAdmin, askSpamLookups, askBackup];

/**
 * Ask for everything that is still missing, check each answer with the schema, show a review, and
 * return the completed request and the mailbox passwords (keyed by canonical address).
 * Throws RefusalError at once when the given flags or file ask for something refused, and
 * InterruptedError on Ctrl-C.
 */
export async function wizard(
  input: SourcedInput,
  given: Map<string, string>,
  io: Io,
  deps: WizardDeps,
): Promise<{ input: SourcedInput; passwords: Map<string, string> }> {
  // A refused request is refused before any question: no one should answer ten questions first.
  const refused = refusals(input);
  if (refused.length > 0) throw new RefusalError(refused);

  const c: WizardContext = {
    draft: input,
    io,
    p: guarded(deps.prompter),
    found: localAddresses((deps.interfaces ?? networkInterfaces)()),
    passwords: new Map(given),
    typedHere: new Set<string>(),
    // Mailboxes whose hash the bundle holds, whether they are listed by the bundle or by flags.
    bundleUsers: new Set([
      ...(input.origins.users === 'bundle' ? (input.values.users ?? []).map(canonicalEmail) : []),
      ...[...(deps.hashed ?? [])].map(canonicalEmail),
    ]),
  };
  for (const line of WELCOME) io.say(line);
  do {
    for (const step of STEPS) await step(c);
  } while ((await review(c)) === 'again');
  return { input: c.draft, passwords: c.passwords };
}
