import { describe, expect, it } from 'vitest';
import { type RawInput, overlay, sourced } from '../../src/config/raw.js';
import { resolveConfig, toRaw } from '../../src/config/schema.js';
import { BASE_REQUEST as base, issuesOf, resolveOver } from '../helpers/config.js';
import { privateKeyNoPoint, somePublicKey } from '../helpers/wireguard.js';

const resolve = resolveOver;

describe('resolveConfig', () => {
  it('fills in the documented defaults', () => {
    const { config, warnings } = resolve();
    expect(config).toEqual({
      domains: ['example.org'],
      hostname: 'mail.example.org',
      ipv4: '192.0.2.25',
      nameServers: [{ name: 'ns1.example.org', ipv4: ['192.0.2.25'], ipv6: [], self: true }],
      admin: 'alice@example.org',
      users: ['alice@example.org'],
      adminSshFrom: [],
      ingress: 'direct',
      acmeCa: 'letsencrypt.org',
      dnssec: true,
      target: 'debian-12',
      spamLookups: [],
      aliases: [],
      quotas: [],
      openpgpKeys: [],
    });
    expect(warnings.join('\n')).toMatch(/documentation address/);
  });

  it('reports every problem at once, each with its flag', () => {
    const issues = issuesOf(() =>
      resolveConfig(sourced({ domains: ['bad domain'], ipv4: '10.0.0.1', users: ['x@other.org'], hostname: 'mail.elsewhere.net', adminSshFrom: ['nope'] }, 'flag')),
    );
    expect(issues.some((i) => i.startsWith('--domain: "bad domain"'))).toBe(true);
    expect(issues.some((i) => i.startsWith('--ipv4: "10.0.0.1" is a private address'))).toBe(true);
    expect(issues.some((i) => i.startsWith('--admin-ssh-from: "nope"'))).toBe(true);
    expect(issues.length).toBeGreaterThanOrEqual(3);
  });

  it('names the config file key when the value came from a file', () => {
    const issues = issuesOf(() => resolve({ ipv4: '127.0.0.1' }, 'file'));
    expect(issues).toEqual([expect.stringMatching(/^my\.yaml: ipv4: "127\.0\.0\.1" is a loopback/)]);
  });

  it('requires a domain, an address and a mailbox', () => {
    const issues = issuesOf(() => resolveConfig(sourced({}, 'flag')));
    expect(issues.join('\n')).toMatch(/--domain: is required/);
    expect(issues.join('\n')).toMatch(/--ipv4: is required/);
    expect(issues.join('\n')).toMatch(/--user: is required/);
  });

  it('keeps the host name inside our domains', () => {
    expect(issuesOf(() => resolve({ hostname: 'mail.example.net' })).join()).toMatch(/not inside any of the mail domains/);
    expect(resolve({ hostname: 'mx.example.org' }).config.hostname).toBe('mx.example.org');
  });

  it('rejects mailboxes outside our domains and duplicates', () => {
    expect(issuesOf(() => resolve({ users: ['bob@example.net'] })).join()).toMatch(/not in one of the mail domains/);
    expect(issuesOf(() => resolve({ users: ['a@example.org', 'A@example.org'] })).join()).toMatch(/listed twice/);
    expect(issuesOf(() => resolve({ domains: ['example.org', 'EXAMPLE.org.'] })).join()).toMatch(/listed twice/);
    expect(issuesOf(() => resolve({ domains: ['example.org', 'sub.example.org'] })).join()).toMatch(/lies inside example\.org/);
  });

  it('accepts an external admin with a warning, and requires an internal admin to be a mailbox', () => {
    const r = resolve({ admin: 'me+dmarc@example.net' });
    expect(r.config.admin).toBe('me+dmarc@example.net');
    expect(r.warnings.join()).toMatch(/outside your domains/);
    expect(issuesOf(() => resolve({ admin: 'postmaster@example.org' })).join()).toMatch(/not a mailbox/);
    expect(resolve({ admin: 'alice+reports@example.org' }).config.admin).toBe('alice+reports@example.org');
  });

  it('needs listen addresses with port-forward and only then', () => {
    expect(issuesOf(() => resolve({ ingress: 'port-forward' })).join()).toMatch(/--listen-ipv4: is required with --ingress port-forward/);
    expect(resolve({ ingress: 'port-forward', listenIpv4: '192.168.1.20' }).config.listenIpv4).toBe('192.168.1.20');
    expect(issuesOf(() => resolve({ listenIpv4: '192.168.1.20' })).join()).toMatch(/only used with --ingress port-forward/);
    expect(issuesOf(() => resolve({ ingress: 'port-forward', listenIpv4: '8.8.8.8' })).join()).toMatch(/private LAN address/);
  });

  it('rejects unknown ingress modes', () => {
    expect(issuesOf(() => resolve({ ingress: 'carrier-pigeon' })).join()).toMatch(/not one of: direct, port-forward, own-vps/);
  });

  describe('own-vps', () => {
    const KEY = somePublicKey();
    const vps = (extra: Record<string, string> = {}) => resolveConfig(sourced({ domains: ['example.org'], users: ['alice@example.org'], target: 'debian-12', ingress: 'own-vps', ...extra }, 'flag'));
    it('publishes the VPS\'s addresses and binds to this end of the tunnel; selfmail.yaml keeps the VPS\'s', () => {
      const { config } = vps({ vpsIpv4: '203.0.113.5', vpsIpv6: '2001:db8:5::5', vpsWgKey: KEY });
      expect(config).toMatchObject({ ingress: 'own-vps', ipv4: '203.0.113.5', ipv6: '2001:db8:5::5', listenIpv4: '10.77.77.2', listenIpv6: 'fd77:77::2', vpsWgKey: KEY });
      expect(config.nameServers[0]).toMatchObject({ ipv4: ['203.0.113.5'], ipv6: ['2001:db8:5::5'], self: true });
      const raw = toRaw(config);
      expect(raw).toMatchObject({ ingress: 'own-vps', vpsIpv4: '203.0.113.5', vpsIpv6: '2001:db8:5::5', vpsWgKey: KEY });
      expect(raw).not.toHaveProperty('ipv4');
      expect(raw).not.toHaveProperty('listenIpv4');
      expect(resolveConfig(sourced(raw as RawInput, 'bundle')).config).toEqual(config);
    });
    it('switches a bundle between direct ingress and own-vps by flags: the bundle\'s addresses of the other mode no longer apply', () => {
      const direct = toRaw(resolveOver().config) as RawInput;
      const toVps = resolveConfig(overlay(sourced(direct, 'bundle'), sourced({ ingress: 'own-vps', vpsIpv4: '203.0.113.5' }, 'flag'))).config;
      expect(toVps).toMatchObject({ ingress: 'own-vps', ipv4: '203.0.113.5', listenIpv4: '10.77.77.2' });
      const back = resolveConfig(overlay(sourced(toRaw(toVps) as RawInput, 'bundle'), sourced({ ingress: 'direct', ipv4: '192.0.2.25' }, 'flag'))).config;
      expect(back).toMatchObject({ ingress: 'direct', ipv4: '192.0.2.25' });
      expect(back.listenIpv4).toBeUndefined();
      // Given as flags, they are still an error.
      expect(issuesOf(() => resolveConfig(overlay(sourced(direct, 'bundle'), sourced({ ingress: 'own-vps', vpsIpv4: '203.0.113.5', ipv4: '192.0.2.26' }, 'flag')))).join()).toMatch(/--ipv4: is not used with --ingress own-vps/);
    });
    it('takes the VPS key later: without it the config is whole', () => {
      expect(vps({ vpsIpv4: '203.0.113.5' }).config.vpsWgKey).toBeUndefined();
    });
    it('refuses each bad input naming the flag, never echoing a key', () => {
      const priv = privateKeyNoPoint();
      expect(issuesOf(() => vps())).toEqual(['--vps-ipv4: is required with --ingress own-vps (or --vps-ipv6): the public address of your VPS']);
      expect(issuesOf(() => vps({ vpsIpv4: '10.1.2.3' })).join()).toMatch(/^--vps-ipv4: "10\.1\.2\.3" is a private address .*Give the VPS's public address$/);
      expect(issuesOf(() => vps({ vpsIpv4: '100.64.1.1' })).join()).toMatch(/^--vps-ipv4: .*carrier-grade NAT.*a VPS has a public address/);
      expect(issuesOf(() => vps({ vpsIpv4: '127.0.0.1' })).join()).toMatch(/^--vps-ipv4: /);
      expect(issuesOf(() => vps({ vpsIpv4: '203.0.113.5', ipv4: '198.51.100.7' })).join()).toMatch(/^--ipv4: is not used with --ingress own-vps/);
      for (const bad of ['abc', KEY.slice(0, -2), `${KEY.slice(0, -1)}A`, Buffer.alloc(31).toString('base64')]) {
        expect(issuesOf(() => vps({ vpsIpv4: '203.0.113.5', vpsWgKey: bad })).join(), bad).toMatch(/^--vps-wg-key: the key given is not a WireGuard public key/);
      }
      const pasted = issuesOf(() => vps({ vpsIpv4: '203.0.113.5', vpsWgKey: `PrivateKey = ${priv}` })).join();
      expect(pasted).toMatch(/^--vps-wg-key: the key given is a WireGuard private key/);
      expect(pasted).not.toContain(priv);
      // The bare private key, as wg genkey prints it: no point a public key can be.
      const bare = issuesOf(() => vps({ vpsIpv4: '203.0.113.5', vpsWgKey: priv })).join();
      expect(bare).toMatch(/^--vps-wg-key: the key given is not a WireGuard public key \(not a point a public key can be: most likely the private key/);
      expect(bare).not.toContain(priv);
      expect(issuesOf(() => resolve({ vpsIpv4: '203.0.113.5', vpsWgKey: KEY }))).toEqual([
        '--vps-ipv4: is only used with --ingress own-vps (mail through a VPS of your own)',
        '--vps-wg-key: is only used with --ingress own-vps (mail through a VPS of your own)',
      ]);
    });
  });

  it('understands name servers: this host, secondaries with addresses', () => {
    const { config } = resolve({ ns: ['ns1.example.org', 'ns2.example.net=198.51.100.53'] });
    expect(config.nameServers).toEqual([
      { name: 'ns1.example.org', ipv4: ['192.0.2.25'], ipv6: [], self: true },
      { name: 'ns2.example.net', ipv4: ['198.51.100.53'], ipv6: [], self: false },
    ]);
    expect(issuesOf(() => resolve({ ns: ['ns1.example.org', 'ns2.example.net'] })).join()).toMatch(/needs one/);
    expect(issuesOf(() => resolve({ ns: ['ns2.example.net=198.51.100.53'] })).join()).toMatch(/none of the name servers is this host/);
  });

  it('takes outside spam lookups only by name, one at a time or comma-separated; none by default', () => {
    expect(resolve().config.spamLookups).toEqual([]);
    expect(resolve({ spamLookups: ['surbl,Spamhaus'] }).config.spamLookups).toEqual(['spamhaus', 'surbl']);
    expect(resolve({ spamLookups: ['surbl', 'spamhaus'] }).config.spamLookups).toEqual(['spamhaus', 'surbl']);
    expect(resolve({ spamLookups: ['none'] }).config.spamLookups).toEqual([]);
    expect(issuesOf(() => resolve({ spamLookups: ['spamhaus', 'uribl'] }))).toEqual(['--spam-lookups: "uribl" is not a lookup selfmail knows; the lookups are spamhaus, surbl (or none)']);
    expect(issuesOf(() => resolve({ spamLookups: ['spamhaus,spamhaus'] }))).toEqual(['--spam-lookups: spamhaus is listed twice']);
    expect(issuesOf(() => resolve({ spamLookups: ['none,surbl'] }))).toEqual(['--spam-lookups: "none" cannot be combined with other lookups']);
    expect(issuesOf(() => resolve({ spamLookups: ['spamhaus,'] }))).toEqual(['--spam-lookups: has an empty name; the lookups are spamhaus, surbl (or none)']);
    expect(issuesOf(() => resolve({ spamLookups: ['evil'] }, 'file'))[0]).toMatch(/^my\.yaml: spamLookups: "evil" is not a lookup/);
  });

  it('takes aliases and catch-alls of its domains, each rule on its own', () => {
    const two = { domains: ['example.org', 'example.net'], users: ['alice@example.org', 'bob@example.net'] };
    const { config } = resolve({ ...two, aliases: ['Info@example.org=alice@example.org,bob@example.net', '@example.net=bob@example.net', 'sales@example.org=info@example.org'] });
    expect(config.aliases).toEqual([
      { from: '@example.net', to: ['bob@example.net'] },
      { from: 'info@example.org', to: ['alice@example.org', 'bob@example.net'] },
      { from: 'sales@example.org', to: ['info@example.org'] },
    ]);
    // Forwarding elsewhere is allowed, with a warning about SPF at the receiver.
    expect(resolve({ aliases: ['me@example.org=someone@elsewhere.example'] }).warnings.join('\n')).toMatch(/forwards to someone@elsewhere\.example outside your domains/);
    const only = (aliases: string[]) => issuesOf(() => resolve({ ...two, aliases }));
    expect(only(['info@example.org'])).toEqual(['--alias: "info@example.org" is not SOURCE=TARGET[,TARGET…] (like info@example.org=alice@example.org)']);
    expect(only(['info@example.com=alice@example.org'])).toEqual(['--alias: info@example.com is not in one of the mail domains (example.org, example.net)']);
    expect(only(['@example.com=alice@example.org'])).toEqual(['--alias: the catch-all @example.com is not one of the mail domains (example.org, example.net)']);
    expect(only(['alice@example.org=bob@example.net'])).toEqual(['--alias: alice@example.org is a mailbox; an alias cannot take its mail (remove the mailbox first)']);
    expect(only(['postmaster@example.net=bob@example.net'])).toEqual(['--alias: postmaster@example.net always reaches the admin (alice@example.org) (RFC 2142); it cannot be an alias of its own']);
    expect(only(['info@example.org='])).toEqual(['--alias: "info@example.org=" has no target after "="']);
    expect(only(['info@example.org=nobody@example.org'])).toEqual(['--alias: info@example.org delivers to nobody@example.org, which is in your domains but is neither a mailbox nor an alias']);
    expect(only(['info@example.org=alice@example.org', 'info@example.org=bob@example.net'])).toEqual(['--alias: info@example.org is given twice']);
    expect(only(['a@example.org=b@example.org', 'b@example.org=c@example.org', 'c@example.org=a@example.org'])).toEqual(['--alias: a@example.org → b@example.org → c@example.org → a@example.org is a loop: mail to any of them would never arrive']);
    expect(only(['a@example.org=a@example.org'])).toContain('--alias: a@example.org delivers to itself');
    expect(issuesOf(() => resolve({ aliases: ['x@example.com=alice@example.org'] }, 'file'))[0]).toMatch(/^my\.yaml: aliases: x@example\.com is not in one of the mail domains/);
    // What selfmail.yaml keeps reads back as the same aliases.
    const raw = toRaw(config) as { aliases: string[] };
    expect(raw.aliases).toEqual(['@example.net=bob@example.net', 'info@example.org=alice@example.org,bob@example.net', 'sales@example.org=info@example.org']);
    expect(resolve({ ...two, aliases: raw.aliases }).config.aliases).toEqual(config.aliases);
  });

  it('takes storage limits of its mailboxes as sizes, each rule on its own', () => {
    const two = { users: ['alice@example.org', 'bob@example.org'] };
    const { config, warnings } = resolve({ ...two, quotas: ['bob@example.org=2g', 'alice@example.org=500M'] });
    expect(config.quotas).toEqual([
      { user: 'alice@example.org', size: '500M', bytes: 500 * 1024 ** 2 },
      { user: 'bob@example.org', size: '2G', bytes: 2 * 1024 ** 3 },
    ]);
    expect(warnings.join('\n')).not.toMatch(/quotas/);
    expect(resolve({ quotas: ['alice@example.org=1M'] }).warnings.join('\n')).toMatch(/quotas: 1M is less than the largest message accepted \(25 MiB\)/);
    const only = (quotas: string[]) => issuesOf(() => resolve({ ...two, quotas }));
    expect(only(['alice@example.org'])).toEqual(['--quota: "alice@example.org" is not EMAIL=SIZE (like alice@example.org=2G)']);
    expect(only(['alice@example.org=lots'])).toEqual(['--quota: "lots" is not a size: a whole number and K, M, G or T (like 500M or 2G)']);
    expect(only(['alice@example.org=2'])).toEqual(['--quota: "2" is not a size: a whole number and K, M, G or T (like 500M or 2G)']);
    expect(only(['alice@example.org=1.5G'])).toEqual(['--quota: "1.5G" is not a size: a whole number and K, M, G or T (like 500M or 2G)']);
    expect(only(['alice@example.org=512K'])).toEqual(['--quota: 512K is below 1M']);
    expect(only(['carol@example.org=1G'])).toEqual(['--quota: carol@example.org is not one of the mailboxes']);
    expect(only(['alice@example.org=1G', 'alice@example.org=2G'])).toEqual(['--quota: alice@example.org has two quotas']);
    expect((toRaw(config) as { quotas: string[] }).quotas).toEqual(['alice@example.org=500M', 'bob@example.org=2G']);
  });

  it('takes the mailboxes that publish an OpenPGP key (the files are the CLI\'s), each rule on its own', () => {
    const two = { users: ['alice@example.org', 'bob@example.org'] };
    const { config, warnings } = resolve({ ...two, openpgpKeys: ['Bob@example.org=bob.asc', 'alice@example.org', 'carol@example.org=none'] });
    expect(config.openpgpKeys).toEqual(['alice@example.org', 'bob@example.org']);
    expect(warnings.join('\n')).not.toMatch(/openpgp/i);
    // selfmail.yaml keeps the mailboxes only, and nothing at all when none publishes a key.
    expect((toRaw(config) as { openpgpKeys: string[] }).openpgpKeys).toEqual(['alice@example.org', 'bob@example.org']);
    expect('openpgpKeys' in toRaw(resolve(two).config)).toBe(false);
    expect(resolve({ ...two, openpgpKeys: ['bob@example.org=NONE'] }).config.openpgpKeys).toEqual([]);
    const only = (openpgpKeys: string[]) => issuesOf(() => resolve({ ...two, openpgpKeys }));
    expect(only(['carol@example.org=carol.asc'])).toEqual(['--openpgp-key: carol@example.org is not one of the mailboxes (--user); only a mailbox of this host publishes a key here']);
    expect(only(['carol@example.org'])).toEqual(['--openpgp-key: carol@example.org publishes an OpenPGP key but is no longer a mailbox; drop the key with --openpgp-key carol@example.org=none']);
    expect(only(['alice@example.org='])).toEqual(['--openpgp-key: "alice@example.org=" has no file after "="; give EMAIL=FILE, or EMAIL=none to drop the key']);
    expect(only(['alice@example.org=a.asc', 'ALICE@example.org=b.asc'])).toEqual(['--openpgp-key: alice@example.org is given twice']);
    expect(only(['alice=a.asc'])[0]).toMatch(/^--openpgp-key: the address "alice" is not an e-mail address/);
  });

  it('publishes no OPENPGPKEY without DNSSEC, and says so once', () => {
    const { config, warnings } = resolve({ dnssec: false, openpgpKeys: ['alice@example.org=a.asc'] });
    expect(config.openpgpKeys).toEqual(['alice@example.org']);
    expect(warnings.filter((w) => w.startsWith('openpgpKeys:'))).toEqual([expect.stringMatching(/DNSSEC is off, so the OpenPGP keys are published in the Web Key Directory only/)]);
    expect(resolve({ dnssec: false }).warnings.join('\n')).not.toMatch(/openpgp/i);
  });

  it('adds the OpenPGP keys of a layer to those under it, where every other list is replaced', () => {
    const bundle = sourced({ ...base, users: ['alice@example.org', 'bob@example.org'], openpgpKeys: ['alice@example.org', 'bob@example.org'], quotas: ['alice@example.org=1G'] }, 'bundle');
    const flags = sourced({ openpgpKeys: ['bob@example.org=none', 'carol@example.org=c.asc'], quotas: ['bob@example.org=2G'] }, 'flag');
    const merged = overlay(bundle, flags);
    expect(merged.values.openpgpKeys).toEqual(['alice@example.org', 'bob@example.org=none', 'carol@example.org=c.asc']);
    expect(merged.values.quotas).toEqual(['bob@example.org=2G']);
    expect(overlay(bundle, sourced({}, 'flag')).values.openpgpKeys).toEqual(['alice@example.org', 'bob@example.org']);
  });

  it('round-trips through its raw form (what selfmail.yaml holds)', () => {
    const { config } = resolve({ ns: ['ns1.example.org', 'ns2.example.net=198.51.100.53'], adminSshFrom: ['203.0.113.0/24'], ipv6: '2001:db8::25', openpgpKeys: ['alice@example.org=a.asc'] });
    const again = resolveConfig(sourced(toRaw(config) as RawInput, 'bundle'));
    expect(again.config).toEqual(config);
  });
});
