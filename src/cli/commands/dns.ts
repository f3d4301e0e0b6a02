/**
 * `selfmail dns resign --bundle DIR`: re-sign the zones whose signatures near expiry. The DNS
 * module re-signs exactly those on every generation, so this is a re-run from the bundle.
 */
import { resolve } from 'node:path';
import { InputError } from '../../errors.js';
import { sourced } from '../../config/raw.js';
import type { Io } from '../io.js';
import { parseCommandArgs } from '../usage.js';

export async function run(args: string[], io: Io): Promise<number> {
  const options = { bundle: { type: 'string' }, json: { type: 'boolean' } } as const;
  const parsed = parseCommandArgs('selfmail dns', args, options, true);
  if (parsed.positionals[0] !== 'resign' || parsed.positionals.length > 1) throw new InputError([{ field: 'selfmail dns', message: 'usage: selfmail dns resign --bundle DIR' }]);
  if (!parsed.values.bundle) throw new InputError([{ field: '--bundle', message: 'is required: selfmail dns resign --bundle DIR' }]);
  const { existsSync } = await import('node:fs');
  if (!existsSync(`${resolve(parsed.values.bundle)}/selfmail.yaml`)) {
    throw new InputError([{ field: '--bundle', message: `${resolve(parsed.values.bundle)} is not a selfmail bundle (no selfmail.yaml); create one with selfmail init --out ${parsed.values.bundle}` }]);
  }
  const { generate } = await import('../../generate.js');
  return generate(
    { out: resolve(parsed.values.bundle), layers: { flags: sourced({}, 'flag') }, passwords: new Map(), passwordIssues: [], interactive: false, demo: false },
    io,
  );
}
