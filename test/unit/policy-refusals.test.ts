import { describe, expect, it } from 'vitest';
import { RefusalError } from '../../src/errors.js';
import { type RawInput, sourced } from '../../src/config/raw.js';
import { resolveConfig } from '../../src/config/schema.js';
import { refusals, underPrivateSuffix } from '../../src/policy/refusals.js';

const ok: RawInput = { domains: ['example.org'], ipv4: '192.0.2.25', users: ['alice@example.org'] };

describe('refusals', () => {
  it.each<[string, RawInput, RegExp]>([
    ['UPnP ingress', { ingress: 'upnp' }, /Principle 3/],
    ['UPnP flag', { upnp: true }, /Principle 3/],
    ['tunnel ingress', { ingress: 'tunnel' }, /Principle 2/],
    ['tunnel provider', { tunnelProvider: 'anything' }, /Principle 2/],
    ['third-party relay', { relayHost: 'smtp.relay.example' }, /Principle 2/],
    ['DKIM key from elsewhere', { dkimKey: '/tmp/k.pem' }, /Principle 1/],
    ['TLS key from elsewhere', { tlsKey: '/tmp/k.pem' }, /Principle 1/],
    ['DNSSEC key from elsewhere', { dnssecKey: '/tmp/K' }, /Principle 1/],
    ['hosted DNS', { dnsProvider: 'someone' }, /Principle 4/],
    ['dynamic-DNS subdomain', { domains: ['myhome.duckdns.org'], users: ['a@myhome.duckdns.org'] }, /Principle 4/],
    ['vendor subdomain', { domains: ['box.github.io'] }, /Principle 4/],
    ['carrier-grade NAT', { ipv4: '100.64.3.4' }, /Principle 2/],
  ])('refuses %s with the principle, why and instead', (_name, extra, principle) => {
    const found = refusals(sourced({ ...ok, ...extra }, 'flag'));
    expect(found).toHaveLength(1);
    const r = found[0]!;
    expect(`${r.principle}`).toMatch(principle);
    expect(r.why.length).toBeGreaterThan(40);
    expect(r.instead.length).toBeGreaterThan(20);
  });

  it('accepts an ordinary setup', () => {
    expect(refusals(sourced(ok, 'flag'))).toEqual([]);
  });

  it('names the config file key for requests made in a file', () => {
    const [r] = refusals(sourced({ ...ok, relayHost: 'smtp.example.net' }, 'file', 'setup.yaml'));
    expect(r?.field).toBe('setup.yaml: relayHost');
  });

  it('uses the public suffix list, not a hand list', () => {
    expect(underPrivateSuffix('x.duckdns.org')).toBe('duckdns.org');
    expect(underPrivateSuffix('duckdns.org')).toBeUndefined();
    expect(underPrivateSuffix('example.co.uk')).toBeUndefined();
  });

  it('comes first: a refused request exits 3 even with other errors, and lists them too', () => {
    try {
      resolveConfig(sourced({ domains: ['bad domain'], ingress: 'upnp' }, 'flag'));
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(RefusalError);
      const e = err as RefusalError;
      expect(e.exitCode).toBe(3);
      expect(e.refusals).toHaveLength(1);
      expect(e.issues.map((i) => i.field)).toContain('--domain');
    }
  });
});
