/** Spawn the real built CLI (bin/selfmail.js → dist/), as a user or a script would. */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFile, readdir, stat } from 'node:fs/promises';
import { STAT_CACHE } from '../../src/bundle/write.js';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const BIN = fileURLToPath(new URL('../../bin/selfmail.js', import.meta.url));

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * The built CLI with `args`. `via`: a command it runs under, given node, the bin and the args
 * after its own (`ip netns exec NS`, `unshare … sh -c 'mount …; exec "$0" "$@"'`).
 */
export function runCli(args: string[], opts: { input?: string; cwd?: string; env?: Record<string, string>; uid?: number; gid?: number; via?: string[] } = {}): Promise<CliResult> {
  const argv = [...(opts.via ?? []), process.execPath, BIN, ...args];
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0]!, argv.slice(1), {
      cwd: opts.cwd,
      env: { ...process.env, ...opts.env },
      stdio: ['pipe', 'pipe', 'pipe'],
      ...(opts.uid !== undefined ? { uid: opts.uid, gid: opts.gid ?? opts.uid } : {}),
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(opts.input ?? '');
  });
}

/**
 * Every file of the bundle at `dir` → "mode mtime sha256", to show that nothing changed. The
 * quick path's stat record (STAT_CACHE) is not one of the bundle's files and is left out.
 */
export async function treeState(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  let entries;
  try {
    entries = await readdir(dir, { recursive: true, withFileTypes: true });
  } catch {
    return out;
  }
  for (const e of entries) {
    if (!e.isFile()) continue;
    const p = join(e.parentPath, e.name);
    if (p === join(dir, STAT_CACHE)) continue;
    const st = await stat(p);
    const hash = createHash('sha256').update(await readFile(p)).digest('hex');
    out[p.slice(dir.length + 1)] = `${(st.mode & 0o777).toString(8)} ${st.mtimeMs} ${hash}`;
  }
  return out;
}
