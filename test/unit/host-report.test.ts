import { describe, expect, it } from 'vitest';
import type { RawInput } from '../../src/config/raw.js';
import { REPORT_PATH, reportModel, reportService, reportSummary, summaryLines } from '../../src/report/index.js';
import { hostContext } from '../helpers/host-context.js';

const RECIPIENT = 'age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p';
const part = (b: Buffer) => Buffer.concat([Buffer.from([0, 0, 0, b.length]), b]);
const HOST_KEY = `ssh-ed25519 ${Buffer.concat([part(Buffer.from('ssh-ed25519')), part(Buffer.alloc(32, 7))]).toString('base64')}`;

/** Promises selfmail must never make (principle 8). */
const FORBIDDEN = /100\s*%|\b(fully|totally|completely|perfectly|absolutely)\s+(private|secure|confidential|safe|encrypted)\b|\bunhackable\b|\bmilitary[- ]grade\b|\bbulletproof\b|\bguaranteed?\s+(privacy|confidential)/i;

async function report(input: RawInput = {}, warnings: string[] = []): Promise<string> {
  const ctx = hostContext(input);
  ctx.warnings.push(...warnings);
  const files = await reportService.build(ctx);
  expect(files.map((f) => f.path)).toEqual([REPORT_PATH]);
  return files[0]!.data.toString('utf8');
}

