/**
 * The key files as the real tools see them: OpenSSL checks every private key, ldns and BIND sign
 * a zone with the DNSSEC files and compute the same DS, OpenSSL verifies the CSR and certificate.
 */
import { createPrivateKey, createPublicKey, createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parsePrivateFile, p256FromScalar } from '../../src/keys/dnssec.js';
import { ensureKeys } from '../../src/keys/store.js';
import type { KeySet } from '../../src/keys/types.js';
import { run } from '../../src/tools/run.js';
import { fixtureKeys, keysTestConfig, KEYS_NOW, previousFromDir, previousFromFiles, writeBundleFiles } from '../helpers/keys.js';

let dir: string;
let keys: KeySet;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'selfmail-keys-'));
  keys = await fixtureKeys();
  await writeBundleFiles(keys.files, dir);
});
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** A DNSSEC `.private` file as a PKCS#8 PEM, so OpenSSL can check the key. */
function dnssecPem(privateFile: Buffer): string {
  const m = p256FromScalar(parsePrivateFile(privateFile.toString('utf8')));
  const jwk = {
    kty: 'EC',
    crv: 'P-256',
    d: m.scalar.toString('base64url'),
    x: m.publicXY.subarray(0, 32).toString('base64url'),
    y: m.publicXY.subarray(32).toString('base64url'),
  };
  return createPrivateKey({ key: jwk, format: 'jwk' }).export({ type: 'pkcs8', format: 'pem' }).toString();
}

/** rspamd's form of an Ed25519 key (base64 of seed and public key) as PKCS#8 PEM, for openssl. */
function rspamdPem(data: Buffer): string {
  const raw = Buffer.from(data.toString('utf8').trim(), 'base64');
  const jwk = { kty: 'OKP', crv: 'Ed25519', d: raw.subarray(0, 32).toString('base64url'), x: raw.subarray(32).toString('base64url') };
  return createPrivateKey({ key: jwk, format: 'jwk' }).export({ type: 'pkcs8', format: 'pem' }).toString();
}

describe('private keys', () => {
  it('every one passes openssl pkey -check (key on stdin)', async () => {
    const privates = keys.files.filter((f) => f.mode === 0o600 && !f.path.startsWith('keys/tsig/'));
    expect(privates.length).toBe(8); // 2 DKIM (and the Ed25519 one in rspamd's form), 3 DNSSEC (KSK, ZSK, the next ZSK), the TLS key and the next one
    for (const f of privates) {
      const input = f.path.startsWith('keys/dnssec/') ? dnssecPem(f.data) : f.path.endsWith('.rspamd') ? rspamdPem(f.data) : f.data;
      const r = await run('openssl', ['pkey', '-check', '-noout'], { input });
      expect(r.stdout + r.stderr, f.path).toMatch(/Key is valid/);
    }
    // A damaged key does fail the same check.
    const tls = keys.read('keys/tls/key.pem').toString().replace(/\n[A-Za-z0-9+/]{10}/, '\nAAAAAAAAAA');
    await expect(run('openssl', ['pkey', '-check', '-noout'], { input: tls })).rejects.toThrow();
  });

  it('are written 0600 on disk, public parts 0644', async () => {
    for (const f of keys.files) {
      const mode = (await stat(join(dir, f.path))).mode & 0o777;
      expect(mode, f.path).toBe(f.path.endsWith('.private') || f.path.endsWith('.rspamd') || f.path.endsWith('key.pem') || f.path.startsWith('keys/tsig/') ? 0o600 : 0o644);
    }
  });

  it('are reused byte for byte when read back from disk', async () => {
    const again = await ensureKeys(keysTestConfig(), await previousFromDir(dir, keys.files.map((f) => f.path)), new Date('2026-06-01T00:00:00Z'));
    expect(again.files.map((f) => [f.path, f.mode, f.data.toString('base64')])).toEqual(keys.files.map((f) => [f.path, f.mode, f.data.toString('base64')]));
  });
});

