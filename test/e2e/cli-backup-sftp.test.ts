/**
 * Backups onto a machine of the user's over SFTP, through the built bin: a bundle made by init
 * with --backup-to sftp://…, --backup-recipient and --backup-host-key; `backup --remote-setup`
 * makes the host's own key and prints what the backup machine needs, which this machine's own
 * sshd is then given (Debian's sshd_config, the printed drop-in, a user locked into one folder:
 * test/helpers/backup-machine.ts). Then: a backup with the bundle's own settings (as the daily
 * timer runs it) leaves only age files there, private to that user; a re-run after one message
 * sends one object; a wrong host key, a key the machine does not take, an unreachable machine and
 * a full disk each fail with exit 4 and a sentence, the earlier backups intact; the owner's drill
 * reads it over SFTP with their own SSH key; bad input changes nothing.
 */
import { generateKeyPairSync } from 'node:crypto';
import { mkdir, mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePorts } from '../../src/bundle/ports.js';
import { run } from '../../src/tools/run.js';
import { type BackupMachine, type RemoteSetup, startBackupMachine } from '../helpers/backup-machine.js';
import { type CliResult, runCli, treeState } from '../helpers/cli.js';

let work: string;
let bundle: string;
let root: string;
let machine: BackupMachine;
let setup: RemoteSetup;
let url: string;
let identity: string;
let recipient: string;
const USER = 'selfmail-backup';
const MAILDIR = 'var/vmail/example.org/alice/Maildir';
const message = (n: number, body = `the body of message ${n}`) => `From: Bob <bob@example.net>\r\nTo: alice@example.org\r\nSubject: message ${n}\r\n\r\n${body}\r\n`;

/** Every file under dir (relative path → bytes and mode). */
async function filesOf(dir: string): Promise<Map<string, { data: Buffer; mode: number }>> {
  const out = new Map<string, { data: Buffer; mode: number }>();
  for (const e of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (!e.isFile()) continue;
    const p = join(e.parentPath, e.name);
    out.set(p.slice(dir.length + 1), { data: await readFile(p), mode: (await stat(p)).mode & 0o777 });
  }
  return out;
}

const backupArgs = (...extra: string[]) => ['backup', '--bundle', bundle, '--root', root, '--json', ...extra];

/** The CLI as the owner runs it on their device: their own ~/.ssh (a tmpfs over /root in a mount namespace of its own). */
function asOwner(args: string[], sshDir: string): Promise<CliResult> {
  const script = `mount -t tmpfs -o mode=0700 tmpfs /root && cp -r ${sshDir} /root/.ssh && chmod -R go-rwx /root/.ssh && exec "$0" "$@"`;
  return runCli(args, { via: ['unshare', '--mount', '--propagation', 'private', 'sh', '-c', script] });
}

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'selfmail-backup-sftp-'));
  bundle = join(work, 'bundle');
  root = join(work, 'root');
  const [port] = await freePorts('127.0.0.1', 1);
  machine = await startBackupMachine({ address: '127.0.0.1', port: port! });
  url = `sftp://${USER}@127.0.0.1:${port}/backup`;
  const keygen = await run('age-keygen', ['-o', join(work, 'device.key')]);
  identity = join(work, 'device.key');
  recipient = /Public key: (age1\S+)/.exec(keygen.stderr + keygen.stdout)![1]!;
  for (const d of ['cur', 'new', 'tmp']) await mkdir(join(root, MAILDIR, d), { recursive: true });
  for (let n = 0; n < 20; n++) await writeFile(join(root, MAILDIR, 'cur', `17000000${n}.M1P1.mail:2,S`), message(n));
  const pw = join(work, 'pw');
  await writeFile(pw, 'alice@example.org:alice has a long password\n', { mode: 0o600 });
  const r = await runCli(['init', '--non-interactive', '--out', bundle, '--domain', 'example.org', '--ipv4', '192.0.2.25', '--user', 'alice@example.org', '--password-file', pw, '--target', 'debian-12', '--backup-to', url, '--backup-recipient', recipient, '--backup-host-key', machine.hostKeyLine]);
  expect(r.code, r.stderr).toBe(0);
}, 120_000);

afterAll(async () => {
  await machine?.stop();
  await rm(work, { recursive: true, force: true });
});

