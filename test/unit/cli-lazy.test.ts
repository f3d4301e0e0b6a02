/**
 * `selfmail --help` must start fast: the entry chunk of the built CLI, and everything it imports
 * statically, holds no heavy module. Template engine, X.509, prompts, schema and YAML libraries
 * load only with the commands that use them (dynamic imports).
 */
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const APP = fileURLToPath(new URL('../../dist/app/', import.meta.url));

function staticClosure(file: string, seen = new Set<string>()): Set<string> {
  if (seen.has(file)) return seen;
  seen.add(file);
  const text = readFileSync(APP + file, 'utf8');
  for (const m of text.matchAll(/^import\s+(?:[^'"]*?\s+from\s+)?["']\.\/([^"']+)["'];?$/gm)) staticClosure(m[1]!, seen);
  return seen;
}

describe('start-up cost', () => {
  it('loads no heavy module before a command asks for it', () => {
    expect(existsSync(`${APP}main.js`)).toBe(true);
    const files = staticClosure('main.js');
    const code = [...files].map((f) => readFileSync(APP + f, 'utf8')).join('\n');
    for (const marker of ['node_modules/handlebars', 'node_modules/node-forge', 'node_modules/@inquirer', 'node_modules/zod', 'node_modules/yaml', 'node_modules/execa']) {
      expect(code, marker).not.toContain(marker);
    }
    // The commands themselves are separate chunks, loaded on demand.
    expect(readFileSync(`${APP}main.js`, 'utf8')).toMatch(/import\("\.\/init-[A-Z0-9]+\.js"\)/);
  });
});
