/**
 * Test fixtures for the DNS module: a resolved config, and a KeySet made the way the key store
 * makes one (DNSSEC keys by ldns-keygen, DKIM keys by node:crypto) until the real store is merged.
 */
import { generateKeyPairSync, randomBytes, createHash } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import type { BundleFile, BuildContext, PreviousBundle } from '../../src/bundle/types.js';
import type { Profile } from '../../src/bundle/layout.js';
import { productionProfile } from '../../src/bundle/layout.js';
import type { RawInput } from '../../src/config/raw.js';
import { resolveConfig } from '../../src/config/schema.js';
import type { Config, DomainName } from '../../src/config/types.js';
import type { DkimKey, DnssecKey, KeySet, TsigKey } from '../../src/keys/types.js';

export function makeConfig(values: RawInput = {}): Config {
  return resolveConfig({
    values: {
      domains: ['example.org', 'example.net'],
      hostname: 'mail.example.org',
      ipv4: '192.0.2.10',
      ipv6: '2001:db8::10',
      ns: ['ns1.example.org', 'ns2.example.com=198.51.100.53'],
      users: ['alice@example.org', 'first.last@example.net'],
      admin: 'alice@example.org',
      ...values,
    },
    origins: {},
  }).config;
}

function dkimKeys(domain: DomainName): { keys: DkimKey[]; files: BundleFile[] } {
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const ed = generateKeyPairSync('ed25519');
  const rsaPub = rsa.publicKey.export({ type: 'spki', format: 'der' }).toString('base64');
  const edRaw = ed.publicKey.export({ type: 'spki', format: 'der' }).subarray(-32).toString('base64');
  const mk = (selector: string, algorithm: 'rsa' | 'ed25519', txt: string, pem: string, state: DkimKey['state']) => ({
    key: { domain, selector, algorithm, txt, privateKeyPath: `keys/dkim/${domain}/${selector}.pem`, state, created: '2026-01-01' } as DkimKey,
    file: { path: `keys/dkim/${domain}/${selector}.pem`, data: Buffer.from(pem), mode: 0o600, role: 'DKIM private key' } as BundleFile,
  });
  const a = mk('202601r', 'rsa', `v=DKIM1; k=rsa; p=${rsaPub}`, rsa.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), 'active');
  const b = mk('202601e', 'ed25519', `v=DKIM1; k=ed25519; p=${edRaw}`, ed.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), 'active');
  return { keys: [a.key, b.key], files: [a.file, b.file] };
}

async function dnssecKeys(zone: DomainName): Promise<{ keys: DnssecKey[]; files: BundleFile[] }> {
  const dir = await mkdtemp(join(tmpdir(), 'selfmail-test-keygen-'));
  try {
    const keys: DnssecKey[] = [];
    const files: BundleFile[] = [];
    for (const role of ['ksk', 'zsk'] as const) {
      const args = ['-a', 'ECDSAP256SHA256', ...(role === 'ksk' ? ['-k'] : []), zone];
      const base = execFileSync('ldns-keygen', args, { cwd: dir, encoding: 'utf8' }).trim();
      const keyText = await readFile(join(dir, `${base}.key`), 'utf8');
      const dnskey = /DNSKEY\s+(\d+ 3 13 \S+)/.exec(keyText)![1]!;
      const tag = Number(/\+(\d+)$/.exec(base)![1]);
      let ds: string | undefined;
      if (role === 'ksk') ds = /DS\s+(.*)$/m.exec(await readFile(join(dir, `${base}.ds`), 'utf8'))![1]!.trim();
      const basePath = `keys/dnssec/${zone}/${base}`;
      keys.push({ zone, role, tag, algorithm: 13, dnskey, ...(ds ? { ds } : {}), basePath, created: '2026-01-01' });
      files.push({ path: `${basePath}.key`, data: Buffer.from(keyText), mode: 0o644, role: 'DNSKEY' });
      files.push({ path: `${basePath}.private`, data: await readFile(join(dir, `${base}.private`)), mode: 0o600, role: 'DNSSEC private key' });
    }
    return { keys, files };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** A KeySet for `config`, like the key store's, with fresh keys. */
export async function makeKeySet(config: Config): Promise<KeySet> {
  const dkim: DkimKey[] = [];
  const dnssec: DnssecKey[] = [];
  const tsig: TsigKey[] = [];
  const files: BundleFile[] = [];
  for (const d of config.domains) {
    const k = dkimKeys(d);
    dkim.push(...k.keys);
    files.push(...k.files);
    const s = await dnssecKeys(d);
    dnssec.push(...s.keys);
    files.push(...s.files);
  }
  for (const ns of config.nameServers.filter((n) => !n.self)) {
    const secretPath = `keys/tsig/${ns.name}.key`;
    tsig.push({ name: `selfmail-${ns.name}`, algorithm: 'hmac-sha256', server: ns.name, secretPath, created: '2026-01-01' });
    files.push({ path: secretPath, data: Buffer.from(`${randomBytes(32).toString('base64')}\n`), mode: 0o600, role: 'TSIG secret' });
  }
  const tls = {
    keyPath: 'keys/tls/key.pem',
    certPath: 'keys/tls/cert.pem',
    csrPath: 'keys/tls/csr.pem',
    spkiSha256: createHash('sha256').update(randomBytes(64)).digest('hex'),
    names: [config.hostname],
    created: '2026-01-01',
  };
  const byPath = new Map(files.map((f) => [f.path, f.data]));
  return {
    dkim,
    dnssec,
    tls,
    tsig,
    files,
    read(path: string): Buffer {
      const b = byPath.get(path);
      if (!b) throw new Error(`no key file ${path}`);
      return b;
    },
  };
}

/** A previous bundle held in memory. */
export function memoryPrevious(files: readonly BundleFile[] = [], dir = '/nonexistent'): PreviousBundle {
  const m = new Map(files.map((f) => [f.path, f.data]));
  return { dir, read: (p) => m.get(p) };
}

export function makeContext(config: Config, keys: KeySet, opts: { previous?: readonly BundleFile[]; now?: Date; profile?: Profile } = {}): BuildContext {
  return {
    config,
    keys,
    previous: memoryPrevious(opts.previous ?? []),
    profile: opts.profile ?? productionProfile(config),
    now: opts.now ?? new Date('2026-03-01T12:00:00Z'),
    passwordHashes: new Map(),
    warnings: [],
  };
}
