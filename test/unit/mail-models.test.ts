import { describe, expect, it } from 'vitest';
import type { Profile } from '../../src/bundle/layout.js';
import { STANDARD_PORTS } from '../../src/bundle/layout.js';
import { sourced } from '../../src/config/raw.js';
import { resolveConfig } from '../../src/config/schema.js';
import type { DomainName, Email } from '../../src/config/types.js';
import { dovecotModel } from '../../src/dovecot/model.js';
import { mailPaths } from '../../src/mail/paths.js';
import { LOCAL_SENDER_LOGIN, dkimSigningModel } from '../../src/rspamd/dkim.js';
import { postfixModel, roleAliases, senderLogins } from '../../src/postfix/model.js';
import { render } from '../../src/render/index.js';
import { InputError } from '../../src/errors.js';
import type { DkimKey } from '../../src/keys/types.js';

const RAW = { domains: ['example.org', 'example.net'], ipv4: '192.0.2.25', ipv6: '2001:db8::25', users: ['alice@example.org', 'bob@example.net'], target: 'debian-12' };
const config = resolveConfig(sourced(RAW, 'flag')).config;
const tls = { keyPath: 'keys/tls/key.pem', certPath: 'keys/tls/cert.pem' };
const rehearsal: Profile = {
  kind: 'rehearsal',
  root: '/tmp/r',
  listen: { ipv4: '127.0.0.3', ipv6: '::1' },
  ports: { ...STANDARD_PORTS, smtp: 2525, submission: 2587, submissions: 2465, imaps: 2993, spam: 2891 },
  mailUser: { name: 'nobody', group: 'nogroup' },
};
const dkim: DkimKey[] = config.domains.flatMap((domain) =>
  (['rsa', 'ed25519'] as const).map((algorithm) => ({
    domain,
    selector: algorithm === 'rsa' ? '202601r' : '202601e',
    algorithm,
    txt: '',
    privateKeyPath: `keys/dkim/${domain}/${algorithm === 'rsa' ? '202601r' : '202601e'}.private`,
    signingKeyPath: `keys/dkim/${domain}/${algorithm === 'rsa' ? '202601r.private' : '202601e.rspamd'}`,
    state: 'active' as const,
    created: '2026-01-15',
  })),
);

describe('postfix model', () => {
  it('maps aliases, and for a domain with a catch-all each of its mailboxes to itself first', async () => {
    const c = resolveConfig(
      sourced({ ...RAW, aliases: ['@example.net=alice@example.org', 'info@example.org=alice@example.org', 'team@example.org=alice@example.org,bob@example.net'] }, 'flag'),
    ).config;
    const m = postfixModel(c, tls, rehearsal);
    const virtual = m.virtual.map((v) => `${v.from} ${v.to}`);
    // bob is a mailbox of the catch-all's domain: his own entry keeps his mail his.
    expect(virtual).toContain('bob@example.net bob@example.net');
    expect(virtual).not.toContain('alice@example.org alice@example.org');
    expect(virtual).toContain('@example.net alice@example.org');
    expect(virtual).toContain('team@example.org alice@example.org, bob@example.net');
    expect(virtual).toContain('abuse@example.net alice@example.org');
    // alice may send as the alias that reaches only her, not as the shared one or the catch-all.
    const logins = m.senderLogins.map((s) => `${s.address} ${s.login}`);
    expect(logins).toContain('info@example.org alice@example.org');
    expect(logins.filter((l) => l.startsWith('team@') || l.startsWith('@'))).toEqual([]);
    const text = await render('postfix', 'virtual', m);
    expect(text).toMatch(/^bob@example\.net bob@example\.net$/m);
    expect(text).toMatch(/^@example\.net alice@example\.org$/m);
  });

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
    // One milter, rspamd's, for both: it judges port 25 and signs submissions.
    expect(m.inboundMilters).toBe('inet:127.0.0.1:2891');
    expect(m.submissionMilters).toBe('inet:127.0.0.1:2891');
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
    // The loopback listener for the host's own replies hands rspamd a login (it signs only
    // authenticated mail); no submission listener does, and port 25 never.
    const local = block(`127.0.0.1:${STANDARD_PORTS.localSubmission}`);
    expect(local).toContain(`-o milter_macro_defaults=auth_authen=${LOCAL_SENDER_LOGIN}`);
    expect(local).toContain('-o smtpd_client_restrictions=permit_mynetworks,reject');
    expect(master.match(/milter_macro_defaults/g)).toHaveLength(1);
  });
});

describe('dovecot users file', () => {
  it('gives a mailbox with a quota its limit as a userdb field, in each release\'s own name', async () => {
    const hashes = new Map(config.users.map((u) => [u, '{ARGON2ID}$argon2id$v=19$m=65536,t=3,p=1$c2FsdA$aGFzaA']));
    for (const [target, field] of [['debian-12', 'userdb_quota_rule=*:storage=2G'], ['debian-13', 'userdb_quota_storage_size=2G']] as const) {
      const c = resolveConfig(sourced({ ...RAW, target, quotas: ['bob@example.net=2G'] }, 'flag')).config;
      const text = await render('dovecot', 'users', dovecotModel(c, tls, rehearsal, hashes));
      const lines = text.split('\n').filter(Boolean);
      expect(lines.find((l) => l.startsWith('bob@'))).toBe(`bob@example.net:${hashes.get('bob@example.net' as Email)}::::::${field}`);
      expect(lines.find((l) => l.startsWith('alice@'))).toBe(`alice@example.org:${hashes.get('alice@example.org' as Email)}::::::`);
    }
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

describe('rspamd DKIM signing model', () => {
  it('signs each domain with its active RSA key (PEM) and Ed25519 key (rspamd form), at their installed paths', () => {
    const m = dkimSigningModel(config, dkim, rehearsal);
    expect(m.domains).toEqual([
      { name: 'example.net', selectors: [{ selector: '202601r', path: '/tmp/r/var/lib/rspamd/dkim/example.net/202601r.private' }, { selector: '202601e', path: '/tmp/r/var/lib/rspamd/dkim/example.net/202601e.rspamd' }] },
      { name: 'example.org', selectors: [{ selector: '202601r', path: '/tmp/r/var/lib/rspamd/dkim/example.org/202601r.private' }, { selector: '202601e', path: '/tmp/r/var/lib/rspamd/dkim/example.org/202601e.rspamd' }] },
    ]);
    expect(m.localUser).toBe(LOCAL_SENDER_LOGIN);
  });

  it('signs with nothing a rotation left published only', () => {
    const old = dkim.map((k) => ({ ...k, selector: k.selector.replace('202601', '202512'), state: 'published' as const }));
    const m = dkimSigningModel(config, [...old, ...dkim], rehearsal);
    expect(m.domains.flatMap((d) => d.selectors.map((s) => s.selector))).toEqual(['202601r', '202601e', '202601r', '202601e']);
  });

  it('refuses a domain without an active key of each algorithm', () => {
    expect(() => dkimSigningModel(config, dkim.filter((k) => k.algorithm === 'rsa'), rehearsal)).toThrow(/ed25519 DKIM key/);
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
