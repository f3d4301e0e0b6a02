import { describe, expect, it } from 'vitest';
import type { Profile } from '../../src/bundle/layout.js';
import { STANDARD_PORTS } from '../../src/bundle/layout.js';
import { sourced } from '../../src/config/raw.js';
import { resolveConfig } from '../../src/config/schema.js';
import type { DomainName, Email } from '../../src/config/types.js';
import { dovecotModel } from '../../src/dovecot/model.js';
import { mailPaths } from '../../src/mail/paths.js';
import { opendkimModel } from '../../src/opendkim/model.js';
import { postfixModel, roleAliases, senderLogins } from '../../src/postfix/model.js';
import { render } from '../../src/render/index.js';
import { InputError } from '../../src/errors.js';
import type { DkimKey } from '../../src/keys/types.js';

const config = resolveConfig(
  sourced(
    { domains: ['example.org', 'example.net'], ipv4: '192.0.2.25', ipv6: '2001:db8::25', users: ['alice@example.org', 'bob@example.net'], target: 'debian-12' },
    'flag',
  ),
).config;
const tls = { keyPath: 'keys/tls/key.pem', certPath: 'keys/tls/cert.pem' };
const rehearsal: Profile = {
  kind: 'rehearsal',
  root: '/tmp/r',
  listen: { ipv4: '127.0.0.3', ipv6: '::1' },
  ports: { ...STANDARD_PORTS, smtp: 2525, submission: 2587, submissions: 2465, imaps: 2993, milter: 2891 },
  mailUser: { name: 'nobody', group: 'nogroup' },
};
const dkim: DkimKey[] = config.domains.flatMap((domain) =>
  (['rsa', 'ed25519'] as const).map((algorithm) => ({
    domain,
    selector: algorithm === 'rsa' ? '202601r' : '202601e',
    algorithm,
    txt: '',
    privateKeyPath: `keys/dkim/${domain}/${algorithm === 'rsa' ? '202601r' : '202601e'}.private`,
    state: 'active' as const,
    created: '2026-01-15',
  })),
);

describe('postfix model', () => {
  it('routes postmaster@ and abuse@ of every domain to the admin, except mailboxes and the admin itself', () => {
    const d = ['example.org', 'example.net'] as DomainName[];
    const admin = 'postmaster@example.org' as Email;
    const aliases = roleAliases(d, ['abuse@example.net' as Email, admin], admin);
    expect(aliases).toEqual([
      { from: 'postmaster@example.net', to: admin },
      { from: 'abuse@example.org', to: admin },
    ]);
    expect(senderLogins([admin], aliases).map((s) => `${s.address} ${s.login}`)).toEqual([
      'abuse@example.org postmaster@example.org',
      'postmaster@example.net postmaster@example.org',
      'postmaster@example.org postmaster@example.org',
    ]);
  });

  it('binds to the profile addresses and ports and names every path under its root', async () => {
    const m = postfixModel(config, tls, rehearsal);
    expect(m.smtpListeners.map((l) => l.endpoint)).toEqual(['127.0.0.3:2525', '[::1]:2525']);
    expect(m.submissionsListeners.map((l) => l.endpoint)).toEqual(['127.0.0.3:2465', '[::1]:2465']);
    expect(m.tlsKey).toBe('/tmp/r/etc/selfmail/tls/key.pem');
    expect(m.virtualMailboxMap).toBe('texthash:/tmp/r/etc/postfix/vmailbox');
    expect(m.lmtpSocket).toBe('/tmp/r/var/spool/postfix/private/dovecot-lmtp');
    expect(m.submissionMilters).toBe('inet:127.0.0.1:2891, inet:127.0.0.1:2892');
    const main = await render('postfix', 'main.cf', m);
    for (const line of main.split('\n')) {
      if (line.startsWith('#')) continue;
      for (const path of line.match(/\/[a-z][^\s,]*/g) ?? []) expect(path.startsWith('/tmp/r/')).toBe(true);
    }
    expect(main).toMatch(/^smtpd_forbid_bare_newline = normalize$/m);
    // Two postscreen listeners (IPv4, IPv6) share one cache only through proxymap: a plain btree is
    // locked by the first, and the second dies at every connection.
    expect(main).toMatch(/^postscreen_cache_map = proxy:btree:\/tmp\/r\/var\/lib\/postfix\/postscreen_cache$/m);
    expect(main).toMatch(/^postscreen_dnsbl_sites =$/m);
    expect(main).toMatch(/^smtp_tls_security_level = dane$/m);
    const master = await render('postfix', 'master.cf', m);
    expect(master).not.toMatch(/^smtp\s+inet/m);
    expect(master).toMatch(/^\[::1\]:2587 inet/m);
    // AUTH only on submission: port 25 keeps main.cf's smtpd_sasl_auth_enable = no.
    const blocks = master.split(/\n(?=\S)/);
    const block = (endpoint: string) => blocks.find((b) => b.startsWith(`${endpoint} `))!;
    expect(main).toMatch(/^smtpd_sasl_auth_enable = no$/m);
    expect(block('127.0.0.3:2525')).not.toContain('-o');
    for (const e of ['127.0.0.3:2587', '127.0.0.3:2465']) {
      expect(block(e)).toContain('-o smtpd_sasl_auth_enable=yes');
      expect(block(e)).toContain('-o smtpd_tls_security_level=encrypt');
      expect(block(e)).toContain('-o cleanup_service_name=submission-cleanup');
      expect(block(e)).toContain('reject_authenticated_sender_login_mismatch');
    }
    expect(block('127.0.0.3:2465')).toContain('-o smtpd_tls_wrappermode=yes');
  });
});

