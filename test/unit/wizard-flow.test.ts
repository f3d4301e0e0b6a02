import { describe, expect, it } from 'vitest';
import type { Io } from '../../src/cli/io.js';
import { type RawInput, type SourcedInput, overlay, sourced } from '../../src/config/raw.js';
import { resolveConfig } from '../../src/config/schema.js';
import { parsePublicIPv4 } from '../../src/config/values.js';
import { InterruptedError, RefusalError } from '../../src/errors.js';
import type { Interfaces } from '../../src/wizard/addresses.js';
import { MIN_PASSWORD_LENGTH, wizard } from '../../src/wizard/index.js';
import type { ConfirmQuestion, InputQuestion, PasswordQuestion, Prompter, SelectQuestion } from '../../src/wizard/prompter.js';
import { privateKeyNoPoint, somePublicKey } from '../helpers/wireguard.js';

/** One scripted answer: the prompt it is for (a part of its message) and what the person types. */
type Step = [match: string, answer: string | boolean | Error];

interface Asked {
  kind: 'input' | 'select' | 'confirm' | 'password';
  message: string;
  why: string;
  default?: unknown;
  choices?: SelectQuestion<string>['choices'];
  /** Messages the validate callback returned for rejected answers. */
  rejected: string[];
}

/**
 * A prompter that answers from a script the way inquirer does: Enter on an empty line takes the
 * default, a rejected answer shows the validate message and waits for the next one, a disabled
 * choice cannot be picked.
 */
function scripted(steps: Step[]): Prompter & { asked: Asked[]; left: () => Step[] } {
  const queue = [...steps];
  const asked: Asked[] = [];
  const next = (kind: Asked['kind'], message: string): Step[1] => {
    const step = queue.shift();
    if (!step) throw new Error(`unscripted ${kind} prompt: ${message}`);
    if (!message.includes(step[0])) throw new Error(`expected a prompt containing "${step[0]}", got ${kind} "${message}"`);
    if (step[1] instanceof Error) throw step[1];
    return step[1];
  };
  const text = (kind: 'input' | 'password', q: InputQuestion | PasswordQuestion, dflt?: string): string => {
    const rec: Asked = { kind, message: q.message, why: q.why, default: dflt, rejected: [] };
    asked.push(rec);
    for (;;) {
      const typed = next(kind, q.message);
      if (typeof typed !== 'string') throw new Error(`a text answer is needed for "${q.message}"`);
      const value = typed === '' && dflt !== undefined ? dflt : typed;
      const verdict = q.validate ? q.validate(value) : true;
      if (verdict === true) return value;
      rec.rejected.push(verdict);
    }
  };
  return {
    asked,
    left: () => queue,
    input: async (q) => text('input', q, q.default),
    password: async (q) => text('password', q),
    select: async <T extends string>(q: SelectQuestion<T>) => {
      asked.push({ kind: 'select', message: q.message, why: q.why, default: q.default, choices: q.choices, rejected: [] });
      const typed = next('select', q.message);
      const value = typed === '' ? q.default : typed;
      const choice = q.choices.find((c) => c.value === value);
      if (!choice) throw new Error(`no choice ${String(value)}`);
      if (choice.disabled) throw new Error(`choice ${choice.value} is disabled: ${choice.disabled}`);
      return choice.value;
    },
    confirm: async (q: ConfirmQuestion) => {
      asked.push({ kind: 'confirm', message: q.message, why: q.why, default: q.default, rejected: [] });
      const typed = next('confirm', q.message);
      return typed === '' ? q.default : Boolean(typed);
    },
  };
}

function fakeIo(): Io & { out: string[]; err: string[] } {
  const out: string[] = [];
  const err: string[] = [];
  return { out, err, say: (l) => out.push(l), warn: (l) => err.push(l), json: () => undefined, jsonMode: false, interactive: true };
}

const NO_INTERFACES = (): Interfaces => ({});
const PW = 'correct horse battery';
const empty = () => sourced({ target: 'debian-12' }, 'default');

