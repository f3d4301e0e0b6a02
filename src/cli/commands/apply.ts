/**
 * `selfmail apply --bundle DIR [--root R] [--dry-run] [--no-reload] [--allow-ssh-lockout] [--json]`:
 * validate a bundle with the services' own tools, install it, start and enable what it needs,
 * roll back on failure.
 */
import { applyBundle } from '../../apply/index.js';
import { InputError } from '../../errors.js';
import type { Command } from '../io.js';
import { parseCommandArgs } from '../usage.js';

const OPTIONS = {
  bundle: { type: 'string' },
  root: { type: 'string' },
  'dry-run': { type: 'boolean' },
  'no-reload': { type: 'boolean' },
  'allow-ssh-lockout': { type: 'boolean' },
  json: { type: 'boolean' },
} as const;

export const run: Command = async (args, io) => {
  const { values } = parseCommandArgs('selfmail apply', args, OPTIONS, false);
  if (!values.bundle) {
    throw new InputError([{ field: '--bundle', message: 'missing: name the bundle folder written by selfmail init (--bundle DIR)' }]);
  }
  const result = await applyBundle({
    bundleDir: values.bundle,
    root: values.root ?? '/',
    dryRun: values['dry-run'] ?? false,
    noReload: values['no-reload'] ?? false,
    allowSshLockout: values['allow-ssh-lockout'] ?? false,
    ...(io.progress ? { onProgress: (l: string) => io.progress?.(l) } : {}),
  });
  if (io.jsonMode) {
    io.json(result);
    return 0;
  }
  for (const k of result.kept) io.say(`kept     ${k.systemPath}: ${k.reason}`);
  for (const w of result.warnings) io.warn(`warning: ${w}`);
  if (result.dryRun) {
    if (result.diff) io.say(result.diff.replace(/\n$/, ''));
    for (const a of result.accounts) io.say(`# account ${a}: would be created (system user, no shell, no password)`);
    io.say(`dry run: ${result.changes.length} file(s) would change, ${result.unchanged} already installed; nothing was changed`);
    return 0;
  }
  for (const c of result.changes) io.say(`${c.action.padEnd(8)} ${c.systemPath}`);
  for (const a of result.accounts) io.say(`account  ${a} created (system user, no shell, no password)`);
  if (result.validated.length > 0) io.say(`validated: ${result.validated.join(', ')}`);
  if (result.backupDir) io.say(`previous files saved in ${result.backupDir}`);
  if (result.started.length > 0) io.say(`started: ${result.started.join(', ')}`);
  if (result.reloaded.length > 0) io.say(`reloaded: ${result.reloaded.join(', ')}`);
  if (result.retired.length > 0) io.say(`stopped and disabled (no longer needed: rspamd signs): ${result.retired.join(", ")}`);
  if (result.reloadSkipped) io.say(`units: ${result.reloadSkipped}`);
  else if (result.enabled.length > 0) io.say(`enabled and running: ${result.enabled.join(', ')}`);
  io.say(
    result.changes.length === 0 && result.accounts.length === 0
      ? `nothing to install: all ${result.unchanged} file(s) already in place`
      : `applied: ${result.changes.length} file(s) changed, ${result.unchanged} already in place`,
  );
  return 0;
};
