/**
 * `selfmail doctor --bundle DIR [--json]`: what is true on the live host. Each check has a stable
 * id and a status (pass, warn, fail, unknown); anything not passing says what to do. Exit 0 when
 * nothing fails, 5 when a check does. It asks only the host itself, and says so.
 */
import { EXIT, InputError, ToolError } from '../../errors.js';
import type { Io } from '../io.js';
import { parseCommandArgs } from '../usage.js';
import { readBundleConfig } from '../bundle-config.js';

const OPTIONS = {
  bundle: { type: 'string' },
  json: { type: 'boolean' },
} as const;

export async function run(args: string[], io: Io): Promise<number> {
  const parsed = parseCommandArgs('selfmail doctor', args, OPTIONS, false);
  if (!parsed.values.bundle) throw new InputError([{ field: '--bundle', message: 'is required; usage: selfmail doctor --bundle DIR [--json]' }]);
  const { config, disk } = await readBundleConfig(parsed.values.bundle);
  if (typeof process.getuid === 'function' && process.getuid() !== 0) {
    throw new ToolError('doctor reads the state of every unit and connects to the host\'s own services: run it as root, on the mail host', 'selfmail');
  }
  const { runDoctor } = await import('../../doctor/index.js');
  const { anyFailed } = await import('../../doctor/checks.js');
  const results = await runDoctor({ config, files: disk.files });
  const failed = anyFailed(results);
  if (io.jsonMode) {
    io.json({ ok: !failed, checks: results });
  } else {
    io.say('selfmail doctor asks only this host: systemd, its own services on their ports, its own name server and web server. No outside service learns anything.');
    for (const r of results) {
      io.say(`${r.status.toUpperCase().padEnd(7)} ${r.id.padEnd(13)} ${r.summary}`);
      if (r.fix) io.say(`${' '.repeat(22)}→ ${r.fix}`);
    }
  }
  return failed ? EXIT.checkFailed : 0;
}
