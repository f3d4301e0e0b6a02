/**
 * `selfmail alias add|remove|list`: aliases and catch-alls of a bundle. Like `selfmail user`, each
 * change is a new alias list as the flags layer over selfmail.yaml and the normal generation; the
 * schema's rules (no loop, no alias over a mailbox, a catch-all that takes only what nothing else
 * names) hold exactly as they do for `init --alias`.
 */
import { InputError, type InputIssue } from '../../errors.js';
import { sourced } from '../../config/raw.js';
import type { Config } from '../../config/types.js';
import type { Io } from '../io.js';
import { parseCommandArgs } from '../usage.js';
import { applyAfter, readBundleConfig } from '../bundle-config.js';

const USAGE = 'usage: selfmail alias add SOURCE TARGET... --bundle DIR [--apply] | alias remove SOURCE --bundle DIR [--apply] | alias list --bundle DIR [--json] (SOURCE @domain: a catch-all)';

const OPTIONS = {
  bundle: { type: 'string' },
  apply: { type: 'boolean' },
  json: { type: 'boolean' },
} as const;

export async function run(args: string[], io: Io): Promise<number> {
  const parsed = parseCommandArgs('selfmail alias', args, OPTIONS, true);
  const [action, source, ...targets] = parsed.positionals;
  const v = parsed.values;
  const here = `selfmail alias ${action ?? ''}`.trim();
  const issues: InputIssue[] = [];
  if (action !== 'add' && action !== 'remove' && action !== 'list') issues.push({ field: 'selfmail alias', message: USAGE });
  else if (action === 'list' && source !== undefined) issues.push({ field: here, message: `takes no address; ${USAGE}` });
  else if (action !== 'list' && source === undefined) issues.push({ field: here, message: `needs the alias's address (SOURCE); ${USAGE}` });
  else if (action === 'add' && targets.length === 0) issues.push({ field: here, message: `needs at least one TARGET address; ${USAGE}` });
  else if (action === 'remove' && targets.length > 0) issues.push({ field: here, message: `takes only SOURCE; ${USAGE}` });
  if (v.apply && action === 'list') issues.push({ field: '--apply', message: 'only goes with alias add and remove' });
  if (!v.bundle) issues.push({ field: '--bundle', message: `is required; ${USAGE}` });
  if (issues.length > 0) throw new InputError(issues);

  const { out, disk, config } = await readBundleConfig(v.bundle!);
  const yaml = disk.files.get('selfmail.yaml')!.data;
  const { gatherInput } = await import('../../generate.js');
  const { resolveConfig } = await import('../../config/schema.js');

  if (action === 'list') return list(config, io);
  const from = source!.trim().toLowerCase();
  const current = config.aliases.map((a) => `${a.from}=${a.to.join(',')}`);
  let aliases: string[];
  if (action === 'add') {
    if (config.aliases.some((a) => a.from === from)) {
      throw new InputError([{ field: `${here} SOURCE`, message: `${from} is already an alias (to ${config.aliases.find((a) => a.from === from)!.to.join(', ')}); remove it first to change it` }]);
    }
    aliases = [...current, `${from}=${targets.join(',')}`];
  } else {
    if (!config.aliases.some((a) => a.from === from)) throw new InputError([{ field: `${here} SOURCE`, message: `${from} is not an alias of this bundle (selfmail alias list shows them)` }]);
    aliases = current.filter((a) => !a.startsWith(`${from}=`));
  }
  // The same rules as init's --alias, with the command's words in the message.
  try {
    resolveConfig(await gatherInput({ flags: sourced({ aliases }, 'flag') }, yaml));
  } catch (err) {
    if (err instanceof InputError) throw new InputError(err.issues.map((i) => (i.field === '--alias' ? { ...i, field: here } : i)));
    throw err;
  }
  const { generate } = await import('../../generate.js');
  const code = await generate({ out, layers: { flags: sourced({ aliases }, 'flag') }, passwords: new Map(), passwordIssues: [], interactive: false, demo: false }, io);
  return applyAfter(code, v.apply, out, io);
}

function list(config: Config, io: Io): number {
  if (io.jsonMode) {
    io.json({ ok: true, aliases: config.aliases });
    return 0;
  }
  if (config.aliases.length === 0) io.say('no aliases (postmaster@ and abuse@ of every domain always reach the admin)');
  for (const a of config.aliases) io.say(`${a.from} → ${a.to.join(', ')}${a.from.startsWith('@') ? '  (catch-all: only addresses that are neither a mailbox nor an alias)' : ''}`);
  return 0;
}
