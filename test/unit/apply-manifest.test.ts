import { describe, expect, it } from 'vitest';
import { parseManifest } from '../../src/apply/bundle.js';
import { parseIdFile } from '../../src/bundle/owners.js';
import { rootUnsafeForOverlay, topLevelDirs, validatorsFor } from '../../src/apply/validate.js';
import { InputError } from '../../src/errors.js';

const H = 'a'.repeat(64);

describe('MANIFEST.sha256 parsing', () => {
  it('reads sha256sum text and binary lines, sorted by path', () => {
    expect(parseManifest(`${H}  postfix/main.cf\n${'B'.repeat(64)} *dns/a.zone\n\n`)).toEqual([
      { path: 'dns/a.zone', sha256: 'b'.repeat(64) },
      { path: 'postfix/main.cf', sha256: H },
    ]);
  });

  it('refuses paths that leave the bundle, malformed lines and duplicates, all at once', () => {
    let err: unknown;
    try {
      parseManifest(`${H}  ../etc/shadow\n${H}  /etc/passwd\n${H}  a/./b\nnot a line\n${H}  x\n${H}  x\n`);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(InputError);
    expect((err as InputError).issues.map((i) => i.message)).toEqual([
      'MANIFEST.sha256 line 1 names a path outside the bundle: "../etc/shadow"',
      'MANIFEST.sha256 line 2 names a path outside the bundle: "/etc/passwd"',
      'MANIFEST.sha256 line 3 names a path outside the bundle: "a/./b"',
      'MANIFEST.sha256 line 4 is not "<sha256>  <path>"',
      'MANIFEST.sha256 lists x twice',
    ]);
  });
});

describe('apply helpers', () => {
  it('reads ids from passwd/group text', () => {
    const ids = parseIdFile('root:x:0:0:root:/root:/bin/bash\n# comment\nopendkim:x:106:109::/run/opendkim:/usr/sbin/nologin\nbad\n');
    expect([...ids]).toEqual([
      ['root', 0],
      ['opendkim', 106],
    ]);
  });

  it('picks the validators of the services present, in a fixed order', () => {
    const m = new Map([
      ['dns/example.org.zone.signed', '/etc/nsd/zones/example.org.zone.signed'],
      ['nsd/nsd.conf', '/etc/nsd/nsd.conf'],
      ['postfix/main.cf', '/etc/postfix/main.cf'],
      ['keys/dkim/example.org/202612r.private', '/var/lib/rspamd/dkim/example.org/202612r.private'],
      ['nftables/selfmail.nft', '/etc/selfmail/nftables/selfmail.nft'],
      ['keys/dkim/example.org/202612e.rspamd', '/var/lib/rspamd/dkim/example.org/202612e.rspamd'],
      ['keys/dkim/example.org/202612e.private', '/var/lib/rspamd/dkim/example.org/202612e.private'],
      ['keys/dkim/example.org/202612e.txt', '/var/lib/rspamd/dkim/example.org/202612e.txt'],
      ['unbound/selfmail.conf', '/etc/unbound/unbound.conf.d/selfmail.conf'],
      ['nginx/selfmail.conf', '/etc/nginx/conf.d/selfmail.conf'],
      ['fail2ban/jail.d/selfmail.local', '/etc/fail2ban/jail.d/selfmail.local'],
    ]);
    expect(validatorsFor(m).map((v) => v.name)).toEqual([
      'postfix check',
      'postconf -n',
      'postconf -M',
      'nsd-checkconf',
      'nsd-checkzone example.org /etc/nsd/zones/example.org.zone.signed',
      'nft -c -f /etc/selfmail/nftables/selfmail.nft',
      'unbound-checkconf',
      'DKIM keys readable by rspamd (_rspamd)',
      'nginx -t',
      'fail2ban-client -t',
      'fail2ban journal backend (python3-systemd)',
    ]);
    const byName = new Map(validatorsFor(m).map((v) => [v.name, v]));
    // A fresh host has no trust anchor until unbound first runs; nginx -t binds its listeners.
    expect(byName.get('unbound-checkconf')?.seeds).toEqual([{ path: '/var/lib/unbound/root.key', from: '/usr/share/dns/root.key', pkg: 'dns-root-data' }]);
    expect(byName.get('nginx -t')?.ownNetwork).toBe(true);
    // rspamd opens every DKIM key (not the public TXT) as the user it signs as, reading none of it.
    expect(byName.get('DKIM keys readable by rspamd (_rspamd)')).toMatchObject({
      cmd: 'head',
      asUser: '_rspamd',
      args: ['-q', '-c', '0', '--', '/var/lib/rspamd/dkim/example.org/202612e.private', '/var/lib/rspamd/dkim/example.org/202612e.rspamd', '/var/lib/rspamd/dkim/example.org/202612r.private'],
    });
    // Postfix complains only to a terminal: its check gets one.
    expect(byName.get('postfix check')?.pty).toBe(true);
    expect(validatorsFor(new Map([['dovecot/users', '/etc/dovecot/users']])).map((v) => v.name)).toEqual(['doveconf -n']);
    // Dovecot 2.4 opens the certificate and key only with -x.
    expect(validatorsFor(new Map([['dovecot/users', '/etc/dovecot/users']]), 'debian-13').map((v) => [v.name, v.args])).toEqual([['doveconf -n -x', ['-n', '-x']]]);
    expect(validatorsFor(new Map())).toEqual([]);
    // rspamd: configtest, then rspamd's own list of what it would run, judged.
    const spam = new Map([['rspamd/local.d/options.inc', '/etc/rspamd/local.d/options.inc']]);
    const guard = validatorsFor(spam).find((v) => v.name === 'rspamadm configdump -m (no outside service)')!;
    expect(guard.args).toEqual(['configdump', '-m']);
    expect(guard.judge!('Modules enabled: dkim, spf, dmarc\nModules disabled (explicitly): rbl\n')).toBeUndefined();
    expect(guard.judge!('Modules enabled: dkim, rbl, fuzzy_check\n')).toMatch(/^rspamd would run rbl: .*\nrspamd would run fuzzy_check: .*fuzzy1\.rspamd\.com/);
    const opted = validatorsFor(spam, 'debian-12', { spamLookups: ['spamhaus'] }).find((v) => v.judge)!;
    expect(opted.judge!('Modules enabled: dkim, rbl\n')).toBeUndefined();
    expect(opted.judge!('Modules enabled: dkim, rbl, asn\n')).toMatch(/^rspamd would run asn: /);
  });

  it('overlays the folders the tools write to and those the files go to, and refuses roots overlayfs cannot name', () => {
    expect(topLevelDirs(['/etc/postfix/main.cf', '/var/www/selfmail/x', '/etc/nsd/nsd.conf'])).toEqual(['etc', 'run', 'var']);
    expect(topLevelDirs(['/usr/local/lib/selfmail/selfmail-acme'])).toEqual(['etc', 'run', 'usr', 'var']);
    expect(rootUnsafeForOverlay('/tmp/selfmail-root-abc')).toBe(false);
    expect(rootUnsafeForOverlay('/tmp/a,upperdir=/etc')).toBe(true);
    expect(rootUnsafeForOverlay('/tmp/a:b')).toBe(true);
  });
});
