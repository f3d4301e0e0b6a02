/**
 * Postfix: main.cf, master.cf and the maps, rendered from templates/postfix/, and the check by
 * Postfix itself (`postfix check`, `postconf -n`).
 */
import { mkdir, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { keyFilesUnder, stageTree } from '../bundle/stage.js';
import { type BuildContext, type BundleFile, type ServiceModule, textFile } from '../bundle/types.js';
import { ToolError } from '../errors.js';
import { BUNDLE, mailPaths } from '../mail/paths.js';
import { prepareMailDirs } from '../mail/system.js';
import { render } from '../render/index.js';
import { run } from '../tools/run.js';
import { postfixModel } from './model.js';

async function build(ctx: BuildContext): Promise<BundleFile[]> {
  const m = postfixModel(ctx.config, ctx.keys.tls, ctx.profile);
  const file = async (path: string, template: string, role: string) =>
    textFile(path, await render('postfix', template, m), role);
  return [
    await file(BUNDLE.mainCf, 'main.cf', 'Postfix main configuration'),
    await file(BUNDLE.masterCf, 'master.cf', 'Postfix services (25, 465, 587)'),
    await file(BUNDLE.virtualMailboxes, 'vmailbox', 'Postfix mailbox list'),
    await file(BUNDLE.virtualAliases, 'virtual', 'Postfix virtual aliases (role addresses, aliases, catch-alls)'),
    await file(BUNDLE.senderLogins, 'sender_login', 'Postfix sender-login map'),
    await file(BUNDLE.submissionHeaderChecks, 'submission_header_checks', 'Postfix header privacy on submission'),
  ];
}

/**
 * Postfix writes its complaints only to a terminal or to `maillog_file`, and `postfix` takes no
 * `-o`. So the check adds `maillog_file` to the staged main.cf for the duration of the check and
 * puts the bundle's bytes back afterwards. (A copy of the config in another folder would do too,
 * but `postfix -c` on a folder that is not the staged one runs Postfix's whole post-install pass,
 * which takes seconds.)
 */
async function postfixCheck(configDir: string, scratch: string): Promise<string> {
  const logFile = `${scratch}/postfix.log`;
  await rm(scratch, { recursive: true, force: true });
  await mkdir(scratch, { recursive: true });
  const mainCf = `${configDir}/main.cf`;
  const main = await readFile(mainCf);
  await writeFile(mainCf, `${main.toString('utf8')}\n# Added by selfmail's check only.\nmaillog_file = ${logFile}\nmaillog_file_prefixes = ${scratch}\n`);
  // Postfix waits until main.cf is a second old before it reads it (see stageTree).
  const past = new Date(Date.now() - 60_000);
  await utimes(mainCf, past, past);
  try {
    await run('postfix', ['-c', configDir, 'check'], { timeout: 60_000 });
    return await readLog(logFile);
  } catch (err) {
    const log = await readLog(logFile);
    if (err instanceof ToolError) {
      // A fatal error before logging starts reaches only a terminal: say so rather than nothing.
      const why = (log || err.output).trim() || `no message (Postfix prints early errors only to a terminal: run \`postfix -c ${configDir} check\` in one)`;
      throw new ToolError(`postfix check failed: ${why}`, 'postfix', log || err.output);
    }
    throw err;
  } finally {
    await writeFile(mainCf, main);
    await rm(scratch, { recursive: true, force: true });
  }
}

async function readLog(path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch {
    return '';
  }
}

/**
 * Stage the files (with the TLS key and certificate they name) under the profile's root and let
 * Postfix judge them: `postfix check` must pass and `postconf -n` must print no warning (a
 * misspelt or unknown parameter is only ever a warning).
 */
async function check(ctx: BuildContext, files: BundleFile[]): Promise<void> {
  const root = ctx.profile.root;
  await stageTree([...files, ...keyFilesUnder(ctx.keys, 'keys/tls/')], root);
  await prepareMailDirs(ctx.profile);
  const configDir = mailPaths(ctx.profile).postfixConfigDir;
  // postconf first: it names an unknown parameter on stderr, where postfix check may stay silent.
  const conf = await run('postconf', ['-c', configDir, '-n']);
  const warnings = conf.stderr.split('\n').filter((l) => l.trim() !== '');
  if (warnings.length > 0) throw new ToolError(`postconf -n warned:\n${warnings.join('\n')}`, 'postconf', conf.stderr);
  const log = await postfixCheck(configDir, `${root}/var/tmp/selfmail-postfix-check`);
  const problems = log.split('\n').filter((l) => /\b(warning|fatal|error|panic):/.test(l));
  if (problems.length > 0) throw new ToolError(`postfix check reported:\n${problems.join('\n')}`, 'postfix', log);
}

export const postfixService: ServiceModule = { name: 'postfix', build, check };