describe('DNSSEC key files', () => {
  const zoneDir = (): string => join(dir, 'keys/dnssec/example.org');
  const ksk = (): KeySet['dnssec'][number] => keys.dnssec.find((k) => k.role === 'ksk')!;
  const zsk = (): KeySet['dnssec'][number] => keys.dnssec.find((k) => k.role === 'zsk')!;
  const base = (k: KeySet['dnssec'][number]): string => k.basePath.split('/').pop()!;
  const zone = [
    '$ORIGIN example.org.',
    '$TTL 3600',
    '@ IN SOA ns1.example.org. hostmaster.example.org. 2026031501 7200 3600 1209600 3600',
    '@ IN NS ns1.example.org.',
    'ns1 IN A 192.0.2.10',
    '',
  ].join('\n');

  it('sign a zone with ldns-signzone, whose RRSIGs carry our key tags', async () => {
    const z = join(zoneDir(), 'ldns.zone');
    await writeFile(z, zone);
    await run('ldns-signzone', ['-o', 'example.org.', z, base(ksk()), base(zsk())], { cwd: zoneDir() });
    const signed = await readFile(`${z}.signed`, 'utf8');
    await run('ldns-verify-zone', [`${z}.signed`]);
    expect(signed).toMatch(new RegExp(`RRSIG\\s+DNSKEY 13 2 3600 \\d+ \\d+ ${ksk().tag} example\\.org\\.`));
    expect(signed).toMatch(new RegExp(`RRSIG\\s+SOA 13 2 3600 \\d+ \\d+ ${zsk().tag} example\\.org\\.`));
    expect(signed).toContain(zsk().dnskey.split(' ')[3]);
  });

  it('are found by name and used by dnssec-signzone -S', async () => {
    const z = join(zoneDir(), 'bind.zone');
    await writeFile(z, zone);
    const r = await run('dnssec-signzone', ['-S', '-K', zoneDir(), '-o', 'example.org.', '-f', `${z}.signed`, z], { cwd: zoneDir() });
    const out = r.stdout + r.stderr;
    expect(out).toContain(`example.org/ECDSAP256SHA256/${ksk().tag} (KSK)`);
    expect(out).toContain(`example.org/ECDSAP256SHA256/${zsk().tag} (ZSK)`);
    expect(out).toMatch(/KSKs: 1 active/);
    await run('dnssec-verify', ['-o', 'example.org.', `${z}.signed`]);
  });

  it('give the DS that ldns-key2ds and dnssec-dsfromkey compute', async () => {
    const keyFile = join(zoneDir(), `${base(ksk())}.key`);
    const bind = await run('dnssec-dsfromkey', ['-2', keyFile]);
    expect(bind.stdout.trim()).toBe(`example.org. IN DS ${ksk().ds}`);
    const ldns = await run('ldns-key2ds', ['-n', '-2', keyFile]);
    const f = ldns.stdout.trim().split(/\s+/);
    expect(f.slice(0, 4)).toEqual(['example.org.', '3600', 'IN', 'DS']);
    // ldns prints the digest in lower case; hex case carries no meaning.
    expect(`${f[4]} ${f[5]} ${f[6]} ${f[7]!.toUpperCase()}`).toBe(ksk().ds);
  });
});

describe('TLS', () => {
  const tls = (p: string): string => join(dir, 'keys/tls', p);

  it('the CSR verifies and covers every name', async () => {
    const r = await run('openssl', ['req', '-in', tls('csr.pem'), '-verify', '-noout', '-text']);
    expect(r.stdout + r.stderr).toMatch(/verify OK/);
    expect(r.stdout).toMatch(/Subject: CN = mail\.example\.org/);
    const sans = /X509v3 Subject Alternative Name:\s*\n\s*(.+)/.exec(r.stdout)?.[1]?.trim();
    expect(sans).toBe('DNS:mail.example.org, DNS:mta-sts.example.org, DNS:autoconfig.example.org');
  });

  it('the bootstrap certificate holds the key, the names, and the TLSA digest', async () => {
    const text = (await run('openssl', ['x509', '-in', tls('cert.pem'), '-noout', '-text'])).stdout;
    expect(/X509v3 Subject Alternative Name:\s*\n\s*(.+)/.exec(text)?.[1]?.trim()).toBe(
      'DNS:mail.example.org, DNS:mta-sts.example.org, DNS:autoconfig.example.org',
    );
    expect(text).toMatch(/Not Before: Mar 15 00:00:00 2026 GMT/);
    const certPub = (await run('openssl', ['x509', '-in', tls('cert.pem'), '-noout', '-pubkey'])).stdout;
    const keyPub = createPublicKey(keys.read('keys/tls/key.pem')).export({ type: 'spki', format: 'pem' }).toString();
    expect(certPub).toBe(keyPub);
    const der = createPublicKey(certPub).export({ type: 'spki', format: 'der' });
    expect(createHash('sha256').update(der).digest('hex')).toBe(keys.tls.spkiSha256);
    // Self-signed: the certificate's signature verifies with its own key.
    const v = await run('openssl', ['verify', '-partial_chain', '-CAfile', tls('cert.pem'), tls('cert.pem')], { okCodes: [0, 2] });
    expect(v.stdout).toMatch(/OK/);
  });

  it('is rebuilt deterministically from the same key, names and date', async () => {
    const files = keys.files.filter((f) => f.path !== 'keys/tls/cert.pem' && f.path !== 'keys/tls/csr.pem');
    const again = await ensureKeys(keysTestConfig(), previousFromFiles(files), KEYS_NOW);
    expect(again.read('keys/tls/cert.pem').equals(keys.read('keys/tls/cert.pem'))).toBe(true);
    expect(again.read('keys/tls/csr.pem').equals(keys.read('keys/tls/csr.pem'))).toBe(true);
  });
});