describe('REPORT.md', () => {
  it('names the DS records of every zone, the glue and the PTR records', async () => {
    const text = await report();
    expect(text).toContain(`example.org. IN DS 10000 13 2 ${'AB'.repeat(32)}`);
    expect(text).toContain(`example.net. IN DS 10001 13 2 ${'AB'.repeat(32)}`);
    expect(text).toContain('ns1.example.org → 203.0.113.10');
    expect(text).toMatch(/PTR/);
    expect(text).toContain('203.0.113.10 → mail.example.org');
    expect(text).toContain('2001:db8::10 → mail.example.org');
  });

  it('says "no DNSSEC" and gives no DS when DNSSEC is off', async () => {
    const text = await report({ dnssec: false });
    expect(text).not.toMatch(/ IN DS /);
    expect(text).toContain('No DNSSEC: give the registrar no DS record.');
  });

  it('lists the ports to forward by hand and says to switch UPnP off, for port-forward setups only', async () => {
    const text = await report({ ingress: 'port-forward', listenIpv4: '192.168.1.20' });
    expect(text).toContain('(192.168.1.20)');
    for (const port of [25, 53, 80, 443, 465, 587, 993, 4190]) expect(text).toMatch(new RegExp(`\\| ${port} \\|`));
    expect(text).toMatch(/switch UPnP off/);
    expect(text).toContain('Do not forward SSH (22)');
    const direct = await report();
    expect(direct).not.toContain('port forwarding');
    expect(direct).not.toMatch(/\| 993 \|/);
  });

  it('names the DMARC report authorization records when the admin is outside our domains', async () => {
    const text = await report({ admin: 'me@example.com' });
    expect(text).toContain('example.org._report._dmarc.example.com. IN TXT "v=DMARC1"');
    expect(text).toContain('example.net._report._dmarc.example.com. IN TXT "v=DMARC1"');
    expect(await report()).not.toContain('_report._dmarc');
  });

  it('says what it does not protect, includes the warnings, and makes no forbidden promise', async () => {
    const text = await report({ admin: 'me@example.com', ingress: 'port-forward', listenIpv4: '192.168.1.20' }, ['a warning from another module']);
    for (const phrase of ['Envelope and headers', 'Mail at rest on this host', 'The registrar and the registry', 'What your ISP sees', 'Mail to big providers', 'OpenPGP private keys stay on their devices']) {
      expect(text).toContain(phrase);
    }
    expect(text).toContain('- a warning from another module');
    expect(text).not.toMatch(FORBIDDEN);
    expect('This is 100% confidential mail').toMatch(FORBIDDEN);
  });

  it('SSH: closed without admin networks, limited to them otherwise', async () => {
    expect(await report()).toContain('SSH is not reachable from the network at all');
    expect(await report({ adminSshFrom: ['198.51.100.0/24'] })).toContain('SSH is reachable only from\n  198.51.100.0/24');
  });

  it('backups on: where they go, the daily timer, who sees what, who reads them, and for sftp what the backup machine needs', async () => {
    const text = await report({ backupTo: 'sftp://selfmail-backup@nas.home.arpa:2222/backup', backupRecipients: [RECIPIENT], backupHostKey: HOST_KEY });
    expect(text).toContain('Every day `selfmail-backup.timer` (03:00, plus up to an\n  hour;');
    expect(text).toContain('to `sftp://selfmail-backup@nas.home.arpa:2222/backup`');
    expect(text).toContain(`  - \`${RECIPIENT}\``);
    expect(text).toMatch(/Whoever holds that folder \(the owner of nas\.home\.arpa\) sees how many files, their sizes and\s+when each backup ran, never names or contents/);
    expect(text).toMatch(/keep each on your own device, never on this host, and a copy somewhere safe/);
    expect(text).toMatch(/This host can still overwrite or delete what it wrote on nas\.home\.arpa \(SFTP has no\s+append-only mode\)/);
    expect(text).toMatch(/Keep snapshots of\s+that disk/);
    expect(text).toContain('`selfmail backup --remote-setup --to sftp://selfmail-backup@nas.home.arpa:2222/backup`');
    expect(text).not.toContain('No daily backup');
    expect(text).not.toMatch(FORBIDDEN);
    // A folder of this host: no SFTP steps, and said plainly that it is within reach of this host.
    const dir = await report({ backupTo: '/mnt/backup', backupRecipients: [RECIPIENT] });
    expect(dir).toContain('to `/mnt/backup`');
    expect(dir).toMatch(/A folder of this host is within reach of anyone who takes this host/);
    expect(dir).not.toContain('--remote-setup');
    expect(reportSummary(reportModel(hostContext({ backupTo: '/mnt/backup', backupRecipients: [RECIPIENT] }).config, hostContext().keys, [])).join('\n')).toContain(
      'Backups: daily to /mnt/backup once applied (selfmail-backup.timer)',
    );
  });

  it('backups off: says so, and how to turn them on or back up by hand', async () => {
    const text = await report();
    expect(text).toContain('**No daily backup.**');
    expect(text).toContain('`selfmail init --out BUNDLE --backup-to /mnt/disk --backup-recipient age1…`');
    expect(text).toContain('Backups by hand work too:\n  `selfmail backup --bundle DIR --to /mnt/disk --recipient age1…`');
    expect(text).not.toContain('selfmail-backup.timer');
    expect(summaryLines(hostContext()).join('\n')).toMatch(/^Backups are off: .*--backup-to .*--backup-recipient age1…/m);
  });

  it('names the mailboxes that publish an OpenPGP key, where, and that private keys are refused; nothing without keys', async () => {
    const text = await report({ openpgpKeys: ['alice@example.org=alice.asc'] });
    const line = text.slice(text.indexOf('- **OpenPGP public keys'), text.indexOf('\n- **Spam'));
    expect(line).toContain('(alice@example.org)');
    expect(line).toContain('OPENPGPKEY records\n  signed with DNSSEC');
    expect(line).toContain('https://openpgpkey.<domain>/.well-known/openpgpkey/');
    expect(line).toContain('selfmail refuses private ones');
    expect(await report({ dnssec: false, openpgpKeys: ['alice@example.org=alice.asc'] })).toContain('Without DNSSEC there is no OPENPGPKEY record.');
    expect(await report()).not.toContain('OpenPGP public keys');
  });

  it('is byte-identical for the same input', async () => {
    expect(await report({ admin: 'me@example.com' })).toBe(await report({ admin: 'me@example.com' }));
  });
});

describe('reportSummary', () => {
  it('gives a few lines for the end screen: registrar, PTR, router', () => {
    const ctx = hostContext({ ingress: 'port-forward', listenIpv4: '192.168.1.20', admin: 'me@example.com' });
    const lines = reportSummary(reportModel(ctx.config, ctx.keys, ctx.warnings));
    expect(lines.length).toBeLessThanOrEqual(7);
    expect(lines.join('\n')).toContain('DS records for example.org, example.net');
    expect(lines.join('\n')).toContain('PTR');
    expect(lines.join('\n')).toContain('forward ports 25, 53, 80, 443, 465, 587, 993, 4190 by hand to 192.168.1.20, and switch UPnP off');
    expect(lines.join('\n')).toContain('At example.com');
    expect(lines.join('\n')).not.toMatch(FORBIDDEN);
    expect(summaryLines(ctx)).toEqual(lines);
  });

  it('says "no DS" without DNSSEC and that SSH is closed without admin networks', () => {
    const text = summaryLines(hostContext({ dnssec: false })).join('\n');
    expect(text).toContain('no DNSSEC, so no DS records');
    expect(text).toContain('SSH is closed to the network');
    expect(text).not.toContain('router');
  });
});
