import { chmod, copyFile, lstat, readFile, readdir, writeFile, mkdir } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyBundle } from '../../src/apply/index.js';
import { verifyBundle } from '../../src/verify/index.js';
import { InputError, ToolError } from '../../src/errors.js';
import { copyBundle, editBundle, makeBundle, MASTER_CF, tempDirs, treeDigest, writeManifest } from '../helpers/apply-bundle.js';
import { backupService } from '../../src/backup/service.js';
import { hostContext } from '../helpers/host-context.js';

const { fresh, freshRoot, cleanup } = tempDirs();
let bundle: string;

beforeAll(async () => {
  bundle = await fresh('bundle');
  await makeBundle(bundle);
});
afterAll(async () => {
  await cleanup();
});

const mtimes = async (root: string, paths: string[]) =>
  Promise.all(paths.map(async (p) => (await lstat(join(root, p))).mtimeMs));

describe('applyBundle into a temporary root', () => {
  it('installs every file with its owner and mode, validates, and changes nothing the second time', async () => {
    const root = await freshRoot();
    const first = await applyBundle({ bundleDir: bundle, root });
    expect(first.changes.length).toBeGreaterThan(10);
    expect(first.changes.every((c) => c.action === 'create')).toBe(true);
    expect(first.validated).toEqual(
      expect.arrayContaining(['postfix check', 'postconf -n', 'doveconf -n', 'nsd-checkconf', 'nsd-checkzone example.org /etc/nsd/zones/example.org.zone.signed', 'nft -c -f /etc/selfmail/nftables/selfmail.nft', 'DKIM keys readable by rspamd (_rspamd)']),
    );
    expect(first.reloadSkipped).toBe('installed under another root');

    const main = join(root, 'etc/postfix/main.cf');
    expect(await readFile(main, 'utf8')).toBe(await readFile(join(bundle, 'postfix/main.cf'), 'utf8'));
    const dkim = await lstat(join(root, 'var/lib/rspamd/dkim/example.org/s1.private'));
    expect(dkim.mode & 0o777).toBe(0o600);
    const passwd = await readFile('/etc/passwd', 'utf8');
    const uidOf = (n: string) => Number(passwd.split('\n').find((l) => l.startsWith(`${n}:`))?.split(':')[2]);
    expect(dkim.uid).toBe(uidOf('_rspamd'));
    const group = await readFile('/etc/group', 'utf8');
    const gidOf = (n: string) => Number(group.split('\n').find((l) => l.startsWith(`${n}:`))?.split(':')[2]);
    const keysDir = await lstat(join(root, 'var/lib/rspamd/dkim'));
    expect(keysDir.mode & 0o777).toBe(0o750);
    expect([keysDir.uid, keysDir.gid]).toEqual([0, gidOf('_rspamd')]);
    const users = await lstat(join(root, 'etc/dovecot/users'));
    expect([users.mode & 0o777, users.uid]).toEqual([0o600, uidOf('dovecot')]);
    const nsdConf = await lstat(join(root, 'etc/nsd/nsd.conf'));
    expect(nsdConf.mode & 0o777).toBe(0o640);
    expect(existsSync(join(root, 'etc/selfmail/MANIFEST.sha256'))).toBe(true);
    // Nothing was replaced, so the backup only records the files this run created.
    expect(first.backupDir).toBeDefined();
    const record = JSON.parse(await readFile(join(first.backupDir ?? '', 'selfmail-apply.json'), 'utf8'));
    expect(record.created).toContain('/etc/postfix/main.cf');

    const watched = ['etc/postfix/main.cf', 'var/lib/rspamd/dkim/example.org/s1.private', 'etc/nsd/zones/example.org.zone.signed'];
    const before = await mtimes(root, watched);
    const digest = await treeDigest(root);
    const second = await applyBundle({ bundleDir: bundle, root });
    expect(second.changes).toEqual([]);
    expect(second.unchanged).toBe(first.changes.length);
    expect(second.backupDir).toBeUndefined();
    expect(await mtimes(root, watched)).toEqual(before);
    expect(await treeDigest(root)).toBe(digest);
  });

  it('repairs a mode drift in place and backs up the file first', async () => {
    const root = await freshRoot();
    await applyBundle({ bundleDir: bundle, root });
    const { chmod } = await import('node:fs/promises');
    await chmod(join(root, 'etc/dovecot/users'), 0o644);
    const r = await applyBundle({ bundleDir: bundle, root });
    expect(r.changes).toEqual([{ bundlePath: 'dovecot/users', systemPath: '/etc/dovecot/users', action: 'metadata' }]);
    expect((await lstat(join(root, 'etc/dovecot/users'))).mode & 0o777).toBe(0o600);
    expect(existsSync(join(r.backupDir ?? '', 'etc/dovecot/users'))).toBe(true);
  });

  it('removes what a later bundle dropped, keeping a 0600 copy, and verify names it until then', async () => {
    const root = await freshRoot();
    await applyBundle({ bundleDir: bundle, root });
    // The next bundle no longer has the DKIM key (as after `keys retire dkim`).
    const next = await fresh('next');
    await copyBundle(bundle, next);
    const { unlink } = await import('node:fs/promises');
    await unlink(join(next, 'keys/dkim/example.org/s1.private'));
    await editBundle(next, 'postfix/main.cf', (t) => t);
    const stale = await verifyBundle({ bundleDir: next, root });
    expect(stale).toContainEqual(expect.objectContaining({ level: 'failure', check: 'stale', path: '/var/lib/rspamd/dkim/example.org/s1.private' }));
    const r = await applyBundle({ bundleDir: next, root });
    expect(r.changes).toContainEqual({ bundlePath: 'keys/dkim/example.org/s1.private', systemPath: '/var/lib/rspamd/dkim/example.org/s1.private', action: 'remove' });
    expect(existsSync(join(root, 'var/lib/rspamd/dkim/example.org/s1.private'))).toBe(false);
    const copy = await lstat(join(r.backupDir ?? '', 'var/lib/rspamd/dkim/example.org/s1.private'));
    expect(copy.mode & 0o777).toBe(0o600);
    expect((await verifyBundle({ bundleDir: next, root })).filter((f) => f.check === 'stale')).toEqual([]);
  });

  it('installs the daily backup\'s units only where they can run: the bundle folder they name, selfmail where systemd finds it; nothing changed otherwise', async () => {
    // The bundle with the units init writes for --backup-to, naming the folder they were written to.
    const withBackup = await fresh('with-backup');
    await copyBundle(bundle, withBackup);
    const ctx = hostContext({ backupTo: '/srv/backup-disk', backupRecipients: ['age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p'] });
    for (const f of await backupService.build({ ...ctx, previous: { dir: withBackup, read: () => undefined } })) {
      await mkdir(join(withBackup, dirname(f.path)), { recursive: true });
      await writeFile(join(withBackup, f.path), f.data, { mode: f.mode });
    }
    await writeManifest(withBackup);
    const root = await freshRoot();
    const before = await treeDigest(root);
    const refused = async (dir: string, why: RegExp) => {
      const err = await applyBundle({ bundleDir: dir, root }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(InputError);
      expect((err as InputError).message).toMatch(why);
      expect(await treeDigest(root)).toBe(before);
    };
    await refused(withBackup, /selfmail-backup\.service runs selfmail, which is not installed where systemd finds it \(\/usr\/local\/sbin, \/usr\/local\/bin, \/usr\/sbin, \/usr\/bin under .*\): install it there \(npm install -g selfmail\)/);
    // selfmail installed as npm install -g puts it.
    await mkdir(join(root, 'usr/local/bin'), { recursive: true });
    await writeFile(join(root, 'usr/local/bin/selfmail'), '#!/bin/sh\n', { mode: 0o755 });
    const moved = await fresh('moved');
    await copyBundle(withBackup, moved);
    const withSelfmail = await treeDigest(root);
    const err = await applyBundle({ bundleDir: moved, root }).catch((e: unknown) => e);
    expect((err as InputError).message).toMatch(new RegExp(`backs up the bundle at ${withBackup}, where init wrote it, but this bundle is ${moved}: run selfmail init --out ${moved} once more`));
    expect(await treeDigest(root)).toBe(withSelfmail);
    const r = await applyBundle({ bundleDir: withBackup, root });
    expect(r.changes).toContainEqual(expect.objectContaining({ systemPath: '/etc/systemd/system/selfmail-backup.timer', action: 'create' }));
    expect(await readFile(join(root, 'etc/systemd/system/selfmail-backup.service'), 'utf8')).toMatch(new RegExp(`^ExecStart=selfmail backup --bundle ${withBackup}$`, 'm'));
  });

  it('takes OpenDKIM\'s files off a host set up before rspamd signed: its configs and the keys in its old folder', async () => {
    const root = await freshRoot();
    // The bundle as an earlier version wrote it, with OpenDKIM's configuration, applied; the DKIM
    // key also sits where that version installed it.
    const old = await fresh('with-opendkim');
    await copyBundle(bundle, old);
    await mkdir(join(old, 'opendkim'), { recursive: true });
    await writeFile(join(old, 'opendkim/opendkim.conf'), 'Syslog yes\nMode sv\n');
    await writeFile(join(old, 'opendkim/key.table'), '202612r._domainkey.example.org example.org:202612r:/etc/opendkim/keys/example.org/s1.private\n');
    await editBundle(old, 'opendkim/key.table', (t) => t);
    await applyBundle({ bundleDir: old, root });
    const former = join(root, 'etc/opendkim/keys/example.org/s1.private');
    await mkdir(dirname(former), { recursive: true });
    await copyFile(join(bundle, 'keys/dkim/example.org/s1.private'), former);
    await chmod(former, 0o600);

    const r = await applyBundle({ bundleDir: bundle, root });
    for (const [bundlePath, systemPath] of [
      ['opendkim/opendkim.conf', '/etc/opendkim.conf'],
      ['opendkim/key.table', '/etc/opendkim/key.table'],
      ['keys/dkim/example.org/s1.private', '/etc/opendkim/keys/example.org/s1.private'],
    ] as const) {
      expect(r.changes).toContainEqual({ bundlePath, systemPath, action: 'remove' });
      expect(existsSync(join(root, systemPath))).toBe(false);
    }
    // The key itself stays where rspamd reads it, and the removed one is kept 0600 in the backup.
    expect(existsSync(join(root, 'var/lib/rspamd/dkim/example.org/s1.private'))).toBe(true);
    expect((await lstat(join(r.backupDir ?? '', 'etc/opendkim/keys/example.org/s1.private'))).mode & 0o777).toBe(0o600);
    expect((await applyBundle({ bundleDir: bundle, root })).changes).toEqual([]);
  });

  it('creates the mail account in the root\'s own account table, and its folder', async () => {
    const root = await freshRoot();
    const r = await applyBundle({ bundleDir: bundle, root });
    expect(r.accounts).toEqual(['vmail']);
    const passwd = await readFile(join(root, 'etc/passwd'), 'utf8');
    const line = passwd.split('\n').find((l) => l.startsWith('vmail:'));
    expect(line).toMatch(/^vmail:x:\d+:\d+:selfmail mailboxes:\/var\/vmail:\/usr\/sbin\/nologin$/);
    const home = await lstat(join(root, 'var/vmail'));
    expect([home.mode & 0o777, home.uid]).toEqual([0o700, Number(line?.split(':')[2])]);
    // Never on this machine itself.
    expect(await readFile('/etc/passwd', 'utf8')).not.toMatch(/^vmail:.*selfmail mailboxes/m);
    expect((await applyBundle({ bundleDir: bundle, root })).accounts).toEqual([]);
  });

  it('rolls back a broken Postfix setting and leaves the root byte-identical', async () => {
    const root = await freshRoot();
    await applyBundle({ bundleDir: bundle, root });
    const digest = await treeDigest(root);
    const backups = await readdir(join(root, 'var/backups/selfmail'));

    const broken = await fresh('broken');
    await copyBundle(bundle, broken);
    await editBundle(broken, 'postfix/main.cf', (t) => `${t}smtpd_tls_frobnicate = yes\n`);
    // A new file too, so the rollback must delete what did not exist before.
    await mkdir(join(broken, 'postfix/maps'), { recursive: true });
    await writeFile(join(broken, 'postfix/maps/extra'), 'x\n');
    await editBundle(broken, 'postfix/master.cf', (t) => t);

    const err = await applyBundle({ bundleDir: broken, root }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ToolError);
    expect((err as ToolError).exitCode).toBe(4);
    expect((err as ToolError).message).toMatch(/smtpd_tls_frobnicate/);
    expect((err as ToolError).message).toMatch(/nothing was changed/);
    expect(await treeDigest(root)).toBe(digest);
    expect(await readdir(join(root, 'var/backups/selfmail'))).toEqual(backups);
    expect(existsSync(join(root, 'etc/postfix/maps'))).toBe(false);
  });

  it('rolls back a bad master.cf line into an empty root, leaving it empty', async () => {
    const root = await freshRoot();
    const broken = await fresh('broken');
    await copyBundle(bundle, broken);
    await editBundle(broken, 'postfix/master.cf', () => `${MASTER_CF}submission inet n\n`);
    const digest = await treeDigest(root);
    const err = await applyBundle({ bundleDir: broken, root }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ToolError);
    expect((err as ToolError).message).toMatch(/master\.cf.*bad field count/);
    expect(await readdir(root)).toEqual(['etc']);
    expect(await treeDigest(root)).toBe(digest);
  });

  it('--dry-run shows a unified diff, hides secrets, and changes nothing', async () => {
    const root = await freshRoot();
    await applyBundle({ bundleDir: bundle, root });
    const changed = await fresh('changed');
    await copyBundle(bundle, changed);
    await editBundle(changed, 'postfix/main.cf', (t) => t.replace('smtpd_tls_security_level = may', 'smtpd_tls_security_level = encrypt'));
    const digest = await treeDigest(root);
    const r = await applyBundle({ bundleDir: changed, root, dryRun: true });
    expect(r.changes.map((c) => c.systemPath).sort()).toEqual(['/etc/postfix/main.cf', '/etc/selfmail/MANIFEST.sha256']);
    expect(r.diff).toContain('--- a/etc/postfix/main.cf');
    expect(r.diff).toContain('-smtpd_tls_security_level = may');
    expect(r.diff).toContain('+smtpd_tls_security_level = encrypt');
    expect(await treeDigest(root)).toBe(digest);

    const empty = await freshRoot();
    const all = await applyBundle({ bundleDir: bundle, root: empty, dryRun: true });
    expect(all.diff).toMatch(/dkim\/example\.org\/s1\.private: secret, contents not shown/);
    expect(all.diff).not.toContain('PRIVATE KEY');
    expect(await readdir(empty)).toEqual(['etc']);
  });

  it('refuses a bundle whose files do not match MANIFEST.sha256, touching nothing', async () => {
    const root = await freshRoot();
    const bad = await fresh('bad');
    await copyBundle(bundle, bad);
    await writeFile(join(bad, 'postfix/main.cf'), 'myhostname = evil.example\n');
    await writeFile(join(bad, 'unlisted.txt'), 'x\n');
    const err = await applyBundle({ bundleDir: bad, root }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InputError);
    expect((err as InputError).message).toMatch(/postfix\/main\.cf does not match MANIFEST\.sha256/);
    expect((err as InputError).message).toMatch(/unlisted\.txt is not listed/);
    expect(await readdir(root)).toEqual(['etc']);
  });
});
