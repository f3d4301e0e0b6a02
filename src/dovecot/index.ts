/**
 * Dovecot: dovecot.conf and the passwd-file of mailboxes (hashes only), rendered from
 * templates/dovecot/, and the check by `doveconf -n`.
 */
import { keyFilesUnder, stageTree } from '../bundle/stage.js';
import { type BuildContext, type BundleFile, type ServiceModule, textFile } from '../bundle/types.js';
import { ToolError } from '../errors.js';
import { BUNDLE, installed } from '../mail/paths.js';
import { prepareMailDirs } from '../mail/system.js';
import { render } from '../render/index.js';
import { run } from '../tools/run.js';
import { dovecotModel } from './model.js';

async function build(ctx: BuildContext): Promise<BundleFile[]> {
  const m = dovecotModel(ctx.config, ctx.keys.tls, ctx.profile, ctx.passwordHashes);
  return [
    textFile(BUNDLE.dovecotConf, await render('dovecot', 'dovecot.conf', m), 'Dovecot configuration (IMAPS, LMTP, auth)'),
    // Hashes are not cleartext, but an offline guess needs only the hash: keep them private.
    textFile(BUNDLE.dovecotUsers, await render('dovecot', 'users', m), 'Dovecot mailboxes and password hashes', 0o600),
  ];
}

/**
 * Stage the files (and the TLS files dovecot.conf reads) under the profile's root and let
 * `doveconf -n` parse the whole configuration; any warning on stderr fails the check too.
 */
async function check(ctx: BuildContext, files: BundleFile[]): Promise<void> {
  await stageTree([...files, ...keyFilesUnder(ctx.keys, 'keys/tls/')], ctx.profile.root);
  await prepareMailDirs(ctx.profile);
  const conf = installed(ctx.profile, BUNDLE.dovecotConf);
  const out = await run('doveconf', ['-n', '-c', conf]);
  const warnings = out.stderr.split('\n').filter((l) => l.trim() !== '');
  if (warnings.length > 0) throw new ToolError(`doveconf -n warned:\n${warnings.join('\n')}`, 'doveconf', out.stderr);
}

export const dovecotService: ServiceModule = { name: 'dovecot', build, check };
