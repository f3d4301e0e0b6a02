/**
 * Load a bundle for the rehearsal: its configuration, its keys (reused, never generated), its
 * password hashes, and the rehearsal's own mailboxes with random passwords that exist only for
 * this loopback run and are never written to the bundle.
 */
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { PreviousBundle } from '../bundle/types.js';
import { sourced } from '../config/raw.js';
import type { Config, DomainName, Email } from '../config/types.js';
import { parseEmail } from '../config/values.js';
import { InputError } from '../errors.js';
import type { KeySet } from '../keys/types.js';

/** A mailbox the rehearsal logs in as, with its cleartext password (memory only). */
export interface Mailbox {
  address: Email;
  password: string;
  /** True for the rehearsal's own mailboxes, false for the bundle's real ones (--password-file). */
  own: boolean;
}

export interface LoadedBundle {
  dir: string;
  /** The bundle's configuration, as written in selfmail.yaml. */
  config: Config;
  /** The configuration the loopback run serves: the bundle's plus the rehearsal's mailboxes. */
  rehearsalConfig: Config;
  keys: KeySet;
  previous: PreviousBundle;
  /** Hashes of the bundle's mailboxes (from dovecot/users) and of the rehearsal's own. */
  passwordHashes: Map<Email, string>;
  /** The rehearsal's two mailboxes: `a` submits to `b`; inbound mail goes to `a`. */
  a: Mailbox;
  b: Mailbox;
  /** The bundle's mailboxes with a password from --password-file. */
  real: Mailbox[];
  /** Bundle files by path (zones are served exactly as the bundle has them). */
  files: Map<string, Buffer>;
}

function bundleIssue(message: string): InputError {
  return new InputError([{ field: '--bundle', message }]);
}

function email(text: string): Email {
  const p = parseEmail(text);
  if (!p.ok) throw new Error(`internal: ${text} is not a valid address (${p.error})`);
  return p.value;
}

/** The rehearsal's mailbox names: a local part no bundle uses, on the primary and a second domain. */
export function rehearsalAddresses(config: Config): { a: Email; b: Email } {
  const primary = config.domains[0] as DomainName;
  const second = (config.domains[1] ?? primary) as DomainName;
  let n = 0;
  for (;;) {
    const suffix = n === 0 ? '' : `-${n}`;
    const a = email(`rehearsal-a${suffix}@${primary}`);
    const b = email(`rehearsal-b${suffix}@${second}`);
    if (!config.users.includes(a) && !config.users.includes(b) && config.admin !== a && config.admin !== b) return { a, b };
    n++;
  }
}

/**
 * Read the bundle at `dir`. Throws InputError (exit 2) when it is not a bundle, lacks keys or
 * hashes, or when the password file names a mailbox the bundle does not have.
 */
export async function loadBundle(dir: string, opts: { passwordFile?: string; now?: Date } = {}): Promise<LoadedBundle> {
  const { readBundle } = await import('../bundle/write.js');
  const disk = await readBundle(dir);
  const yaml = disk.files.get('selfmail.yaml')?.data;
  if (!disk.exists || !yaml) throw bundleIssue(`${dir} is not a selfmail bundle (no selfmail.yaml); create one with selfmail init --out ${dir}`);
  const files = new Map([...disk.files].map(([p, f]) => [p, f.data]));
  const previous: PreviousBundle = { dir, read: (p) => files.get(p) };

  const { gatherInput } = await import('../generate.js');
  const { resolveConfig } = await import('../config/schema.js');
  const { config } = resolveConfig(await gatherInput({ flags: sourced({}, 'flag') }, yaml));
  // The rehearsal runs this machine's daemons on the bundle's files: they must speak its syntax.
  const [{ installedDovecot }, { releaseInfo }] = await Promise.all([import('../dovecot/index.js'), import('../config/release.js')]);
  const want = releaseInfo(config.target);
  const have = await installedDovecot();
  if (have !== want.dovecot) {
    throw bundleIssue(`the bundle is made for ${config.target} (${want.name}, Dovecot ${want.dovecot}) and this machine has Dovecot ${have}: rehearse it on a ${config.target} machine, or make the bundle for this one (selfmail init --out ${dir} --target …)`);
  }

  // The keys are the bundle's own. ensureKeys would make up any missing one; a rehearsal with a
  // key the bundle does not hold would prove nothing, so anything new is an error.
  const { ensureKeys } = await import('../keys/store.js');
  const notes: string[] = [];
  const keys = await ensureKeys(config, previous, opts.now ?? new Date(), { warn: (m) => notes.push(m) });
  const missing = keys.files.filter((f) => f.mode === 0o600 && !files.get(f.path)?.equals(f.data)).map((f) => f.path);
  if (notes.length > 0 || missing.length > 0) {
    throw bundleIssue(
      `the bundle lacks keys the rehearsal needs (${[...missing, ...notes].join('; ')}); run selfmail init --out ${dir} again first — the rehearsal never generates keys`,
    );
  }

  const { parseUsersFile, hashPassword, parsePasswordFile } = await import('../mail/passwords.js');
  const stored = parseUsersFile(files.get('dovecot/users'));
  const passwordHashes = new Map<Email, string>();
  for (const u of config.users) {
    const h = stored.get(u);
    if (!h) throw bundleIssue(`dovecot/users has no password hash for ${u}; run selfmail init --out ${dir} with a password for it`);
    passwordHashes.set(u, h);
  }

  const real: Mailbox[] = [];
  if (opts.passwordFile !== undefined) {
    const text = opts.passwordFile === '-' ? await readStdin() : await readFile(opts.passwordFile, 'utf8').catch((e: NodeJS.ErrnoException) => {
      throw new InputError([{ field: '--password-file', message: `cannot be read (${e.code ?? e.message})` }]);
    });
    const parsed = parsePasswordFile(text);
    const issues = parsed.issues.map((message) => ({ field: '--password-file', message }));
    for (const [address, password] of parsed.passwords) {
      if (!config.users.includes(address)) issues.push({ field: '--password-file', message: `${address} is not a mailbox of this bundle` });
      else real.push({ address, password, own: false });
    }
    if (issues.length > 0) throw new InputError(issues);
    real.sort((x, y) => (x.address < y.address ? -1 : 1));
  }

  const names = rehearsalAddresses(config);
  const a: Mailbox = { address: names.a, password: randomBytes(18).toString('base64url'), own: true };
  const b: Mailbox = { address: names.b, password: randomBytes(18).toString('base64url'), own: true };
  const [ha, hb] = await Promise.all([hashPassword(a.password), hashPassword(b.password)]);
  passwordHashes.set(a.address, ha);
  passwordHashes.set(b.address, hb);
  const rehearsalConfig: Config = { ...config, users: [...config.users, a.address, b.address] };
  return { dir, config, rehearsalConfig, keys, previous, passwordHashes, a, b, real, files };
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}
