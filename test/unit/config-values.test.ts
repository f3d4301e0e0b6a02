import { describe, expect, it } from 'vitest';
import {
  parseCidr,
  parseDomainName,
  parseEmail,
  parseLanIPv4,
  parsePublicIPv4,
  parsePublicIPv6,
} from '../../src/config/values.js';

describe('parseDomainName', () => {
  it.each([
    ['example.org', 'example.org'],
    ['Mail.Example.ORG.', 'mail.example.org'],
    ['bücher.example', 'xn--bcher-kva.example'],
    ['a-b.c0.example.org', 'a-b.c0.example.org'],
    [`${'a'.repeat(63)}.org`, `${'a'.repeat(63)}.org`],
  ])('accepts %j as %j', (input, expected) => {
    const r = parseDomainName(input);
    expect(r).toEqual({ ok: true, value: expected });
  });

  it.each([
    ['', /empty/],
    ['org', /two labels/],
    ['exa mple.org', /space/],
    ['example.org\nmx', /line break/],
    ['ex"ample.org', /character "\\""/],
    ['ex{ample}.org', /character "\{"/],
    ['ex;ample.org', /character ";"/],
    ['ex\0ample.org', /NUL/],
    ['-bad.example.org', /hyphen/],
    ['bad-.example.org', /hyphen/],
    ['a..b.org', /empty label/],
    [`${'a'.repeat(64)}.org`, /at most 63/],
    [`${'abcdefghi.'.repeat(26)}org`, /at most 253/],
    ['ex_ample.org', /letters, digits and hyphens/],
    ['192.0.2.1', /numeric/],
  ])('rejects %j', (input, why) => {
    const r = parseDomainName(input);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error).toMatch(why);
  });
});

describe('parsePublicIPv4', () => {
  it('accepts a public address', () => {
    expect(parsePublicIPv4('8.8.8.8')).toEqual({ ok: true, value: '8.8.8.8' });
  });
  it.each(['192.0.2.10', '198.51.100.1', '203.0.113.255'])('accepts documentation address %s with a warning', (a) => {
    const r = parsePublicIPv4(a);
    expect(r.ok).toBe(true);
    if (r.ok) expect(r.warning).toMatch(/documentation/);
  });
  it.each([
    ['10.1.2.3', /private/],
    ['172.20.0.1', /private/],
    ['192.168.1.1', /private/],
    ['127.0.0.1', /loopback/],
    ['169.254.1.1', /link-local/],
    ['224.0.0.1', /multicast/],
    ['0.0.0.0', /this network/],
    ['255.255.255.255', /reserved/],
    ['240.1.1.1', /reserved/],
    ['01.2.3.4', /dotted-quad/],
    ['1.2.3', /dotted-quad/],
    ['1.2.3.4 ', /dotted-quad/],
    ['256.1.1.1', /dotted-quad/],
    ['1.2.3.4\n', /line break/],
  ])('rejects %j', (a, why) => {
    const r = parsePublicIPv4(a);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error).toMatch(why);
  });
  it('flags carrier-grade NAT apart (it is a refusal, not a typo)', () => {
    const r = parsePublicIPv4('100.64.1.1');
    expect(r).toMatchObject({ ok: false, cgnat: true });
  });
});

describe('parsePublicIPv6', () => {
  it('canonicalises per RFC 5952', () => {
    expect(parsePublicIPv6('2A00:1450:4001:0:0:0:0:200E')).toEqual({ ok: true, value: '2a00:1450:4001::200e' });
  });
  it('accepts documentation addresses with a warning', () => {
    const r = parsePublicIPv6('2001:db8::25');
    expect(r.ok && r.warning).toMatch(/documentation/);
  });
  it.each([
    ['::1', /loopback/],
    ['::', /unspecified/],
    ['fe80::1', /link-local/],
    ['fd00::1', /unique local/],
    ['ff02::1', /multicast/],
    ['::ffff:192.0.2.1', /IPv4-mapped/],
    ['2002::1', /6to4/],
    ['fe80::1%eth0', /not an IPv6/],
    ['2001:db8::1::2', /not an IPv6/],
    ['4000::1', /global unicast/],
  ])('rejects %j', (a, why) => {
    const r = parsePublicIPv6(a);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error).toMatch(why);
  });
});

describe('parseLanIPv4', () => {
  it('accepts RFC 1918 addresses only', () => {
    expect(parseLanIPv4('192.168.1.20').ok).toBe(true);
    expect(parseLanIPv4('8.8.8.8').ok).toBe(false);
    expect(parseLanIPv4('127.0.0.1').ok).toBe(false);
  });
});

describe('parseEmail', () => {
  it('folds case and converts IDN domains', () => {
    expect(parseEmail('Alice@Bücher.Example')).toEqual({ ok: true, value: 'alice@xn--bcher-kva.example' });
  });
  it('allows + only where asked', () => {
    expect(parseEmail('me+dmarc@example.net').ok).toBe(false);
    expect(parseEmail('me+dmarc@example.net', { allowPlus: true }).ok).toBe(true);
  });
  it.each([
    ['alice', /not an e-mail/],
    ['@example.org', /empty local/],
    ['al ice@example.org', /space/],
    ['al"ice@example.org', /characters other than/],
    ['alice\n@example.org', /line break/],
    ['älice@example.org', /non-ASCII/],
    ['.alice@example.org', /dot/],
    ['a..b@example.org', /dot/],
    [`${'a'.repeat(65)}@example.org`, /at most 64/],
    ['alice@exa{mple.org', /domain part/],
    ['a{b}@example.org', /characters other than/],
  ])('rejects %j', (a, why) => {
    const r = parseEmail(a);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error).toMatch(why);
  });
});

describe('parseCidr', () => {
  it('normalises networks and bare addresses', () => {
    expect(parseCidr('203.0.113.0/24')).toEqual({ ok: true, value: '203.0.113.0/24' });
    expect(parseCidr('203.0.113.7')).toEqual({ ok: true, value: '203.0.113.7/32' });
    expect(parseCidr('2001:DB8::/48')).toEqual({ ok: true, value: '2001:db8::/48' });
  });
  it('clears host bits with a warning', () => {
    const r = parseCidr('203.0.113.7/24');
    expect(r.ok && r.value).toBe('203.0.113.0/24');
    expect(r.ok && r.warning).toMatch(/host bits/);
  });
  it.each(['203.0.113.0/33', '2001:db8::/129', '203.0.113.0/x', 'example.org/24', '10.0.0.0/8;'])('rejects %j', (c) => {
    expect(parseCidr(c).ok).toBe(false);
  });
});
