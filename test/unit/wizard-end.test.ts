import type { NetworkInterfaceInfo } from 'node:os';
import { describe, expect, it } from 'vitest';
import { sourced } from '../../src/config/raw.js';
import { resolveConfig } from '../../src/config/schema.js';
import type { Summary } from '../../src/generate.js';
import type { KeySet } from '../../src/keys/types.js';
import { endScreenLines } from '../../src/wizard/end.js';
import { localAddresses } from '../../src/wizard/addresses.js';

const keys = {
  dkim: [],
  dnssec: [
    { zone: 'example.org', role: 'ksk', tag: 12345, algorithm: 13, dnskey: '257 3 13 AAAA', ds: '12345 13 2 ABCDEF', basePath: 'keys/dnssec/example.org/K', created: '2026-01-01' },
    { zone: 'example.org', role: 'zsk', tag: 54321, algorithm: 13, dnskey: '256 3 13 BBBB', basePath: 'keys/dnssec/example.org/Z', created: '2026-01-01' },
    { zone: 'example.net', role: 'ksk', tag: 999, algorithm: 13, dnskey: '257 3 13 CCCC', ds: '999 13 2 012345', basePath: 'keys/dnssec/example.net/K', created: '2026-01-01' },
  ],
  tls: { keyPath: 'keys/tls/key.pem', certPath: 'keys/tls/cert.pem', csrPath: 'keys/tls/request.csr', spkiSha256: 'ab', names: [], created: '2026-01-01' },
  tsig: [],
  files: [],
  read: () => Buffer.alloc(0),
} as unknown as KeySet;

const summary: Summary = {
  ok: true,
  bundle: '/tmp/b',
  changed: true,
  files: [
    { path: 'MANIFEST.sha256', role: 'manifest', mode: '0644', changed: true },
    { path: 'keys/dkim/a.pem', role: 'key', mode: '0600', changed: true },
    { path: 'keys/tls/cert.pem', role: 'cert', mode: '0644', changed: false },
    { path: 'postfix/main.cf', role: 'postfix', mode: '0644', changed: false },
  ],
  removed: [],
  ds: [],
  warnings: [],
};

