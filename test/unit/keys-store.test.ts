import { createPrivateKey, createPublicKey, sign, verify } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { DomainName, Email } from '../../src/config/types.js';
import { InputError } from '../../src/errors.js';
import { nextSelectorPair } from '../../src/keys/dkim.js';
import { dnskeyRdata, dsRecord, keyTag, nameToWire, p256FromScalar } from '../../src/keys/dnssec.js';
import { describeKeys, ensureKeys, KEYS_META_PATH } from '../../src/keys/store.js';
import { tlsNames } from '../../src/keys/tls.js';
import type { KeySet } from '../../src/keys/types.js';
import { wgPublicKey } from '../../src/vps/wireguard.js';
import { emptyPrevious, fixtureKeys, KEYS_NOW, keysTestConfig, previousFromFiles } from '../helpers/keys.js';

const d = (s: string): DomainName => s as DomainName;
const text = (k: KeySet, p: string): string => k.read(p).toString('utf8');
const snapshot = (k: KeySet): Record<string, string> => Object.fromEntries(k.files.map((f) => [f.path, `${f.mode.toString(8)}:${f.data.toString('base64')}`]));

describe('DNSSEC helpers', () => {
  it('writes names in canonical wire form', () => {
    expect(nameToWire('Example.ORG.').toString('hex')).toBe('076578616d706c65036f726700');
  });
  it('computes the RFC 4034 appendix B key tag', () => {
    // Hand-checked: words 0x0101 + 0x030d, no odd trailing byte.
    expect(keyTag(Buffer.from([1, 1, 3, 13]))).toBe(0x0101 + 0x030d);
    // The carry is folded back in.
    expect(keyTag(Buffer.from([0xff, 0xff, 0xff, 0xff]))).toBe((0x1fffe + 1) & 0xffff);
  });
  it('derives the public point from the scalar and formats a DS', () => {
    const m = p256FromScalar(Buffer.alloc(32, 7));
    expect(m.publicXY.length).toBe(64);
    const ds = dsRecord('example.org', dnskeyRdata(257, m.publicXY));
    expect(ds).toMatch(/^\d+ 13 2 [0-9A-F]{64}$/);
  });
});

describe('DKIM selectors', () => {
  it('dates the pair and adds a counter on a collision in the same month', () => {
    expect(nextSelectorPair(KEYS_NOW, new Set())).toEqual({ rsa: '202603r', ed25519: '202603e' });
    expect(nextSelectorPair(KEYS_NOW, new Set(['202603r', '202603e']))).toEqual({ rsa: '202603r2', ed25519: '202603e2' });
    expect(nextSelectorPair(KEYS_NOW, new Set(['202603e', '202603e2']))).toEqual({ rsa: '202603r3', ed25519: '202603e3' });
  });
});

describe('TLS names', () => {
  it('puts the host first, then mta-sts and autoconfig of every domain', () => {
    expect(tlsNames(d('mail.example.org'), [d('example.org'), d('example.net')])).toEqual([
      'mail.example.org',
      'mta-sts.example.org',
      'autoconfig.example.org',
      'mta-sts.example.net',
      'autoconfig.example.net',
    ]);
  });
  it('adds openpgpkey of a domain with a published OpenPGP key after its own two, and no other', () => {
    expect(tlsNames(d('mail.example.org'), [d('example.org'), d('example.net')], [d('example.net')])).toEqual([
      'mail.example.org',
      'mta-sts.example.org',
      'autoconfig.example.org',
      'mta-sts.example.net',
      'autoconfig.example.net',
      'openpgpkey.example.net',
    ]);
  });
});

