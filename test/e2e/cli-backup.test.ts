/**
 * `selfmail backup` and `selfmail restore` through the built bin, on a bundle made by init and a
 * mail root of messages (under --root): the target holds only age files, which Debian's own `age`
 * opens with the user's identity (made by age-keygen, as on the user's device); a drill with the
 * right identity passes, another identity opens nothing; a second run after one new message sends
 * that message only; a full target fails clearly and leaves the earlier backup whole; a restore
 * lands every file at its path and never overwrites; bad input changes nothing.
 */
import { execFileSync } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readFile, readdir, readlink, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run } from '../../src/tools/run.js';
import { runCli, treeState } from '../helpers/cli.js';

let work: string;
let bundle: string;
let root: string;
let target: string;
let identity: string;
let recipient: string;
let otherIdentity: string;
const mounts: string[] = [];
const MAILDIR = 'var/vmail/example.org/alice/Maildir';
const BODY = 'the body of message';

const message = (n: number, extra = '') => `From: Bob <bob@example.net>\r\nTo: alice@example.org\r\nSubject: message ${n}\r\nMessage-ID: <m${n}@example.net>\r\n\r\n${BODY} ${n}${extra}\r\n`;

/** Every file under dir (relative path → bytes). */
async function filesOf(dir: string): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>();
  for (const e of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (e.isFile()) out.set(join(e.parentPath, e.name).slice(dir.length + 1), await readFile(join(e.parentPath, e.name)));
  }
  return out;
}

async function keygen(name: string): Promise<{ file: string; recipient: string }> {
  const file = join(work, name);
  const r = await run('age-keygen', ['-o', file]);
  return { file, recipient: /Public key: (age1\S+)/.exec(r.stderr + r.stdout)![1]! };
}

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'selfmail-backup-'));
  bundle = join(work, 'bundle');
  root = join(work, 'root');
  target = join(work, 'target');
  await mkdir(target);
  const pw = join(work, 'pw');
  await writeFile(pw, 'alice@example.org:alice has a long password\n', { mode: 0o600 });
  const r = await runCli(['init', '--non-interactive', '--out', bundle, '--domain', 'example.org', '--ipv4', '192.0.2.25', '--user', 'alice@example.org', '--password-file', pw, '--admin-ssh-from', '198.51.100.0/24', '--target', 'debian-12']);
  expect(r.code, r.stderr).toBe(0);
  for (const d of ['cur', 'new', 'tmp']) await mkdir(join(root, MAILDIR, d), { recursive: true });
  for (let n = 0; n < 40; n++) await writeFile(join(root, MAILDIR, 'cur', `17000000${n}.M1P1.mail:2,S`), message(n));
  // A link, as Sieve setups keep one (it is restored as a link, after every file).
  await symlink('Maildir/cur', join(root, 'var/vmail/example.org/alice/current'));
  await mkdir(join(root, 'var/lib/dovecot'), { recursive: true });
  await writeFile(join(root, 'var/lib/dovecot/instances'), 'state of dovecot\n');
  const mine = await keygen('my-device.key');
  identity = mine.file;
  recipient = mine.recipient;
  otherIdentity = (await keygen('another-device.key')).file;
});

afterAll(async () => {
  for (const m of mounts.reverse()) await run('umount', [m], { okCodes: [0, 32] }).catch(() => undefined);
  await rm(work, { recursive: true, force: true });
});

const backupArgs = () => ['backup', '--bundle', bundle, '--to', target, '--recipient', recipient, '--root', root, '--json'];

