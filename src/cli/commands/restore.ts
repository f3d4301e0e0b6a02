/**
 * `selfmail restore --from TARGET --identity FILE [--snapshot NAME] (--drill | --to DIR) [--json]`:
 * open a backup with the identity from your device. TARGET is the backup folder, or
 * sftp://USER@HOST/PATH read with your own SSH setup (your key, your known_hosts). `--drill`
 * restores into a temporary folder and checks everything (exit 5 when a check fails); `--to DIR`
 * restores at the original paths under DIR (`/` on a new host, before apply), never over an
 * existing file.
 */
import { mkdir, readFile, stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { EXIT, InputError, ToolError } from '../../errors.js';
import type { Io } from '../io.js';
import { parseCommandArgs } from '../usage.js';
import { openChecked, targetSpecOf } from './backup.js';

const OPTIONS = {
  from: { type: 'string' },
  identity: { type: 'string' },
  snapshot: { type: 'string' },
  drill: { type: 'boolean' },
  to: { type: 'string' },
  json: { type: 'boolean' },
} as const;

export async function run(args: string[], io: Io): Promise<number> {
  const v = parseCommandArgs('selfmail restore', args, OPTIONS, false).values;
  const issues: { field: string; message: string }[] = [];
  const { parseIdentities, SNAPSHOT_NAME_RE } = await import('../../backup/format.js');
  const spec = v.from ? await targetSpecOf(v.from, '--from', issues) : undefined;
  if (!v.from) issues.push({ field: '--from', message: 'is required: the backup folder, or sftp://USER@HOST/PATH' });
  let identities: string[] = [];
  if (!v.identity) issues.push({ field: '--identity', message: 'is required: the age identity file from your device (age-keygen wrote it)' });
  else {
    const text = await readFile(v.identity, 'utf8').catch(() => undefined);
    if (text === undefined) issues.push({ field: '--identity', message: `${v.identity} is not a readable file` });
    else {
      const p = parseIdentities(text);
      if (p.error) issues.push({ field: '--identity', message: `${v.identity} ${p.error}` });
      identities = p.identities;
    }
  }
  if (v.snapshot !== undefined && !SNAPSHOT_NAME_RE.test(v.snapshot)) issues.push({ field: '--snapshot', message: 'is a snapshot name as selfmail backup --list prints it (like 20261202T013000Z)' });
  if (!v.drill && !v.to) issues.push({ field: '--to', message: 'is required without --drill: where to restore (/ on a new host); or use --drill to check the backup' });
  if (v.drill && v.to) issues.push({ field: '--to', message: 'is not used with --drill (a drill restores into a temporary folder and removes it)' });
  let to: string | undefined;
  if (v.to) {
    to = resolve(v.to);
    const st = await stat(to).catch(() => undefined);
    if (st && !st.isDirectory()) issues.push({ field: '--to', message: `${to} is not a folder` });
  }
  if (issues.length > 0) throw new InputError(issues);
  const from = await openChecked(spec!, '--from', false);
  if (to) await mkdir(to, { recursive: true, mode: 0o700 });

  const [{ restore, WrongIdentityError, ClashError }, { TargetError }] = await Promise.all([import('../../backup/restore.js'), import('../../backup/target.js')]);
  try {
    const r = await restore({ target: from, identities, drill: !!v.drill, ...(to ? { to } : {}), ...(v.snapshot ? { snapshot: v.snapshot } : {}), ...(io.progress ? { progress: io.progress } : {}) });
    const ok = r.checks.every((c) => c.ok);
    if (io.jsonMode) io.json({ ok, drill: !!v.drill, ...r });
    else {
      io.say(`${v.drill ? 'drill of' : 'restored'} snapshot ${r.snapshot}: ${r.files} files, ${r.bytes} bytes${v.drill ? ' (restored into a temporary folder, removed again)' : ` under ${r.to}`}`);
      for (const c of r.checks) io.say(`  ${c.ok ? 'PASS' : 'FAIL'} ${c.id.padEnd(8)} ${c.detail}`);
      if (!v.drill && ok) io.say('Next: selfmail apply --bundle <the restored bundle> installs it on this host.');
    }
    return ok ? 0 : EXIT.checkFailed;
  } catch (err) {
    if (err instanceof WrongIdentityError) throw new InputError([{ field: '--identity', message: `${v.identity} ${err.message}` }]);
    if (err instanceof ClashError) throw new InputError([{ field: '--to', message: err.message }]);
    if (err instanceof TargetError) throw new ToolError(err.message, 'selfmail restore');
    throw err;
  } finally {
    await from.close();
  }
}