async function run(input: SourcedInput, steps: Step[], opts: { passwords?: Map<string, string>; interfaces?: () => Interfaces; hashed?: Set<string> } = {}) {
  const prompter = scripted(steps);
  const io = fakeIo();
  const result = await wizard(input, opts.passwords ?? new Map(), io, { prompter, interfaces: opts.interfaces ?? NO_INTERFACES, ...(opts.hashed ? { hashed: opts.hashed } : {}) });
  expect(prompter.left()).toEqual([]);
  return { ...result, asked: prompter.asked, io, config: resolveConfig(result.input).config };
}

/** The answers of a first run for one domain on a public address, accepting every default. */
const oneDomain: Step[] = [
  ['Mail domain', 'example.org'],
  ['Mail host name', ''],
  ['How does mail reach', 'direct'],
  ['Public IPv4', '198.51.100.25'],
  ['Public IPv6', 'none'],
  ['name server on this host', ''],
  ['Secondary name servers', ''],
  ['DNSSEC', ''],
  ['Mailboxes', 'alice@example.org'],
  ['Password for alice@example.org', PW],
  ['same password again', PW],
  ['Admin address', ''],
  ['SSH', ''],
  ['spam blocklists', ''],
  ['Daily encrypted backups', ''],
  ['Write the bundle', ''],
];

