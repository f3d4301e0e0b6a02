import { describe, expect, it } from 'vitest';
import { hostMaintained, judgeSignedZone } from '../../src/verify/maintained.js';

const UNSIGNED = `$ORIGIN example.org.
$TTL 3600
@    IN SOA ns1.example.org. hostmaster.example.org. 2026010101 7200 3600 1209600 3600
@    IN NS  ns1.example.org.
@    IN MX  10 mail.example.org.
mail IN A   192.0.2.1
`;
const KEY = 'example.org.\t3600\tIN\tDNSKEY\t257 3 13 gcxMACfwoshqICaErDZV4/FD92fkCfgi+lBkWWntClV8ZBgi73YOgqiGuSmUG8nOdSmdx6Xpr6X8K6T1e+/gYw==';
const signed = (serial: number, extra = '', expiry = '20260301000000') => `example.org.\t3600\tIN\tSOA\tns1.example.org. hostmaster.example.org. ${serial} 7200 3600 1209600 3600
example.org.\t3600\tIN\tRRSIG\tSOA 13 2 3600 ${expiry} 20260101000000 32551 example.org. AAAA
example.org.\t3600\tIN\tNS\tNS1.example.org.
example.org.\t3600\tIN\tMX\t10 mail.example.org.
${KEY}
example.org.\t3600\tIN\tNSEC\tmail.example.org. NS SOA MX RRSIG NSEC DNSKEY
mail.example.org.\t3600\tIN\tA\t192.0.2.1
${extra}`;
const now = new Date('2026-02-01T00:00:00Z');
const judge = (installed: string) =>
  judgeSignedZone({ zone: 'example.org', installed, bundleSigned: signed(2026010101), bundleUnsigned: UNSIGNED, now, failDays: 1 });

describe('judgeSignedZone', () => {
  it('accepts a re-signing: higher serial, same records (names compared without case), same DNSKEYs', () => {
    const v = judge(signed(2026020101));
    expect(v).toMatchObject({ accepted: true, keep: true, problems: [] });
    expect(v.summary).toMatch(/re-signed on the host \(serial 2026020101, bundle 2026010101\)/);
    expect(judge(signed(2026010101))).toMatchObject({ accepted: true, keep: false });
  });

  it('names every difference: serial, records, TTLs, DNSKEYs, expiry', () => {
    expect(judge(signed(2025120101)).problems).toEqual(["its SOA serial 2025120101 is lower than the bundle's 2026010101"]);
    expect(judge(signed(2026020101, 'evil.example.org.\t3600\tIN\tA\t203.0.113.9\n')).problems).toEqual([
      "records not in the bundle's zone: evil.example.org. 3600 A 203.0.113.9",
    ]);
    const ttl = judge(signed(2026020101).replace('mail.example.org.\t3600', 'mail.example.org.\t60'));
    expect(ttl.problems.join('\n')).toMatch(/not in the bundle's zone: mail\.example\.org\. 60 A/);
    expect(ttl.problems.join('\n')).toMatch(/missing: mail\.example\.org\. 3600 A/);
    expect(judge(signed(2026020101).replace(KEY, KEY.replace('257', '256'))).problems).toEqual([
      expect.stringMatching(/DNSKEY set \(1 key\(s\)\) is not the bundle's/),
    ]);
    expect(judge(signed(2026020101, '', '20260201120000')).problems).toEqual([expect.stringMatching(/signatures expire 2026-02-01T12:00:00/)]);
    expect(judge(signed(2026020101).replace(/.*RRSIG.*\n/, '')).problems).toEqual(['it has no RRSIG']);
  });

  it('knows which files the host maintains', () => {
    expect(['dns/example.org.zone.signed', 'keys/tls/cert.pem'].every(hostMaintained)).toBe(true);
    expect(['dns/example.org.zone', 'keys/tls/key.pem', 'postfix/main.cf'].some(hostMaintained)).toBe(false);
  });
});
