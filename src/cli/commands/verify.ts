/**
 * `selfmail verify --bundle DIR [--root R] [--json]`: compare what is installed with the bundle.
 * Exit 0 when nothing drifted (warnings allowed), 4 when anything did; one line per finding.
 */
import { EXIT, InputError } from '../../errors.js';
import { formatFinding, verifyBundle } from '../../verify/index.js';
import type { Command } from '../io.js';
import { parseCommandArgs } from '../usage.js';

const OPTIONS = { bundle: { type: 'string' }, root: { type: 'string' }, json: { type: 'boolean' } } as const;

export const run: Command = async (args, io) => {
  const { values } = parseCommandArgs('selfmail verify', args, OPTIONS, false);
  if (!values.bundle) {
    throw new InputError([{ field: '--bundle', message: 'missing: name the bundle folder written by selfmail init (--bundle DIR)' }]);
  }
  const findings = await verifyBundle({ bundleDir: values.bundle, root: values.root ?? '/' });
  const failed = findings.some((f) => f.level === 'failure');
  if (io.jsonMode) {
    io.json({ clean: !failed, findings });
  } else {
    for (const f of findings) io.say(formatFinding(f));
    const attention = findings.some((f) => f.level !== 'note');
    const count = (level: string) => findings.filter((f) => f.level === level).length;
    if (!attention) {
      const own = findings.length > 0 ? ' or is the host\'s own update of it (notes above)' : '';
      io.say(`verify: every installed file matches MANIFEST.sha256${own}; keys, signatures, certificate and DS are in order`);
    } else if (!failed) io.say(`verify: installed files match; ${count('warning')} warning(s) above`);
    else {
      const w = count('warning');
      io.say(`verify: ${count('failure')} failure(s)${w > 0 ? ` and ${w} warning(s)` : ''} above: selfmail apply --bundle ${values.bundle} puts the bundle's files back`);
    }
  }
  return failed ? EXIT.tool : EXIT.ok;
};
