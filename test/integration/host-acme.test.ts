/**
 * The ACME script's flow, with stand-ins for certbot (a test CA that signs the CSR it is given)
 * and systemctl (records what it is asked): it installs a certificate for the local key, reloads
 * the services, does nothing while the certificate is fresh, and refuses a certificate for
 * another key.
 */
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { installedPath } from '../../src/bundle/layout.js';
import { stageTree } from '../../src/bundle/stage.js';
import type { BuildContext } from '../../src/bundle/types.js';
import { ACME_SCRIPT_PATH, acmeService } from '../../src/acme/index.js';
import { run } from '../../src/tools/run.js';
import { hostContext, scratchDir } from '../helpers/host-context.js';

let dir: string;
let cleanup: () => Promise<void>;
let ctx: BuildContext;
let env: Record<string, string>;

const FAKE_CERTBOT = `#!/bin/bash
set -eu
echo "$@" >> "$FAKE_LOG"
while [ $# -gt 0 ]; do
  case "$1" in
    --csr) csr="$2"; shift ;;
    --fullchain-path) full="$2"; shift ;;
  esac
  shift
done
if [ -n "\${FAKE_OTHER_KEY:-}" ]; then
  openssl req -new -newkey rsa:2048 -nodes -keyout "$FAKE_DIR/other.key" -subj /CN=other -out "$FAKE_DIR/other.csr" 2>/dev/null
  csr="$FAKE_DIR/other.csr"
fi
openssl x509 -req -in "$csr" -CA "$FAKE_DIR/ca.pem" -CAkey "$FAKE_DIR/ca.key" -set_serial 7 -days 90 -out "$full" 2>/dev/null
`;
const FAKE_SYSTEMCTL = `#!/bin/bash
echo "systemctl $*" >> "$FAKE_LOG"
exit 0
`;

beforeAll(async () => {
  const s = await scratchDir();
  dir = s.dir;
  cleanup = s.cleanup;
  ctx = hostContext({}, { root: join(dir, 'root'), realKeys: true });
  await stageTree([...ctx.keys.files, ...(await acmeService.build(ctx))], ctx.profile.root);
  const bin = join(dir, 'fakebin');
  await mkdir(bin);
  await writeFile(join(bin, 'certbot'), FAKE_CERTBOT);
  await writeFile(join(bin, 'systemctl'), FAKE_SYSTEMCTL);
  await chmod(join(bin, 'certbot'), 0o755);
  await chmod(join(bin, 'systemctl'), 0o755);
  await run('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', join(dir, 'ca.key'), '-subj', '/CN=Test CA', '-days', '1', '-out', join(dir, 'ca.pem')]);
  env = { PATH: `${bin}:${process.env.PATH ?? '/usr/bin:/bin'}`, FAKE_LOG: join(dir, 'log'), FAKE_DIR: dir };
});
afterAll(async () => {
  await cleanup?.();
});

async function pubkeyOf(args: string[]): Promise<string> {
  return (await run('openssl', args)).stdout;
}

describe('selfmail-acme', () => {
  const script = () => installedPath(ctx.profile, ACME_SCRIPT_PATH);
  const cert = () => installedPath(ctx.profile, ctx.keys.tls.certPath);

  it('refuses a certificate for another key and keeps the current one', async () => {
    const before = await readFile(cert());
    await expect(run('bash', [script()], { env: { ...env, FAKE_OTHER_KEY: '1' } })).rejects.toThrow(/another key/);
    expect(await readFile(cert())).toEqual(before);
  });

  it('replaces the self-signed certificate with one for the same key and reloads the services', async () => {
    await writeFile(join(dir, 'log'), '');
    const out = await run('bash', [script()], { env });
    expect(out.stdout).toContain('new certificate installed');
    const log = await readFile(join(dir, 'log'), 'utf8');
    expect(log).toMatch(/certonly .*--csr \S+\/etc\/selfmail\/tls\/csr\.pem --webroot --webroot-path \S+\/var\/www\/selfmail\/acme/);
    expect(log).not.toMatch(/key\.pem/);
    for (const unit of ['postfix', 'dovecot', 'nginx']) expect(log).toContain(`systemctl reload ${unit}`);
    const issuer = (await run('openssl', ['x509', '-in', cert(), '-noout', '-issuer'])).stdout;
    expect(issuer).toContain('Test CA');
    const keyPub = await pubkeyOf(['pkey', '-in', installedPath(ctx.profile, ctx.keys.tls.keyPath), '-pubout']);
    expect(await pubkeyOf(['x509', '-in', cert(), '-noout', '-pubkey'])).toBe(keyPub);
  });

  it('does nothing while the CA certificate is far from its end', async () => {
    await writeFile(join(dir, 'log'), '');
    const out = await run('bash', [script()], { env });
    expect(out.stdout).toContain('nothing to do');
    expect(await readFile(join(dir, 'log'), 'utf8')).toBe('');
  });

  it('contains no key generation', async () => {
    const text = await readFile(script(), 'utf8');
    expect(text).not.toMatch(/genpkey|genrsa|ecparam|-newkey|--key-path|ssh-keygen/);
  });
});
