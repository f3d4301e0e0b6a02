/**
 * `selfmail import`: copy every folder and message of a mailbox at an old provider into a mailbox
 * of this host, with Dovecot's own engine (`doveadm sync -1 -R` over imapc: one way, from the old
 * server, which it only reads; mail already here stays). TLS to the old server is verified. The
 * old password goes into a configuration file readable by root only, on /run, removed when the
 * copy ends: never on a command line. A re-run copies only what it has not copied yet.
 */
import { chmod, copyFile, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { InputError, InterruptedError, ToolError, type InputIssue } from '../../errors.js';
import { parseEmail } from '../../config/values.js';
import type { Io } from '../io.js';
import { parseCommandArgs } from '../usage.js';
import { readBundleConfig } from '../bundle-config.js';
import { credentialProblem, doveadmErrors, imapcConfig, parseImportSource, parseMailboxCounts } from '../../mail/import.js';

const USAGE = 'usage: selfmail import --bundle DIR --mailbox EMAIL --from imaps://HOST[:PORT] --login LOGIN [--password-file FILE] [--ca-file FILE]';

const OPTIONS = {
  bundle: { type: 'string' },
  mailbox: { type: 'string' },
  from: { type: 'string' },
  login: { type: 'string' },
  'password-file': { type: 'string' },
  'ca-file': { type: 'string' },
  json: { type: 'boolean' },
} as const;

/** The installed Dovecot configuration the import's own includes. */
const MAIN_CONFIG = '/etc/dovecot/dovecot.conf';

export async function run(args: string[], io: Io): Promise<number> {
  const parsed = parseCommandArgs('selfmail import', args, OPTIONS, true);
  const v = parsed.values;
  const issues: InputIssue[] = [];
  if (parsed.positionals.length > 0) issues.push({ field: 'selfmail import', message: `takes no ${JSON.stringify(parsed.positionals[0])}; ${USAGE}` });
  for (const f of ['bundle', 'mailbox', 'from', 'login'] as const) if (!v[f]) issues.push({ field: `--${f}`, message: `is required; ${USAGE}` });
  const source = v.from ? parseImportSource(v.from) : undefined;
  // A password typed into the URL is not echoed back.
  if (source && !source.ok) issues.push({ field: '--from', message: `${JSON.stringify(v.from!.replace(/\/\/[^/]*@/, '//…@'))} ${source.error}` });
  const email = v.mailbox ? parseEmail(v.mailbox) : undefined;
  if (email && !email.ok) issues.push({ field: '--mailbox', message: `${JSON.stringify(v.mailbox)} ${email.error}` });
  if (v.login !== undefined) {
    const p = credentialProblem(v.login);
    if (p !== true) issues.push({ field: '--login', message: p });
  }
  if (v['ca-file'] !== undefined) {
    const st = await stat(v['ca-file']).catch(() => undefined);
    const text = st?.isFile() ? await readFile(v['ca-file'], 'utf8').catch(() => '') : '';
    if (!/-----BEGIN CERTIFICATE-----/.test(text)) issues.push({ field: '--ca-file', message: `${v['ca-file']} is not a readable file of PEM certificates` });
    else if (/PRIVATE KEY-----/.test(text)) issues.push({ field: '--ca-file', message: `${v['ca-file']} holds a private key; give only the CA's certificate` });
  }
  if (issues.length > 0) throw new InputError(issues);

  const { config } = await readBundleConfig(v.bundle!);
  const mailbox = (email as { ok: true; value: string }).value;
  if (!config.users.includes(mailbox as (typeof config.users)[number])) {
    throw new InputError([{ field: '--mailbox', message: `${mailbox} is not a mailbox of this bundle (selfmail user list shows them; selfmail user add creates one)` }]);
  }
  const from = (source as { ok: true; value: { host: string; port: number } }).value;
  const password = await oldPassword(v['password-file'], from.host, v.login!, io);

  if (typeof process.getuid === 'function' && process.getuid() !== 0) {
    throw new ToolError('the import writes into the mailbox as Dovecot does, through the installed Dovecot: run it as root, on the mail host, after selfmail apply', 'selfmail');
  }
  const { run: runTool } = await import('../../tools/run.js');
  const installed = await readFile(MAIN_CONFIG, 'utf8').catch(() => undefined);
  if (installed === undefined) {
    throw new ToolError(`no Dovecot configuration at ${MAIN_CONFIG}: install the bundle first (selfmail apply --bundle ${v.bundle}), then import`, 'doveadm');
  }
  // 67 (EX_NOUSER): no such user; any other failure (Dovecot not running) is shown as it is.
  const known = await runTool('doveadm', ['user', '-u', mailbox], { okCodes: [0, 67] });
  if (known.exitCode !== 0) {
    throw new InputError([{ field: '--mailbox', message: `${mailbox} is not yet a mailbox of the installed Dovecot: run selfmail apply --bundle ${v.bundle} first` }]);
  }

  const configVersion = /^\s*dovecot_config_version\s*=\s*(\S+)/m.exec(installed)?.[1];
  const release = configVersion ? 'debian-13' : 'debian-12';
  // On /run (memory, root only): the password is never on a disk or in a process list.
  const dir = await mkdtemp('/run/selfmail-import-');
  // Removed however the command ends (an error, Ctrl-C: syncWithProgress stops doveadm first).
  const { rmSync } = await import('node:fs');
  const stop = () => rmSync(dir, { recursive: true, force: true });
  process.once('exit', stop);
  try {
    let caFile: string | undefined;
    if (v['ca-file']) {
      // Dovecot 2.3 reads it after dropping to the mail account: a copy it can read.
      caFile = join(dir, 'ca.pem');
      await copyFile(v['ca-file'], caFile);
    }
    const conf = join(dir, 'imapc.conf');
    await writeFile(conf, imapcConfig({ release, mainConfig: MAIN_CONFIG, configVersion, source: from, login: v.login!, password, caFile }), { mode: 0o600 });
    if (caFile) await chmod(dir, 0o711);
    const before = await counts(runTool, mailbox);
    io.say(`Importing into ${mailbox} from ${from.host}:${from.port} as ${v.login} (TLS, certificate checked; the old server is only read)…`);
    const started = Date.now();
    const result = await syncWithProgress(conf, mailbox, before, io);
    const after = await counts(runTool, mailbox);
    const total = (m: Map<string, number>) => [...m.values()].reduce((a, b) => a + b, 0);
    if (result.interrupted) throw new InterruptedError('the import was interrupted; what was copied stays, and the same command goes on from there');
    if (result.code !== 0) {
      const errs = doveadmErrors(result.output);
      throw new ToolError(
        `the import from ${from.host} stopped (doveadm sync, exit ${result.code}) after ${total(after) - total(before)} new messages:\n${errs.join('\n') || result.output.trim()}\nWhat was copied stays; run the same command again to go on.`,
        'doveadm',
        result.output,
      );
    }
    const added = total(after) - total(before);
    const folders = [...after].map(([name, n]) => ({ folder: name, messages: n, new: n - (before.get(name) ?? 0) }));
    if (io.jsonMode) {
      io.json({ ok: true, mailbox, from: `imaps://${from.host}:${from.port}`, added, messages: total(after), folders, seconds: Math.round((Date.now() - started) / 1000) });
    } else {
      for (const f of folders) io.say(`  ${f.folder}: ${f.messages} messages${f.new > 0 ? ` (${f.new} new)` : ''}`);
      io.say(`Imported ${added} new messages into ${mailbox} (${total(after)} in ${folders.length} folders). Run the same command again to bring what arrives there until you switch; it copies only what is not here yet.`);
    }
    return 0;
  } finally {
    process.removeListener('exit', stop);
    await rm(dir, { recursive: true, force: true });
  }
}

type RunTool = typeof import('../../tools/run.js').run;

async function counts(runTool: RunTool, mailbox: string): Promise<Map<string, number>> {
  const r = await runTool('doveadm', ['mailbox', 'status', '-u', mailbox, 'messages', '*']);
  return parseMailboxCounts(r.stdout);
}

/** doveadm sync, with the number of messages copied so far on a terminal every two seconds. */
async function syncWithProgress(conf: string, mailbox: string, before: Map<string, number>, io: Io): Promise<{ code: number; output: string; interrupted: boolean }> {
  const { spawn } = await import('node:child_process');
  const { run: runTool } = await import('../../tools/run.js');
  const base = [...before.values()].reduce((a, b) => a + b, 0);
  return new Promise((resolveDone, reject) => {
    const child = spawn('doveadm', ['-c', conf, 'sync', '-1', '-R', '-u', mailbox, 'imapc:'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    let interrupted = false;
    const onSignal = () => {
      interrupted = true;
      child.kill('SIGTERM');
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    let busy = false;
    const timer = setInterval(() => {
      if (busy || !io.progress) return;
      busy = true;
      void counts(runTool, mailbox)
        .then((now) => io.progress?.(`importing into ${mailbox}: ${[...now.values()].reduce((a, b) => a + b, 0) - base} messages so far`))
        .catch(() => undefined)
        .finally(() => (busy = false));
    }, 2000);
    const done = () => {
      clearInterval(timer);
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    };
    child.on('error', (err) => {
      done();
      reject(new ToolError(`doveadm cannot run: ${err.message} (Debian package dovecot-core)`, 'doveadm'));
    });
    child.on('close', (code, signal) => {
      done();
      resolveDone({ code: code ?? (signal ? 128 : 1), output, interrupted });
    });
  });
}

/** The old server's password: the first line of --password-file (or stdin with -), or a hidden prompt. */
async function oldPassword(file: string | undefined, host: string, login: string, io: Io): Promise<string> {
  let password: string;
  if (file !== undefined) {
    const { readPasswordFileText } = await import('./init.js');
    const text = await readPasswordFileText(file, io);
    const lines = text.replace(/\r?\n$/, '').split(/\r?\n/);
    if (lines.length > 1) throw new InputError([{ field: '--password-file', message: 'must hold the old server\'s password alone, on one line' }]);
    password = lines[0]!;
  } else {
    if (!io.interactive) {
      throw new InputError([{ field: '--password-file', message: 'is required without a terminal: a file holding the old server\'s password on one line (chmod 600), or - for stdin; passwords are never taken from the command line' }]);
    }
    const { inquirerPrompter } = await import('../../wizard/prompter.js');
    const p = await inquirerPrompter(io);
    password = await p.password({ message: `Password of ${login} at ${host}`, why: 'Used for this import only; it is not kept.' });
  }
  const problem = credentialProblem(password);
  if (problem !== true) throw new InputError([{ field: '--password-file', message: `the password ${problem}` }]);
  return password;
}
