/**
 * `selfmail backup --bundle DIR [--to TARGET --recipient AGE_PUBLIC_KEY … [--host-key KEY]] [--root DIR] [--json]`,
 * `selfmail backup --list (--to TARGET | --bundle DIR) [--json]` and
 * `selfmail backup --remote-setup (--to sftp://… | --bundle DIR)`: an encrypted, incremental
 * backup of the mailboxes, the bundle and the daemons' state into a folder (an attached disk) or
 * onto a machine of the user's over SFTP. Without --to, the bundle's own settings (`--backup-to`
 * of init, which the daily timer uses). Only public keys (age recipients) are given; the identity
 * that reads the backups stays on the user's device.
 */
import { access, constants, stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { InputError, ToolError } from '../../errors.js';
import type { TargetSpec } from '../../backup/format.js';
import type { TargetStore } from '../../backup/target.js';
import type { BackupSettings } from '../../config/types.js';
import type { Io } from '../io.js';
import { parseCommandArgs } from '../usage.js';

const OPTIONS = {
  bundle: { type: 'string' },
  to: { type: 'string' },
  recipient: { type: 'string', multiple: true },
  'host-key': { type: 'string' },
  root: { type: 'string' },
  list: { type: 'boolean' },
  'remote-setup': { type: 'boolean' },
  json: { type: 'boolean' },
} as const;

type Issue = { field: string; message: string };

/**
 * `--to` (or `--from`) as a target spec: a folder (any path: it is named in no unit here;
 * resolved, and it must exist) or sftp://. Undefined with the problem recorded.
 */
export async function targetSpecOf(to: string, field: string, issues: Issue[]): Promise<TargetSpec | undefined> {
  if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(to)) {
    const path = resolve(to);
    if ((await stat(path).catch(() => undefined))?.isDirectory()) return { kind: 'dir', path };
    issues.push({ field, message: `${path} is not a folder (is the disk attached and mounted?)` });
    return undefined;
  }
  const { parseTargetSpec } = await import('../../backup/format.js');
  const spec = parseTargetSpec(to);
  if (spec.ok) return spec.value;
  issues.push({ field, message: spec.error });
  return undefined;
}

/**
 * A target opened and looked at: empty, or already a selfmail backup (for writing); a selfmail
 * backup (for reading). Problems are input errors naming `field`; a target that cannot be reached
 * at all is the target's failure (exit 4).
 */
export async function openChecked(spec: TargetSpec, field: string, forWriting: boolean, hostAccess?: { keyFile: string; hostKeyLine: string }): Promise<TargetStore> {
  const [{ openTarget, TargetError }, { FORMAT_FILE, FORMAT_LINE }] = await Promise.all([import('../../backup/target.js'), import('../../backup/format.js')]);
  const store = await openTarget(spec, hostAccess ?? {});
  try {
    const { format, entries } = await store.inspect();
    const problem = (message: string) => new InputError([{ field, message }]);
    if (format !== undefined && format !== FORMAT_LINE) throw problem(`${store.label} holds a ${FORMAT_FILE} file that is not selfmail's (${JSON.stringify(format.slice(0, 40))})`);
    if (format === undefined && forWriting && entries > 0) throw problem(`${store.label} holds other files and no selfmail backup: give an empty folder, or the one backed up to before`);
    if (format === undefined && !forWriting) throw problem(`${store.label} is not a selfmail backup folder (no ${FORMAT_FILE}; is the disk mounted?)`);
    if (forWriting && spec.kind === 'dir' && !(await access(spec.path, constants.W_OK).then(() => true, () => false))) throw problem(`${spec.path} is not writable`);
    return store;
  } catch (err) {
    await store.close();
    if (err instanceof TargetError) throw new ToolError(err.message, 'selfmail backup');
    throw err;
  }
}