describe('selfmail backup', () => {
  it('refuses bad input with exit 2, naming the flag, and writes nothing anywhere', async () => {
    const before = { bundle: await treeState(bundle), root: await treeState(root), target: await treeState(target) };
    const ro = join(work, 'read-only');
    await mkdir(ro);
    await run('mount', ['-t', 'tmpfs', '-o', 'ro,size=1m', 'tmpfs', ro]);
    mounts.push(ro);
    const secret = (await readFile(identity, 'utf8')).split('\n').find((l) => l.startsWith('AGE-SECRET-KEY-'))!;
    const cases: [string[], RegExp][] = [
      [['backup', '--bundle', bundle, '--to', target, '--recipient', 'age1notakey', '--root', root], /--recipient: "age1notakey" is not an age public key/],
      [['backup', '--bundle', bundle, '--to', target, '--recipient', secret, '--root', root], /--recipient: this is an age identity \(a private key\), not a recipient: it must stay on your own device/],
      [['backup', '--bundle', bundle, '--to', ro, '--recipient', recipient, '--root', root], /--to: .*read-only is not writable/],
      [['backup', '--bundle', bundle, '--to', join(work, 'no-such-disk'), '--recipient', recipient, '--root', root], /--to: .*no-such-disk is not a folder \(is the disk attached and mounted\?\)/],
      [['backup', '--bundle', bundle, '--to', 's3://bucket/mail', '--recipient', recipient, '--root', root], /--to: .*s3:\/\/ is not one of them/],
      [['backup', '--bundle', bundle, '--to', 'sftp://me@backup.example/srv', '--recipient', recipient, '--root', root], /--host-key: is required for sftp:\/\/me@backup\.example\/srv/],
      [['backup', '--bundle', bundle, '--to', join(root, 'var/lib/dovecot'), '--recipient', recipient, '--root', root], /--to: .*var\/lib\/dovecot holds other files and no selfmail backup/],
      [['backup', '--bundle', bundle, '--to', join(bundle, 'dns'), '--recipient', recipient, '--root', root], /--to: is inside the bundle: back up to another disk/],
      [['backup', '--bundle', bundle, '--to', target, '--root', root], /--recipient: is required/],
    ];
    for (const [argv, msg] of cases) {
      const r = await runCli(argv);
      expect(r.code, `${argv.join(' ')}\n${r.stderr}`).toBe(2);
      expect(r.stderr).toMatch(msg);
      expect(r.stdout + r.stderr).not.toContain(secret);
    }
    expect({ bundle: await treeState(bundle), root: await treeState(root), target: await treeState(target) }).toEqual(before);
    await expect(stat(join(root, 'var/lib/selfmail'))).rejects.toThrow();
  });

  it('writes only age files to the target: no key, password hash or message text readable there', async () => {
    const r = await runCli(backupArgs());
    expect(r.code, r.stderr).toBe(0);
    const res = JSON.parse(r.stdout) as { files: number; added: number; written: number; sources: { name: string; files: number }[] };
    expect(res.sources.map((s) => s.name)).toEqual(['bundle', 'mail', 'dovecot', 'selfmail']);
    expect(res.sources.find((s) => s.name === 'mail')!.files).toBe(40);
    expect(res.added).toBe(res.files);
    const files = await filesOf(target);
    expect(files.get('FORMAT')?.toString()).toBe('selfmail-backup 1\n');
    for (const [path, data] of files) {
      if (path === 'FORMAT') continue;
      expect(path).toMatch(/^(objects\/[0-9a-f]{2}\/[0-9a-f]{64}|snapshots\/\d{8}T\d{6}Z)\.age$/);
      expect(data.subarray(0, 21).toString(), path).toBe('age-encryption.org/v1');
      const text = data.toString('latin1');
      for (const secret of ['PRIVATE KEY', '{ARGON2ID}', BODY, 'example.org', 'alice']) expect(text, `${path} holds ${secret}`).not.toContain(secret);
    }
    // The host keeps its index key private: 0600 in a 0700 folder.
    expect((await stat(join(root, 'var/lib/selfmail/backup'))).mode & 0o777).toBe(0o700);
    expect((await stat(join(root, 'var/lib/selfmail/backup/index.key'))).mode & 0o777).toBe(0o600);
  });

  it('is opened by Debian\'s own age with the identity from the device: the snapshot lists the messages, an object is a message', async () => {
    const snap = (await readdir(join(target, 'snapshots')))[0]!;
    const doc = JSON.parse(execFileSync('age', ['-d', '-i', identity, join(target, 'snapshots', snap)]).toString()) as { entries: { source: string; rel: string; object?: string }[] };
    const entry = doc.entries.find((e) => e.source === 'mail' && e.rel.endsWith('170000007.M1P1.mail:2,S'))!;
    expect(entry.rel).toBe('example.org/alice/Maildir/cur/170000007.M1P1.mail:2,S');
    const bytes = execFileSync('age', ['-d', '-i', identity, join(target, 'objects', entry.object!.slice(0, 2), `${entry.object}.age`)]);
    expect(bytes.toString()).toBe(message(7));
    // Another device's identity opens nothing.
    expect(() => execFileSync('age', ['-d', '-i', otherIdentity, join(target, 'snapshots', snap)], { stdio: 'pipe' })).toThrow(/no identity matched/);
  });

  it('sends only what changed: after one new message, one object', async () => {
    const first = await filesOf(target);
    await writeFile(join(root, MAILDIR, 'new', '1700000999.M1P1.mail'), message(999));
    // A flag change is a rename in a Maildir: same bytes, nothing new to send.
    await run('mv', [join(root, MAILDIR, 'cur', '170000001.M1P1.mail:2,S'), join(root, MAILDIR, 'cur', '170000001.M1P1.mail:2,RS')]);
    const r = await runCli(backupArgs());
    expect(r.code, r.stderr).toBe(0);
    const res = JSON.parse(r.stdout) as { added: number; addedBytes: number; written: number };
    expect(res.added).toBe(1);
    expect(res.addedBytes).toBe(message(999).length);
    const second = await filesOf(target);
    const firstBytes = [...first.values()].reduce((n, b) => n + b.length, 0);
    expect(res.written).toBeLessThan(firstBytes / 4);
    expect([...second.keys()].filter((k) => !first.has(k))).toHaveLength(2); // the object and the snapshot
    const list = await runCli(['backup', '--list', '--to', target, '--json']);
    expect((JSON.parse(list.stdout) as { snapshots: unknown[] }).snapshots).toHaveLength(2);
  });
});

