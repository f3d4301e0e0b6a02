/**
 * The pure parts of `selfmail import`: which sources are taken (imaps only), how the login and
 * password are written into Dovecot's configuration so that each release reads them back
 * unchanged, and what is shown of doveadm's output. That each release's Dovecot does read them
 * back, logging in with a password full of its syntax, is shown by the pristine tier (both).
 */
import { describe, expect, it } from 'vitest';
import { credentialProblem, doveadmErrors, dovecotString, imapcConfig, parseImportSource, parseMailboxCounts } from '../../src/mail/import.js';

describe('parseImportSource', () => {
  it('takes imaps://HOST with port 993 by default, a port, a bracketed IPv6 address, a trailing slash', () => {
    expect(parseImportSource('imaps://imap.Old.example')).toEqual({ ok: true, value: { host: 'imap.old.example', port: 993 } });
    expect(parseImportSource('imaps://imap.old.example:10993/')).toEqual({ ok: true, value: { host: 'imap.old.example', port: 10993 } });
    expect(parseImportSource('imaps://192.0.2.7')).toEqual({ ok: true, value: { host: '192.0.2.7', port: 993 } });
    expect(parseImportSource('imaps://[2001:db8::7]:993')).toEqual({ ok: true, value: { host: '2001:db8::7', port: 993 } });
  });

  it('refuses imap:// for having no TLS, and says why', () => {
    const r = parseImportSource('imap://imap.old.example');
    expect(r.ok).toBe(false);
    expect(!r.ok && r.error).toMatch(/no TLS.*in clear.*imaps:\/\//s);
  });

  it('refuses a login or password in the URL, a path, another scheme, a bad port or host', () => {
    expect(parseImportSource('imaps://me:secret@imap.old.example')).toMatchObject({ ok: false, error: expect.stringMatching(/--login.*--password-file/) });
    expect(parseImportSource('imaps://imap.old.example/INBOX')).toMatchObject({ ok: false, error: expect.stringMatching(/without a path/) });
    expect(parseImportSource('pop3s://pop.old.example')).toMatchObject({ ok: false, error: expect.stringMatching(/not pop3s/) });
    expect(parseImportSource('imaps://imap.old.example:0')).toMatchObject({ ok: false, error: expect.stringMatching(/1 to 65535/) });
    expect(parseImportSource('imaps://imap.old.example:70000')).toMatchObject({ ok: false, error: expect.stringMatching(/1 to 65535/) });
    expect(parseImportSource('imaps://imap.old.example:')).toMatchObject({ ok: false });
    expect(parseImportSource('imaps://bad_host.example')).toMatchObject({ ok: false, error: expect.stringMatching(/not a host name/) });
    expect(parseImportSource('imaps://"x"')).toMatchObject({ ok: false });
    expect(parseImportSource('imaps://[not-v6]')).toMatchObject({ ok: false });
    expect(parseImportSource('imap.old.example')).toMatchObject({ ok: false, error: expect.stringMatching(/imaps:\/\/HOST/) });
  });
});

describe('credentialProblem', () => {
  it('takes any printable text, refuses an empty one and control characters', () => {
    expect(credentialProblem('p %{x} "q" \\ $ENV:HOME #')).toBe(true);
    expect(credentialProblem('')).toMatch(/empty/);
    expect(credentialProblem('a\nb')).toMatch(/control character/);
    expect(credentialProblem('a\tb')).toMatch(/control character/);
  });
});

describe('dovecotString', () => {
  it('quotes and escapes backslash and double quote on both releases', () => {
    expect(dovecotString('a"b\\c', 'debian-12')).toBe('"a\\"b\\\\c"');
    expect(dovecotString('a"b\\c', 'debian-13')).toBe('"a\\"b\\\\c"');
  });

  it('writes %{ as %%{ on Dovecot 2.4 only, whose strings expand %{…}', () => {
    expect(dovecotString('x%{user}%%{y}%', 'debian-13')).toBe('"x%%{user}%%%{y}%"');
    expect(dovecotString('x%{user}', 'debian-12')).toBe('"x%{user}"');
  });
});

describe('imapcConfig', () => {
  const base = { mainConfig: '/etc/dovecot/dovecot.conf', source: { host: 'imap.old.example', port: 993 }, login: 'me@old.example', password: 'pw"1' };

  it('on Dovecot 2.4, puts the installed config version first, then the include', () => {
    const c = imapcConfig({ ...base, release: 'debian-13', configVersion: '2.4.0' }).split('\n');
    expect(c.slice(0, 2)).toEqual(['dovecot_config_version = 2.4.0', '!include /etc/dovecot/dovecot.conf']);
    expect(c).toContain('ssl_client_require_valid_cert = yes');
    expect(c).toContain('imapc_features = guid-forced');
  });

  it('on Dovecot 2.3, includes first and verifies the certificate', () => {
    const c = imapcConfig({ ...base, release: 'debian-12' }).split('\n');
    expect(c[0]).toBe('!include /etc/dovecot/dovecot.conf');
    expect(c).toContain('imapc_ssl = imaps');
    expect(c).toContain('imapc_ssl_verify = yes');
    expect(c).toContain('imapc_password = "pw\\"1"');
  });

  it('trusts the system store, or only the CA file given', () => {
    expect(imapcConfig({ ...base, release: 'debian-12' })).toMatch(/^ssl_client_ca_dir = \/etc\/ssl\/certs$/m);
    const own = imapcConfig({ ...base, release: 'debian-12', caFile: '/run/x/ca.pem' });
    expect(own).toMatch(/^ssl_client_ca_file = \/run\/x\/ca\.pem$/m);
    expect(own).toMatch(/^ssl_client_ca_dir =$/m);
  });
});

describe('doveadm output', () => {
  it('counts the messages of each folder', () => {
    expect([...parseMailboxCounts('INBOX messages=3\nArchive/2019 messages=0\nMy Folder messages=12\n')]).toEqual([
      ['INBOX', 3],
      ['Archive/2019', 0],
      ['My Folder', 12],
    ]);
  });

  it('shows the errors once, without the panic and its backtrace', () => {
    const out = [
      'dsync(a@b): Info: imapc(x:993): Connected',
      'dsync(a@b): Error: imapc(x:993): Received invalid SSL certificate: unable to get local issuer certificate',
      'dsync(a@b)<12><>: Error: imapc(x:993): Received invalid SSL certificate: unable to get local issuer certificate',
      'dsync(a@b): Panic: file lib-event.c: line 506',
      'dsync(a@b): Error: Raw backtrace: #0 …',
    ].join('\n');
    expect(doveadmErrors(out)).toEqual(['Error: imapc(x:993): Received invalid SSL certificate: unable to get local issuer certificate']);
  });
});
