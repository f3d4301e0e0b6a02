/**
 * `selfmail rehearse --bundle DIR [--password-file FILE] [--json]`: run the bundle on loopback
 * and exchange real mail. Exit 0 only when every step passed; 4 when a step failed or a daemon
 * could not run.
 */
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { EXIT, InputError } from '../../errors.js';
import type { Command } from '../io.js';

export const run: Command = async (args, io) => {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      allowPositionals: false,
      options: { bundle: { type: 'string' }, 'password-file': { type: 'string' }, json: { type: 'boolean' } },
    });
  } catch (err) {
    throw new InputError([{ field: 'selfmail rehearse', message: (err as Error).message }]);
  }
  const v = parsed.values;
  if (!v.bundle) throw new InputError([{ field: '--bundle', message: 'is required: selfmail rehearse --bundle DIR' }]);
  const { rehearse, formatReport } = await import('../../rehearse/index.js');
  io.say('Starting NSD, OpenDKIM, Dovecot and Postfix from the bundle on loopback…');
  const report = await rehearse({
    bundle: resolve(v.bundle),
    ...(v['password-file'] !== undefined ? { passwordFile: v['password-file'] } : {}),
    ...(io.jsonMode ? {} : { onStep: (s) => io.say(`  ${s.ok ? 'PASS' : 'FAIL'}  ${s.id} (${(s.ms / 1000).toFixed(1)} s)`) }),
  });
  if (io.jsonMode) io.json(report);
  else for (const l of formatReport(report)) io.say(l);
  return report.ok ? EXIT.ok : EXIT.tool;
};