describe('wizard', () => {
  it('one domain: safe defaults everywhere give the expected Config', async () => {
    const r = await run(empty(), oneDomain);
    expect(r.config).toEqual({
      domains: ['example.org'],
      hostname: 'mail.example.org',
      ipv4: '198.51.100.25',
      nameServers: [{ name: 'ns1.example.org', ipv4: ['198.51.100.25'], ipv6: [], self: true }],
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
    expect(r.passwords).toEqual(new Map([['alice@example.org', PW]]));
    // The defaults offered were the safe ones.
    const dflt = (m: string) => r.asked.find((a) => a.message.includes(m))?.default;
    expect(dflt('Mail host name')).toBe('mail.example.org');
    expect(dflt('DNSSEC')).toBe(true);
    expect(dflt('SSH')).toBeUndefined();
    expect(dflt('Admin address')).toBe('alice@example.org');
    // Every question says why it is asked.
    for (const a of r.asked) expect(a.why.length, a.message).toBeGreaterThan(20);
    // The welcome, then a review before anything is written; no password ever printed.
    expect(r.io.out.slice(0, 3).join(' ')).toMatch(/never uses UPnP/);
    expect(r.io.out.join('\n')).toMatch(/SSH reachable from\s+nowhere: closed to the network/);
    expect(r.io.out.join('\n') + r.io.err.join('\n')).not.toContain(PW);
    // The answers are marked as the wizard's.
    expect(r.input.origins.domains).toBe('wizard');
  });

  it('several domains, mailboxes in each, a secondary name server and SSH from one network', async () => {
    const r = await run(empty(), [
      ['Mail domain', 'example.org, Example.NET'],
      ['Mail host name', ''],
      ['How does mail reach', ''],
      ['Public IPv4', '198.51.100.25'],
      ['Public IPv6', '2001:DB8:0:0::25'],
      ['name server on this host', ''],
      ['Secondary name servers', 'ns2.example.net=203.0.113.53,2001:db8:53::2'],
      ['DNSSEC', false],
      ['Mailboxes', 'alice@example.org bob@example.net'],
      ['Password for alice', PW],
      ['same password again', PW],
      ['Password for bob', `${PW} 2`],
      ['same password again', `${PW} 2`],
      ['Admin address', 'postmaster+reports@example.net'],
      ['Admin address', 'ops@example.com'],
      ['SSH', '203.0.113.7/24'],
      ['spam blocklists', ''],
      ['Daily encrypted backups', ''],
      ['Write the bundle', true],
    ]);
    expect(r.config).toMatchObject({
      domains: ['example.org', 'example.net'],
      hostname: 'mail.example.org',
      ipv4: '198.51.100.25',
      ipv6: '2001:db8::25',
      dnssec: false,
      users: ['alice@example.org', 'bob@example.net'],
      adminSshFrom: ['203.0.113.0/24'],
      nameServers: [
        { name: 'ns1.example.org', ipv4: ['198.51.100.25'], ipv6: ['2001:db8::25'], self: true },
        { name: 'ns2.example.net', ipv4: ['203.0.113.53'], ipv6: ['2001:db8:53::2'], self: false },
      ],
    });
    // postmaster+reports is in our domain but not a mailbox: the schema said so in place.
    expect(r.asked.find((a) => a.message.includes('Admin'))?.rejected).toEqual([
      'postmaster+reports@example.net is in one of your domains but is not a mailbox; make it one of the --user addresses so that postmaster mail and reports land where you read them',
    ]);
    expect(r.config.admin).toBe('ops@example.com');
    expect(r.io.out.join('\n')).toMatch(/note: ops@example\.com is outside your domains; DMARC and TLS reports go there/);
  });

  it('port-forward asks for the LAN address and suggests the one on the interfaces', async () => {
    const interfaces = (): Interfaces => ({
      lo: [{ address: '127.0.0.1', netmask: '255.0.0.0', family: 'IPv4', mac: '00:00:00:00:00:00', internal: true, cidr: '127.0.0.1/8' }],
      eth0: [{ address: '192.168.1.20', netmask: '255.255.255.0', family: 'IPv4', mac: '02:00:00:00:00:01', internal: false, cidr: '192.168.1.20/24' }],
    });
    const r = await run(
      empty(),
      [
        ['Mail domain', 'example.org'],
        ['Mail host name', ''],
        ['How does mail reach', 'port-forward'],
        ['Public IPv4 address of your router', '203.0.113.9'],
        ['Public IPv6', 'none'],
        ['LAN address', ''],
        ...oneDomain.slice(5),
      ],
      { interfaces },
    );
    expect(r.asked.find((a) => a.message.includes('LAN address'))?.default).toBe('192.168.1.20');
    expect(r.config).toMatchObject({ ingress: 'port-forward', ipv4: '203.0.113.9', listenIpv4: '192.168.1.20' });
    expect(r.io.out.join('\n')).toMatch(/Mail arrives\s+through a port forward you set on your router, to 192\.168\.1\.20/);
  });

  it('own-vps asks for the VPS\'s addresses and, optionally, its key, never this host\'s address; refuses a private key in place', async () => {
    const priv = privateKeyNoPoint();
    const pub = somePublicKey();
    const r = await run(empty(), [
      ['Mail domain', 'example.org'],
      ['Mail host name', ''],
      ['How does mail reach', 'own-vps'],
      ['Public IPv4 address of your VPS', '203.0.113.5'],
      ['Public IPv6 address of your VPS', 'none'],
      ['WireGuard public key', priv],
      ['WireGuard public key', pub],
      ...oneDomain.slice(5),
    ]);
    expect(r.asked.some((a) => /address of this host|of your router/.test(a.message))).toBe(false);
    const keyAsk = r.asked.filter((a) => a.message.includes('WireGuard public key'));
    expect(keyAsk[0]!.why).toMatch(/vps\/setup\.sh there makes the VPS's own key/);
    // The private key is refused in place, with the reason, and never shown back.
    const rejected = keyAsk.flatMap((a) => a.rejected);
    expect(rejected).toHaveLength(1);
    expect(rejected[0]).toMatch(/the key given is not a WireGuard public key \(not a point a public key can be: most likely the private key/);
    expect(rejected[0]).not.toContain(priv);
    expect(r.config).toMatchObject({ ingress: 'own-vps', ipv4: '203.0.113.5', listenIpv4: '10.77.77.2', vpsWgKey: pub });
    expect(r.io.out.join('\n')).toMatch(/Mail arrives\s+through your VPS over WireGuard \(it forwards packets only\)/);
  });

  it('suggests a public address found on this machine (never a web service)', async () => {
    // Only a string in a fake interface list: nothing is contacted.
    const pub = '93.184.216.34';
    const interfaces = (): Interfaces => ({
      eth0: [{ address: pub, netmask: '255.255.255.0', family: 'IPv4', mac: '02:00:00:00:00:01', internal: false, cidr: `${pub}/24` }],
    });
    const steps = oneDomain.map((s): Step => (s[0] === 'Public IPv4' ? ['Public IPv4', ''] : s));
    const r = await run(empty(), steps, { interfaces });
    expect(r.config.ipv4).toBe(pub);
    expect(r.asked.find((a) => a.message.includes('Public IPv4'))?.why).toContain(`Found on this machine: ${pub}`);
  });

  it('an invalid answer is refused in place with the schema\'s message, then the fixed one is taken', async () => {
    const steps: Step[] = [
      ['Mail domain', 'exa_mple.org'],
      ['Mail domain', 'me.duckdns.org'],
      ['Mail domain', 'example.org'],
      ['Mail host name', 'mail.example.net'],
      ['Mail host name', 'mx.example.org'],
      ['How does mail reach', 'direct'],
      ['Public IPv4', '10.1.2.3'],
      ['Public IPv4', '198.51.100.25'],
      ['Public IPv6', 'none'],
      ...oneDomain.slice(5, 8),
      ['Mailboxes', 'alice@example.com'],
      ['Mailboxes', 'alice@example.org'],
      ['Password for alice', 'short'],
      ['Password for alice', PW],
      ['same password again', `${PW}!`],
      ['Password for alice', PW],
      ['same password again', PW],
      ['Admin address', ''],
      ['SSH', '203.0.113.0/33'],
      ['SSH', '203.0.113.0/24'],
      ['spam blocklists', ''],
      ['Daily encrypted backups', ''],
      ['Write the bundle', ''],
    ];
    const r = await run(empty(), steps);
    const rejected = (m: string) => r.asked.filter((a) => a.message.includes(m)).flatMap((a) => a.rejected);
    const [, , ...domainErrors] = rejected('Mail domain');
    expect(domainErrors).toEqual([]);
    expect(rejected('Mail domain')[0]).toBe('"exa_mple.org" has a label "exa_mple" with characters other than letters, digits and hyphens');
    expect(rejected('Mail domain')[1]).toMatch(/^refused \(Principle 4 \(own the DNS\)\): me\.duckdns\.org lies under duckdns\.org/);
    expect(rejected('Mail host name')).toEqual([
      'mail.example.net is not inside any of the mail domains (example.org); its A, AAAA and TLSA records must be in a zone you publish',
    ]);
    const v4 = parsePublicIPv4('10.1.2.3');
    expect(v4.ok).toBe(false);
    expect(rejected('Public IPv4')).toEqual([`"10.1.2.3" ${v4.ok ? '' : v4.error}`]);
    expect(rejected('Mailboxes')).toEqual(['alice@example.com is not in one of the mail domains (example.org)']);
    expect(rejected('Password for alice')[0]).toContain(`at least ${MIN_PASSWORD_LENGTH}`);
    expect(rejected('SSH')[0]).toContain('prefix length of 33');
    // The mismatch was asked again, and the review only saw the final answers.
    expect(r.io.err).toContain('The two passwords differ; type them again.');
    expect(r.config).toMatchObject({ domains: ['example.org'], hostname: 'mx.example.org', ipv4: '198.51.100.25', adminSshFrom: ['203.0.113.0/24'] });
    expect(r.passwords.get('alice@example.org')).toBe(PW);
  });

  it('shows UPnP and third-party tunnels as disabled choices with a reason; a VPS of one\'s own is a choice', async () => {
    const prompter = scripted([
      ['Mail domain', 'example.org'],
      ['Mail host name', ''],
      ['How does mail reach', 'upnp'],
    ]);
    await expect(wizard(empty(), new Map(), fakeIo(), { prompter, interfaces: NO_INTERFACES })).rejects.toThrow(/choice upnp is disabled/);
    const select = prompter.asked.find((a) => a.kind === 'select');
    const choice = (v: string) => select?.choices?.find((c) => c.value === v);
    expect(choice('direct')?.disabled).toBeUndefined();
    expect(choice('port-forward')?.disabled).toBeUndefined();
    expect(choice('own-vps')?.disabled).toBeUndefined();
    expect(choice('upnp')?.disabled).toBe('refused, Principle 3 (no UPnP): any infected machine could open router ports the same way');
    expect(choice('tunnel')?.disabled).toBe('refused, Principle 2 (nobody else\'s tunnel): its operator sees every sender, recipient and time');
    expect(select?.default).toBe('direct');
  });

  it('asks no outside blocklist by default, says who would learn what, and takes only the ones it knows', async () => {
    const base = oneDomain.filter(([m]) => m !== 'spam blocklists' && m !== 'Daily encrypted backups' && m !== 'Write the bundle');
    const none = await run(empty(), oneDomain);
    const q = none.asked.find((a) => a.message.includes('spam blocklists'))!;
    expect(q.default).toBe('none');
    expect(q.why).toMatch(/None by default/);
    expect(q.why).toMatch(/spamhaus: The Spamhaus Project .* learns the address of every server that sends you mail/);
    expect(none.config.spamLookups).toEqual([]);
    expect(none.io.out.join('\n')).toMatch(/Spam blocklists\s+none: local checks only/);
    const some = await run(empty(), [...base, ['spam blocklists', 'dnsbl.example.com'], ['spam blocklists', 'spamhaus surbl'], ['Daily encrypted backups', ''], ['Write the bundle', '']]);
    expect(some.asked.find((a) => a.message.includes('spam blocklists'))!.rejected[0]).toMatch(/dnsbl\.example\.com/);
    expect(some.config.spamLookups).toEqual(['spamhaus', 'surbl']);
    expect(some.io.out.join('\n')).toMatch(/Spam blocklists\s+spamhaus, surbl \(asked about every message/);
  });

  describe('daily backups', () => {
    const RECIPIENT = 'age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p';
    const IDENTITY = 'AGE-SECRET-KEY-1QYQSZQGPQYQSZQGPQYQSZQGPQYQSZQGPQYQSZQGPQYQSZQGPQYQSYTKGAH';
    /** An ed25519 host public key as ssh_host_ed25519_key.pub holds it. */
    const blob = (() => {
      const part = (b: Buffer) => Buffer.concat([Buffer.from([0, 0, 0, b.length]), b]);
      return Buffer.concat([part(Buffer.from('ssh-ed25519')), part(Buffer.alloc(32, 7))]).toString('base64');
    })();
    const HOST_KEY = `ssh-ed25519 ${blob}`;
    const beforeBackup = oneDomain.filter(([m]) => m !== 'Daily encrypted backups' && m !== 'Write the bundle');

    it('no answer: no daily backup, and the question says why it is asked', async () => {
      const r = await run(empty(), oneDomain);
      const q = r.asked.find((a) => a.message.includes('Daily encrypted backups'))!;
      expect(q.default).toBe('none');
      expect(q.why).toMatch(/key made on your own device, so neither this host nor the backup machine can read them/);
      expect(q.why).toMatch(/sftp:\/\/USER@HOST\/PATH/);
      expect(r.config.backup).toBeUndefined();
      expect(r.asked.map((a) => a.message).join('\n')).not.toMatch(/age public key|host key/);
      expect(r.io.out.join('\n')).toMatch(/Daily backup\s+none/);
    });

    it('a folder and a recipient: the config has them, and no host key is asked', async () => {
      const r = await run(empty(), [
        ...beforeBackup,
        ['Daily encrypted backups', 'ftp://nas/backup'],
        ['Daily encrypted backups', '/mnt/backup/'],
        ['age public key', `Public key: ${RECIPIENT}`],
        ['Write the bundle', ''],
      ]);
      expect(r.asked.find((a) => a.message.includes('Daily encrypted backups'))!.rejected[0]).toMatch(/ftp:\/\/ is not one of them/);
      expect(r.config.backup).toEqual({ to: { kind: 'dir', path: '/mnt/backup' }, recipients: [RECIPIENT] });
      const q = r.asked.find((a) => a.message.includes('age public key'))!;
      expect(q.why).toMatch(/age-keygen -o key\.txt/);
      expect(q.why).toMatch(/Never the AGE-SECRET-KEY line/);
      expect(r.asked.map((a) => a.message).join('\n')).not.toMatch(/host key/);
      expect(r.io.out.join('\n')).toMatch(/Daily backup\s+to \/mnt\/backup, encrypted to 1 age public key$/m);
    });

    it('an sftp:// target asks for the backup machine\'s host key and says how to set that machine up', async () => {
      const r = await run(empty(), [
        ...beforeBackup,
        ['Daily encrypted backups', 'sftp://selfmail-backup@nas.home.arpa/backup'],
        ['age public key', RECIPIENT],
        ['SSH host key of nas.home.arpa', ''],
        ['SSH host key of nas.home.arpa', `${HOST_KEY} root@nas`],
        ['Write the bundle', ''],
      ]);
      const q = r.asked.find((a) => a.message.includes('SSH host key'))!;
      expect(q.rejected[0]).toMatch(/is required with an sftp:\/\/ target/);
      expect(q.why).toContain('cat /etc/ssh/ssh_host_ed25519_key.pub');
      expect(q.why).toMatch(/nothing is learnt on first use/);
      expect(q.why).toContain('selfmail backup --remote-setup --to sftp://selfmail-backup@nas.home.arpa/backup');
      expect(r.config.backup).toEqual({
        to: { kind: 'sftp', user: 'selfmail-backup', host: 'nas.home.arpa', port: 22, path: '/backup' },
        recipients: [RECIPIENT],
        hostKey: HOST_KEY,
      });
      expect(r.io.out.join('\n')).toMatch(/Daily backup\s+to sftp:\/\/selfmail-backup@nas\.home\.arpa\/backup, encrypted to 1 age public key/);
    });

    it('a pasted AGE-SECRET-KEY is refused in place, never echoed, and the question asked again', async () => {
      const r = await run(empty(), [
        ...beforeBackup,
        ['Daily encrypted backups', '/mnt/backup'],
        ['age public key', IDENTITY],
        ['age public key', ''],
        ['age public key', RECIPIENT],
        ['Write the bundle', ''],
      ]);
      const q = r.asked.find((a) => a.message.includes('age public key'))!;
      expect(q.rejected).toHaveLength(2);
      expect(q.rejected[0]).toMatch(/this is an age identity \(a private key\), not a recipient: it must stay on your own device/);
      expect(q.rejected[1]).toMatch(/is required with --backup-to/);
      expect(r.config.backup?.recipients).toEqual([RECIPIENT]);
      const everything = [...q.rejected, ...r.io.out, ...r.io.err, JSON.stringify(r.input)].join('\n');
      expect(everything).not.toContain(IDENTITY);
      expect(everything).not.toMatch(/AGE-SECRET-KEY-1/);
    });

    it('a target and recipient given by flags are not asked; a missing host key is', async () => {
      const flags = sourced({ target: 'debian-12', backupTo: 'sftp://selfmail-backup@nas.home.arpa/backup', backupRecipients: [RECIPIENT] }, 'flag');
      const r = await run(flags, [...beforeBackup, ['SSH host key of nas.home.arpa', HOST_KEY], ['Write the bundle', '']]);
      expect(r.asked.map((a) => a.message).join('\n')).not.toMatch(/Daily encrypted backups|age public key/);
      expect(r.config.backup).toMatchObject({ recipients: [RECIPIENT], hostKey: HOST_KEY });
      expect(r.input.origins).toMatchObject({ backupTo: 'flag', backupRecipients: 'flag', backupHostKey: 'wizard' });
    });

    it('going back from an sftp:// target to a folder drops the host key; "none" turns backups off again', async () => {
      const r = await run(empty(), [
        ...beforeBackup,
        ['Daily encrypted backups', 'sftp://backup@192.0.2.7:2222/srv'],
        ['age public key', RECIPIENT],
        ['SSH host key of 192.0.2.7', HOST_KEY],
        ['Write the bundle', false],
        ...beforeBackup.filter(([m]) => !m.includes('assword')).map(([m]): Step => [m, '']),
        ['Daily encrypted backups', '/mnt/disk'],
        ['age public key', ''],
        ['Write the bundle', false],
        ...beforeBackup.filter(([m]) => !m.includes('assword')).map(([m]): Step => [m, '']),
        ['Daily encrypted backups', 'none'],
        ['Write the bundle', ''],
      ]);
      const asked = r.asked.filter((a) => a.message.includes('Daily encrypted backups')).map((a) => a.default);
      expect(asked).toEqual(['none', 'sftp://backup@192.0.2.7:2222/srv', '/mnt/disk']);
      expect(r.asked.filter((a) => a.message.includes('age public key'))[1]!.default).toBe(RECIPIENT);
      expect(r.config.backup).toBeUndefined();
      expect(r.io.err).toEqual([]);
    });
  });

  it('does not ask again what flags or the config file gave', async () => {
    const file = sourced({ ipv4: '198.51.100.25', adminSshFrom: ['198.51.100.0/24'], spamLookups: ['surbl'] }, 'file', 'setup.yaml');
    const flags = sourced({ domains: ['example.org'], users: ['alice@example.org', 'bob@example.org'], dnssec: false, target: 'debian-12' }, 'flag');
    const r = await run(
      overlay(file, flags),
      [
        ['Mail host name', ''],
        ['How does mail reach', ''],
        ['Public IPv6', ''],
        ['name server on this host', ''],
        ['Secondary name servers', ''],
        ['Password for bob', PW],
        ['same password again', PW],
        ['Admin address', ''],
        ['Daily encrypted backups', ''],
        ['Write the bundle', ''],
      ],
      { passwords: new Map([['Alice@example.org', 'from the password file']]) },
    );
    const messages = r.asked.map((a) => a.message).join('\n');
    expect(messages).not.toMatch(/Mail domain|Public IPv4|DNSSEC|Mailboxes|SSH|Password for alice|blocklists/);
    expect(r.config).toMatchObject({ domains: ['example.org'], ipv4: '198.51.100.25', dnssec: false, adminSshFrom: ['198.51.100.0/24'], spamLookups: ['surbl'] });
    expect(r.input.origins).toMatchObject({ domains: 'flag', users: 'flag', ipv4: 'file', adminSshFrom: 'file', hostname: 'wizard' });
    expect([...r.passwords.keys()].sort()).toEqual(['Alice@example.org', 'bob@example.org']);
  });

  it('offers to keep the stored password of a mailbox given by flag when the bundle holds its hash', async () => {
    const file = sourced({ ipv4: '198.51.100.25', adminSshFrom: [] }, 'file', 'setup.yaml');
    const flags = sourced({ domains: ['example.org'], users: ['alice@example.org', 'bob@example.org'], dnssec: true, target: 'debian-12' }, 'flag');
    const r = await run(
      overlay(file, flags),
      [
        ['Mail host name', ''],
        ['How does mail reach', ''],
        ['Public IPv6', ''],
        ['name server on this host', ''],
        ['Secondary name servers', ''],
        ['Keep the current password of alice@example.org', ''],
        ['Password for bob', PW],
        ['same password again', PW],
        ['Admin address', ''],
        ['spam blocklists', ''],
        ['Daily encrypted backups', ''],
        ['Write the bundle', ''],
      ],
      { hashed: new Set(['alice@example.org']) },
    );
    expect([...r.passwords.keys()]).toEqual(['bob@example.org']);
  });

  it('asks for a given value the schema rejects, saying why', async () => {
    const flags = sourced({ domains: ['example.org'], ipv4: '192.168.1.1', target: 'debian-12' }, 'flag');
    const r = await run(flags, oneDomain.slice(1));
    expect(r.io.err[0]).toMatch(/^--ipv4: "192\.168\.1\.1" is a private address/);
    expect(r.config.ipv4).toBe('198.51.100.25');
  });

  it('pre-fills the defaults with the previous bundle\'s values; accepting them changes nothing', async () => {
    const previous: RawInput = {
      domains: ['example.org', 'example.net'],
      hostname: 'mx.example.net',
      ipv4: '198.51.100.25',
      ingress: 'port-forward',
      listenIpv4: '10.0.0.25',
      ns: ['ns1.example.org', 'ns2.example.net=203.0.113.53'],
      admin: 'ops@example.net',
      users: ['ops@example.net', 'alice@example.org'],
      adminSshFrom: ['203.0.113.0/24'],
      acmeCa: 'letsencrypt.org',
      dnssec: false,
      target: 'debian-12',
    };
    const input = sourced(previous, 'bundle');
    const r = await run(input, [
      ['Mail domain', ''],
      ['Mail host name', ''],
      ['How does mail reach', ''],
      ['Public IPv4', ''],
      ['Public IPv6', ''],
      ['LAN address', ''],
      ['name server on this host', ''],
      ['Secondary name servers', ''],
      ['DNSSEC', ''],
      ['Mailboxes', ''],
      ['Keep the current password of ops@example.net', ''],
      ['Keep the current password of alice@example.org', false],
      ['Password for alice', PW],
      ['same password again', PW],
      ['Admin address', ''],
      ['SSH', ''],
      ['spam blocklists', ''],
      ['Daily encrypted backups', ''],
      ['Write the bundle', ''],
    ]);
    const dflt = (m: string) => r.asked.find((a) => a.message.includes(m))?.default;
    expect(dflt('Mail domain')).toBe('example.org example.net');
    expect(dflt('Mail host name')).toBe('mx.example.net');
    expect(dflt('How does mail reach')).toBe('port-forward');
    expect(dflt('LAN address')).toBe('10.0.0.25');
    expect(dflt('Secondary')).toBe('ns2.example.net=203.0.113.53');
    expect(dflt('DNSSEC')).toBe(false);
    expect(dflt('Admin')).toBe('ops@example.net');
    expect(dflt('SSH')).toBe('203.0.113.0/24');
    expect(r.config).toEqual(resolveConfig(input).config);
    expect(r.passwords).toEqual(new Map([['alice@example.org', PW]]));
    expect(r.io.out.join('\n')).toMatch(/ops@example\.net \(password kept\), alice@example\.org \(new password\)/);
  });

  it('saying no at the review goes through the questions again with the answers as defaults', async () => {
    const r = await run(empty(), [
      ...oneDomain.slice(0, -1),
      ['Write the bundle', false],
      ['Mail domain', ''],
      ['Mail host name', 'mx.example.org'],
      ['How does mail reach', ''],
      ['Public IPv4', ''],
      ['Public IPv6', ''],
      ['name server on this host', ''],
      ['Secondary name servers', ''],
      ['DNSSEC', ''],
      ['Mailboxes', ''],
      ['Admin address', ''],
      ['SSH', ''],
      ['spam blocklists', ''],
      ['Daily encrypted backups', ''],
      ['Write the bundle', ''],
    ]);
    expect(r.config).toMatchObject({ domains: ['example.org'], hostname: 'mx.example.org', ipv4: '198.51.100.25', users: ['alice@example.org'] });
    // The password typed in the first pass is kept, not asked twice.
    expect(r.asked.filter((a) => a.kind === 'password')).toHaveLength(2);
  });

  it('Ctrl-C at any prompt is InterruptedError (exit 130)', async () => {
    const ctrlC = Object.assign(new Error('User force closed the prompt with SIGINT'), { name: 'ExitPromptError' });
    for (const at of [0, 3, 9]) {
      const steps: Step[] = [...oneDomain.slice(0, at), [oneDomain[at]![0], ctrlC]];
      const err = await wizard(empty(), new Map(), fakeIo(), { prompter: scripted(steps), interfaces: NO_INTERFACES }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(InterruptedError);
      expect((err as InterruptedError).exitCode).toBe(130);
    }
    // Other errors are not mistaken for Ctrl-C.
    const boom = scripted([['Mail domain', new Error('terminal gone')]]);
    await expect(wizard(empty(), new Map(), fakeIo(), { prompter: boom, interfaces: NO_INTERFACES })).rejects.toThrow('terminal gone');
  });

  it('a refused flag is refused before any question', async () => {
    const prompter = scripted([]);
    const flags = sourced({ domains: ['example.org'], ingress: 'upnp' }, 'flag');
    await expect(wizard(flags, new Map(), fakeIo(), { prompter, interfaces: NO_INTERFACES })).rejects.toBeInstanceOf(RefusalError);
    expect(prompter.asked).toEqual([]);
  });
});
