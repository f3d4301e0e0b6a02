import { generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { productionProfile } from '../../src/bundle/layout.js';
import type { DomainName, Email } from '../../src/config/types.js';
import { nsdModel } from '../../src/dns/nsd.js';
import { soaRname, txtRdata, zoneRecords } from '../../src/dns/records.js';
import { dsFileText, externalDmarcAuthorizations, registrarInfo } from '../../src/dns/registrar.js';
import { canReuseSigned, dnskeysIn, earliestExpiry } from '../../src/dns/sign.js';
import { nextSerial, serialOf, withSerial, writeZone } from '../../src/dns/zone.js';
import type { KeySet } from '../../src/keys/types.js';
import { buildZone } from '../../src/dns/service.js';
import { makeConfig, makeContext } from '../helpers/dns-keyset.js';
import { ALICE_BINARY, ALICE_DANE_LABEL } from '../helpers/openpgp.js';

const rsaTxt = `v=DKIM1; k=rsa; p=${generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ type: 'spki', format: 'der' }).toString('base64')}`;

/** A key set with made-up public values: enough for the pure record model. */
function fakeKeys(): KeySet {
  const d = (domain: string, selector: string, txt: string, state: 'active' | 'published') => ({
    domain: domain as DomainName, selector, algorithm: 'rsa' as const, txt, privateKeyPath: `keys/dkim/${domain}/${selector}.pem`, signingKeyPath: `keys/dkim/${domain}/${selector}.pem`, state, created: '2026-01-01',
  });
  return {
    dkim: [d('example.org', '202601r', rsaTxt, 'active'), d('example.org', '202501r', 'v=DKIM1; k=rsa; p=OLD', 'published'), d('example.net', '202601r', 'v=DKIM1; k=rsa; p=NET', 'active')],
    dnssec: [
      { zone: 'example.org' as DomainName, role: 'ksk', tag: 111, algorithm: 13, dnskey: '257 3 13 KSKKEY==', ds: '111 13 2 abcdef0123', basePath: 'keys/dnssec/example.org/Kexample.org.+013+00111', created: '2026-01-01', publish: '2026-01-01T00:00:00Z', activate: '2026-01-01T00:00:00Z' },
      { zone: 'example.org' as DomainName, role: 'zsk', tag: 222, algorithm: 13, dnskey: '256 3 13 ZSKKEY==', basePath: 'keys/dnssec/example.org/Kexample.org.+013+00222', created: '2026-01-01', publish: '2026-01-01T00:00:00Z', activate: '2026-01-01T00:00:00Z' },
    ],
    tls: {
      keyPath: 'k',
      certPath: 'c',
      csrPath: 'r',
      spkiSha256: 'ab'.repeat(32),
      names: [],
      created: '2026-01-01',
      next: { keyPath: 'n', spkiSha256: 'cd'.repeat(32), created: '2026-01-01', published: '2026-01-01T00:00:00Z', ready: '2026-01-01T02:00:00Z' },
      retiring: { spkiSha256: 'ef'.repeat(32), until: '2026-01-01T02:00:00Z' },
      pins: ['ab'.repeat(32), 'cd'.repeat(32), 'ef'.repeat(32)],
    },
    tsig: [{ name: 'selfmail-ns2.example.com', algorithm: 'hmac-sha256', server: 'ns2.example.com' as DomainName, secretPath: 'keys/tsig/ns2.example.com.key', created: '2026-01-01' }],
    files: [],
    read: () => Buffer.from('c2VjcmV0\n'),
  };
}

const all = (zone: string, config = makeConfig(), keys = fakeKeys()) => zoneRecords(config, keys, zone as DomainName, 2026030101, 'enforce').flatMap((g) => g.records);

describe('TXT character-strings', () => {
  it('splits a value longer than 255 bytes and joins back to the same value', () => {
    expect(rsaTxt.length).toBeGreaterThan(255);
    const rdata = txtRdata(rsaTxt);
    const parts = [...rdata.matchAll(/"([^"]*)"/g)].map((m) => m[1]!);
    expect(parts.length).toBe(Math.ceil(rsaTxt.length / 255));
    for (const p of parts) expect(Buffer.byteLength(p)).toBeLessThanOrEqual(255);
    expect(parts[0]!.length).toBe(255);
    expect(parts.join('')).toBe(rsaTxt);
  });
  it('keeps a short value in one string and escapes quotes', () => {
    expect(txtRdata('v=spf1 mx -all')).toBe('"v=spf1 mx -all"');
    expect(txtRdata('a"b\\c')).toBe('"a\\"b\\\\c"');
  });
});

describe('records', () => {
  it('escapes dots in the SOA mailbox', () => {
    expect(soaRname('first.last@example.net' as Email)).toBe('first\\.last.example.net.');
    expect(soaRname('alice@example.org' as Email)).toBe('alice.example.org.');
  });

  it('publishes every DKIM key of the domain, both states, and only there', () => {
    const org = all('example.org').filter((r) => r.name.includes('._domainkey.'));
    expect(org.map((r) => r.name)).toEqual(['202501r._domainkey.example.org', '202601r._domainkey.example.org']);
    const net = all('example.net').filter((r) => r.name.includes('._domainkey.'));
    expect(net.map((r) => r.rdata)).toEqual(['"v=DKIM1; k=rsa; p=NET"']);
  });

  it('puts TLSA and the host address only in the host zone', () => {
    const org = all('example.org');
    expect([...new Set(org.filter((r) => r.type === 'TLSA').map((r) => r.name))]).toEqual(['_25._tcp.mail.example.org', '_465._tcp.mail.example.org', '_587._tcp.mail.example.org', '_993._tcp.mail.example.org']);
    // Each port pins the current key, the next one and one rotated out, in that order.
    for (const port of [25, 465, 587, 993]) {
      expect(org.filter((r) => r.type === 'TLSA' && r.name === `_${port}._tcp.mail.example.org`).map((r) => r.rdata)).toEqual(['ab', 'cd', 'ef'].map((x) => `3 1 1 ${x.repeat(32)}`));
    }
    expect(all('example.net').some((r) => r.type === 'TLSA' || r.name === 'mail.example.org')).toBe(false);
    expect(all('example.net').find((r) => r.type === 'MX')!.rdata).toBe('10 mail.example.org.');
  });

  it('authorizes DMARC reports in the admin zone for the other domains', () => {
    const auth = all('example.org').filter((r) => r.name.includes('._report._dmarc.'));
    expect(auth).toEqual([{ name: 'example.net._report._dmarc.example.org', type: 'TXT', rdata: '"v=DMARC1"' }]);
    expect(all('example.net').some((r) => r.name.includes('._report._dmarc.'))).toBe(false);
    const outside = makeConfig({ admin: 'reports@example.com' });
    expect(all('example.org', outside).some((r) => r.name.includes('._report._dmarc.'))).toBe(false);
    expect(externalDmarcAuthorizations(outside).map((a) => a.name)).toEqual(['example.net._report._dmarc.example.com', 'example.org._report._dmarc.example.com']);
    expect(externalDmarcAuthorizations(makeConfig())).toEqual([]);
  });

  it('has SOA, NS, glue, MX, SPF, DMARC, MTA-STS, TLS-RPT, CAA and SRV', () => {
    const org = all('example.org');
    const has = (name: string, type: string, rdata?: string) =>
      expect(org.some((r) => r.name === name && r.type === type && (rdata === undefined || r.rdata === rdata)), `${name} ${type} ${rdata}`).toBe(true);
    has('example.org', 'SOA', 'ns1.example.org. alice.example.org. 2026030101 14400 3600 1209600 3600');
    has('example.org', 'NS', 'ns1.example.org.');
    has('example.org', 'NS', 'ns2.example.com.');
    has('ns1.example.org', 'A', '192.0.2.10');
    has('ns1.example.org', 'AAAA', '2001:db8::10');
    has('mta-sts.example.org', 'A', '192.0.2.10');
    has('autoconfig.example.org', 'AAAA', '2001:db8::10');
    has('example.org', 'TXT', '"v=spf1 mx -all"');
    has('_dmarc.example.org', 'TXT', '"v=DMARC1; p=reject; adkim=s; aspf=s; rua=mailto:alice@example.org"');
    has('_smtp._tls.example.org', 'TXT', '"v=TLSRPTv1; rua=mailto:alice@example.org"');
    has('example.org', 'CAA', '0 issue "letsencrypt.org"');
    has('example.org', 'CAA', '0 issuewild ";"');
    has('example.org', 'CAA', '0 iodef "mailto:alice@example.org"');
    has('_submissions._tcp.example.org', 'SRV', '0 1 465 mail.example.org.');
    has('_submission._tcp.example.org', 'SRV', '0 1 587 mail.example.org.');
    has('_imaps._tcp.example.org', 'SRV', '0 1 993 mail.example.org.');
    has('_pop3._tcp.example.org', 'SRV', '0 0 0 .');
    expect(org.find((r) => r.name === '_mta-sts.example.org')!.rdata).toMatch(/^"v=STSv1; id=[0-9a-f]{20}"$/);
    expect(org.some((r) => r.name === 'ns2.example.com')).toBe(false);
  });
});

describe('OpenPGP keys (RFC 7929, and the Web Key Directory\'s name)', () => {
  const withKey = (values = {}) => makeConfig({ openpgpKeys: ['alice@example.org=alice.asc'], ...values });
  const keyOf = [{ email: 'alice@example.org' as Email, key: ALICE_BINARY }];
  const records = (zone: string, config = withKey()) => zoneRecords(config, fakeKeys(), zone as DomainName, 2026030101, 'enforce', [], keyOf).flatMap((g) => g.records);

  it('publishes each key as OPENPGPKEY under the hash of its local part, the binary key in base64, in its own zone', () => {
    expect(records('example.org').filter((r) => r.type === 'OPENPGPKEY')).toEqual([
      { name: `${ALICE_DANE_LABEL}._openpgpkey.example.org`, type: 'OPENPGPKEY', rdata: ALICE_BINARY.toString('base64') },
    ]);
    expect(records('example.net').some((r) => r.type === 'OPENPGPKEY')).toBe(false);
  });

  it('points openpgpkey.<domain> at the host, only for a domain with a key', () => {
    const org = records('example.org').filter((r) => r.name === 'openpgpkey.example.org');
    expect(org).toEqual([
      { name: 'openpgpkey.example.org', type: 'A', rdata: '192.0.2.10' },
      { name: 'openpgpkey.example.org', type: 'AAAA', rdata: '2001:db8::10' },
    ]);
    expect(records('example.net').some((r) => r.name.startsWith('openpgpkey.'))).toBe(false);
    expect(all('example.org').some((r) => r.name.includes('openpgpkey'))).toBe(false);
  });

  it('publishes no OPENPGPKEY without DNSSEC (unsigned, it proves nothing), and still the WKD name', () => {
    const off = records('example.org', withKey({ dnssec: false }));
    expect(off.some((r) => r.type === 'OPENPGPKEY')).toBe(false);
    expect(off.some((r) => r.name === 'openpgpkey.example.org')).toBe(true);
  });

  it('keeps the zone file\'s column where the long OPENPGPKEY owner would push it', () => {
    const text = writeZone('example.org' as DomainName, zoneRecords(withKey(), fakeKeys(), 'example.org' as DomainName, 2026030101, 'enforce', [], keyOf));
    const plain = writeZone('example.org' as DomainName, zoneRecords(makeConfig(), fakeKeys(), 'example.org' as DomainName, 2026030101, 'enforce'));
    const mx = (t: string) => t.split('\n').find((l) => / IN MX /.test(l));
    expect(mx(text)).toBe(mx(plain));
    expect(text).toContain(`\n${ALICE_DANE_LABEL}._openpgpkey IN OPENPGPKEY ${ALICE_BINARY.toString('base64')}\n`);
  });
});

describe('zone writer and serial', () => {
  it('writes the same bytes for the same input, with $ORIGIN, $TTL and comments', () => {
    const config = makeConfig();
    const keys = fakeKeys();
    const a = writeZone('example.org' as DomainName, zoneRecords(config, keys, 'example.org' as DomainName, 2026030101, 'enforce'));
    const b = writeZone('example.org' as DomainName, zoneRecords(config, keys, 'example.org' as DomainName, 2026030101, 'enforce'));
    expect(a).toBe(b);
    expect(a).toMatch(/^\$ORIGIN example\.org\.$/m);
    expect(a).toMatch(/^\$TTL 3600$/m);
    expect(a).toMatch(/^; DANE/m);
    expect(serialOf(a)).toBe(2026030101);
    expect(serialOf(withSerial(a, 2026030207))).toBe(2026030207);
    expect(withSerial(withSerial(a, 7), 2026030101)).toBe(a);
  });

  it('moves the serial forward only', () => {
    const now = new Date('2026-03-01T12:00:00Z');
    expect(nextSerial(undefined, now)).toBe(2026030101);
    expect(nextSerial(2026022805, now)).toBe(2026030101);
    expect(nextSerial(2026030101, now)).toBe(2026030102);
    expect(nextSerial(2026040101, now)).toBe(2026040102);
  });
});

describe('signed zone reuse', () => {
  const signed = [
    'example.org.\t3600\tIN\tSOA\tns1.example.org. alice.example.org. 1 14400 3600 1209600 3600',
    'example.org.\t3600\tIN\tRRSIG\tSOA 13 2 3600 20260331120000 20260301110000 222 example.org. c2ln',
    'example.org.\t3600\tIN\tCAA\t0 issuewild ";"',
    'example.org.\t3600\tIN\tDNSKEY\t256 3 13 ZSKKEY== ;{id = 222 (zsk), size = 256b}',
    'example.org.\t3600\tIN\tDNSKEY\t257 3 13 KSKKEY== ;{id = 111 (ksk), size = 256b}',
    'example.org.\t3600\tIN\tRRSIG\tDNSKEY 13 2 3600 20260330120000 20260301110000 111 example.org. c2ln',
    '',
  ].join('\n');
  const dnskeys = ['256 3 13 ZSKKEY==', '257 3 13 KSKKEY=='];
  const base = { previousSigned: signed, previousUnsigned: 'U', unsigned: 'U', dnskeys, now: new Date('2026-03-10T00:00:00Z') };

  it('reads RRSIG expiry and DNSKEYs from ldns output', () => {
    expect(earliestExpiry(signed)!.toISOString()).toBe('2026-03-30T12:00:00.000Z');
    expect(dnskeysIn(signed)).toEqual(dnskeys);
  });
  it('reuses only when nothing changed and the signatures last more than a week', () => {
    expect(canReuseSigned(base)).toBe(true);
    expect(canReuseSigned({ ...base, unsigned: 'V' })).toBe(false);
    expect(canReuseSigned({ ...base, previousSigned: undefined })).toBe(false);
    expect(canReuseSigned({ ...base, dnskeys: ['257 3 13 KSKKEY=='] })).toBe(false);
    expect(canReuseSigned({ ...base, now: new Date('2026-03-24T00:00:00Z') })).toBe(false);
  });
});

describe('NSD model and registrar info', () => {
  it('notifies and allows transfers to secondaries with their TSIG key, never NOKEY', () => {
    const config = makeConfig();
    const m = nsdModel(config, fakeKeys(), productionProfile(config));
    expect(m.listen).toEqual(['192.0.2.10@53', '2001:db8::10@53']);
    expect(m.username).toBe('nsd');
    expect(m.tsigInclude).toBe('/etc/nsd/tsig.conf');
    expect(m.zones.map((z) => z.zonefile)).toEqual(['/etc/nsd/zones/example.net.zone.signed', '/etc/nsd/zones/example.org.zone.signed']);
    expect(m.zones[0]!.secondaries).toEqual([{ address: '198.51.100.53', key: 'selfmail-ns2.example.com' }]);
    const warnings: string[] = [];
    const noKey = nsdModel(config, { tsig: [] }, productionProfile(config), warnings);
    expect(noKey.zones[0]!.secondaries).toEqual([]);
    expect(noKey.tsigInclude).toBeUndefined();
    expect(warnings.join()).toContain('ns2.example.com');
  });

  it('lists NS, glue and DS for the registrar', () => {
    const config = makeConfig();
    const [org] = registrarInfo({ config, keys: fakeKeys() });
    expect(org!.zone).toBe('example.org');
    expect(org!.nameServers).toEqual([
      { name: 'ns1.example.org', ipv4: ['192.0.2.10'], ipv6: ['2001:db8::10'], glue: true },
      { name: 'ns2.example.com', ipv4: ['198.51.100.53'], ipv6: [], glue: false },
    ]);
    expect(org!.ds).toEqual([{ keyTag: 111, algorithm: 13, digestType: 2, digest: 'ABCDEF0123', record: 'example.org. IN DS 111 13 2 ABCDEF0123' }]);
    expect(org!.dnskey.map((k) => k.record)).toEqual(['example.org. IN DNSKEY 257 3 13 KSKKEY==']);
    expect(dsFileText(fakeKeys(), 'example.org' as DomainName)).toContain('\nexample.org. IN DS 111 13 2 ABCDEF0123\n');
    expect(registrarInfo({ config: { ...config, dnssec: false }, keys: fakeKeys() })[0]!.ds).toEqual([]);
  });
});

describe('serial across runs (no DNSSEC, so no signer involved)', () => {
  const config = makeConfig({ dnssec: false });
  const zone = 'example.org' as DomainName;
  const day1 = new Date('2026-03-01T12:00:00Z');
  const day2 = new Date('2026-03-02T12:00:00Z');
  const file = (path: string, text: string) => ({ path, data: Buffer.from(text), mode: 0o644, role: '' });

  it('keeps the serial and bytes when nothing changed, even days later', async () => {
    const first = await buildZone(makeContext(config, fakeKeys(), { now: day1 }), zone);
    expect(first.serial).toBe(2026030101);
    expect(first.signed).toBeUndefined();
    const again = await buildZone(makeContext(config, fakeKeys(), { now: day2, previous: [file('dns/example.org.zone', first.unsigned)] }), zone);
    expect(again.unsigned).toBe(first.unsigned);
  });

  it('raises the serial when a record changes, or when signatures are dropped', async () => {
    const first = await buildZone(makeContext(config, fakeKeys(), { now: day1 }), zone);
    const prev = [file('dns/example.org.zone', first.unsigned)];
    const changed = await buildZone(makeContext(makeConfig({ dnssec: false, acmeCa: 'sectigo.com' }), fakeKeys(), { now: day1, previous: prev }), zone);
    expect(changed.serial).toBe(2026030102);
    expect(changed.unsigned).toContain('0 issue "sectigo.com"');
    const unsignedNow = await buildZone(
      makeContext(config, fakeKeys(), { now: day2, previous: [...prev, file('dns/example.org.zone.signed', 'example.org.\t3600\tIN\tSOA\tns1.example.org. alice.example.org. 2026030105 14400 3600 1209600 3600\n')] }),
      zone,
    );
    expect(unsignedNow.serial).toBe(2026030201);
  });
});
