/**
 * The web side served for real: nginx started from the rendered configuration on loopback
 * answers each domain's MTA-STS policy and autoconfig documents under that domain's names, and
 * the Web Key Directory of the domain whose mailbox publishes an OpenPGP key, with the bundle's
 * certificate, and nothing for a name it does not serve.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Profile } from '../../src/bundle/layout.js';
import { installedPath } from '../../src/bundle/layout.js';
import { freeServicePorts } from '../../src/bundle/ports.js';
import { stageTree } from '../../src/bundle/stage.js';
import type { BuildContext } from '../../src/bundle/types.js';
import { sourced } from '../../src/config/raw.js';
import { resolveConfig } from '../../src/config/schema.js';
import { ensureKeys } from '../../src/keys/store.js';
import { NGINX_PATH, webService } from '../../src/web/index.js';
import { mtaStsPolicy } from '../../src/web/mtasts.js';
import { tcpOpen } from '../../src/rehearse/supervisor.js';
import type { Email } from '../../src/config/types.js';
import { ALICE_BINARY, ALICE_WKD_HASH } from '../helpers/openpgp.js';

let root: string;
let nginx: ChildProcess | undefined;
let ctx: BuildContext;
let cert: Buffer;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'selfmail-web-'));
  await chmod(root, 0o755);
  const { config } = resolveConfig(sourced({ domains: ['example.org', 'example.net'], ipv4: '192.0.2.25', users: ['alice@example.org'], openpgpKeys: ['alice@example.org=alice.asc'], target: 'debian-12' }, 'flag'));
  const now = new Date();
  const keys = await ensureKeys(config, { dir: root, read: () => undefined }, now);
  const profile: Profile = { kind: 'rehearsal', root, listen: { ipv4: '127.0.0.1' }, ports: await freeServicePorts(), mailUser: { name: 'nobody', group: 'nogroup' } };
  ctx = { config, keys, previous: { dir: root, read: () => undefined }, profile, now, passwordHashes: new Map(), warnings: [], mtaSts: 'testing', openpgpKeys: new Map([['alice@example.org' as Email, ALICE_BINARY]]) };
  const files = await webService.build(ctx);
  await stageTree([...keys.files, ...files], root);
  cert = keys.read(keys.tls.certPath);
  const dir = join(root, 'nginx-run');
  await mkdir(dir, { recursive: true });
  const main = join(dir, 'nginx.conf');
  const temps = ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((n) => `    ${n}_temp_path ${join(dir, n)};`);
  await writeFile(
    main,
    [`pid ${join(dir, 'nginx.pid')};`, `error_log ${join(dir, 'error.log')};`, 'daemon off;', 'events {}', 'http {', '    access_log off;', ...temps, `    include ${installedPath(profile, NGINX_PATH)};`, '}', ''].join('\n'),
  );
  nginx = spawn('nginx', ['-p', `${dir}/`, '-e', join(dir, 'error.log'), '-c', main], { stdio: 'ignore' });
  for (let i = 0; i < 100 && !(await tcpOpen('127.0.0.1', profile.ports.https)); i++) await new Promise((r) => setTimeout(r, 50));
});

afterAll(async () => {
  nginx?.kill('SIGTERM');
  await new Promise((r) => setTimeout(r, 200));
  nginx?.kill('SIGKILL');
  await rm(root, { recursive: true, force: true });
});

function get(name: string, path: string, host = name): Promise<{ status: number; body: string; bytes: Buffer; headers: Record<string, string | string[] | undefined> }> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port: ctx.profile.ports.https, path, servername: name, headers: { host }, ca: cert, checkServerIdentity: () => undefined },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (d: Buffer) => chunks.push(d));
        res.on('end', () => {
          const bytes = Buffer.concat(chunks);
          resolve({ status: res.statusCode ?? 0, body: bytes.toString(), bytes, headers: res.headers });
        });
      },
    );
    req.on('error', reject);
    req.end();
  });
}

describe('nginx serving the web side', () => {
  it('serves each domain its MTA-STS policy over TLS with the bundle certificate', async () => {
    for (const d of ['example.org', 'example.net']) {
      const r = await get(`mta-sts.${d}`, '/.well-known/mta-sts.txt');
      expect(r.status).toBe(200);
      expect(r.body).toBe(mtaStsPolicy(ctx.config, 'testing'));
    }
  });

  it("serves each domain's own autoconfig documents", async () => {
    for (const d of ['example.org', 'example.net']) {
      const tb = await get(`autoconfig.${d}`, '/mail/config-v1.1.xml');
      expect(tb.status).toBe(200);
      expect(tb.body).toContain(`<domain>${d}</domain>`);
      const ol = await get(`autoconfig.${d}`, '/autodiscover/autodiscover.xml');
      expect(ol.status).toBe(200);
      expect(ol.body).toContain('mail.example.org');
    }
  });

  it('serves nothing else', async () => {
    expect((await get('mta-sts.example.org', '/mail/config-v1.1.xml')).status).toBe(404);
    expect((await get('mta-sts.example.org', '/.well-known/mta-sts.txt', 'elsewhere.example')).status).toBe(404);
    expect((await get('autoconfig.example.org', '/../keys/tls/key.pem')).status).not.toBe(200);
  });
});

describe('nginx serving the Web Key Directory', () => {
  const hu = `/.well-known/openpgpkey/example.org/hu/${ALICE_WKD_HASH}`;

  it('serves the key, binary, as octet-stream to any origin, at the advanced method\'s URL (with its ?l=)', async () => {
    const r = await get('openpgpkey.example.org', `${hu}?l=alice`);
    expect(r.status).toBe(200);
    expect(r.bytes.equals(ALICE_BINARY)).toBe(true);
    expect(r.headers['content-type']).toBe('application/octet-stream');
    expect(r.headers['access-control-allow-origin']).toBe('*');
    expect(r.headers['strict-transport-security']).toBe('max-age=31536000');
    expect(r.headers['x-content-type-options']).toBe('nosniff');
  });

  it('serves the policy file, empty', async () => {
    const r = await get('openpgpkey.example.org', '/.well-known/openpgpkey/example.org/policy');
    expect(r.status).toBe(200);
    expect(r.bytes.length).toBe(0);
  });

  it('serves nothing else there, and the keys nowhere else', async () => {
    expect((await get('openpgpkey.example.org', '/.well-known/mta-sts.txt')).status).toBe(404);
    expect((await get('openpgpkey.example.org', '/.well-known/openpgpkey/example.org/hu/')).status).toBe(404);
    expect((await get('openpgpkey.example.org', `/.well-known/openpgpkey/example.org/hu/${'y'.repeat(32)}`)).status).toBe(404);
    expect((await get('mta-sts.example.org', hu)).status).toBe(404);
    expect((await get('autoconfig.example.org', hu)).status).toBe(404);
    // example.net publishes no key: no such name, and not through example.org's folder either.
    expect((await get('openpgpkey.example.net', hu)).status).toBe(404);
    expect((await get('openpgpkey.example.org', `/.well-known/openpgpkey/example.net/hu/${ALICE_WKD_HASH}`)).status).toBe(404);
  });
});