describe('backup to a machine of yours over SFTP', () => {
  it('refuses bad input with exit 2, naming the flag, and changes nothing', async () => {
    const before = { bundle: await treeState(bundle), root: await treeState(root) };
    const { privateKey } = generateKeyPairSync('ed25519');
    const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    const initWith = (...flags: string[]) => ['init', '--non-interactive', '--out', bundle, ...flags];
    const cases: [string[], RegExp][] = [
      [initWith('--backup-to', 'sftp://nas.example/backup'), /--backup-to: "sftp:\/\/nas\.example\/backup" is not sftp:\/\/USER@HOST/],
      [initWith('--backup-to', 'backups/here'), /--backup-to: "backups\/here": a backup folder must be an absolute path/],
      [initWith('--backup-host-key', 'ssh-ed25519 AAAAnotakey'), /--backup-host-key: "ssh-ed25519 AAAAnotakey": the key's bytes do not hold a whole ssh-ed25519 key/],
      [initWith(`--backup-host-key=${pem}`), /--backup-host-key: this is a private key/],
      [initWith('--backup-to', '/srv/disk', '--backup-host-key', machine.hostKeyLine), /--backup-host-key: is only for an sftp:\/\/ target/],
      [initWith('--backup-to', `sftp://${USER}@127.0.0.1/../etc`), /--backup-to: .*no \. or \.\. part/],
      [backupArgs('--to', url, '--recipient', recipient, `--host-key=${pem}`), /--host-key: this is a private key/],
      [backupArgs('--to', 'sftp://root@[fe80::zz]/backup', '--recipient', recipient), /--to: "\[fe80::zz\]" is not an IPv6 address/],
    ];
    for (const [argv, msg] of cases) {
      const r = await runCli(argv);
      expect(r.code, `${argv.join(' ')}\n${r.stderr}`).toBe(2);
      expect(r.stderr).toMatch(msg);
      expect(r.stderr).not.toContain('BEGIN PRIVATE KEY');
    }
    expect({ bundle: await treeState(bundle), root: await treeState(root) }).toEqual(before);
    // No backup key was made for any of them.
    await expect(stat(join(root, 'var/lib/selfmail'))).rejects.toThrow();
  });

  it('--remote-setup makes this host\'s key (0600 in 0700) and says what the backup machine needs; set up so, it takes only that', async () => {
    const r = await runCli(['backup', '--remote-setup', '--bundle', bundle, '--root', root, '--json']);
    expect(r.code, r.stderr).toBe(0);
    setup = JSON.parse(r.stdout) as RemoteSetup & { publicKey: string; made: boolean };
    const s = setup as RemoteSetup & { publicKey: string; made: boolean };
    expect(s.made).toBe(true);
    expect(s.publicKey).toMatch(/^ssh-ed25519 AAAA\S+ selfmail-backup@/);
    expect(s.keysLine).toBe(`restrict ${s.publicKey}`);
    expect(s.sshdConfig).toMatch(new RegExp(`^Match User ${USER}\\n {4}ChrootDirectory /srv/selfmail-backup\\n {4}ForceCommand internal-sftp -d /backup -u 0077$`, 'm'));
    const dir = join(root, 'var/lib/selfmail/backup');
    expect((await stat(dir)).mode & 0o777).toBe(0o700);
    expect((await stat(join(dir, 'ssh'))).mode & 0o777).toBe(0o700);
    expect((await stat(join(dir, 'ssh/id_ed25519'))).mode & 0o777).toBe(0o600);
    // A second call keeps the key.
    const again = JSON.parse((await runCli(['backup', '--remote-setup', '--bundle', bundle, '--root', root, '--json'])).stdout) as { publicKey: string; made: boolean };
    expect(again).toMatchObject({ publicKey: s.publicKey, made: false });
    await machine.setUp(USER, setup);
    // The machine's sshd takes the printed lines (sshd -t passed in setUp); the user is locked in its folder.
    const ls = await run('sftp', ['-b', '-', '-o', 'BatchMode=yes', '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'IdentitiesOnly=yes', '-i', join(dir, 'ssh/id_ed25519'), '-P', String(machine.port), `${USER}@127.0.0.1`], { input: 'pwd\ncd /\nls -1a\n', okCodes: [0, 1] });
    expect(ls.stdout).toMatch(/Remote working directory: \/backup/);
    expect(ls.stdout.split('\n').filter((l) => !l.startsWith('sftp>') && l.trim()).map((l) => l.trim().replace(/^\.?\//, ''))).toEqual(expect.arrayContaining(['backup']));
    expect(ls.stdout).not.toMatch(/\betc\b|\busr\b/);
    // A shell is refused: SFTP only.
    const shell = await run('ssh', ['-o', 'BatchMode=yes', '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'IdentitiesOnly=yes', '-i', join(dir, 'ssh/id_ed25519'), '-p', String(machine.port), `${USER}@127.0.0.1`, 'cat /etc/passwd'], { input: '', okCodes: [0, 1, 255] });
    expect(shell.stdout).not.toMatch(/root:x:0:0/);
  });

  it('backs up with the bundle\'s own settings (as the daily timer does): only age files there, private to that user', async () => {
    const r = await runCli(backupArgs());
    expect(r.code, r.stderr).toBe(0);
    const res = JSON.parse(r.stdout) as { target: string; files: number; added: number; sources: { name: string; files: number }[] };
    expect(res.target).toBe(url);
    expect(res.sources.find((s) => s.name === 'mail')!.files).toBe(20);
    expect(res.added).toBe(res.files);
    const files = await filesOf(machine.folder('/backup'));
    expect(files.get('FORMAT')?.data.toString()).toBe('selfmail-backup 1\n');
    expect(files.size).toBeGreaterThan(20);
    for (const [path, { data, mode }] of files) {
      expect(mode, path).toBe(0o600);
      if (path === 'FORMAT') continue;
      expect(path).toMatch(/^(objects\/[0-9a-f]{2}\/[0-9a-f]{64}|snapshots\/\d{8}T\d{6}Z)\.age$/);
      expect(data.subarray(0, 21).toString(), path).toBe('age-encryption.org/v1');
      for (const secret of ['PRIVATE KEY', '{ARGON2ID}', 'the body of message', 'alice']) expect(data.toString('latin1'), `${path} holds ${secret}`).not.toContain(secret);
    }
    const list = await runCli(['backup', '--list', '--bundle', bundle, '--root', root, '--json']);
    expect(list.code, list.stderr).toBe(0);
    expect((JSON.parse(list.stdout) as { snapshots: unknown[] }).snapshots).toHaveLength(1);
  });

  it('sends only what changed: after one new message, one object', async () => {
    const first = await filesOf(machine.folder('/backup'));
    await writeFile(join(root, MAILDIR, 'new', '1700000999.M1P1.mail'), message(999));
    const r = await runCli(backupArgs());
    expect(r.code, r.stderr).toBe(0);
    const res = JSON.parse(r.stdout) as { added: number; addedBytes: number };
    expect(res).toMatchObject({ added: 1, addedBytes: message(999).length });
    const second = await filesOf(machine.folder('/backup'));
    expect([...second.keys()].filter((k) => !first.has(k))).toHaveLength(2); // the object and the snapshot
  });

  it('fails with exit 4 and a sentence, sending nothing, for a wrong host key, a key the machine does not take, or no machine at all', async () => {
    const before = await filesOf(machine.folder('/backup'));
    const other = (await run('ssh-keygen', ['-y', '-f', join(root, 'var/lib/selfmail/backup/ssh/id_ed25519')])).stdout.trim();
    const [closed] = await freePorts('127.0.0.1', 1, new Set([machine.port]));
    const stranger = join(work, 'stranger-root');
    await mkdir(stranger);
    const cases: [string[], RegExp][] = [
      [backupArgs('--host-key', other), /127\.0\.0\.1 port \d+ did not show the host key given for it .*nothing was sent/],
      [['backup', '--bundle', bundle, '--root', stranger], /refuses this host's backup key for selfmail-backup: set that machine up for it \(selfmail backup --remote-setup --to sftp:\/\/selfmail-backup@127\.0\.0\.1:\d+\/backup/],
      [backupArgs('--to', `sftp://${USER}@127.0.0.1:${closed}/backup`, '--recipient', recipient, '--host-key', machine.hostKeyLine), /cannot reach the backup machine 127\.0\.0\.1 port \d+: Connection refused/],
      [backupArgs('--to', `sftp://${USER}@127.0.0.1:${machine.port}/elsewhere`, '--recipient', recipient, '--host-key', machine.hostKeyLine), /the folder \/elsewhere does not exist on 127\.0\.0\.1/],
    ];
    for (const [argv, msg] of cases) {
      const r = await runCli(argv);
      expect(r.code, `${argv.join(' ')}\n${r.stdout}${r.stderr}`).toBe(4);
      expect(r.stderr).toMatch(msg);
    }
    expect(await filesOf(machine.folder('/backup'))).toEqual(before);
  });

  it('a backup disk that fills: exit 4, "full", nothing left half-written, the earlier snapshot still drills', async () => {
    await machine.exec(['install', '-d', '-m', '0700', '-o', USER, '-g', USER, '/srv/selfmail-backup/small']);
    // Room for the first backup (tmpfs counts a page per small file), not for a 2 MB message.
    await machine.mountSmall('/small', '1m');
    const small = `sftp://${USER}@127.0.0.1:${machine.port}/small`;
    const args = backupArgs('--to', small, '--recipient', recipient);
    const first = await runCli(args);
    expect(first.code, first.stderr).toBe(0);
    const kept = await filesOf(machine.folder('/small'));
    const big = join(root, MAILDIR, 'cur', '1700001000.M1P1.mail:2,S');
    await writeFile(big, message(1000, Buffer.alloc(2_000_000, 'x').toString()));
    try {
      const full = await runCli(args);
      expect(full.code, full.stdout + full.stderr).toBe(4);
      expect(full.stderr).toMatch(/the backup target is full while writing objects\/[0-9a-f]{2}\/[0-9a-f]{64}\.age; nothing of the earlier backups was touched, and this run wrote no snapshot/);
      const after = await filesOf(machine.folder('/small'));
      expect([...after.keys()].filter((k) => /tmp-/.test(k))).toEqual([]);
      for (const [k, v] of kept) expect(after.get(k), k).toEqual(v);
      expect([...after.keys()].filter((k) => k.startsWith('snapshots/'))).toEqual([...kept.keys()].filter((k) => k.startsWith('snapshots/')));
    } finally {
      await rm(big);
    }
    const drill = await runCli(['restore', '--from', machine.folder('/small'), '--identity', identity, '--drill', '--json']);
    expect(drill.code, drill.stdout + drill.stderr).toBe(0);
  });

  it('the owner drills it over SFTP with their own SSH key and known_hosts; another identity opens nothing', async () => {
    const ssh = join(work, 'owner-ssh');
    await mkdir(ssh, { mode: 0o700 });
    await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'owner@device', '-f', join(ssh, 'id_ed25519')]);
    await writeFile(join(ssh, 'known_hosts'), `[127.0.0.1]:${machine.port} ${machine.hostKeyLine}\n`);
    await machine.addKey(setup, `restrict ${(await readFile(join(ssh, 'id_ed25519.pub'), 'utf8')).trim()}`);
    const drill = await asOwner(['restore', '--from', url, '--identity', identity, '--drill', '--json'], ssh);
    expect(drill.code, drill.stdout + drill.stderr).toBe(0);
    const res = JSON.parse(drill.stdout) as { files: number; checks: { id: string; ok: boolean }[] };
    expect(res.checks.map((c) => `${c.id} ${c.ok}`)).toEqual(['files true', 'manifest true', 'dkim true', 'dnssec true', 'tlsa true']);
    expect(res.files).toBeGreaterThan(20);
    const other = join(work, 'other.key');
    await run('age-keygen', ['-o', other]);
    const wrong = await asOwner(['restore', '--from', url, '--identity', other, '--drill'], ssh);
    expect(wrong.code, wrong.stderr).toBe(2);
    expect(wrong.stderr).toMatch(/--identity: .* does not open this backup/);
    // Without that machine in their known_hosts, nothing is read.
    await writeFile(join(ssh, 'known_hosts'), '');
    const unknown = await asOwner(['restore', '--from', url, '--identity', identity, '--drill'], ssh);
    expect(unknown.code).toBe(4);
    expect(unknown.stderr).toMatch(/is not in your known_hosts, or its host key changed: nothing was read/);
  });
});
