/**
 * `selfmail apply --bundle DIR [--root R] [--dry-run] [--no-reload] [--json]`: install a bundle,
 * validate it with the services' own tools, roll back on failure, reload what runs.
 */
import { parseArgs } from 'node:util';
import { applyBundle } from '../../apply/index.js';
import { InputError } from '../../errors.js';
import type { Command } from '../io.js';

export const run: Command = async (args, io) => {
  let values;
  try {
    ({ values } = parseArgs({
      args,
      options: {
        bundle: { type: 'string' },
        root: { type: 'string' },
        'dry-run': { type: 'boolean' },
        'no-reload': { type: 'boolean' },
        json: { type: 'boolean' },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    throw new InputError([{ field: 'apply', message: (err as Error).message }]);
  }
  if (!values.bundle) {
    throw new InputError([{ field: '--bundle', message: 'missing: name the bundle folder written by selfmail init (--bundle DIR)' }]);
  }
  const result = await applyBundle({
    bundleDir: values.bundle,
    root: values.root ?? '/',
    dryRun: values['dry-run'] ?? false,
    noReload: values['no-reload'] ?? false,
  });
  if (io.jsonMode) {
    io.json(result);
    return 0;
  }
  for (const k of result.kept) io.say(`kept     ${k.systemPath}: ${k.reason}`);
  for (const w of result.warnings) io.warn(w);
  if (result.dryRun) {
    if (result.diff) io.say(result.diff.replace(/\n$/, ''));
    io.say(`dry run: ${result.changes.length} file(s) would change, ${result.unchanged} already installed; nothing was changed`);
    return 0;
  }
  for (const c of result.changes) io.say(`${c.action.padEnd(8)} ${c.systemPath}`);
  if (result.changes.length === 0) {
    io.say(`nothing to do: all ${result.unchanged} file(s) already installed`);
    return 0;
  }
  if (result.validated.length > 0) io.say(`validated: ${result.validated.join(', ')}`);
  if (result.backupDir) io.say(`previous files saved in ${result.backupDir}`);
  if (result.reloaded.length > 0) io.say(`reloaded: ${result.reloaded.join(', ')}`);
  else if (result.reloadSkipped) io.say(`no service reloaded: ${result.reloadSkipped}`);
  return 0;
};
