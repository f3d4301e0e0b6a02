import { describe, expect, it } from 'vitest';
import { dsDigest, earliestRrsigExpiry, nameToWire, parseDnskey, parseDnsTime, parseDs, parseZone, tlsaPins } from '../../src/verify/dns.js';

// RFC 4034 §5.4 and RFC 4509 §2.3: the same DNSKEY with its SHA-1 and SHA-256 DS.
const RFC_ZONE = `dskey.example.com. 86400 IN DNSKEY 256 3 5 ( AQOeiiR0GOMYkDshWoSKz9Xz
                                             fwJr1AYtsmx3TGkJaNXVbfi/
                                             2pHm822aJ5iI9BMzNXxeYCmZ
                                             DRD99WYwYqUSdjMmmAphXdvx
                                             egXd/M5+X7OrzKBaMbCVdFLU
                                             Uh6DhweJBjEVv5f2wwjM9Xzc
                                             nOf+EPbtG9DMBmADjFDc2w/r
                                             ljwvFw==
                                             ) ;  key id = 60485
dskey.example.com. 86400 IN DS 60485 5 1 ( 2BB183AF5F22588179A53B0A
                                            98631FAD1A292118 )
dskey.example.com. 86400 IN DS 60485 5 2 ( D4B7D520E7BB5F0F67674A0C
                                           CEB1E3E0614B93C4F9E99B83
                                           83F6A1E4469DA50A )
`;

describe('zone parsing and DNSSEC arithmetic', () => {
  const records = parseZone(RFC_ZONE, 'example.com');

  it('joins parenthesised records and drops comments', () => {
    expect(records.map((r) => `${r.owner} ${r.type}`)).toEqual([
      'dskey.example.com. DNSKEY',
      'dskey.example.com. DS',
      'dskey.example.com. DS',
    ]);
  });

  it('computes the RFC key tag and both DS digests of the RFC example', () => {
    const key = parseDnskey(records[0]?.rdata ?? []);
    if (!key) throw new Error('DNSKEY not parsed');
    expect(key.tag).toBe(60485);
    const [sha1, sha256] = records.slice(1).map(parseDs);
    expect(dsDigest('dskey.example.com.', key, 1)).toBe(sha1?.digest);
    expect(dsDigest('dskey.example.com.', key, 2)).toBe(sha256?.digest);
    expect(dsDigest('DSKEY.Example.COM', key, 2)).toBe(sha256?.digest);
    expect(dsDigest('other.example.com.', key, 2)).not.toBe(sha256?.digest);
    expect(dsDigest('dskey.example.com.', key, 3)).toBeUndefined();
  });

  it('writes names in canonical wire form', () => {
    expect(nameToWire('Mail.Example.ORG.').toString('hex')).toBe('046d61696c076578616d706c65036f726700');
    expect(nameToWire('.').toString('hex')).toBe('00');
  });

  it('resolves relative owners, @, $ORIGIN and continuation lines; keeps quoted semicolons', () => {
    const z = parseZone(
      `$ORIGIN example.org.\n$TTL 3600\n@ IN SOA ns1 host 1 2 3 4 5\n  IN TXT "v=spf1 -all; x"\nmail 300 IN A 192.0.2.1\n_25._tcp.mail IN TLSA 3 1 1 ABCDEF ( 0123 )\nwww.example.net. A 192.0.2.2\n`,
      'example.org',
    );
    expect(z.map((r) => `${r.owner} ${r.type} ${r.rdata.join(' ')}`)).toEqual([
      'example.org. SOA ns1 host 1 2 3 4 5',
      'example.org. TXT "v=spf1 -all; x"',
      'mail.example.org. A 192.0.2.1',
      '_25._tcp.mail.example.org. TLSA 3 1 1 ABCDEF 0123',
      'www.example.net. A 192.0.2.2',
    ]);
    expect(tlsaPins(z)).toEqual([{ owner: '_25._tcp.mail.example.org.', sha256: 'abcdef0123' }]);
  });

  it('reads RRSIG expiration in both time formats and finds the earliest', () => {
    expect(parseDnsTime('20260102030405')?.toISOString()).toBe('2026-01-02T03:04:05.000Z');
    expect(parseDnsTime('1700000000')?.toISOString()).toBe('2023-11-14T22:13:20.000Z');
    expect(parseDnsTime('soon')).toBeUndefined();
    const z = parseZone(
      'example.org. 3600 IN RRSIG SOA 13 2 3600 20260301000000 20260101000000 1 example.org. AAAA\n' +
        'example.org. 3600 IN RRSIG NS 13 2 3600 20260215000000 20260101000000 1 example.org. AAAA\n',
      'example.org',
    );
    expect(earliestRrsigExpiry(z)?.toISOString()).toBe('2026-02-15T00:00:00.000Z');
    expect(earliestRrsigExpiry([])).toBeUndefined();
  });
});
