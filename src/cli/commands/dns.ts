/**
 * `selfmail dns resign --bundle DIR`: re-sign the zones whose signatures near expiry. The DNS
 * module re-signs exactly those on every generation, so this is a re-run from the bundle.
 */
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { InputError } from '../../errors.js';
import { sourced } from '../../config/raw.js';
import type { Io } from '../io.js';

export async function run(args: string[], io: Io): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({ args, allowPositionals: true, options: { bundle: { type: 'string' }, json: { type: 'boolean' } } });
  } catch (err) {
    throw new InputError([{ field: 'selfmail dns', message: (err as Error).message }]);
  }
  if (parsed.positionals[0] !== 'resign') throw new InputError([{ field: 'selfmail dns', message: 'usage: selfmail dns resign --bundle DIR' }]);
  if (!parsed.values.bundle) throw new InputError([{ field: '--bundle', message: 'is required: selfmail dns resign --bundle DIR' }]);
  const { generate } = await import('../../generate.js');
  return generate(
    { out: resolve(parsed.values.bundle), layers: { flags: sourced({}, 'flag') }, passwords: new Map(), passwordIssues: [], interactive: false, demo: false },
    io,
  );
}
