#!/usr/bin/env node
// Thin shim: check the Node version, then hand over to the compiled CLI.
const [major] = process.versions.node.split('.').map(Number);
if (major < 20) {
  process.stderr.write(`selfmail needs Node.js 20 or newer (this is ${process.versions.node}).\n`);
  process.exit(1);
}
// `selfmail keys list | head` closes the pipe early: that is not an error worth a stack trace.
process.stdout.on('error', (err) => {
  if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  throw err;
});
const { main } = await import('../dist/app/main.js');
process.exitCode = await main(process.argv.slice(2));
