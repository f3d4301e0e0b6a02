/**
 * The daily backup as a bundle setting, one rule per test: how --backup-to, --backup-recipient
 * and --backup-host-key resolve (and which combinations are refused, naming the flag), how they
 * read from a config file and go back into selfmail.yaml, and the two units the bundle ships for
 * them (a service naming the bundle's own folder, and a timer apply enables). Nothing runs.
 */
import { generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { shippedUnits } from '../../src/apply/units.js';
import { BACKUP_SERVICE_PATH, BACKUP_TIMER_PATH, backupBundleOf, backupService } from '../../src/backup/service.js';
import type { BuildContext } from '../../src/bundle/types.js';
import { parseConfigText } from '../../src/config/load.js';
import { type RawInput, overlay, sourced } from '../../src/config/raw.js';
import { resolveConfig, toRaw } from '../../src/config/schema.js';
import { InputError } from '../../src/errors.js';
import { hostContext } from '../helpers/host-context.js';
import { BASE_REQUEST as base, issuesOf, resolveOver } from '../helpers/config.js';

const RECIPIENT = 'age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p';
const OTHER_RECIPIENT = 'age1lggyhqrw2nlhcxprm67z43rta597azn8gknawjehu9d9dl0jq3yqqvfafg';
const IDENTITY = 'AGE-SECRET-KEY-1QYQSZQGPQYQSZQGPQYQSZQGPQYQSZQGPQYQSZQGPQYQSZQGPQYQSYTKGAH';
const SFTP = 'sftp://selfmail-backup@nas.home.arpa/backup';

/** A real ed25519 host key line (as ssh_host_ed25519_key.pub holds it), comment included. */
function hostKeyLine(): string {
  const raw = generateKeyPairSync('ed25519').publicKey.export({ format: 'der', type: 'spki' }).subarray(-32);
  const str = (b: Buffer) => Buffer.concat([Buffer.from([0, 0, 0, b.length]), b]);
  return `ssh-ed25519 ${Buffer.concat([str(Buffer.from('ssh-ed25519')), str(raw)]).toString('base64')} root@nas`;
}
const HOST_KEY = hostKeyLine();
const HOST_KEY_KEPT = HOST_KEY.split(' ').slice(0, 2).join(' ');

const resolve = resolveOver;

describe('the backup settings', () => {
  it('are none by default', () => {
    expect(resolve().config).not.toHaveProperty('backup');
  });
  it('are none with --backup-to none, in any case', () => {
    expect(resolve({ backupTo: 'none' }).config).not.toHaveProperty('backup');
    expect(resolve({ backupTo: 'None', backupRecipients: [RECIPIENT] }).config).not.toHaveProperty('backup');
  });
  it('take a folder of this host and the recipients', () => {
    expect(resolve({ backupTo: '/mnt/backup/', backupRecipients: [RECIPIENT, OTHER_RECIPIENT] }).config.backup).toEqual({
      to: { kind: 'dir', path: '/mnt/backup' },
      recipients: [RECIPIENT, OTHER_RECIPIENT],
    });
  });
  it('take an sftp target with its host key, kept without its comment', () => {
    expect(resolve({ backupTo: SFTP, backupRecipients: [RECIPIENT], backupHostKey: HOST_KEY }).config.backup).toEqual({
      to: { kind: 'sftp', user: 'selfmail-backup', host: 'nas.home.arpa', port: 22, path: '/backup' },
      recipients: [RECIPIENT],
      hostKey: HOST_KEY_KEPT,
    });
  });
  it('refuse a target that is neither a folder nor sftp://, naming --backup-to', () => {
    expect(issuesOf(() => resolve({ backupTo: 's3://bucket/x', backupRecipients: [RECIPIENT] }))).toEqual([expect.stringMatching(/^--backup-to: "s3:\/\/bucket\/x": backups go to a folder/)]);
  });
  it('need the host key of an sftp target, naming --backup-host-key', () => {
    expect(issuesOf(() => resolve({ backupTo: SFTP, backupRecipients: [RECIPIENT] }))).toEqual([
      expect.stringMatching(/^--backup-host-key: is required with an sftp:\/\/ target: the host public key of nas\.home\.arpa/),
    ]);
  });
  it('refuse a host key that is not one, with the reason', () => {
    expect(issuesOf(() => resolve({ backupTo: SFTP, backupRecipients: [RECIPIENT], backupHostKey: 'ssh-ed25519 nope!' }))).toEqual([
      expect.stringMatching(/^--backup-host-key: .*the key is not base64/),
    ]);
  });
  it('refuse a host key given with a folder target', () => {
    expect(issuesOf(() => resolve({ backupTo: '/mnt/backup', backupRecipients: [RECIPIENT], backupHostKey: HOST_KEY }))).toEqual([
      '--backup-host-key: is only for an sftp:// target; a folder of this host needs no host key',
    ]);
  });
  it('drop, without a word, the host key the bundle kept from an earlier sftp target when the target becomes a folder', () => {
    const bundle = sourced({ ...base, backupTo: SFTP, backupRecipients: [RECIPIENT], backupHostKey: HOST_KEY_KEPT }, 'bundle');
    const { config, warnings } = resolveConfig(overlay(bundle, sourced({ backupTo: '/mnt/backup' }, 'flag')));
    expect(config.backup).toEqual({ to: { kind: 'dir', path: '/mnt/backup' }, recipients: [RECIPIENT] });
    expect(warnings.join('\n')).not.toMatch(/host key/);
  });
  it('need recipients with --backup-to', () => {
    expect(issuesOf(() => resolve({ backupTo: '/mnt/backup' }))).toEqual([expect.stringMatching(/^--backup-recipient: is required with --backup-to: the age public key/)]);
  });
  it('need --backup-to with recipients, or with a host key', () => {
    const needed = /^--backup-to: is required with --backup-recipient and --backup-host-key/;
    expect(issuesOf(() => resolve({ backupRecipients: [RECIPIENT] }))).toEqual([expect.stringMatching(needed)]);
    expect(issuesOf(() => resolve({ backupHostKey: HOST_KEY }))).toEqual([expect.stringMatching(needed)]);
  });
  it('refuse an identity as a recipient, without repeating it', () => {
    const issues = issuesOf(() => resolve({ backupTo: '/mnt/backup', backupRecipients: [IDENTITY] }));
    expect(issues.some((i) => /^--backup-recipient: .*a private key.*must stay on your own device/.test(i))).toBe(true);
    expect(issues.join('\n')).not.toContain('QYQSZQGP');
  });
  it('refuse a recipient listed twice', () => {
    expect(issuesOf(() => resolve({ backupTo: '/mnt/backup', backupRecipients: [RECIPIENT, RECIPIENT] }))).toEqual([`--backup-recipient: ${RECIPIENT} is listed twice`]);
  });
  it('name the config file\'s key when the setting came from one', () => {
    expect(issuesOf(() => resolve({ backupTo: 'backup', backupRecipients: [RECIPIENT] }, 'file'))).toEqual([expect.stringMatching(/^my\.yaml: backupTo: "backup": a backup folder must be an absolute path/)]);
  });
  it('go into selfmail.yaml as the target\'s canonical text, the recipients and the host key, and read back the same', () => {
    const { config } = resolve({ backupTo: 'sftp://selfmail-backup@NAS.home.arpa:22/backup/', backupRecipients: [RECIPIENT], backupHostKey: HOST_KEY });
    const raw = toRaw(config);
    expect(raw).toMatchObject({ backupTo: SFTP, backupRecipients: [RECIPIENT], backupHostKey: HOST_KEY_KEPT });
    expect(resolveConfig(sourced(raw as RawInput, 'bundle')).config).toEqual(config);
  });
  it('leave selfmail.yaml without backup keys when there is no backup', () => {
    expect(Object.keys(toRaw(resolve().config)).filter((k) => k.startsWith('backup'))).toEqual([]);
  });
});

describe('the backup settings in a config file', () => {
  it('are read under backupTo, backupRecipients and backupHostKey', async () => {
    const raw = await parseConfigText(`backupTo: ${SFTP}\nbackupRecipients:\n  - ${RECIPIENT}\nbackupHostKey: ${HOST_KEY}\n`, 'my.yaml');
    expect(raw).toEqual({ backupTo: SFTP, backupRecipients: [RECIPIENT], backupHostKey: HOST_KEY });
  });
  it('take backupRecipient, one or a list, merged after backupRecipients', async () => {
    expect(await parseConfigText(`backupRecipient: ${RECIPIENT}\n`, 'my.yaml')).toEqual({ backupRecipients: [RECIPIENT] });
    expect(await parseConfigText(`backupRecipients: ${RECIPIENT}\nbackupRecipient: [${OTHER_RECIPIENT}]\n`, 'my.yaml')).toEqual({ backupRecipients: [RECIPIENT, OTHER_RECIPIENT] });
  });
});

describe('the daily backup units', () => {
  const BUNDLE = '/srv/selfmail/bundle';
  /** A production build context with these backup settings, for the bundle at `dir`. */
  const context = (input: RawInput, dir = BUNDLE): BuildContext => ({ ...hostContext(input), previous: { dir, read: () => undefined } });
  const sftp: RawInput = { backupTo: SFTP, backupRecipients: [RECIPIENT], backupHostKey: HOST_KEY };
  const folder: RawInput = { backupTo: '/mnt/backup', backupRecipients: [RECIPIENT] };
  const serviceText = async (ctx: BuildContext) => (await backupService.build(ctx)).find((f) => f.path === BACKUP_SERVICE_PATH)!.data.toString('utf8');

  it('are none without backup settings', async () => {
    expect(await backupService.build(context({}))).toEqual([]);
  });
  it('are none in a rehearsal, which runs no timers', async () => {
    expect(await backupService.build({ ...hostContext(sftp, { root: '/nonexistent/rehearsal' }), previous: { dir: BUNDLE, read: () => undefined } })).toEqual([]);
  });
  it('are a service and a timer, in systemd/', async () => {
    expect((await backupService.build(context(sftp))).map((f) => [f.path, f.mode])).toEqual([
      [BACKUP_SERVICE_PATH, 0o644],
      [BACKUP_TIMER_PATH, 0o644],
    ]);
  });
  it('run selfmail backup on the bundle\'s own folder, which apply reads back from the service', async () => {
    const text = await serviceText(context(sftp));
    expect(text).toMatch(/^ExecStart=selfmail backup --bundle \/srv\/selfmail\/bundle$/m);
    expect(backupBundleOf(text)).toBe(BUNDLE);
  });
  it('are started by the timer, the one with an [Install] section', async () => {
    const files = await backupService.build(context(sftp));
    expect(shippedUnits(files)).toEqual([
      { name: 'selfmail-backup.service', installable: false },
      { name: 'selfmail-backup.timer', installable: true },
    ]);
  });
  it('may write a folder target, and only with one', async () => {
    expect(await serviceText(context(folder))).toMatch(/^ReadWritePaths=-\/mnt\/backup$/m);
    expect(await serviceText(context(sftp))).not.toMatch(/ReadWritePaths/);
  });
  it('have a private /tmp, unless the bundle or the folder target is in /tmp or /var/tmp', async () => {
    expect(await serviceText(context(sftp))).toMatch(/^PrivateTmp=yes$/m);
    expect(await serviceText(context(sftp, '/tmp/bundle'))).not.toMatch(/PrivateTmp/);
    expect(await serviceText(context({ ...folder, backupTo: '/var/tmp/backup' }))).not.toMatch(/PrivateTmp/);
  });
  it('refuse a bundle folder a unit file cannot name as it is, naming --backup-to', async () => {
    for (const dir of ['/srv/my bundle', '/srv/bundle-%h']) {
      const err = await Promise.resolve().then(() => backupService.build(context(sftp, dir))).catch((e: unknown) => e);
      expect(err, dir).toBeInstanceOf(InputError);
      expect((err as InputError).issues.map((i) => i.field)).toEqual(['--backup-to']);
      expect((err as InputError).issues[0]!.message).toContain(JSON.stringify(dir));
    }
  });
  it('name no bundle when the service has no such ExecStart line', () => {
    expect(backupBundleOf('[Service]\nExecStart=/bin/true\n')).toBeUndefined();
  });
});
