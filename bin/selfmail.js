#!/usr/bin/env node
// Thin shim: check the Node version, then hand over to the compiled CLI.
const [major] = process.versions.node.split('.').map(Number);
if (major < 20) {
  process.stderr.write(`selfmail needs Node.js 20 or newer (this is ${process.versions.node}).\n`);
  process.exit(1);
}
const { main } = await import('../dist/app/main.js');
process.exitCode = await main(process.argv.slice(2));
