#!/usr/bin/env node
/**
 * Build step: bundle the compiled CLI (dist/cli/main.js) and its pure-JS dependencies into a few
 * ES module chunks under dist/app/, split at every lazy import. Node then loads a handful of files
 * instead of hundreds, which is most of a re-run's time. dist/app sits at the same depth as the
 * other dist folders, so the paths the code finds from import.meta.url (templates/, package.json,
 * dist/render/templates.precompiled.js) stay right.
 */
import { build } from 'esbuild';
import { rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
rmSync(`${root}dist/app`, { recursive: true, force: true });
await build({
  entryPoints: [`${root}dist/cli/main.js`],
  outdir: `${root}dist/app`,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  // Native addons and the rehearsal's protocol clients stay ordinary packages.
  external: ['@node-rs/argon2', 'nodemailer', 'imapflow', 'mailauth', './templates.precompiled.js', '../render/templates.precompiled.js'],
  banner: { js: "import { createRequire as __selfmailRequire } from 'node:module'; const require = __selfmailRequire(import.meta.url);" },
  legalComments: 'inline',
  logLevel: 'warning',
});

// The build id: a hash of everything that decides a bundle's bytes (the bundled code and the
// precompiled templates). A bundle written by another build is always regenerated in full.
{
  const { createHash } = await import('node:crypto');
  const { readdirSync, readFileSync, writeFileSync } = await import('node:fs');
  const h = createHash('sha256');
  for (const f of readdirSync(`${root}dist/app`).sort()) h.update(f).update(readFileSync(`${root}dist/app/${f}`));
  h.update(readFileSync(`${root}dist/render/templates.precompiled.js`));
  writeFileSync(`${root}dist/build-id.txt`, `${h.digest('hex').slice(0, 32)}\n`);
}