/** What this run backs up to: the flags, or the bundle's settings. */
async function settingsOf(v: { to?: string | undefined; recipient?: string[] | undefined; 'host-key'?: string | undefined }, bundle: BackupSettings | undefined, needRecipients: boolean, issues: Issue[]): Promise<{ spec?: TargetSpec; recipients: string[]; hostKey?: string }> {
  const { checkRecipient, parseHostKey } = await import('../../backup/format.js');
  // The target: --to, else the bundle's own (init --backup-to), as the daily timer runs it.
  let spec: TargetSpec | undefined;
  if (v.to !== undefined) spec = await targetSpecOf(v.to, '--to', issues);
  else if (bundle) spec = bundle.to;
  else issues.push({ field: '--to', message: 'is required (the bundle has no --backup-to): the backup folder (an attached disk), or sftp://USER@HOST/PATH (a machine of yours)' });
  // The recipients and the host key: the flags', else the bundle's (its host key for that machine only).
  const recipients: string[] = [];
  for (const r of v.recipient ?? []) {
    const c = checkRecipient(r);
    if (c.ok) recipients.includes(c.value) || recipients.push(c.value);
    else issues.push({ field: '--recipient', message: c.error });
  }
  if (!v.recipient?.length) {
    if (v.to === undefined && bundle) recipients.push(...bundle.recipients);
    else if (needRecipients) issues.push({ field: '--recipient', message: 'is required: the age public key of a device of yours (make it there: age-keygen -o key.txt; it prints the public key); repeatable' });
  }
  let hostKey: string | undefined;
  if (v['host-key'] !== undefined) {
    const k = parseHostKey(v['host-key']);
    if (!k.ok) issues.push({ field: '--host-key', message: k.error });
    else if (spec?.kind === 'dir') issues.push({ field: '--host-key', message: 'is only for an sftp:// target' });
    else hostKey = k.value;
  } else if (spec && bundle?.hostKey && sameMachine(bundle.to, spec)) hostKey = bundle.hostKey;
  return { ...(spec ? { spec } : {}), recipients, ...(hostKey ? { hostKey } : {}) };
}

const sameMachine = (a: TargetSpec, b: TargetSpec) => a.kind === 'sftp' && b.kind === 'sftp' && a.host === b.host && a.port === b.port;

