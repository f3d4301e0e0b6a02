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
