/**
 * The own-VPS rehearsal's pure pieces: the TLSA digests read from a zone, Postfix's own Received:
 * line, the internet's addresses and names, where outbound SMTP binds, and the privacy verdict
 * with a tunnel. The whole step, with real daemons and WireGuard, is
 * test/e2e/rehearse-own-vps.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { onTunnel } from '../../src/postfix/model.js';
import { inStaticZone, reverseName } from '../../src/rehearse/resolver.js';
import { postfixReceived, privacyVerdict, tlsaDigests } from '../../src/rehearse/steps.js';
import { INTERNET_CLIENT, INTERNET_DOMAIN, INTERNET_MX, internetZone, pickAddresses } from '../../src/rehearse/tunnel.js';

describe('the TLSA the zone pins', () => {
  const zone = [
    'mail.example.org.\t3600\tIN\tA\t203.0.113.5',
    '_25._tcp.mail.example.org.\t3600\tIN\tTLSA\t3 1 1 AABBCC',
    '_25._tcp.mail.example.org.\t3600\tIN\tTLSA\t3 1 1 ddee ff00',
    '_25._tcp.mail.example.org.\t3600\tIN\tTLSA\t2 1 1 123456',
    '_25._tcp.mail.example.org.\t3600\tIN\tRRSIG\tTLSA 13 5 3600 20270101000000 20261201000000 1 example.org. abc',
    '_465._tcp.mail.example.org.\t3600\tIN\tTLSA\t3 1 1 999999',
  ].join('\n');
  it('reads the DANE-EE SPKI SHA-256 digests of port 25, lower-case and joined, and nothing else', () => {
    expect(tlsaDigests(zone, 'mail.example.org')).toEqual(['aabbcc', 'ddeeff00']);
  });
  it('finds none for another host name', () => {
    expect(tlsaDigests(zone, 'mx.example.org')).toEqual([]);
  });
});

describe("Postfix's Received: line", () => {
  const message = [
    'Return-Path: <someone@internet.invalid>',
    'Delivered-To: rehearsal-a@example.org',
    'Received: from mail.example.org',
    '\tby mail.example.org with LMTP id abc',
    '\tfor <rehearsal-a@example.org>; Mon, 07 Dec 2026 20:36:38 +0000',
    'Received: from client.internet.invalid (client.internet.invalid [192.0.2.10])',
    '\t(using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits))',
    '\tby mail.example.org (Postfix) with ESMTPS id 8BF',
    '\tfor <rehearsal-a@example.org>; Mon,  7 Dec 2026 20:36:38 +0000 (UTC)',
    'Subject: hello',
    '',
    'Received: (Postfix) in the body is not a header',
  ].join('\r\n');
  it("is the first Received: that Postfix wrote, unfolded (not Dovecot's LMTP line above it)", () => {
    const line = postfixReceived(message);
    expect(line).toMatch(/^Received: from client\.internet\.invalid \(client\.internet\.invalid \[192\.0\.2\.10\]\) \(using TLSv1\.3 .*\) by mail\.example\.org \(Postfix\) with ESMTPS id 8BF for <rehearsal-a@example\.org>;/);
    expect(line).not.toMatch(/[\r\n]/);
  });
  it('is empty when Postfix wrote none', () => {
    expect(postfixReceived('Received: from x by y with LMTP\r\nSubject: s\r\n\r\nbody')).toBe('');
  });
});

describe("the rehearsal's internet", () => {
  it('picks the client and the MX among documentation addresses, never the VPS\'s', () => {
    expect(pickAddresses(['192.0.2.10', '192.0.2.20', '198.51.100.10'], ['203.0.113.5'])).toEqual(['192.0.2.10', '192.0.2.20']);
    expect(pickAddresses(['192.0.2.10', '192.0.2.20', '198.51.100.10'], ['192.0.2.10'])).toEqual(['192.0.2.20', '198.51.100.10']);
    expect(() => pickAddresses(['192.0.2.10'], [])).toThrow();
  });

  it('names its client both ways, its SPF allows the client only, its MX is the remote MX', () => {
    const zone = internetZone({ vps4: '203.0.113.5', client4: '192.0.2.10', client6: '2001:db8:77::10', mx4: '192.0.2.20' });
    expect(zone.zone).toBe(INTERNET_DOMAIN);
    const of = (name: string, type: string) => zone.records.filter((r) => r.name === name && r.type === type).map((r) => r.data);
    expect(of(INTERNET_DOMAIN, 'MX')).toEqual([`10 ${INTERNET_MX}`]);
    expect(of(INTERNET_DOMAIN, 'TXT')).toEqual(['v=spf1 ip4:192.0.2.10 ip6:2001:db8:77::10 -all']);
    expect(of(INTERNET_MX, 'A')).toEqual(['192.0.2.20']);
    expect(of(INTERNET_CLIENT, 'A')).toEqual(['192.0.2.10']);
    expect(of(INTERNET_CLIENT, 'AAAA')).toEqual(['2001:db8:77::10']);
    expect(of('10.2.0.192.in-addr.arpa', 'PTR')).toEqual([INTERNET_CLIENT]);
    expect(of(reverseName('2001:db8:77::10'), 'PTR')).toEqual([INTERNET_CLIENT]);
    expect(of('20.2.0.192.in-addr.arpa', 'PTR')).toEqual([INTERNET_MX]);
    // Its records are answered by the rehearsal; the VPS's reverse name is not among them.
    expect(inStaticZone('nobody.internet.invalid', zone)).toBe(true);
    expect(inStaticZone('5.113.0.203.in-addr.arpa', zone)).toBe(false);
  });

  it('writes reverse names of both families', () => {
    expect(reverseName('192.0.2.10')).toBe('10.2.0.192.in-addr.arpa');
    expect(reverseName('2001:db8:77::10')).toBe('0.1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.7.7.0.0.8.b.d.0.1.0.0.2.ip6.arpa');
  });
});

describe('where outbound SMTP binds', () => {
  const config = { ingress: 'own-vps' as const, listenIpv4: '10.77.77.2' as never, listenIpv6: 'fd77:77::2' as never };
  it('on the tunnel for an own-VPS host and its rehearsal, which listen there', () => {
    expect(onTunnel(config, { listen: { ipv4: '10.77.77.2', ipv6: 'fd77:77::2' } })).toBe(true);
  });
  it('not for the checks, which render on loopback, nor without own-vps', () => {
    expect(onTunnel(config, { listen: { ipv4: '127.0.0.1' } })).toBe(false);
    expect(onTunnel({ ingress: 'direct', listenIpv4: undefined, listenIpv6: undefined }, { listen: { ipv4: '203.0.113.5' } })).toBe(false);
  });
});

describe('the privacy verdict with a tunnel', () => {
  const asked = [
    { name: 'example.org', type: 15, answer: 'nsd' as const },
    { name: 'internet.invalid', type: 16, answer: 'internet' as const },
    { name: 'outside.invalid', type: 16, answer: 'refused' as const },
  ];
  it("counts the internet's names apart and says what else was reached: nothing", () => {
    const v = privacyVerdict(asked, [], ['example.org'], true);
    expect(v.ok).toBe(true);
    expect(v.reason).toMatch(/^3 DNS questions, 1 for the rehearsal's zones \(example\.org\) answered by its NSD, 1 for its internet's names answered by its resolver; 1 name\(s\) outside .*no packet to any address outside loopback and the rehearsal's own VPS and internet/);
  });
  it('fails on an address the internet recorded', () => {
    expect(privacyVerdict(asked, ['198.18.0.1'], ['example.org'], true)).toEqual({ ok: false, reason: expect.stringMatching(/tried to reach 198\.18\.0\.1/) });
  });
});
