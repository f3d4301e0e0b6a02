import { describe, expect, it } from 'vitest';
import { DEBIAN_UNITS, inStartOrder, shippedUnits, unitPlan } from '../../src/apply/units.js';
import { useraddArgs } from '../../src/apply/accounts.js';

const unit = (name: string, install: boolean) => ({
  path: `systemd/${name}`,
  data: Buffer.from(`[Unit]\nDescription=x\n\n[Service]\nExecStart=/bin/true\n${install ? '\n[Install]\nWantedBy=multi-user.target\n' : ''}`),
});
const shipped = shippedUnits([
  unit('opendkim-ed25519.service', true),
  unit('selfmail-resign.service', false),
  unit('selfmail-resign.timer', true),
  { path: 'systemd/README', data: Buffer.from('not a unit') },
]);

describe('the units apply brings up', () => {
  it('wants every Debian unit and the bundle units with an [Install] section; a timer starts its service', () => {
    expect(shipped).toEqual([
      { name: 'opendkim-ed25519.service', installable: true },
      { name: 'selfmail-resign.service', installable: false },
      { name: 'selfmail-resign.timer', installable: true },
    ]);
    const p = unitPlan(shipped, [], []);
    expect(p.wanted).toEqual([...DEBIAN_UNITS, 'opendkim-ed25519.service', 'selfmail-resign.timer'].sort());
    expect(p.touched).toEqual([]);
    expect(p.daemonReload).toBe(false);
  });

  it('a DKIM key change concerns both OpenDKIM instances, also when a key is removed', () => {
    expect(unitPlan(shipped, ['keys/dkim/example.org/202612r.private'], []).touched).toEqual(['opendkim-ed25519.service', 'opendkim.service']);
    expect(unitPlan(shipped, [], ['keys/dkim/example.org/202611e.private']).touched).toEqual(['opendkim-ed25519.service', 'opendkim.service']);
  });

  it('the TLS certificate concerns every server that offers TLS', () => {
    expect(unitPlan(shipped, ['keys/tls/cert.pem'], []).touched).toEqual(['dovecot.service', 'nginx.service', 'postfix.service']);
  });

  it('a changed unit file makes systemd re-read them and restarts that unit', () => {
    const p = unitPlan(shipped, ['systemd/opendkim-ed25519.service', 'systemd/selfmail-resign.service'], []);
    expect(p.daemonReload).toBe(true);
    expect(p.touched).toEqual(['opendkim-ed25519.service']);
  });

  it('brings NSD up before unbound, the signers and Postfix before Dovecot', () => {
    const order = inStartOrder(['dovecot.service', 'unbound.service', 'zz.timer', 'postfix.service', 'nsd.service', 'opendkim.service', 'aa.timer']);
    expect(order).toEqual(['nsd.service', 'unbound.service', 'opendkim.service', 'postfix.service', 'dovecot.service', 'aa.timer', 'zz.timer']);
  });
});

describe('the mail account', () => {
  it('is a system user without shell or home folder made for it, in the install root', () => {
    expect(useraddArgs('/', false)).toEqual(['--system', '--user-group', '--home-dir', '/var/vmail', '--no-create-home', '--shell', '/usr/sbin/nologin', '--comment', 'selfmail mailboxes', 'vmail']);
    expect(useraddArgs('/srv/image', true).slice(0, 5)).toEqual(['--prefix', '/srv/image', '--system', '--gid', 'vmail']);
  });
});
