/**
 * Lay bundle files out under a root folder at their system paths (the layout table), as `apply`
 * does for real and as the checks and the rehearsal do in a temporary folder.
 */
import { chmod, mkdir, utimes, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { BundleFile } from './types.js';
import { ruleFor, systemPathOf } from './layout.js';

/** Write every file that has an install rule under `root`; returns the absolute paths written. */
export async function stageTree(files: readonly BundleFile[], root: string): Promise<string[]> {
  const written: string[] = [];
  // Postfix waits (in 300 ms steps) until a config file's mtime is at least a second old, so that
  // it never reads a file still being written. Staged files get an mtime a minute back.
  const past = new Date(Date.now() - 60_000);
  for (const f of files) {
    const rule = ruleFor(f.path);
    if (!rule) continue;
    const target = join(root, systemPathOf(f.path));
    await mkdir(dirname(target), { recursive: true, mode: 0o755 });
    const mode = rule.mode ?? f.mode;
    await writeFile(target, f.data, { mode });
    await chmod(target, mode);
    await utimes(target, past, past);
    written.push(target);
  }
  return written;
}

/** The key files below `prefix` (`keys/tls/`, `keys/dkim/`): a check stages only what its service reads. */
export function keyFilesUnder(keys: { files: readonly BundleFile[] }, prefix: string): BundleFile[] {
  return keys.files.filter((f) => f.path.startsWith(prefix));
}
