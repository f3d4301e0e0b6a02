/**
 * Before any test: the built CLI (dist/, which bin/selfmail.js loads) is the build of the current
 * sources. `npm test` builds first; a single test file run after an edit (npx vitest run FILE)
 * would otherwise test stale code, so a source newer than the last build rebuilds it here.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO = fileURLToPath(new URL('../../', import.meta.url));

function newest(dir: string): number {
  let t = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    t = Math.max(t, e.isDirectory() ? newest(p) : statSync(p).mtimeMs);
  }
  return t;
}

/** Rebuild dist/ when any source, template or build script is newer than its build id. */
export function ensureCurrentBuild(): void {
  let built = 0;
  try {
    built = statSync(join(REPO, 'dist/build-id.txt')).mtimeMs;
  } catch {
    built = 0;
  }
  const sources = Math.max(...['src', 'templates', 'scripts'].map((d) => newest(join(REPO, d))), statSync(join(REPO, 'package.json')).mtimeMs);
  if (sources <= built) return;
  execFileSync('npm', ['run', 'build', '--silent'], { cwd: REPO, stdio: 'inherit' });
}

export default function setup(): void {
  ensureCurrentBuild();
}
