/**
 * `selfmail user add|passwd|remove|list`: the mailboxes of a bundle, without retyping the setup.
 * Each change edits the mailbox list (or one password) and runs the normal generation on the
 * bundle, so selfmail.yaml stays the single source of truth, the manifest follows and every other
 * file comes out byte for byte as it was. Passwords come from `--password-file` or a hidden
 * prompt, never from the command line; the other mailboxes keep their stored hashes.
 */
import { InputError, ToolError, type InputIssue } from '../../errors.js';
import { productionProfile } from '../../bundle/layout.js';
import { mailPaths } from '../../mail/paths.js';
import { sourced } from '../../config/raw.js';
import type { Config, Email } from '../../config/types.js';
import { parseEmail } from '../../config/values.js';
import type { Io } from '../io.js';
import { parseCommandArgs } from '../usage.js';
import { applyAfter, readBundleConfig } from '../bundle-config.js';

const USAGE =
  'usage: selfmail user add EMAIL --bundle DIR [--password-file FILE] [--quota SIZE] [--apply] | user quota EMAIL SIZE|none --bundle DIR [--apply] | user passwd EMAIL --bundle DIR [--password-file FILE] [--apply] | user remove EMAIL --bundle DIR [--apply [--keep-mail]] | user list --bundle DIR [--json]';

const OPTIONS = {
  bundle: { type: 'string' },
  'password-file': { type: 'string' },
  quota: { type: 'string' },
  apply: { type: 'boolean' },
  'keep-mail': { type: 'boolean' },
  json: { type: 'boolean' },
} as const;

type Action = 'add' | 'passwd' | 'remove' | 'list' | 'quota';
const ACTIONS: readonly Action[] = ['add', 'passwd', 'remove', 'list', 'quota'];