export async function run(args: string[], io: Io): Promise<number> {
  const v = parseCommandArgs('selfmail backup', args, OPTIONS, false).values;
  const issues: Issue[] = [];
  const root = v.root ? resolve(v.root) : '';
  if (v.root && !(await stat(root).catch(() => undefined))?.isDirectory()) issues.push({ field: '--root', message: `${root} is not a folder` });
  if (v.list && v['remote-setup']) issues.push({ field: '--list', message: 'and --remote-setup are two different things: give one' });
  const needBundle = !v.list && !v['remote-setup'];
  if (needBundle && !v.bundle) issues.push({ field: '--bundle', message: 'is required: the bundle to back up with the mail' });
  if (issues.length > 0) throw new InputError(issues);
  const { readBundleConfig } = await import('../bundle-config.js');
  const bundle = v.bundle ? await readBundleConfig(v.bundle) : undefined;
  const s = await settingsOf(v, bundle?.config.backup, needBundle, issues);
  if (s.spec?.kind === 'sftp' && !s.hostKey && !v.list && !v['remote-setup']) {
    issues.push({ field: '--host-key', message: `is required for ${v.to ?? 'this target'}: the backup machine's SSH host public key, the only one accepted (on that machine: cat /etc/ssh/ssh_host_ed25519_key.pub)` });
  }
  if (v['remote-setup'] && s.spec && s.spec.kind !== 'sftp') issues.push({ field: '--to', message: 'is a folder of this host: --remote-setup is for an sftp:// target' });
  if (issues.length > 0) throw new InputError(issues);
  const spec = s.spec!;

  if (v['remote-setup']) return remoteSetupOf(spec as Extract<TargetSpec, { kind: 'sftp' }>, root, io);

  // On the mail host, an sftp:// target is reached with the host's own backup key and the given
  // host key only; --list without a host key is the user's own SSH setup on their device.
  const { ensureBackupKey } = await import('../../backup/sftp.js');
  const hostAccess = spec.kind === 'sftp' && s.hostKey ? { keyFile: (await ensureBackupKey(root)).keyFile, hostKeyLine: s.hostKey } : undefined;

  if (v.list) {
    const store = await openChecked(spec, '--to', false, hostAccess);
    try {
      const { listSnapshots } = await import('../../backup/index.js');
      const snaps = await listSnapshots(store);
      if (io.jsonMode) io.json({ target: store.label, snapshots: snaps });
      else {
        io.say(snaps.length === 0 ? `${store.label} holds no snapshot yet` : `${store.label}: ${snaps.length} snapshot${snaps.length === 1 ? '' : 's'} (times and sizes: all the target's owner can see)`);
        for (const x of snaps) io.say(`  ${x.name}  ${x.created}  ${x.size} bytes`);
      }
      return 0;
    } finally {
      await store.close();
    }
  }

  const out = bundle!.out;
  if (spec.kind === 'dir' && (spec.path === out || spec.path.startsWith(`${out}/`))) throw new InputError([{ field: '--to', message: 'is inside the bundle: back up to another disk' }]);
  const store = await openChecked(spec, '--to', true, hostAccess);
  const { backup, TargetError } = await import('../../backup/index.js');
  try {
    const r = await backup({ bundle: out, target: store, recipients: s.recipients, root, ...(io.progress ? { progress: io.progress } : {}) });
    if (io.jsonMode) io.json({ ok: true, target: store.label, ...r });
    else {
      io.say(`snapshot ${r.snapshot} in ${store.label}: ${r.files} files, ${r.bytes} bytes, encrypted to ${s.recipients.length} recipient${s.recipients.length === 1 ? '' : 's'}`);
      for (const x of r.sources) io.say(`  ${x.name.padEnd(9)} ${x.path} (${x.files} files)`);
      io.say(`  new this run: ${r.added} files (${r.addedBytes} bytes); written to the target: ${r.written} bytes`);
      io.say('Only your identity opens it: this host holds none. Prove it now and then: selfmail restore --from TARGET --identity FILE --drill');
    }
    return 0;
  } catch (err) {
    if (err instanceof TargetError) throw new ToolError(err.message, 'selfmail backup');
    throw err;
  } finally {
    await store.close();
  }
}

/** `--remote-setup`: this host's backup key (made now if it has none) and what the backup machine needs. */
async function remoteSetupOf(spec: Extract<TargetSpec, { kind: 'sftp' }>, root: string, io: Io): Promise<number> {
  const { ensureBackupKey, remoteSetup } = await import('../../backup/sftp.js');
  const { targetText } = await import('../../backup/format.js');
  const key = await ensureBackupKey(root);
  const setup = remoteSetup(spec, key.publicKey);
  if (io.jsonMode) {
    io.json({ target: targetText(spec), publicKey: key.publicKey, made: key.made, confFile: setup.confFile, keysFile: setup.keysFile, keysLine: setup.keysLine, sshdConfig: setup.sshdConfig, script: setup.script });
    return 0;
  }
  io.say(`This host's backup key${key.made ? ' (made now, 0600 in 0700)' : ''}: ${key.publicKey}`);
  io.say(`On ${spec.host}, the machine that keeps the backups, as root (Debian): a user that reaches one folder over SFTP and nothing else, with this key only:`);
  io.say('');
  for (const line of setup.script.trimEnd().split('\n')) io.say(`  ${line}`);
  io.say('');
  io.say(`Then give the last line it prints to selfmail: selfmail init --out BUNDLE --backup-to ${targetText(spec)} --backup-recipient age1… --backup-host-key '<that line>'`);
  io.say('The backup machine sees sizes and times, never names or contents; this host can still overwrite or delete what it wrote there (SFTP has no append-only mode): keep snapshots of that disk (btrfs, ZFS) if a break-in here must not reach the backups.');
  return 0;
}
