/**
 * The CLI entry: picks the command, runs it, and maps every error to a message and an exit code.
 * This is the only place that knows about exit codes; nothing else calls process.exit.
 * Commands are imported lazily so `selfmail --help` loads almost nothing.
 */
import { EXIT, InputError, InterruptedError, RefusalError, SelfmailError, ToolError } from '../errors.js';
import { type Command, processIo } from './io.js';
import { INIT_FLAGS } from './usage.js';

const COMMANDS: Record<string, () => Promise<{ run: Command }>> = {
  init: () => import('./commands/init.js'),
  rehearse: () => import('./commands/rehearse.js'),
  apply: () => import('./commands/apply.js'),
  verify: () => import('./commands/verify.js'),
  keys: () => import('./commands/keys.js'),
  dns: () => import('./commands/dns.js'),
  user: () => import('./commands/user.js'),
  alias: () => import('./commands/alias.js'),
  import: () => import('./commands/import.js'),
  doctor: () => import('./commands/doctor.js'),
  backup: () => import('./commands/backup.js'),
  restore: () => import('./commands/restore.js'),
};

export const HELP = `selfmail — set up a self-hosted mail host with no third party in its trust path

Usage:
  selfmail init [flags]                      create or update a bundle (a wizard on a terminal)
  selfmail rehearse --bundle DIR             run the bundle on loopback and exchange test mail
  selfmail apply --bundle DIR [--root DIR] [--dry-run] [--no-reload] [--allow-ssh-lockout]
                                             validate, install, start and enable; roll back on failure
  selfmail verify --bundle DIR [--root DIR]  compare what is installed with MANIFEST.sha256
  selfmail doctor --bundle DIR [--json]      what is true on the live host and around it: units,
                                             certificates, TLSA, DNSSEC, delegation, DS, PTR, UPnP
  selfmail keys list|rotate|retire --bundle DIR …   inspect and rotate keys (never prints private parts)
  selfmail dns resign --bundle DIR           re-sign zones whose signatures near expiry
  selfmail user add|passwd|remove EMAIL --bundle DIR [--password-file FILE] | user list --bundle DIR
                                             the mailboxes, without retyping the setup
  selfmail alias add SOURCE TARGET... | alias remove SOURCE | alias list   --bundle DIR
                                             aliases, and catch-alls (SOURCE @domain)
  selfmail import --bundle DIR --mailbox EMAIL --from imaps://HOST --login LOGIN [--password-file FILE]
                                             copy a mailbox from an old provider (as root, after apply)
  selfmail backup --bundle DIR [--to DIR|sftp://… --recipient AGE_PUBLIC_KEY] | backup --list | --remote-setup
                                             encrypted, incremental backup to a folder or a machine of
                                             yours (daily with init --backup-to); no key that reads it
                                             is ever on the server
  selfmail restore --from DIR|sftp://… --identity FILE --drill | --to DIR
                                             prove a backup (drill), or restore it onto a new host
  selfmail <command> --help                  that command's flags and an example
  selfmail --help | --version

init flags:
${INIT_FLAGS}
Refused on principle (exit 3): --ingress upnp, --ingress tunnel, --tunnel-provider, --relay-host,
--dkim-key, --tls-key, --dnssec-key, --dns-provider, domains under a dynamic-DNS or vendor
suffix, carrier-grade NAT addresses.

Exit codes: 0 done · 1 internal error · 2 invalid or missing input · 3 refused by policy ·
4 an external validator or tool failed · 5 a doctor check failed · 130 interrupted (nothing written)
`;

async function version(): Promise<string> {
  const { readFile } = await import('node:fs/promises');
  const pkg = JSON.parse(await readFile(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

/** Run the CLI with `argv` (without node and script); returns the exit code. */
export async function main(argv: string[]): Promise<number> {
  const jsonMode = argv.includes('--json');
  const io = processIo(jsonMode);
  const [first, ...rest] = argv;
  try {
    if (first === undefined || first === '--help' || first === '-h' || first === 'help') {
      process.stdout.write(HELP);
      return first === undefined ? EXIT.input : EXIT.ok;
    }
    if (first === '--version' || first === '-v' || first === '-V') {
      process.stdout.write(`${await version()}\n`);
      return EXIT.ok;
    }
    const load = COMMANDS[first];
    if (!load) {
      const { didYouMean } = await import('./usage.js');
      const guess = didYouMean(first, Object.keys(COMMANDS));
      throw new InputError([{ field: first, message: `is not a selfmail command${guess ? ` (did you mean ${guess}?)` : ''}; see selfmail --help` }]);
    }
    if (rest.includes('--help') || rest.includes('-h')) {
      const { USAGE } = await import('./usage.js');
      process.stdout.write(USAGE[first] ?? HELP);
      return EXIT.ok;
    }
    const { run } = await load();
    return await run(rest, io);
  } catch (err) {
    return report(err, io);
  }
}

/** Print an error the way its kind deserves, and give its exit code. */
function report(err: unknown, io: ReturnType<typeof processIo>): number {
  if (err instanceof RefusalError) {
    io.warn('selfmail refuses this setup:');
    for (const r of err.refusals) {
      io.warn(`\n  ${r.field}`);
      io.warn(`    ${r.principle}: ${r.why}.`);
      io.warn(`    Instead: ${r.instead}.`);
    }
    if (err.issues.length > 0) {
      io.warn('\nAlso fix these values:');
      for (const i of err.issues) io.warn(`  ${i.field}: ${i.message}`);
    }
    if (io.jsonMode) io.json({ ok: false, exitCode: err.exitCode, refusals: err.refusals, issues: err.issues });
    return err.exitCode;
  }
  if (err instanceof InputError) {
    io.warn(err.issues.length === 1 ? 'Invalid input:' : `Invalid input (${err.issues.length} problems):`);
    for (const i of err.issues) io.warn(`  ${i.field}: ${i.message}`);
    if (io.jsonMode) io.json({ ok: false, exitCode: err.exitCode, issues: err.issues });
    return err.exitCode;
  }
  if (err instanceof InterruptedError) {
    io.warn(`\n${err.message}`);
    return err.exitCode;
  }
  if (err instanceof ToolError || err instanceof SelfmailError) {
    io.warn(`selfmail: ${err.message}`);
    if (io.jsonMode) io.json({ ok: false, exitCode: err.exitCode, error: err.message });
    return err.exitCode;
  }
  const e = err instanceof Error ? err : new Error(String(err));
  io.warn(`selfmail: internal error (a bug; please report it): ${e.message}`);
  if (process.env.SELFMAIL_DEBUG) io.warn(e.stack ?? '');
  if (io.jsonMode) io.json({ ok: false, exitCode: EXIT.internal, error: e.message });
  return EXIT.internal;
}
