/**
 * Fixtures for the mail tests: a resolved config, a KeySet with real keys (node:crypto for DKIM
 * and TLS keys, openssl for a self-signed certificate), and a rehearsal-style profile under a
 * temporary root. Stands in for the key store until src/keys/store.ts lands.
 */
import { createHash, generateKeyPairSync } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Profile } from '../../src/bundle/layout.js';
import type { BuildContext, BundleFile } from '../../src/bundle/types.js';
import { sourced } from '../../src/config/raw.js';
import { resolveConfig } from '../../src/config/schema.js';
import type { Config, DomainName, Email } from '../../src/config/types.js';
import type { DkimKey, KeySet } from '../../src/keys/types.js';
import { run } from '../../src/tools/run.js';

export const CREATED = '2026-01-15';

/** A two-domain config with two mailboxes, resolved by the real schema. */
export function mailTestConfig(): Config {
  return resolveConfig(
    sourced(
      {
        domains: ['example.org', 'example.net'],
        hostname: 'mail.example.org',
        ipv4: '192.0.2.25',
        ipv6: '2001:db8::25',
        users: ['alice@example.org', 'bob@example.net'],
      },
      'flag',
    ),
  ).config;
}

function file(path: string, data: Buffer | string, mode: number, role: string): BundleFile {
  return { path, data: Buffer.from(data), mode, role };
}

/** Real DKIM (RSA-2048 + Ed25519 per domain) and TLS keys, with a self-signed certificate. */
export async function mailTestKeySet(config: Config): Promise<KeySet> {
  const files: BundleFile[] = [];
  const dkim: DkimKey[] = [];
  for (const domain of config.domains) {
    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const ed = generateKeyPairSync('ed25519');
    const rsaSpki = rsa.publicKey.export({ type: 'spki', format: 'der' });
    const edRaw = ed.publicKey.export({ type: 'spki', format: 'der' }).subarray(12);
    for (const [alg, sel, key, p] of [
      ['rsa', '202601r', rsa.privateKey, rsaSpki],
      ['ed25519', '202601e', ed.privateKey, edRaw],
    ] as const) {
      const privateKeyPath = `keys/dkim/${domain}/${sel}.private`;
      files.push(file(privateKeyPath, key.export({ type: 'pkcs8', format: 'pem' }) as string, 0o600, 'DKIM private key'));
      dkim.push({
        domain,
        selector: sel,
        algorithm: alg,
        txt: `v=DKIM1; k=${alg}; p=${p.toString('base64')}`,
        privateKeyPath,
        state: 'active',
        created: CREATED,
      });
    }
  }
  const tlsKey = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const keyPem = tlsKey.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
  const tmp = await mkdtemp(join(tmpdir(), 'selfmail-mail-tls-'));
  let certPem: string;
  try {
    await writeFile(join(tmp, 'key.pem'), keyPem, { mode: 0o600 });
    await run('openssl', [
      'req', '-x509', '-new', '-key', join(tmp, 'key.pem'), '-out', join(tmp, 'cert.pem'),
      '-days', '30', '-subj', `/CN=${config.hostname}`, '-addext', `subjectAltName=DNS:${config.hostname}`,
    ]);
    certPem = await readFile(join(tmp, 'cert.pem'), 'utf8');
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
  files.push(file('keys/tls/key.pem', keyPem, 0o600, 'TLS private key'));
  files.push(file('keys/tls/cert.pem', certPem, 0o644, 'TLS certificate'));
  const spki = tlsKey.publicKey.export({ type: 'spki', format: 'der' });
  const byPath = new Map(files.map((f) => [f.path, f.data]));
  return {
    dkim,
    dnssec: [],
    tls: {
      keyPath: 'keys/tls/key.pem',
      certPath: 'keys/tls/cert.pem',
      csrPath: 'keys/tls/request.csr',
      spkiSha256: createHash('sha256').update(spki).digest('hex'),
      names: [config.hostname as DomainName],
      created: CREATED,
    },
    tsig: [],
    files,
    read(path: string): Buffer {
      const data = byPath.get(path);
      if (!data) throw new Error(`no key file ${path}`);
      return data;
    },
  };
}

/** A rehearsal-style profile under `root`: loopback address, high ports, nobody/nogroup. */
export function mailTestProfile(root: string): Profile {
  return {
    kind: 'rehearsal',
    root,
    listen: { ipv4: '127.0.0.2' },
    ports: { smtp: 20025, submission: 20587, submissions: 20465, imaps: 20993, dns: 20053, http: 20080, https: 20443, milter: 20891 },
    mailUser: { name: 'nobody', group: 'nogroup' },
  };
}

/** A BuildContext for the mail modules under a fresh temporary root; `cleanup` removes it. */
export async function mailTestContext(
  hashes: Map<Email, string> = new Map(),
): Promise<{ ctx: BuildContext; root: string; cleanup: () => Promise<void> }> {
  const root = await mkdtemp(join(tmpdir(), 'selfmail-mail-'));
  const config = mailTestConfig();
  const keys = await mailTestKeySet(config);
  const ctx: BuildContext = {
    config,
    keys,
    previous: { dir: join(root, 'bundle'), read: () => undefined },
    profile: mailTestProfile(root),
    now: new Date('2026-01-15T12:00:00Z'),
    passwordHashes: hashes,
    warnings: [],
  };
  return { ctx, root, cleanup: () => rm(root, { recursive: true, force: true }) };
}
