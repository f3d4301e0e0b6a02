/**
 * OpenDKIM: two filter configurations (RSA + verification, Ed25519), the key and signing tables,
 * and a systemd unit for the second instance; checked by `opendkim -n`.
 */
import { keyFilesUnder, stageTree } from '../bundle/stage.js';
import { type BuildContext, type BundleFile, type ServiceModule, textFile } from '../bundle/types.js';
import { ToolError } from '../errors.js';
import { BUNDLE, installed } from '../mail/paths.js';
import { prepareMailDirs } from '../mail/system.js';
import { render } from '../render/index.js';
import { run } from '../tools/run.js';
import { opendkimModel } from './model.js';

async function build(ctx: BuildContext): Promise<BundleFile[]> {
  const m = opendkimModel(ctx.config, ctx.keys.dkim, ctx.profile);
  const rsa = { ...m, instance: m.rsa };
  const ed = { ...m, instance: m.ed25519 };
  return [
    textFile(BUNDLE.opendkimConf, await render('opendkim', 'opendkim.conf', rsa), 'OpenDKIM RSA signer and verifier'),
    textFile(BUNDLE.opendkimEd25519Conf, await render('opendkim', 'opendkim.conf', ed), 'OpenDKIM Ed25519 signer'),
    textFile(BUNDLE.keyTable, await render('opendkim', 'key.table', m), 'OpenDKIM key table'),
    textFile(BUNDLE.signingTable, await render('opendkim', 'signing.table', rsa), 'OpenDKIM signing table (RSA)'),
    textFile(BUNDLE.signingTableEd25519, await render('opendkim', 'signing.table', ed), 'OpenDKIM signing table (Ed25519)'),
    textFile(BUNDLE.trustedHosts, await render('opendkim', 'trusted.hosts', m), 'OpenDKIM internal hosts (none)'),
    textFile(BUNDLE.opendkimEd25519Unit, await render('opendkim', 'opendkim-ed25519.service', m), 'systemd unit of the Ed25519 signer'),
  ];
}

/** Stage the files and the keys they name, and let `opendkim -n` parse both configurations. */
async function check(ctx: BuildContext, files: BundleFile[]): Promise<void> {
  await stageTree([...files, ...keyFilesUnder(ctx.keys, 'keys/dkim/')], ctx.profile.root);
  await prepareMailDirs(ctx.profile);
  for (const bundlePath of [BUNDLE.opendkimConf, BUNDLE.opendkimEd25519Conf]) {
    const out = await run('opendkim', ['-n', '-x', installed(ctx.profile, bundlePath)]);
    const said = (out.stderr + out.stdout).trim();
    if (said !== '') throw new ToolError(`opendkim -n (${bundlePath}) said:\n${said}`, 'opendkim', said);
  }
}

export const opendkimService: ServiceModule = { name: 'opendkim', build, check };
