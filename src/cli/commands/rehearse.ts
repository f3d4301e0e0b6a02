/**
 * `selfmail rehearse --bundle DIR [--password-file FILE] [--json]`: run the bundle on loopback
 * and exchange real mail. Exit 0 only when every step passed; 4 when a step failed or a daemon
 * could not run.
 */
import { resolve } from 'node:path';
import { EXIT, InputError } from '../../errors.js';
import type { Command } from '../io.js';
import { parseCommandArgs } from '../usage.js';

const OPTIONS = { bundle: { type: 'string' }, 'password-file': { type: 'string' }, json: { type: 'boolean' } } as const;

export const run: Command = async (args, io) => {
  const parsed = parseCommandArgs('selfmail rehearse', args, OPTIONS, false);
  const v = parsed.values;
  if (!v.bundle) throw new InputError([{ field: '--bundle', message: 'is required: selfmail rehearse --bundle DIR' }]);
  // Before saying what starts: a folder that is not a bundle is an input error, said as one.
  const { existsSync } = await import('node:fs');
  const { join } = await import('node:path');
  if (!existsSync(join(resolve(v.bundle), 'selfmail.yaml'))) {
    throw new InputError([{ field: '--bundle', message: `${resolve(v.bundle)} is not a selfmail bundle (no selfmail.yaml); create one with selfmail init --out ${v.bundle}` }]);
  }
  // The rehearsal runs in a network of its own (src/rehearse/isolate.ts): this same command,
  // again, inside new namespaces; root and every tool are checked here first.
  const { isolated, runIsolated } = await import('../../rehearse/isolate.js');
  if (!isolated()) {
    const { requireRootAndTools } = await import('../../rehearse/host.js');
    await requireRootAndTools();
    return runIsolated();
  }
  const { rehearse, formatReport } = await import('../../rehearse/index.js');
  io.say('Starting NSD, rspamd, Dovecot and Postfix from the bundle on loopback…');
  const report = await rehearse({
    bundle: resolve(v.bundle),
    ...(v['password-file'] !== undefined ? { passwordFile: v['password-file'] } : {}),
    // Progress on a terminal only (rewritten in place); the report below says each step once.
    ...(io.progress ? { onStep: (s) => io.progress?.(`Rehearsal: ${s.id} ${s.ok ? 'passed' : 'FAILED'} (${(s.ms / 1000).toFixed(1)} s)…`) } : {}),
  });
  if (io.jsonMode) io.json(report);
  else for (const l of formatReport(report)) io.say(l);
  return report.ok ? EXIT.ok : EXIT.tool;
};