describe('selfmail restore', () => {
  it('drill: every file byte-identical, the manifest verifies, the keys are those the zones publish; nothing left behind', async () => {
    const before = new Set(await readdir(tmpdir()));
    const r = await runCli(['restore', '--from', target, '--identity', identity, '--drill', '--json']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const res = JSON.parse(r.stdout) as { ok: boolean; checks: { id: string; ok: boolean; detail: string }[] };
    expect(res.checks.map((c) => `${c.id} ${c.ok}`)).toEqual(['files true', 'manifest true', 'dkim true', 'dnssec true', 'tlsa true']);
    expect(res.checks[0]!.detail).toMatch(/each byte-identical/);
    expect([...(await readdir(tmpdir()))].filter((f) => !before.has(f) && f.startsWith('selfmail-drill-'))).toEqual([]);
  });

  it('drill fails (exit 5) when an object was altered on the target, naming the file', async () => {
    const snap = (await readdir(join(target, 'snapshots'))).sort().at(-1)!;
    const doc = JSON.parse(execFileSync('age', ['-d', '-i', identity, join(target, 'snapshots', snap)]).toString()) as { entries: { source: string; rel: string; object?: string }[] };
    const e = doc.entries.find((x) => x.rel.endsWith('170000003.M1P1.mail:2,S'))!;
    const path = join(target, 'objects', e.object!.slice(0, 2), `${e.object}.age`);
    const good = await readFile(path);
    try {
      // The target's owner swaps in another message encrypted to the same recipient: it decrypts, but is not what was backed up.
      await writeFile(path, execFileSync('age', ['-r', recipient], { input: message(3, ' (altered)') }));
      const r = await runCli(['restore', '--from', target, '--identity', identity, '--drill', '--json']);
      expect(r.code).toBe(5);
      expect((JSON.parse(r.stdout) as { checks: { id: string; detail: string }[] }).checks[0]!.detail).toMatch(/170000003\.M1P1\.mail:2,S: restored bytes differ/);
    } finally {
      await writeFile(path, good);
    }
  });

  it('drill fails each key check when the bundle publishes other keys than it holds (its manifest kept consistent)', async () => {
    // A bundle whose zone names another DKIM key and TLS pin, and whose DS file another KSK digest.
    const tampered = join(work, 'tampered-bundle');
    await run('cp', ['-a', bundle, tampered]);
    const zonePath = join(tampered, 'dns/example.org.zone');
    const zone = await readFile(zonePath, 'utf8');
    const ed = /_domainkey IN TXT\s+"v=DKIM1; k=ed25519; p=([^"]+)"/.exec(zone)![1]!;
    const pin = /IN TLSA\s+3 1 1 ([0-9a-f]{64})/.exec(zone)![1]!;
    await writeFile(zonePath, zone.replace(ed, Buffer.alloc(32, 7).toString('base64')).replaceAll(pin, 'ab'.repeat(32)));
    const dsPath = join(tampered, 'dns/example.org.ds');
    await writeFile(dsPath, (await readFile(dsPath, 'utf8')).replace(/( IN DS \d+ 13 2 )[0-9A-F]{64}/, `$1${'CD'.repeat(32)}`));
    const manifest = join(tampered, 'MANIFEST.sha256');
    let text = await readFile(manifest, 'utf8');
    for (const rel of ['dns/example.org.zone', 'dns/example.org.ds']) {
      const h = (await run('sha256sum', [join(tampered, rel)])).stdout.split(' ')[0]!;
      text = text.replace(new RegExp(`^[0-9a-f]{64}  ${rel.replace(/\./g, '\\.')}$`, 'm'), `${h}  ${rel}`);
    }
    await writeFile(manifest, text);
    const t2 = join(work, 'target-tampered');
    await mkdir(t2);
    const b = await runCli(['backup', '--bundle', tampered, '--to', t2, '--recipient', recipient, '--root', root]);
    expect(b.code, b.stderr).toBe(0);
    const r = await runCli(['restore', '--from', t2, '--identity', identity, '--drill', '--json']);
    expect(r.code).toBe(5);
    const checks = (JSON.parse(r.stdout) as { checks: { id: string; ok: boolean; detail: string }[] }).checks;
    expect(checks.map((c) => `${c.id} ${c.ok}`)).toEqual(['files true', 'manifest true', 'dkim false', 'dnssec false', 'tlsa false']);
    expect(checks.find((c) => c.id === 'dkim')!.detail).toMatch(/the zone does not publish the key of \S+\._domainkey\.example\.org/);
  });

  it('drill passes in the middle of a KSK rollover (the old KSK leaving has no DS any more), and fails when the new KSK\'s DS is missing', async () => {
    const rolling = join(work, 'rolling-bundle');
    await run('cp', ['-a', bundle, rolling]);
    for (const step of [['--ksk'], ['--ksk', '--parent-confirmed']]) {
      const k = await runCli(['keys', 'rotate', 'dnssec', '--bundle', rolling, ...step]);
      expect(k.code, k.stderr).toBe(0);
    }
    const drill = async (name: string) => {
      const t = join(work, name);
      await mkdir(t);
      const b = await runCli(['backup', '--bundle', rolling, '--to', t, '--recipient', recipient, '--root', root]);
      expect(b.code, b.stderr).toBe(0);
      const r = await runCli(['restore', '--from', t, '--identity', identity, '--drill', '--json']);
      return { code: r.code, dnssec: (JSON.parse(r.stdout) as { checks: { id: string; ok: boolean; detail: string }[] }).checks.find((c) => c.id === 'dnssec')! };
    };
    const good = await drill('target-rolling');
    expect(good.code).toBe(0);
    expect(good.dnssec).toMatchObject({ ok: true, detail: '1 KSK(s), each the key of the DS given to the registrar' });
    // Drop the new KSK's DS (the one the file still names): the drill must see it.
    const dsPath = join(rolling, 'dns/example.org.ds');
    await writeFile(dsPath, (await readFile(dsPath, 'utf8')).replace(/( IN DS \d+ 13 2 )[0-9A-F]{64}/, `$1${'CD'.repeat(32)}`));
    const manifest = join(rolling, 'MANIFEST.sha256');
    const h = (await run('sha256sum', [dsPath])).stdout.split(' ')[0]!;
    await writeFile(manifest, (await readFile(manifest, 'utf8')).replace(/^[0-9a-f]{64}  dns\/example\.org\.ds$/m, `${h}  dns/example.org.ds`));
    const bad = await drill('target-rolling-bad');
    expect(bad.code).toBe(5);
    expect(bad.dnssec.ok).toBe(false);
  });

  it('refuses another identity (exit 2), and a public key given as identity', async () => {
    const r = await runCli(['restore', '--from', target, '--identity', otherIdentity, '--drill']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--identity: .*another-device\.key does not open this backup: it was made for other recipients/);
    const pub = join(work, 'public-only.txt');
    await writeFile(pub, `${recipient}\n`);
    const p = await runCli(['restore', '--from', target, '--identity', pub, '--drill']);
    expect(p.code).toBe(2);
    expect(p.stderr).toMatch(/--identity: .* holds a recipient \(a public key, age1…\), which cannot open anything/);
  });

  it('restores every file at its path under --to, and never over an existing file', async () => {
    const to = join(work, 'new-host');
    // The folder restored into keeps its own mode (on a new host it is /).
    await mkdir(to, { mode: 0o755 });
    await chmod(to, 0o755);
    const r = await runCli(['restore', '--from', target, '--identity', identity, '--to', to]);
    expect(r.code, r.stderr).toBe(0);
    expect((await stat(to)).mode & 0o777).toBe(0o755);
    expect(await readlink(join(to, 'var/vmail/example.org/alice/current'))).toBe('Maildir/cur');
    // The mail at /var/vmail (where it was, --root aside), the bundle where it was.
    expect(await readFile(join(to, MAILDIR, 'new/1700000999.M1P1.mail'), 'utf8')).toBe(message(999));
    expect((await stat(join(to, bundle, 'keys/tls/key.pem'))).mode & 0o777).toBe(0o600);
    expect(await readFile(join(to, bundle, 'selfmail.yaml'), 'utf8')).toBe(await readFile(join(bundle, 'selfmail.yaml'), 'utf8'));
    const state = await treeState(to);
    const again = await runCli(['restore', '--from', target, '--identity', identity, '--to', to]);
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(/--to: .* already holds \d+ of the files .*nothing was restored/);
    expect(await treeState(to)).toEqual(state);
  });
});