export async function run(args: string[], io: Io): Promise<number> {
  const parsed = parseCommandArgs('selfmail user', args, OPTIONS, true);
  const [word, address, ...rest] = parsed.positionals;
  // `user quota EMAIL SIZE`: the size is the one more word it takes.
  const sizeWord = word === 'quota' ? rest[0] : undefined;
  const stray = word === 'quota' ? rest.slice(1) : rest;
  const v = parsed.values;
  const issues: InputIssue[] = [];
  const action = ACTIONS.find((a) => a === word);
  const here = `selfmail user ${action ?? word ?? ''}`.trim();
  if (!action) issues.push({ field: 'selfmail user', message: USAGE });
  else if (action === 'list' ? address !== undefined : address === undefined) {
    issues.push({ field: here, message: action === 'list' ? `takes no address; ${USAGE}` : `needs the mailbox's address (EMAIL); ${USAGE}` });
  }
  if (action === 'quota' && address !== undefined && sizeWord === undefined) issues.push({ field: here, message: `needs the size (like 2G) or none; ${USAGE}` });
  if (v.quota !== undefined && action !== 'add') issues.push({ field: '--quota', message: 'only goes with user add (selfmail user quota EMAIL SIZE changes it later)' });
  if (stray.length > 0) issues.push({ field: here, message: `does not take ${stray.map((w) => JSON.stringify(w)).join(', ')}; ${USAGE}` });
  if (v['password-file'] !== undefined && action !== 'add' && action !== 'passwd') issues.push({ field: '--password-file', message: 'only goes with user add and user passwd' });
  if (v.apply && action === 'list') issues.push({ field: '--apply', message: 'only goes with user add, passwd, quota and remove' });
  if (v['keep-mail'] && (action !== 'remove' || !v.apply)) issues.push({ field: '--keep-mail', message: 'only goes with user remove --apply (without --apply the mail is never touched)' });
  if (!v.bundle) issues.push({ field: '--bundle', message: `is required; ${USAGE}` });
  if (issues.length > 0 || !action) throw new InputError(issues);

  const { out, config } = await readBundleConfig(v.bundle!);

  if (action === 'list') return list(config, io);

  const parsedAddress = parseEmail(address!);
  if (!parsedAddress.ok) throw new InputError([{ field: `${here} EMAIL`, message: `${JSON.stringify(address)} ${parsedAddress.error}` }]);
  const email = parsedAddress.value;
  const exists = config.users.includes(email);
  const domain = email.slice(email.lastIndexOf('@') + 1);
  if (action === 'add') {
    if (!config.domains.includes(domain as Config['domains'][number])) {
      throw new InputError([{ field: `${here} EMAIL`, message: `${email} is not in one of the bundle's mail domains (${config.domains.join(', ')})` }]);
    }
    if (exists) throw new InputError([{ field: `${here} EMAIL`, message: `${email} is already a mailbox of this bundle; change its password with selfmail user passwd ${email}` }]);
  } else if (!exists) {
    throw new InputError([{ field: `${here} EMAIL`, message: `${email} is not a mailbox of this bundle (selfmail user list shows them)` }]);
  }
  if (action === 'remove' && email === config.admin) {
    throw new InputError([
      {
        field: `${here} EMAIL`,
        message: `${email} is the admin address: postmaster@ and abuse@ of every domain, bounces and the DMARC and TLS reports go there. Name another admin first (selfmail init --out ${v.bundle} --admin ADDRESS), then remove this mailbox`,
      },
    ]);
  }
  if (action === 'remove' && config.users.length === 1) {
    throw new InputError([{ field: `${here} EMAIL`, message: `${email} is the bundle's only mailbox; a mail host needs at least one` }]);
  }

  const passwords = new Map<string, string>();
  const passwordIssues: InputIssue[] = [];
  if (action === 'add' || action === 'passwd') {
    const password = await passwordFor(email, v['password-file'], io);
    passwords.set(email, password);
  }
  const users = action === 'add' ? [...config.users, email] : action === 'remove' ? config.users.filter((u) => u !== email) : [...config.users];
  // Quotas follow the mailbox: a new one's, a changed one, none for a removed one.
  let quotas = config.quotas.filter((q) => q.user !== email).map((q) => `${q.user}=${q.size}`);
  const own = config.quotas.find((q) => q.user === email);
  const size = action === 'add' ? v.quota : action === 'quota' ? sizeWord : own?.size;
  if (action !== 'remove' && size !== undefined && size.toLowerCase() !== 'none') quotas = [...quotas, `${email}=${size}`];
  // So does a published OpenPGP key: a removed mailbox's is dropped with it.
  const dropKey = action === 'remove' && config.openpgpKeys.includes(email) ? { openpgpKeys: [`${email}=none`] } : {};
  const layer = sourced({ users, quotas, ...dropKey }, 'flag');
  const { generate } = await import('../../generate.js');
  let code: number;
  try {
    code = await generate({ out, layers: { flags: layer }, passwords, passwordIssues, interactive: false, demo: false }, io);
  } catch (err) {
    // The size is this command's word: say so.
    if (err instanceof InputError) throw new InputError(err.issues.map((i) => (i.field === '--quota' ? { ...i, field: action === 'add' ? '--quota' : `${here} SIZE` } : i)));
    throw err;
  }
  const home = `${mailPaths(productionProfile(config)).mailRoot}/${domain}/${email.slice(0, email.lastIndexOf('@'))}`;
  if (code === 0 && action === 'remove' && !v.apply) {
    io.say(`${email} no longer receives mail once the bundle is applied. Its messages stay on the host, under ${home}, until you delete that folder there (user remove --apply does both; with --keep-mail it keeps them).`);
  }
  const applied = await applyAfter(code, v.apply, out, io);
  if (applied === 0 && action === 'remove' && v.apply) {
    if (v['keep-mail']) io.say(`${email} is gone from the host; its messages stay under ${home} (--keep-mail).`);
    else await removeMail(email, home, io);
  }
  return applied;
}

/**
 * A removed mailbox's mail, once apply has taken the mailbox out of the running Dovecot (no
 * delivery can land there any more): its home (Maildir, Sieve scripts) under the mail root.
 */
