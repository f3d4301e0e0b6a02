/**
 * The daily encrypted backup: where it goes (none unless the user names a place), the age public
 * keys it is encrypted to, and for an sftp:// target the backup machine's one accepted host key.
 */
import { parseTargetSpec, targetText } from '../../backup/format.js';
import { fieldName } from '../../config/raw.js';
import { validatorFor, withAnswer } from '../check.js';
import { type WizardContext, acceptable, answer, isGiven, optional, prior, settled, words } from './context.js';

/** The target as an answer: blank or "none" is none (kept as "none", so leftover keys are ignored). */
const targetOf = (a: string): string => optional(a) ?? 'none';

/** Recipients, one per word; the "Public key:" that age-keygen prints before one is dropped. */
const recipientsOf = (a: string): string[] => words(a.replace(/public key:/gi, ' '));

export async function askBackup(c: WizardContext): Promise<void> {
  if (!settled(c, 'backupTo')) {
    const before = prior(c, 'backupTo');
    const ans = await c.p.input({
      message: 'Daily encrypted backups to: a folder of this host, or sftp://USER@HOST/PATH (none for none)',
      why:
        'Encrypted on this host to a key made on your own device, so neither this host nor the backup machine can read them. ' +
        'A folder of this host: an attached disk (like /mnt/backup). sftp://USER@HOST/PATH: a machine of yours, over SSH. ' +
        'none: no daily backup (selfmail backup by hand still works).',
      default: before !== undefined && acceptable(c, 'backupTo', before) ? before : 'none',
      validate: validatorFor(c.draft, 'backupTo', targetOf),
    });
    answer(c, 'backupTo', targetOf(ans));
  }
  const to = c.draft.values.backupTo?.trim() ?? 'none';
  if (to.toLowerCase() === 'none') return;
  const spec = parseTargetSpec(to);
  if (!spec.ok) return; // a given target the schema rejects was asked above; this cannot stay

  if (!settled(c, 'backupRecipients')) {
    const before = prior(c, 'backupRecipients');
    const ans = await c.p.input({
      message: 'age public key(s) the backups are encrypted to (age1…)',
      why:
        'Make the key on your own device, not here: age-keygen -o key.txt there prints "Public key: age1…", the one to give. ' +
        'Never the AGE-SECRET-KEY line: it stays on your device, and only it can read the backups. ' +
        'Keep a copy of key.txt somewhere safe: lose it and the backups are lost. Several keys: separated by spaces.',
      default: before !== undefined && acceptable(c, 'backupRecipients', before) ? before.join(' ') : undefined,
      validate: validatorFor(c.draft, 'backupRecipients', recipientsOf),
    });
    answer(c, 'backupRecipients', recipientsOf(ans));
  }

  if (spec.value.kind !== 'sftp') {
    // A host key is for an sftp:// target only: one from an earlier answer goes, a given one is said.
    if (c.draft.values.backupHostKey !== undefined) {
      if (isGiven(c, 'backupHostKey')) c.io.warn(`${fieldName(c.draft, 'backupHostKey')}: only for an sftp:// target; left out, as the backups go to a folder of this host.`);
      c.draft = withAnswer(c.draft, 'backupHostKey', undefined);
    }
    return;
  }
  const { host } = spec.value;
  if (!settled(c, 'backupHostKey')) {
    const before = prior(c, 'backupHostKey');
    const ans = await c.p.input({
      message: `SSH host key of ${host} (ssh-ed25519 AAAA…)`,
      why:
        `The only key the backup connection will accept from ${host}: nothing is learnt on first use. ` +
        `On ${host}: cat /etc/ssh/ssh_host_ed25519_key.pub, and give the whole line. ` +
        `After selfmail apply, selfmail backup --remote-setup --to ${targetText(spec.value)} (as root on this host) prints what to run on ${host}.`,
      default: before !== undefined && acceptable(c, 'backupHostKey', before) ? before : undefined,
      validate: validatorFor(c.draft, 'backupHostKey', optional),
    });
    answer(c, 'backupHostKey', optional(ans));
    return;
  }
  c.io.say(`  After selfmail apply, selfmail backup --remote-setup --to ${targetText(spec.value)} (as root on this host) prints what to run on ${host}.`);
}