describe('a full target', () => {
  it('fails with exit 4 and a clear message; the earlier snapshots stay whole and a drill of them passes', async () => {
    const small = join(work, 'small-disk');
    await mkdir(small);
    await run('mount', ['-t', 'tmpfs', '-o', 'size=2m', 'tmpfs', small]);
    mounts.push(small);
    const first = await runCli(['backup', '--bundle', bundle, '--to', small, '--recipient', recipient, '--root', root]);
    expect(first.code, first.stderr).toBe(0);
    const before = await treeState(small);
    // 3 MB of mail that does not compress: more than the disk has left.
    await writeFile(join(root, MAILDIR, 'new', '1700001000.M1P1.mail'), message(1000, (await run('openssl', ['rand', '-base64', String(3 * 1024 * 1024)])).stdout));
    try {
      const full = await runCli(['backup', '--bundle', bundle, '--to', small, '--recipient', recipient, '--root', root]);
      expect(full.code, full.stderr).toBe(4);
      expect(full.stderr).toMatch(/the backup target is full while writing objects\/.*nothing of the earlier backups was touched, and this run wrote no snapshot/);
      expect(await treeState(small)).toEqual(before);
      const drill = await runCli(['restore', '--from', small, '--identity', identity, '--drill']);
      expect(drill.code, drill.stdout + drill.stderr).toBe(0);
    } finally {
      await rm(join(root, MAILDIR, 'new', '1700001000.M1P1.mail'), { force: true });
      await chmod(root, 0o755);
    }
  });
});