describe('end screen', () => {
  it('lists the files, the registrar, ISP and router steps, and what is and is not protected', () => {
    const { config } = resolveConfig(
      sourced(
        {
          domains: ['example.org', 'example.net'],
          ipv4: '198.51.100.25',
          ipv6: '2001:db8::25',
          ingress: 'port-forward',
          listenIpv4: '192.168.1.20',
          users: ['alice@example.org'],
          target: 'debian-12',
        },
        'wizard',
      ),
    );
    const text = endScreenLines({ config, keys, summary }).join('\n');
    expect(text).toContain('  keys/ 2 files (1 written, secrets inside (0600): never copy them elsewhere)');
    expect(text).toContain('  postfix/ 1 file (unchanged)');
    expect(text).toContain('  MANIFEST.sha256 (written)');
    expect(text).toContain('At the registrar of example.org:\n       name servers (NS): ns1.example.org\n       glue: ns1.example.org A 198.51.100.25\n       glue: ns1.example.org AAAA 2001:db8::25\n       DS: example.org. IN DS 12345 13 2 ABCDEF');
    // ns1.example.org lies outside example.net: no glue there, and only that zone's DS.
    expect(text).toContain('At the registrar of example.net:\n       name servers (NS): ns1.example.org\n       DS: example.net. IN DS 999 13 2 012345');
    expect(text).toContain('PTR) of 198.51.100.25 and 2001:db8::25 to mail.example.org');
    expect(text).toContain('On your router, forward these ports by hand to 192.168.1.20, then switch UPnP off on the router:');
    for (const port of ['TCP 25  SMTP', 'TCP and UDP 53  DNS', 'TCP 465', 'TCP 587', 'TCP 993', 'TCP 80', 'TCP 443']) expect(text).toContain(`       ${port}`);
    expect(text).toContain('and allow the same ports to 2001:db8::25 in the router\'s IPv6 firewall');
    expect(text).toContain('keys/tls/request.csr');
    expect(text).toMatch(/What it does not protect:\n.*recipients' servers see/);
    expect(text).toContain('SSH is closed to the network');
  });

  it('says there is no DS without DNSSEC and no router step for direct ingress', () => {
    const { config } = resolveConfig(sourced({ domains: ['example.org'], ipv4: '198.51.100.25', users: ['a@example.org'], admin: 'ops@example.com', dnssec: false, target: 'debian-12' }, 'wizard'));
    const text = endScreenLines({ config, keys: { ...keys, dnssec: [] } as KeySet, summary }).join('\n');
    expect(text).toContain('no DS record: DNSSEC is off');
    expect(text).not.toContain('router');
    expect(text).toContain('In the zone of example.com (it receives your DMARC reports):\n       example.org._report._dmarc.example.com. IN TXT "v=DMARC1"');
  });
});

describe('end screen: backups', () => {
  const RECIPIENT = 'age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p';
  const part = (b: Buffer) => Buffer.concat([Buffer.from([0, 0, 0, b.length]), b]);
  const HOST_KEY = `ssh-ed25519 ${Buffer.concat([part(Buffer.from('ssh-ed25519')), part(Buffer.alloc(32, 7))]).toString('base64')}`;
  const base = { domains: ['example.org'], ipv4: '198.51.100.25', users: ['alice@example.org'], target: 'debian-12' };
  const backupLines = (extra: Record<string, unknown>) => {
    const { config } = resolveConfig(sourced({ ...base, ...extra }, 'wizard'));
    return endScreenLines({ config, keys, summary }).filter((l) => /backup/i.test(l));
  };

  it('on: one line, where they go, and for sftp what the backup machine needs', () => {
    const lines = backupLines({ backupTo: 'sftp://selfmail-backup@nas.home.arpa/backup', backupRecipients: [RECIPIENT], backupHostKey: HOST_KEY });
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^ {2}\d+\. Backups: daily to sftp:\/\/selfmail-backup@nas\.home\.arpa\/backup once applied \(selfmail-backup\.timer\), readable only with the age key from your device/);
    expect(lines[0]).toContain('selfmail backup --remote-setup --to sftp://selfmail-backup@nas.home.arpa/backup (as root here) prints what to run on nas.home.arpa');
    const dir = backupLines({ backupTo: '/mnt/backup', backupRecipients: [RECIPIENT, RECIPIENT.replace(/p$/, 'q')] });
    expect(dir).toHaveLength(1);
    expect(dir[0]).toContain('Backups: daily to /mnt/backup once applied (selfmail-backup.timer), readable only with 2 age keys from your devices');
    expect(dir[0]).not.toContain('remote-setup');
  });

  it('off: one line, how to turn them on', () => {
    const lines = backupLines({});
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^ {2}\d+\. Backups are off: /);
    expect(lines[0]).toContain('selfmail init --out /tmp/b --backup-to /mnt/disk (or sftp://USER@HOST/PATH) --backup-recipient age1…');
    expect(lines[0]).toContain('age-keygen -o key.txt');
  });
});

describe('local addresses', () => {
  it('keeps public and LAN addresses, drops loopback, link-local, documentation and internal ones', () => {
    const info = (address: string, family: 'IPv4' | 'IPv6', internal = false) =>
      (family === 'IPv4' ? { address, family, internal, netmask: '', mac: '', cidr: null } : { address, family, internal, netmask: '', mac: '', cidr: null, scopeid: 0 }) as NetworkInterfaceInfo;
    const found = localAddresses({
      lo: [info('127.0.0.1', 'IPv4', true), info('::1', 'IPv6', true)],
      eth0: [info('192.168.1.20', 'IPv4'), info('fe80::1', 'IPv6'), info('2a01:4f8::25', 'IPv6'), info('192.0.2.1', 'IPv4')],
      eth1: [info('93.184.216.34', 'IPv4'), info('100.64.1.1', 'IPv4')],
    });
    expect(found).toEqual({ publicV4: ['93.184.216.34'], publicV6: ['2a01:4f8::25'], lanV4: ['192.168.1.20'] });
  });
});

describe('repeated warnings', () => {
  it('are printed once, with a count', async () => {
    const { countedOnce } = await import('../../src/cli/io.js');
    expect(countedOnce(['a', 'b', 'a', 'a'])).toEqual(['a (3 times)', 'b']);
    expect(countedOnce([])).toEqual([]);
  });
});