describe('ensureKeys', () => {
  it('generates every key at its fixed path with the right mode', async () => {
    const k = await fixtureKeys();
    const modes = Object.fromEntries(k.files.map((f) => [f.path, f.mode]));
    const ksk = k.dnssec.find((x) => x.role === 'ksk')!;
    const [zsk, nextZsk] = k.dnssec.filter((x) => x.role === 'zsk');
    expect(modes).toEqual({
      'keys/dkim/example.org/202603e.private': 0o600,
      'keys/dkim/example.org/202603e.rspamd': 0o600,
      'keys/dkim/example.org/202603e.txt': 0o644,
      'keys/dkim/example.org/202603r.private': 0o600,
      'keys/dkim/example.org/202603r.txt': 0o644,
      [`${ksk.basePath}.key`]: 0o644,
      [`${ksk.basePath}.private`]: 0o600,
      [`${zsk!.basePath}.key`]: 0o644,
      [`${zsk!.basePath}.private`]: 0o600,
      [`${nextZsk!.basePath}.key`]: 0o644,
      [`${nextZsk!.basePath}.private`]: 0o600,
      'keys/keys.json': 0o644,
      'keys/tls/cert.pem': 0o644,
      'keys/tls/csr.pem': 0o644,
      'keys/tls/key.pem': 0o600,
      'keys/tls/next-key.pem': 0o600,
      'keys/tsig/ns2.example.net.key': 0o600,
    });
    expect(ksk.basePath).toBe(`keys/dnssec/example.org/Kexample.org.+013+${String(ksk.tag).padStart(5, '0')}`);
    expect(new Set([ksk.tag, zsk!.tag, nextZsk!.tag]).size).toBe(3);
    expect(ksk.ds).toMatch(new RegExp(`^${ksk.tag} 13 2 [0-9A-F]{64}$`));
    expect(zsk!.ds).toBeUndefined();
    // The schedule: KSK and ZSK publish and sign from now; the next ZSK is made now, published 87
    // days on, signs at 90, and the current ZSK leaves 30 days after that.
    expect([ksk.publish, ksk.activate, ksk.remove]).toEqual(['2026-03-15T10:20:30Z', '2026-03-15T10:20:30Z', undefined]);
    expect([zsk!.publish, zsk!.activate, zsk!.remove]).toEqual(['2026-03-15T10:20:30Z', '2026-03-15T10:20:30Z', '2026-07-13T10:20:30Z']);
    expect([nextZsk!.publish, nextZsk!.activate, nextZsk!.remove]).toEqual(['2026-06-10T10:20:30Z', '2026-06-13T10:20:30Z', undefined]);
    expect(text(k, `${ksk.basePath}.key`)).toMatch(/^; This is a key-signing key, keyid \d+, for example\.org\.\n/);
    expect(text(k, `${ksk.basePath}.key`)).toContain(`\nexample.org. IN DNSKEY ${ksk.dnskey}\n`);
    expect(text(k, `${zsk!.basePath}.private`)).toMatch(
      /^Private-key-format: v1\.3\nAlgorithm: 13 \(ECDSAP256SHA256\)\nPrivateKey: [A-Za-z0-9+/]{43}=\nCreated: 20260315000000\nPublish: 20260315000000\nActivate: 20260315000000\n$/,
    );
    expect(k.tsig).toEqual([
      { name: 'selfmail-ns2.example.net', algorithm: 'hmac-sha256', server: 'ns2.example.net', secretPath: 'keys/tsig/ns2.example.net.key', created: '2026-03-15' },
    ]);
    expect(Buffer.from(text(k, 'keys/tsig/ns2.example.net.key').trim(), 'base64').length).toBe(32);
    expect(k.dkim.map((x) => [x.selector, x.algorithm, x.state, x.created])).toEqual([
      ['202603e', 'ed25519', 'active', '2026-03-15'],
      ['202603r', 'rsa', 'active', '2026-03-15'],
    ]);
    expect(k.tls.spkiSha256).toMatch(/^[0-9a-f]{64}$/);
    expect(() => k.read('keys/nope')).toThrow();
  });

  it('publishes DKIM TXT values that verify signatures of the stored private keys', async () => {
    const k = await fixtureKeys();
    for (const key of k.dkim) {
      expect(text(k, `keys/dkim/example.org/${key.selector}.txt`)).toBe(`${key.txt}\n`);
      const priv = createPrivateKey(k.read(key.privateKeyPath));
      const p = Buffer.from(/p=(.+)$/.exec(key.txt)![1]!, 'base64');
      const msg = Buffer.from('DKIM-Signature test');
      if (key.algorithm === 'rsa') {
        expect(key.txt).toMatch(/^v=DKIM1; k=rsa; p=/);
        const pub = createPublicKey({ key: p, format: 'der', type: 'spki' });
        expect(verify('sha256', msg, pub, sign('sha256', msg, priv))).toBe(true);
        expect(verify('sha256', Buffer.from('other'), pub, sign('sha256', msg, priv))).toBe(false);
      } else {
        expect(key.txt).toMatch(/^v=DKIM1; k=ed25519; p=[A-Za-z0-9+/]{43}=$/);
        expect(p.length).toBe(32);
        const pub = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: p.toString('base64url') }, format: 'jwk' });
        expect(verify(null, msg, pub, sign(null, msg, priv))).toBe(true);
      }
    }
  });

  it('keeps keys.json public, sorted and dated by the caller', async () => {
    const k = await fixtureKeys();
    const json = text(k, KEYS_META_PATH);
    expect(json).not.toMatch(/PRIVATE|PrivateKey/);
    const meta = JSON.parse(json) as Record<string, unknown>;
    expect(Object.keys(meta)).toEqual([...Object.keys(meta)].sort());
    expect(json).toContain('"active": {\n        "ed25519": "202603e",\n        "rsa": "202603r"\n      }');
    // Every creation date is the caller's day; every time is the caller's clock or the DNSSEC and
    // TLS schedules counted from it (87, 90 and 120 days; two hours).
    expect([...json.matchAll(/"created": "([^"]+)"/g)].map((m) => m[1]).every((s) => s === '2026-03-15')).toBe(true);
    const from = Date.parse(KEYS_NOW.toISOString());
    const allowed = [0, 87 * 86_400_000, 90 * 86_400_000, 120 * 86_400_000, 2 * 3_600_000].map((d) => new Date(from + d).toISOString().replace(/\.\d{3}Z$/, 'Z'));
    expect(json.match(/\d{4}-\d\d-\d\dT[\d:]+Z/g)!.filter((t) => !allowed.includes(t))).toEqual([]);
  });

  it('reuses every key byte for byte on a re-run', async () => {
    const k1 = await fixtureKeys();
    const later = new Date('2026-05-02T00:00:00Z');
    const k2 = await ensureKeys(keysTestConfig(), previousFromFiles(k1.files), later);
    expect(snapshot(k2)).toEqual(snapshot(k1));
    expect(describeKeys(k2)).toEqual(describeKeys(k1));
  });

  it('gives a new domain and a new secondary their keys and keeps the others', async () => {
    const k1 = await fixtureKeys();
    const base = keysTestConfig();
    const cfg = keysTestConfig({
      domains: [d('example.org'), d('example.net')],
      nameServers: [...base.nameServers, { name: d('ns3.example.com'), ipv4: [], ipv6: [], self: false }],
    });
    const k2 = await ensureKeys(cfg, previousFromFiles(k1.files), new Date('2026-04-01T00:00:00Z'));
    const s1 = snapshot(k1);
    const s2 = snapshot(k2);
    for (const [p, v] of Object.entries(s1)) {
      if (p.startsWith('keys/tls/cert') || p.startsWith('keys/tls/csr') || p === KEYS_META_PATH) continue;
      expect(s2[p], p).toBe(v);
    }
    expect(k2.dkim.filter((x) => x.domain === 'example.net').map((x) => x.selector)).toEqual(['202604e', '202604r']);
    expect(k2.dnssec.filter((x) => x.zone === 'example.net').map((x) => x.role)).toEqual(['ksk', 'zsk', 'zsk']);
    expect(k2.tsig.map((t) => t.server)).toEqual(['ns2.example.net', 'ns3.example.com']);
    // Same TLS key, new names: CSR and certificate rebuilt.
    expect(k2.tls.spkiSha256).toBe(k1.tls.spkiSha256);
    expect(k2.tls.names).toContain('mta-sts.example.net');
    expect(s2['keys/tls/cert.pem']).not.toBe(s1['keys/tls/cert.pem']);
  });

  it('certifies openpgpkey.<domain> once a mailbox there publishes an OpenPGP key, with the same TLS key, and drops it with the last key', async () => {
    const k1 = await fixtureKeys();
    const withKey = keysTestConfig({ openpgpKeys: ['alice@example.org' as Email] });
    const k2 = await ensureKeys(withKey, previousFromFiles(k1.files), new Date('2026-04-01T00:00:00Z'));
    expect(k2.tls.names).toEqual(['mail.example.org', 'mta-sts.example.org', 'autoconfig.example.org', 'openpgpkey.example.org']);
    expect(k2.tls.spkiSha256).toBe(k1.tls.spkiSha256);
    expect(k2.read('keys/tls/csr.pem').equals(k1.read('keys/tls/csr.pem'))).toBe(false);
    const k3 = await ensureKeys(keysTestConfig(), previousFromFiles(k2.files), new Date('2026-04-02T00:00:00Z'));
    expect(k3.tls.names).toEqual(k1.tls.names);
  });

  it('rotates DKIM to a new active pair and keeps the old one published, then retires it', async () => {
    const k1 = await fixtureKeys();
    const sameMonth = new Date('2026-03-20T00:00:00Z');
    const k2 = await ensureKeys(keysTestConfig(), previousFromFiles(k1.files), sameMonth, { rotateDkim: [d('example.org')] });
    expect(k2.dkim.map((x) => [x.selector, x.state])).toEqual([
      ['202603e', 'published'],
      ['202603e2', 'active'],
      ['202603r', 'published'],
      ['202603r2', 'active'],
    ]);
    expect(k2.read('keys/dkim/example.org/202603r.private').equals(k1.read('keys/dkim/example.org/202603r.private'))).toBe(true);
    // The active selector cannot be retired.
    await expect(
      ensureKeys(keysTestConfig(), previousFromFiles(k2.files), sameMonth, { retireDkimSelectors: ['202603r2'] }),
    ).rejects.toBeInstanceOf(InputError);
    await expect(ensureKeys(keysTestConfig(), previousFromFiles(k2.files), sameMonth, { retireDkimSelectors: ['209901r'] })).rejects.toThrow(
      /not a published DKIM selector/,
    );
    const k3 = await ensureKeys(keysTestConfig(), previousFromFiles(k2.files), sameMonth, { retireDkimSelectors: ['202603r', '202603e'] });
    expect(k3.dkim.map((x) => x.selector)).toEqual(['202603e2', '202603r2']);
    expect(k3.files.some((f) => f.path.startsWith('keys/dkim/example.org/202603r.') || f.path.startsWith('keys/dkim/example.org/202603e.'))).toBe(false);
    expect(JSON.parse(text(k3, KEYS_META_PATH)).dkim['example.org'].retired).toEqual(['202603e', '202603r']);
    // A retired name is never handed out again.
    const k4 = await ensureKeys(keysTestConfig(), previousFromFiles(k3.files), sameMonth, { rotateDkim: [d('example.org')] });
    expect(k4.dkim.filter((x) => x.state === 'active').map((x) => x.selector)).toEqual(['202603e3', '202603r3']);
  });

  it('retires a dated selector where it is only published, even if another domain still signs with it', async () => {
    const cfg = keysTestConfig({ domains: [d('example.org'), d('example.net')], nameServers: [] });
    const k1 = await ensureKeys(cfg, emptyPrevious(), KEYS_NOW);
    const k2 = await ensureKeys(cfg, previousFromFiles(k1.files), KEYS_NOW, { rotateDkim: [d('example.net')] });
    const k3 = await ensureKeys(cfg, previousFromFiles(k2.files), KEYS_NOW, { retireDkimSelectors: ['202603r'] });
    const sel = (k: KeySet, dom: string): string[] => k.dkim.filter((x) => x.domain === dom).map((x) => `${x.selector}:${x.state}`);
    expect(sel(k3, 'example.org')).toEqual(['202603e:active', '202603r:active']);
    expect(sel(k3, 'example.net')).toEqual(['202603e:published', '202603e2:active', '202603r2:active']);
    // Where it signs everywhere it exists, the retirement is refused.
    await expect(ensureKeys(cfg, previousFromFiles(k3.files), KEYS_NOW, { retireDkimSelectors: ['202603r2'] })).rejects.toThrow(/still signs/);
    await expect(ensureKeys(cfg, previousFromFiles(k3.files), KEYS_NOW, { rotateDkim: [d('example.com')] })).rejects.toThrow(/not one of the configured/);
  });

  it('renews the bootstrap certificate near its expiry with the same key, and rebuilds it for a new key', async () => {
    const k1 = await fixtureKeys();
    const late = new Date('2027-02-20T00:00:00Z'); // 23 days before notAfter
    const k2 = await ensureKeys(keysTestConfig(), previousFromFiles(k1.files), late);
    expect(k2.tls.spkiSha256).toBe(k1.tls.spkiSha256);
    expect(k2.read('keys/tls/cert.pem').equals(k1.read('keys/tls/cert.pem'))).toBe(false);
    expect(JSON.parse(text(k2, KEYS_META_PATH)).tls).toMatchObject({ created: '2026-03-15', issued: '2027-02-20' });
    const notYet = await ensureKeys(keysTestConfig(), previousFromFiles(k1.files), new Date('2027-02-10T00:00:00Z'));
    expect(notYet.read('keys/tls/cert.pem').equals(k1.read('keys/tls/cert.pem'))).toBe(true);
    // The key lost on the day it was made: a new key, and never the old key's certificate.
    const warnings: string[] = [];
    const k3 = await ensureKeys(keysTestConfig(), previousFromFiles(k1.files.filter((f) => f.path !== 'keys/tls/key.pem')), KEYS_NOW, {
      warn: (m) => warnings.push(m),
    });
    expect(k3.tls.spkiSha256).not.toBe(k1.tls.spkiSha256);
    expect(k3.read('keys/tls/cert.pem').equals(k1.read('keys/tls/cert.pem'))).toBe(false);
    expect(warnings.join('\n')).toMatch(/TLSA record changes/);
  });

  it('makes a next TLS key beside the current one, and pins both', async () => {
    const k1 = await fixtureKeys();
    expect(k1.tls.next.spkiSha256).toMatch(/^[0-9a-f]{64}$/);
    expect(k1.tls.next.spkiSha256).not.toBe(k1.tls.spkiSha256);
    expect(k1.tls.pins).toEqual([k1.tls.spkiSha256, k1.tls.next.spkiSha256]);
    expect(k1.files.find((f) => f.path === 'keys/tls/next-key.pem')!.mode).toBe(0o600);
    expect(JSON.parse(text(k1, KEYS_META_PATH)).tls.next).toEqual({ created: '2026-03-15', published: '2026-03-15T10:20:30Z' });
    expect(k1.tls.next.ready).toBe('2026-03-15T12:20:30Z');
    // A re-run keeps it, byte for byte.
    const k2 = await ensureKeys(keysTestConfig(), previousFromFiles(k1.files), new Date('2026-04-01T00:00:00Z'));
    expect(k2.read('keys/tls/next-key.pem').equals(k1.read('keys/tls/next-key.pem'))).toBe(true);
  });

  it('rotates TLS only once the next key has been pinned for two TTLs: then it serves, a new next key comes, the old one stays pinned for two TTLs', async () => {
    const k1 = await fixtureKeys();
    const soon = new Date(KEYS_NOW.getTime() + 2 * 3600_000 - 1000);
    const early = await ensureKeys(keysTestConfig(), previousFromFiles(k1.files), soon, { rotateTls: { immediately: false } }).catch((e: unknown) => e);
    expect(early).toBeInstanceOf(InputError);
    expect((early as InputError).message).toMatch(/rotate from 2026-03-15T12:20:30Z on .*or now with --immediately/);
    const at = new Date(KEYS_NOW.getTime() + 2 * 3600_000);
    const k2 = await ensureKeys(keysTestConfig(), previousFromFiles(k1.files), at, { rotateTls: { immediately: false } });
    // The key that serves now was pinned before the rotation: no DANE sender sees it unpinned.
    expect(k2.tls.spkiSha256).toBe(k1.tls.next.spkiSha256);
    expect(k1.tls.pins).toContain(k2.tls.spkiSha256);
    expect(k2.read('keys/tls/key.pem').equals(k1.read('keys/tls/next-key.pem'))).toBe(true);
    expect(k2.tls.next.spkiSha256).not.toBe(k1.tls.spkiSha256);
    expect(k2.tls.retiring).toEqual({ spkiSha256: k1.tls.spkiSha256, until: '2026-03-15T14:20:30Z' });
    expect(k2.tls.pins).toEqual([k2.tls.spkiSha256, k2.tls.next.spkiSha256, k1.tls.spkiSha256]);
    // A new CSR and certificate for the key that serves now.
    expect(k2.read('keys/tls/csr.pem').equals(k1.read('keys/tls/csr.pem'))).toBe(false);
    // The old key is gone from the bundle (apply keeps it 0600 in its backup of the host).
    expect(k2.files.map((f) => f.data.toString('base64'))).not.toContain(k1.read('keys/tls/key.pem').toString('base64'));
    // A second rotation in the middle of the first waits for its new next key's two TTLs.
    const again = await ensureKeys(keysTestConfig(), previousFromFiles(k2.files), new Date('2026-03-15T14:20:29Z'), { rotateTls: { immediately: false } }).catch((e: unknown) => e);
    expect((again as InputError).message).toMatch(/the next key's TLSA went into the bundle at 2026-03-15T12:20:30Z: rotate from 2026-03-15T14:20:30Z on/);
    // Once its time is over, the first run withdraws the old pin.
    const k3 = await ensureKeys(keysTestConfig(), previousFromFiles(k2.files), new Date('2026-03-15T14:20:30Z'));
    expect(k3.tls.retiring).toBeUndefined();
    expect(k3.tls.pins).toEqual([k2.tls.spkiSha256, k2.tls.next.spkiSha256]);
  });

  it('rotates TLS at once with immediately (a key to stop using now), dropping an older rotated-out pin', async () => {
    const k1 = await fixtureKeys();
    const k2 = await ensureKeys(keysTestConfig(), previousFromFiles(k1.files), KEYS_NOW, { rotateTls: { immediately: true } });
    expect(k2.tls.spkiSha256).toBe(k1.tls.next.spkiSha256);
    const k3 = await ensureKeys(keysTestConfig(), previousFromFiles(k2.files), KEYS_NOW, { rotateTls: { immediately: true } });
    expect(k3.tls.spkiSha256).toBe(k2.tls.next.spkiSha256);
    expect(k3.tls.pins).toEqual([k3.tls.spkiSha256, k3.tls.next.spkiSha256, k2.tls.spkiSha256]);
  });

  it('refuses a TLS rotation when the next key file is gone: it would serve a key no TLSA pins', async () => {
    const k1 = await fixtureKeys();
    const err = await ensureKeys(keysTestConfig(), previousFromFiles(k1.files.filter((f) => f.path !== 'keys/tls/next-key.pem')), KEYS_NOW, { rotateTls: { immediately: true } }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InputError);
    expect((err as InputError).message).toMatch(/next-key\.pem.*is missing, so a rotation would serve a key no TLSA pins yet/s);
  });

  it('refuses a key file it did not make', async () => {
    const k1 = await fixtureKeys();
    const ed = k1.dkim.find((x) => x.algorithm === 'ed25519')!;
    const files = k1.files.map((f) => (f.path === ed.privateKeyPath.replace('202603e', '202603r') ? { ...f, data: k1.read(ed.privateKeyPath) } : f));
    const err = await ensureKeys(keysTestConfig(), previousFromFiles(files), KEYS_NOW).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InputError);
    expect(String((err as Error).message)).toMatch(/202603r\.private.*not a DKIM rsa key/s);
    expect(String((err as Error).message)).not.toMatch(/PRIVATE KEY/);
  });

  it('regenerates a lost key and says so', async () => {
    const k1 = await fixtureKeys();
    const zsk = k1.dnssec.find((x) => x.role === 'zsk')!;
    const warnings: string[] = [];
    const k2 = await ensureKeys(
      keysTestConfig(),
      previousFromFiles(k1.files.filter((f) => !f.path.startsWith(zsk.basePath))),
      KEYS_NOW,
      { warn: (m) => warnings.push(m) },
    );
    expect(warnings.join('\n')).toMatch(/ZSK .* missing/);
    expect(k2.dnssec.find((x) => x.role === 'ksk')).toEqual(k1.dnssec.find((x) => x.role === 'ksk'));
    expect(k2.dnssec.find((x) => x.role === 'zsk')!.dnskey).not.toBe(zsk.dnskey);
  });

  it('warns when keys leave the bundle with their domain or DNSSEC', async () => {
    const k1 = await fixtureKeys();
    const warnings: string[] = [];
    const k2 = await ensureKeys(
      keysTestConfig({ domains: [d('example.net')], hostname: d('mail.example.net'), dnssec: false, nameServers: [] }),
      previousFromFiles(k1.files),
      KEYS_NOW,
      { warn: (m) => warnings.push(m) },
    );
    expect(k2.files.some((f) => f.path.includes('example.org/'))).toBe(false);
    expect(warnings).toEqual([
      'example.org is no longer a configured domain: its DKIM keys are removed from the bundle',
      'the DNSSEC keys of example.org are removed from the bundle (DNSSEC is off); remove its DS record at the registrar first',
      'ns2.example.net is no longer a secondary name server: its TSIG secret is removed from the bundle',
    ]);
  });

  it('writes no DNSSEC keys without DNSSEC', async () => {
    const k = await ensureKeys(keysTestConfig({ dnssec: false, nameServers: [] }), emptyPrevious(), KEYS_NOW);
    expect(k.dnssec).toEqual([]);
    expect(k.tsig).toEqual([]);
    expect(k.files.some((f) => f.path.startsWith('keys/dnssec/') || f.path.startsWith('keys/tsig/'))).toBe(false);
  });
});