describe('dovecot model', () => {
  it('refuses to render a mailbox without a hash', () => {
    expect(() => dovecotModel(config, tls, rehearsal, new Map())).toThrow(/no password hash for alice@example\.org/);
  });

  it('puts the LMTP and auth sockets where Postfix looks for them', async () => {
    const hashes = new Map(config.users.map((u) => [u, '{ARGON2ID}$argon2id$v=19$m=65536,t=3,p=1$c2FsdA$aGFzaA']));
    const m = dovecotModel(config, tls, rehearsal, hashes);
    const p = mailPaths(rehearsal);
    expect(m.lmtpSocket).toBe(p.lmtpSocket);
    expect(m.authSocket).toBe(postfixModel(config, tls, rehearsal).authSocket);
    const conf = await render('dovecot', 'dovecot.conf', m);
    expect(conf).toMatch(/inet_listener imap \{\n\s+port = 0\n/);
    expect(conf).toMatch(/^ssl = required$/m);
    expect(conf).toMatch(/^listen = 127\.0\.0\.3, ::1$/m);
    expect(await render('dovecot', 'users', m)).toBe(
      config.users.map((u) => `${u}:${hashes.get(u)}::::::\n`).sort().join(''),
    );
  });
});

describe('opendkim model', () => {
  it('gives each instance its own algorithm, signing table and loopback port', () => {
    const m = opendkimModel(config, dkim, rehearsal);
    expect(m.rsa.socket).toBe('inet:2891@[127.0.0.1]');
    expect(m.ed25519.socket).toBe('inet:2892@[127.0.0.1]');
    expect(m.rsa.signing).toEqual([
      { domain: 'example.net', key: '202601r._domainkey.example.net' },
      { domain: 'example.org', key: '202601r._domainkey.example.org' },
    ]);
    expect(m.ed25519.signing.map((s) => s.key)).toEqual(['202601e._domainkey.example.net', '202601e._domainkey.example.org']);
    expect(m.keys.find((k) => k.name === '202601e._domainkey.example.org')?.path).toBe('/tmp/r/etc/opendkim/keys/example.org/202601e.private');
    expect(m.requireSafeKeys).toBe('no');
    expect(opendkimModel(config, dkim, { ...rehearsal, kind: 'production', root: '' }).requireSafeKeys).toBe('yes');
  });

  it('refuses a domain without an active key of each algorithm', () => {
    expect(() => opendkimModel(config, dkim.filter((k) => k.algorithm === 'rsa'), rehearsal)).toThrow(/ed25519 DKIM key/);
  });
});

describe('hostile values', () => {
  const hostile = ['exa\nmple.org', 'exa"mple.org', 'exa{mple}.org', 'exa;mple.org', 'exa mple.org', 'exa\0mple.org'];
  it.each(hostile)('stops %j in a domain, a user and the admin before anything renders', (bad) => {
    const local = bad.replace('.org', '');
    for (const values of [
      { domains: [bad], ipv4: '192.0.2.25', users: ['alice@example.org'] },
      { domains: ['example.org'], ipv4: '192.0.2.25', users: [`${local}@example.org`] },
      { domains: ['example.org'], ipv4: '192.0.2.25', users: ['alice@example.org'], admin: `${local}@example.org` },
      { domains: ['example.org'], hostname: bad, ipv4: '192.0.2.25', users: ['alice@example.org'] },
    ]) {
      expect(() => resolveConfig(sourced(values, 'flag'))).toThrow(InputError);
    }
  });

  it('accepts only validated values at the type level', () => {
    // @ts-expect-error a plain string is not a DomainName: it must come out of the schema
    roleAliases(['example.org'], [], 'admin@example.org' as Email);
    // @ts-expect-error a plain string is not an Email
    roleAliases(['example.org' as DomainName], [], 'admin@example.org');
    expect(true).toBe(true);
  });
});
