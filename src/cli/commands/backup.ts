/**
 * `selfmail backup --bundle DIR --to DIR --recipient AGE_PUBLIC_KEY [--recipient …] [--root DIR] [--json]`
 * and `selfmail backup --list --to DIR [--json]`: an encrypted, incremental backup of the
 * mailboxes, the bundle and the daemons' state into a folder (an attached disk). Only public keys
 * (age recipients) are given; the identity that reads the backups stays on the user's device.
 */
import { access, constants, readFile, readdir, stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { InputError, ToolError } from '../../errors.js';
import type { Io } from '../io.js';
import { parseCommandArgs } from '../usage.js';

const OPTIONS = {
  bundle: { type: 'string' },
  to: { type: 'string' },
  recipient: { type: 'string', multiple: true },
  root: { type: 'string' },
  list: { type: 'boolean' },
  json: { type: 'boolean' },
} as const;

type Issue = { field: string; message: string };

/** `--to`: an existing, writable folder, empty or already a selfmail backup. */
export async function checkTarget(to: string | undefined, issues: Issue[], forWriting: boolean): Promise<string | undefined> {
  if (!to) {
    issues.push({ field: '--to', message: 'is required: the backup folder (an attached disk, or a machine of yours mounted here)' });
    return undefined;
  }
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(to)) {
    issues.push({ field: '--to', message: `${JSON.stringify(to)}: remote targets (sftp://) are designed, not built yet; give a folder (an attached disk, or a machine of yours mounted with sshfs)` });
    return undefined;
  }
  const dir = resolve(to);
  const st = await stat(dir).catch(() => undefined);
  if (!st?.isDirectory()) {
    issues.push({ field: '--to', message: `${dir} is not a folder (is the disk attached and mounted?)` });
    return undefined;
  }
  const { FORMAT_FILE, FORMAT_LINE } = await import('../../backup/format.js');
  const format = (await readFile(resolve(dir, FORMAT_FILE), 'utf8').catch(() => undefined))?.trim();
  if (format !== undefined && format !== FORMAT_LINE) {
    issues.push({ field: '--to', message: `${dir} holds a ${FORMAT_FILE} file that is not selfmail's (${JSON.stringify(format.slice(0, 40))})` });
    return undefined;
  }
  if (format === undefined && forWriting && (await readdir(dir)).length > 0) {
    issues.push({ field: '--to', message: `${dir} holds other files and no selfmail backup: give an empty folder, or the one backed up to before` });
    return undefined;
  }
  if (forWriting && !(await access(dir, constants.W_OK).then(() => true, () => false))) {
    issues.push({ field: '--to', message: `${dir} is not writable` });
    return undefined;
  }
  return dir;
}

export async function run(args: string[], io: Io): Promise<number> {
  const v = parseCommandArgs('selfmail backup', args, OPTIONS, false).values;
  const issues: Issue[] = [];
  if (v.list) {
    const target = await checkTarget(v.to, issues, false);
    if (issues.length > 0) throw new InputError(issues);
    const { listSnapshots } = await import('../../backup/index.js');
    const snaps = await listSnapshots(target!);
    if (io.jsonMode) io.json({ target, snapshots: snaps });
    else {
      io.say(snaps.length === 0 ? `${target} holds no snapshot yet` : `${target}: ${snaps.length} snapshot${snaps.length === 1 ? '' : 's'} (times and sizes: all the target's owner can see)`);
      for (const s of snaps) io.say(`  ${s.name}  ${s.created}  ${s.size} bytes`);
    }
    return 0;
  }
  const { checkRecipient } = await import('../../backup/format.js');
  if (!v.bundle) issues.push({ field: '--bundle', message: 'is required: the bundle to back up with the mail' });
  const recipients: string[] = [];
  if (!v.recipient?.length) issues.push({ field: '--recipient', message: 'is required: the age public key of a device of yours (make it there: age-keygen -o key.txt; it prints the public key); repeatable' });
  for (const r of v.recipient ?? []) {
    const c = checkRecipient(r);
    if (c.ok) recipients.includes(c.value) || recipients.push(c.value);
    else issues.push({ field: '--recipient', message: c.error });
  }
  const target = await checkTarget(v.to, issues, true);
  const root = v.root ? resolve(v.root) : '';
  if (v.root && !(await stat(root).catch(() => undefined))?.isDirectory()) issues.push({ field: '--root', message: `${root} is not a folder` });
  if (issues.length > 0) throw new InputError(issues);
  const { readBundleConfig } = await import('../bundle-config.js');
  const { out } = await readBundleConfig(v.bundle!);
  if (target === out || target!.startsWith(`${out}/`)) throw new InputError([{ field: '--to', message: 'is inside the bundle: back up to another disk' }]);

  const { backup, TargetError } = await import('../../backup/index.js');
  try {
    const r = await backup({ bundle: out, target: target!, recipients, root, ...(io.progress ? { progress: io.progress } : {}) });
    if (io.jsonMode) io.json({ ok: true, target, ...r });
    else {
      io.say(`snapshot ${r.snapshot} in ${target}: ${r.files} files, ${r.bytes} bytes, encrypted to ${recipients.length} recipient${recipients.length === 1 ? '' : 's'}`);
      for (const s of r.sources) io.say(`  ${s.name.padEnd(9)} ${s.path} (${s.files} files)`);
      io.say(`  new this run: ${r.added} files (${r.addedBytes} bytes); written to the target: ${r.written} bytes`);
      io.say('Only your identity opens it: this host holds none. Prove it now and then: selfmail restore --from DIR --identity FILE --drill');
    }
    return 0;
  } catch (err) {
    if (err instanceof TargetError) throw new ToolError(err.message, 'selfmail backup');
    throw err;
  }
}