describe('the WireGuard key of an own-vps host', () => {
  it('is made only with own-vps, 0600, kept across runs, its public key beside it and in keys list', async () => {
    const direct = await fixtureKeys();
    expect(direct.wireguard).toBeUndefined();
    expect(direct.files.some((f) => f.path.startsWith('keys/wireguard/'))).toBe(false);
    const cfg = keysTestConfig({ ingress: 'own-vps' });
    const k1 = await ensureKeys(cfg, emptyPrevious(), KEYS_NOW);
    const key = k1.files.find((f) => f.path === 'keys/wireguard/home.key')!;
    expect(key.mode).toBe(0o600);
    expect(k1.wireguard).toEqual({ keyPath: 'keys/wireguard/home.key', publicKey: wgPublicKey(key.data.toString().trim()), created: '2026-03-15' });
    expect(text(k1, 'keys/wireguard/home.pub')).toBe(`${k1.wireguard!.publicKey}\n`);
    const k2 = await ensureKeys(cfg, previousFromFiles(k1.files), new Date('2026-04-01T00:00:00Z'));
    expect(k2.wireguard).toEqual(k1.wireguard);
    const row = describeKeys(k2, () => true, KEYS_NOW).find((r) => r.type === 'wireguard');
    expect(row).toMatchObject({ id: 'home', algorithm: 'x25519', state: 'active', created: '2026-03-15', file: 'keys/wireguard/home.key' });
    expect(row!.fingerprint).toMatch(/^[0-9a-f]{64}$/);
    const bad = k1.files.map((f) => (f.path === 'keys/wireguard/home.key' ? { ...f, data: Buffer.from('not a key\n') } : f));
    await expect(ensureKeys(cfg, previousFromFiles(bad), KEYS_NOW)).rejects.toThrow(InputError);
  });
});

