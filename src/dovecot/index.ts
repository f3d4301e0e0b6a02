/**
 * Dovecot: dovecot.conf and the passwd-file of mailboxes (hashes only), rendered from
 * templates/dovecot/, and the check by `doveconf -n`.
 */
import { mkdir } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { keyFilesUnder, stageTree } from '../bundle/stage.js';
import { type BuildContext, type BundleFile, type ServiceModule, textFile } from '../bundle/types.js';
import { ToolError } from '../errors.js';
import { type Release, releaseInfo } from '../config/release.js';
import { BUNDLE, installed, mailPaths } from '../mail/paths.js';
import { prepareMailDirs } from '../mail/system.js';
import { render } from '../render/index.js';
import { run } from '../tools/run.js';
import { QUOTA_WARNING_SCRIPT, SIEVE, dovecotModel } from './model.js';

/**
 * Dovecot 2.4 (Debian 13) reads a configuration syntax of its own: same settings, new names and
 * sections. One model, a template for each syntax.
 */
export function dovecotTemplate(target: Release): string {
  return releaseInfo(target).dovecot === '2.4' ? 'dovecot-2.4.conf' : 'dovecot.conf';
}

async function build(ctx: BuildContext): Promise<BundleFile[]> {
  const m = dovecotModel(ctx.config, ctx.keys.tls, ctx.profile, ctx.passwordHashes);
  return [
    textFile(BUNDLE.dovecotConf, await render('dovecot', dovecotTemplate(ctx.config.target), m), 'Dovecot configuration (IMAPS, LMTP, auth)'),
    // Hashes are not cleartext, but an offline guess needs only the hash: keep them private.
    textFile(BUNDLE.dovecotUsers, await render('dovecot', 'users', m), 'Dovecot mailboxes and password hashes', 0o600),
    textFile(SIEVE.spamToJunk, await render('dovecot', 'sieve-spam-to-junk.sieve', m), 'Sieve: probable spam to Junk, before the user\'s rules'),
    textFile(SIEVE.learnSpam, await render('dovecot', 'sieve-learn-spam.sieve', m), 'IMAPSieve: into Junk teaches spam'),
    textFile(SIEVE.learnHam, await render('dovecot', 'sieve-learn-ham.sieve', m), 'IMAPSieve: out of Junk teaches ham'),
    textFile(SIEVE.learnProgram, await render('dovecot', 'sieve-rspamd-learn', { controller: m.spamController }), 'hands a message to rspamd to learn', 0o755),
    textFile(QUOTA_WARNING_SCRIPT, await render('dovecot', 'quota-warning', { percent: m.quotaWarnPercent, postfixConfigDir: mailPaths(ctx.profile).postfixConfigDir }), 'writes a mailbox a note when it nears its storage limit', 0o755),
  ];
}

/** The major version (`2.3`, `2.4`) of the Dovecot installed here. */
export async function installedDovecot(): Promise<string> {
  const out = await run('dovecot', ['--version']);
  const m = /^(\d+\.\d+)/.exec(out.stdout.trim());
  if (!m?.[1]) throw new ToolError(`dovecot --version printed no version: ${out.stdout.trim()}`, 'dovecot');
  return m[1];
}

/**
 * `doveconf` arguments that parse the whole configuration and open the files it names: Dovecot
 * 2.3 reads `ssl_cert = <file` while parsing, 2.4 only with `-x` (without it, a missing
 * certificate passes).
 */
export function doveconfArgs(target: Release, conf: string): string[] {
  return releaseInfo(target).dovecot === '2.4' ? ['-n', '-x', '-c', conf] : ['-n', '-c', conf];
}

/**
 * Stage the files (and the TLS files dovecot.conf reads) under the profile's root and let
 * `doveconf` parse the whole configuration; any warning on stderr fails the check too. Only a
 * Dovecot of the target's major version can judge its syntax: elsewhere the check is left to
 * `apply`, which runs it on the host, and the run says so.
 */
async function check(ctx: BuildContext, files: BundleFile[]): Promise<void | 'not-checked'> {
  const want = releaseInfo(ctx.config.target).dovecot;
  const have = await installedDovecot();
  if (have !== want) {
    ctx.warnings.push(
      `dovecot: the configuration for ${ctx.config.target} is Dovecot ${want} syntax, and this machine has Dovecot ${have}: it was not checked here; apply checks it with the host's own Dovecot before installing anything`,
    );
    return 'not-checked';
  }
  await stageTree([...files, ...keyFilesUnder(ctx.keys, 'keys/tls/')], ctx.profile.root);
  await prepareMailDirs(ctx.profile);
  const conf = installed(ctx.profile, BUNDLE.dovecotConf);
  const out = await run('doveconf', doveconfArgs(ctx.config.target, conf));
  const warnings = out.stderr.split('\n').filter((l) => l.trim() !== '');
  if (warnings.length > 0) throw new ToolError(`doveconf -n warned:\n${warnings.join('\n')}`, 'doveconf', out.stderr);
  await compileSieve(conf, ctx.profile.root, [SIEVE.spamToJunk, SIEVE.learnSpam, SIEVE.learnHam].map((p) => installed(ctx.profile, p)));
}

/**
 * Compile the global Sieve scripts with Pigeonhole's own compiler under this configuration (its
 * plugins and extensions), into a scratch folder: a script it refuses is never written.
 */
async function compileSieve(conf: string, scratch: string, scripts: string[]): Promise<void> {
  const out = join(scratch, 'sievec');
  await mkdir(out, { recursive: true });
  await Promise.all(
    scripts.map(async (script) => {
      const r = await run('sievec', ['-c', conf, script, join(out, `${basename(script)}.svbin`)], { okCodes: [0, 1] });
      const said = (r.stdout + r.stderr).trim();
      if (r.exitCode !== 0 || said !== '') throw new ToolError(`sievec refused ${basename(script)}:\n${said}`, 'sievec', said);
    }),
  );
}

export const dovecotService: ServiceModule = { name: 'dovecot', build, check };
