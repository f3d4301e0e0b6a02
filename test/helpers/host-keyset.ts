/**
 * A small stand-in KeySet for the host tests, until the key store is merged: a real RSA TLS key
 * with a CSR and a self-signed certificate made by openssl in a temp dir (nginx -t loads them),
 * and DNSSEC descriptors as plain objects.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BundleFile } from '../../src/bundle/types.js';
import type { Config, DomainName } from '../../src/config/types.js';
import type { DkimKey, DnssecKey, KeySet } from '../../src/keys/types.js';

/** Every name the host's certificate should cover for the web side. */
export function hostNames(config: Pick<Config, 'hostname' | 'domains'> & Partial<Pick<Config, 'openpgpKeys'>>): DomainName[] {
  const names = [config.hostname as string];
  for (const d of config.domains) names.push(`mta-sts.${d}`, `autoconfig.${d}`);
  // The Web Key Directory's name, for a domain whose mailboxes publish an OpenPGP key.
  for (const d of new Set((config.openpgpKeys ?? []).map((e) => e.slice(e.indexOf('@') + 1)))) names.push(`openpgpkey.${d}`);
  return names.sort() as DomainName[];
}

/**
 * Key descriptors without key material (for pure tests); `files` may carry real files.
 */
export function stubKeySet(config: Pick<Config, 'hostname' | 'domains' | 'dnssec'> & Partial<Pick<Config, 'openpgpKeys'>>, files: BundleFile[] = []): KeySet {
  const dnssec: DnssecKey[] = config.dnssec
    ? config.domains.flatMap((zone, i): DnssecKey[] => [
        {
          zone,
          role: 'ksk',
          tag: 10000 + i,
          algorithm: 13,
          dnskey: '257 3 13 AAAA',
          ds: `${10000 + i} 13 2 ${'AB'.repeat(32)}`,
          basePath: `keys/dnssec/${zone}/K${zone}.+013+${10000 + i}`,
          created: '2026-01-01',
          publish: '2026-01-01T00:00:00Z',
          activate: '2026-01-01T00:00:00Z',
        },
        {
          zone,
          role: 'zsk',
          tag: 20000 + i,
          algorithm: 13,
          dnskey: '256 3 13 BBBB',
          basePath: `keys/dnssec/${zone}/K${zone}.+013+${20000 + i}`,
          created: '2026-01-01',
          publish: '2026-01-01T00:00:00Z',
          activate: '2026-01-01T00:00:00Z',
        },
      ])
    : [];
  // An active DKIM pair per domain (descriptors only: no key file behind them).
  const dkim: DkimKey[] = config.domains.flatMap((domain) =>
    (['rsa', 'ed25519'] as const).map((algorithm) => {
      const selector = algorithm === 'rsa' ? '202601r' : '202601e';
      const base = `keys/dkim/${domain}/${selector}`;
      return { domain, selector, algorithm, txt: `v=DKIM1; k=${algorithm}; p=AAAA`, privateKeyPath: `${base}.private`, signingKeyPath: algorithm === 'rsa' ? `${base}.private` : `${base}.rspamd`, state: 'active' as const, created: '2026-01-01' };
    }),
  );
  return {
    dkim,
    dnssec,
    tls: {
      keyPath: 'keys/tls/key.pem',
      certPath: 'keys/tls/cert.pem',
      csrPath: 'keys/tls/csr.pem',
      spkiSha256: '00'.repeat(32),
      names: hostNames(config),
      created: '2026-01-01',
      next: { keyPath: 'keys/tls/next-key.pem', spkiSha256: '01'.repeat(32), created: '2026-01-01', published: '2026-01-01T00:00:00Z', ready: '2026-01-01T02:00:00Z' },
      pins: ['00'.repeat(32), '01'.repeat(32)],
    },
    tsig: [],
    files,
    read(path: string): Buffer {
      const f = files.find((x) => x.path === path);
      if (!f) throw new Error(`no key file ${path}`);
      return f.data;
    },
  };
}

/** A KeySet with a real TLS key, CSR and self-signed certificate (openssl), for the checks. */
export function fixtureKeySet(config: Pick<Config, 'hostname' | 'domains' | 'dnssec'> & Partial<Pick<Config, 'openpgpKeys'>>): KeySet {
  const dir = mkdtempSync(join(tmpdir(), 'selfmail-host-keys-'));
  try {
    const names = hostNames(config);
    const key = join(dir, 'key.pem');
    const csr = join(dir, 'csr.pem');
    const cert = join(dir, 'cert.pem');
    const san = `subjectAltName=${names.map((n) => `DNS:${n}`).join(',')}`;
    execFileSync('openssl', ['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-out', key], { stdio: 'ignore' });
    execFileSync('openssl', ['req', '-new', '-key', key, '-subj', `/CN=${config.hostname}`, '-addext', san, '-out', csr], { stdio: 'ignore' });
    execFileSync('openssl', ['req', '-x509', '-key', key, '-subj', `/CN=${config.hostname}`, '-addext', san, '-days', '90', '-out', cert], { stdio: 'ignore' });
    const files: BundleFile[] = [
      { path: 'keys/tls/key.pem', data: readFileSync(key), mode: 0o600, role: 'TLS private key' },
      { path: 'keys/tls/csr.pem', data: readFileSync(csr), mode: 0o644, role: 'TLS CSR' },
      { path: 'keys/tls/cert.pem', data: readFileSync(cert), mode: 0o644, role: 'TLS certificate' },
    ];
    return stubKeySet(config, files);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