async function removeMail(email: Email, home: string, io: Io): Promise<void> {
  const { lstat, readdir, rm } = await import('node:fs/promises');
  const st = await lstat(home).catch(() => undefined);
  if (!st) {
    io.say(`${email} is gone from the host; it had no mail there.`);
    return;
  }
  // Never through a link: only the folder Dovecot made.
  if (!st.isDirectory() || st.isSymbolicLink()) throw new ToolError(`${home} is not a folder; ${email}'s mail was left as it is`, 'selfmail');
  const { run: runTool } = await import('../../tools/run.js');
  const lookup = await runTool('doveadm', ['user', '-u', email], { okCodes: [0, 67] });
  if (lookup.exitCode === 0) throw new ToolError(`the running Dovecot still knows ${email}; its mail under ${home} was left as it is`, 'doveadm');
  let messages = 0;
  const count = async (dir: string): Promise<void> => {
    for (const e of await readdir(dir, { withFileTypes: true })) {
      if (!e.isDirectory() || e.isSymbolicLink()) continue;
      const path = `${dir}/${e.name}`;
      if (e.name === 'cur' || e.name === 'new') messages += (await readdir(path)).length;
      else await count(path);
    }
  };
  await count(home).catch(() => undefined);
  await rm(home, { recursive: true, force: true });
  io.say(`${email} is gone from the host, with its mail: ${messages} messages under ${home} deleted.`);
}

/** The mailboxes, and which role addresses reach each (RFC 2142: postmaster@, abuse@ to the admin). */
function list(config: Config, io: Io): number {
  const rows = config.users.map((u) => ({
    address: u,
    admin: u === config.admin,
    quota: config.quotas.find((q) => q.user === u)?.size ?? null,
    receives: u === config.admin ? config.domains.flatMap((d) => [`postmaster@${d}`, `abuse@${d}`]) : [],
  }));
  if (io.jsonMode) {
    io.json({ ok: true, admin: config.admin, mailboxes: rows });
    return 0;
  }
  for (const r of rows) io.say(`${r.address}${r.quota ? `  quota ${r.quota}` : ''}${r.admin ? `  (admin: also ${r.receives.join(', ')})` : ''}`);
  if (!config.users.includes(config.admin)) io.say(`admin: ${config.admin} (outside this host: postmaster@ and abuse@ of every domain go there)`);
  return 0;
}

/** The new password: from the file (its line for `email`), or typed twice at a hidden prompt. */
async function passwordFor(email: Email, file: string | undefined, io: Io): Promise<string> {
  const { MIN_PASSWORD_LENGTH, passwordProblem } = await import('../../wizard/steps/mailboxes.js');
  if (file !== undefined) {
    const { readPasswords } = await import('./init.js');
    const { passwords, issues } = await readPasswords(file, io);
    if (issues.length > 0) throw new InputError(issues);
    const found = [...passwords].find(([k]) => {
      const p = parseEmail(k);
      return p.ok && p.value === email;
    });
    if (!found) throw new InputError([{ field: '--password-file', message: `has no line for ${email} ("${email}:PASSWORD")` }]);
    const problem = passwordProblem(found[1]);
    if (problem !== true) throw new InputError([{ field: '--password-file', message: `the password for ${email} ${problem}` }]);
    return found[1];
  }
  if (!io.interactive) {
    throw new InputError([{ field: '--password-file', message: `is required without a terminal: a file with the line "${email}:PASSWORD" (chmod 600), or - for stdin; passwords are never taken from the command line` }]);
  }
  const { inquirerPrompter } = await import('../../wizard/prompter.js');
  const p = await inquirerPrompter(io);
  for (;;) {
    const first = await p.password({
      message: `Password for ${email}`,
      why: `At least ${MIN_PASSWORD_LENGTH} characters; only its Argon2id hash is kept.`,
      validate: (a) => passwordProblem(a),
    });
    const again = await p.password({ message: `The same password again for ${email}`, why: 'To catch a typing mistake.' });
    if (first === again) return first;
    io.warn('The two passwords differ; once more.');
  }
}
