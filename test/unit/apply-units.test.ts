import { describe, expect, it } from 'vitest';
import { DEBIAN_UNITS, RETIRED_UNITS, inStartOrder, shippedUnits, unitPlan } from '../../src/apply/units.js';
import { useraddArgs } from '../../src/apply/accounts.js';

const unit = (name: string, install: boolean) => ({
  path: `systemd/${name}`,
  data: Buffer.from(`[Unit]\nDescription=x\n\n[Service]\nExecStart=/bin/true\n${install ? '\n[Install]\nWantedBy=multi-user.target\n' : ''}`),
});
const entries = [
  unit('selfmail-firewall.service', true),
  unit('selfmail-resign.service', false),
  unit('selfmail-resign.timer', true),
  { path: 'systemd/README', data: Buffer.from('not a unit') },
];
const shipped = shippedUnits(entries);

describe('the units apply brings up', () => {
  it('wants every Debian unit and the bundle units with an [Install] section; a timer starts its service', () => {
    expect(shipped).toEqual([
      { name: 'selfmail-firewall.service', installable: true },
      { name: 'selfmail-resign.service', installable: false },
      { name: 'selfmail-resign.timer', installable: true },
    ]);
    const p = unitPlan(shipped, [], []);
    expect(p.wanted).toEqual([...DEBIAN_UNITS, 'selfmail-firewall.service', 'selfmail-resign.timer'].sort());
    expect(p.touched).toEqual([]);
    expect(p.daemonReload).toBe(false);
  });

  it('a DKIM key change concerns rspamd, which signs, also when a key is removed', () => {
    expect(unitPlan(shipped, ['keys/dkim/example.org/202612r.private'], []).touched).toEqual(['rspamd.service']);
    expect(unitPlan(shipped, [], ['keys/dkim/example.org/202611e.rspamd']).touched).toEqual(['rspamd.service']);
  });

  it('never wants the OpenDKIM units of earlier versions, and a removed OpenDKIM file concerns no unit', () => {
    const p = unitPlan(shipped, [], ['opendkim/opendkim-ed25519.conf', 'opendkim/key.table']);
    for (const u of RETIRED_UNITS) expect(p.wanted).not.toContain(u);
    expect(p.touched).toEqual([]);
  });

  it('the TLS certificate concerns every server that offers TLS', () => {
    expect(unitPlan(shipped, ['keys/tls/cert.pem'], []).touched).toEqual(['dovecot.service', 'nginx.service', 'postfix.service']);
  });

  it('a changed unit file makes systemd re-read them and restarts that unit', () => {
    const p = unitPlan(shipped, ['systemd/selfmail-firewall.service', 'systemd/selfmail-resign.service'], []);
    expect(p.daemonReload).toBe(true);
    expect(p.touched).toEqual(['selfmail-firewall.service']);
  });

  it('stops and disables a unit an earlier bundle shipped and this one dropped (the backup timer after --backup-to none)', () => {
    expect(unitPlan(shipped, [], ['systemd/selfmail-backup.timer', 'systemd/selfmail-backup.service']).dropped).toEqual(['selfmail-backup.service', 'selfmail-backup.timer']);
  });

  it('drops no unit for a removed file that is not a unit file', () => {
    expect(unitPlan(shipped, [], ['systemd/README', 'postfix/main.cf', 'systemd/sub/x.timer']).dropped).toEqual([]);
  });

  it('drops no unit the bundle still ships', () => {
    expect(unitPlan(shipped, [], ['systemd/selfmail-resign.timer']).dropped).toEqual([]);
  });

  it('never drops a Debian unit, whatever file went', () => {
    expect(unitPlan(shipped, [], ['systemd/postfix.service']).dropped).toEqual([]);
  });

  it('with a tunnel config (own-vps): wg-quick@selfmail is wanted, first of all, restarted when its config changes, dropped when the config goes', () => {
    const withTunnel = shippedUnits([...entries, { path: 'wireguard/selfmail.conf', data: Buffer.from('[Interface]\n') }]);
    const p = unitPlan(withTunnel, ['wireguard/selfmail.conf'], []);
    expect(p.wanted).toContain('wg-quick@selfmail.service');
    expect(p.touched).toEqual(['wg-quick@selfmail.service']);
    expect(inStartOrder(p.wanted)[0]).toBe('wg-quick@selfmail.service');
    expect(unitPlan(shipped, [], ['wireguard/selfmail.conf']).dropped).toEqual(['wg-quick@selfmail.service']);
    expect(unitPlan(shipped, [], []).wanted).not.toContain('wg-quick@selfmail.service');
  });

  it('brings NSD up before unbound, the filter and signer before Postfix, Postfix before Dovecot', () => {
    const order = inStartOrder(['dovecot.service', 'unbound.service', 'zz.timer', 'postfix.service', 'nsd.service', 'rspamd.service', 'aa.timer']);
    expect(order).toEqual(['nsd.service', 'unbound.service', 'rspamd.service', 'postfix.service', 'dovecot.service', 'aa.timer', 'zz.timer']);
  });
});

describe('the mail account', () => {
  it('is a system user without shell or home folder made for it, in the install root', () => {
    expect(useraddArgs('/', false)).toEqual(['--system', '--user-group', '--home-dir', '/var/vmail', '--no-create-home', '--shell', '/usr/sbin/nologin', '--comment', 'selfmail mailboxes', 'vmail']);
    expect(useraddArgs('/srv/image', true).slice(0, 5)).toEqual(['--prefix', '/srv/image', '--system', '--gid', 'vmail']);
  });
});
