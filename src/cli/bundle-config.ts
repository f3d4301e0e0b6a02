/**
 * What the commands that change a bundle share (`keys`, `user`, `alias`): the bundle named by
 * --bundle read from disk with its configuration resolved from its own selfmail.yaml, and
 * `--apply` run after a change.
 */
import { resolve } from 'node:path';
import type { DiskBundle } from '../bundle/write.js';
import { sourced } from '../config/raw.js';
import type { Config } from '../config/types.js';
import { InputError } from '../errors.js';
import type { Io } from './io.js';

export interface BundleConfig {
  /** The bundle folder, absolute. */
  out: string;
  disk: DiskBundle;
  config: Config;
}

/** Read the bundle at `dir` and resolve its selfmail.yaml; InputError naming --bundle when it is none. */
export async function readBundleConfig(dir: string): Promise<BundleConfig> {
  const out = resolve(dir);
  const { readBundle } = await import('../bundle/write.js');
  const disk = await readBundle(out);
  const yaml = disk.files.get('selfmail.yaml')?.data;
  if (!yaml) throw new InputError([{ field: '--bundle', message: `${out} is not a selfmail bundle (no selfmail.yaml); create one with selfmail init --out ${dir}` }]);
  const { gatherInput } = await import('../generate.js');
  const { resolveConfig } = await import('../config/schema.js');
  const { config } = resolveConfig(await gatherInput({ flags: sourced({}, 'flag') }, yaml));
  return { out, disk, config };
}

/** `--apply`: `selfmail apply --bundle DIR` on this host, right after a change that succeeded. */
export async function applyAfter(code: number, apply: boolean | undefined, out: string, io: Io): Promise<number> {
  if (code !== 0 || !apply) return code;
  const { run } = await import('./commands/apply.js');
  return run(['--bundle', out], io);
}