describe('describeKeys', () => {
  it('lists every key with its fingerprint and nothing private', async () => {
    const k = await fixtureKeys();
    const rows = describeKeys(k, () => true, KEYS_NOW);
    expect(rows.map((r) => `${r.type} ${r.name} ${r.state}`)).toEqual([
      'dkim example.org active',
      'dkim example.org active',
      'dnssec-ksk example.org active',
      'dnssec-zsk example.org active',
      'dnssec-zsk example.org next',
      'tls mail.example.org active',
      'tls mail.example.org next',
      'tsig ns2.example.net active',
    ]);
    const tlsRow = rows.find((r) => r.type === 'tls')!;
    expect(tlsRow.fingerprint).toBe(k.tls.spkiSha256);
    expect(rows.find((r) => r.type === 'tls' && r.state === 'next')).toMatchObject({ fingerprint: k.tls.next.spkiSha256, nextStep: `may serve from ${k.tls.next.ready} (selfmail keys rotate tls)` });
    for (const r of rows.filter((r) => r.type !== 'tsig')) expect(r.fingerprint).toMatch(/^[0-9a-f]{64}$/);
    const out = JSON.stringify(rows);
    expect(out).not.toMatch(/PRIVATE KEY|PrivateKey/);
    // A key whose file the bundle lacks is missing, with no fingerprint to show.
    const without = describeKeys(k, (p) => p !== k.tls.keyPath);
    expect(without.find((r) => r.type === 'tls')).toMatchObject({ state: 'missing', fingerprint: '', file: 'keys/tls/key.pem' });
    expect(without.filter((r) => r.state === 'missing')).toHaveLength(1);
    for (const f of k.files.filter((f) => f.mode === 0o600)) {
      // No private file's content (or its base64 payload lines) reaches the listing.
      for (const line of f.data.toString('utf8').split('\n').filter((l) => l.length > 20)) {
        expect(out.includes(line.replace(/^PrivateKey: /, ''))).toBe(false);
      }
    }
  });
});
