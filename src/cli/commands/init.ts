/**
 * `selfmail init`: flags, config file, previous bundle (and the wizard on a terminal) → Config →
 * the pipeline → an atomic write → the real tools' checks → a summary.
 *
 * Each answer is resolved in one order: flag → config file → the previous bundle's selfmail.yaml
 * → (wizard, when interactive) → the documented default, or an error naming the flag.
 */
import { readFile, stat } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { InputError, type InputIssue } from '../../errors.js';
import { type RawInput, type SourcedInput, openpgpEntryAddress, sourced } from '../../config/raw.js';
import type { GivenKey } from '../../openpgp/publish.js';
import type { Io } from '../io.js';
import { parseCommandArgs } from '../usage.js';

export const INIT_OPTIONS = {
  domain: { type: 'string', multiple: true },
  hostname: { type: 'string' },
  ipv4: { type: 'string' },
  ipv6: { type: 'string' },
  'listen-ipv4': { type: 'string' },
  'listen-ipv6': { type: 'string' },
  ns: { type: 'string', multiple: true },
  admin: { type: 'string' },
  user: { type: 'string', multiple: true },
  'password-file': { type: 'string' },
  'admin-ssh-from': { type: 'string', multiple: true },
  ingress: { type: 'string' },
  'vps-ipv4': { type: 'string' },
  'vps-ipv6': { type: 'string' },
  'vps-wg-key': { type: 'string' },
  'acme-ca': { type: 'string' },
  'no-dnssec': { type: 'boolean' },
  target: { type: 'string' },
  'spam-lookups': { type: 'string', multiple: true },
  alias: { type: 'string', multiple: true },
  quota: { type: 'string', multiple: true },
  'backup-to': { type: 'string' },
  'backup-recipient': { type: 'string', multiple: true },
  'backup-host-key': { type: 'string' },
  'openpgp-key': { type: 'string', multiple: true },
  out: { type: 'string' },
  config: { type: 'string' },
  'non-interactive': { type: 'boolean' },
  json: { type: 'boolean' },
  demo: { type: 'boolean' },
  // Accepted only so that the refusal can explain itself (src/policy/refusals.ts).
  'tunnel-provider': { type: 'string' },
  'relay-host': { type: 'string' },
  'dkim-key': { type: 'string' },
  'tls-key': { type: 'string' },
  'dnssec-key': { type: 'string' },
  'dns-provider': { type: 'string' },
  upnp: { type: 'boolean' },
} as const;

export interface InitOptions {
  flags: SourcedInput;
  out: string;
  configFile?: string;
  passwordFile?: string;
  nonInteractive: boolean;
  demo: boolean;
}

/** argv → options. Unknown flags and missing flag values are input errors (exit 2). */
export function parseInitArgs(args: string[]): InitOptions {
  const parsed = parseCommandArgs('selfmail init', args, INIT_OPTIONS, false);
  const v = parsed.values;
  const raw: RawInput = {};
  if (v.domain) raw.domains = v.domain;
  if (v.hostname !== undefined) raw.hostname = v.hostname;
  if (v.ipv4 !== undefined) raw.ipv4 = v.ipv4;
  if (v.ipv6 !== undefined) raw.ipv6 = v.ipv6;
  if (v['listen-ipv4'] !== undefined) raw.listenIpv4 = v['listen-ipv4'];
  if (v['listen-ipv6'] !== undefined) raw.listenIpv6 = v['listen-ipv6'];
  if (v.ns) raw.ns = v.ns;
  if (v.admin !== undefined) raw.admin = v.admin;
  if (v.user) raw.users = v.user;
  if (v['admin-ssh-from']) raw.adminSshFrom = v['admin-ssh-from'];
  if (v.ingress !== undefined) raw.ingress = v.ingress;
  if (v['vps-ipv4'] !== undefined) raw.vpsIpv4 = v['vps-ipv4'];
  if (v['vps-ipv6'] !== undefined) raw.vpsIpv6 = v['vps-ipv6'];
  if (v['vps-wg-key'] !== undefined) raw.vpsWgKey = v['vps-wg-key'];
  if (v['acme-ca'] !== undefined) raw.acmeCa = v['acme-ca'];
  if (v['no-dnssec']) raw.dnssec = false;
  if (v.target !== undefined) raw.target = v.target;
  if (v['spam-lookups']) raw.spamLookups = v['spam-lookups'];
  if (v.alias) raw.aliases = v.alias;
  if (v.quota) raw.quotas = v.quota;
  if (v['backup-to'] !== undefined) raw.backupTo = v['backup-to'];
  if (v['backup-recipient']) raw.backupRecipients = v['backup-recipient'];
  if (v['backup-host-key'] !== undefined) raw.backupHostKey = v['backup-host-key'];
  if (v['openpgp-key']) raw.openpgpKeys = v['openpgp-key'];
  if (v['tunnel-provider'] !== undefined) raw.tunnelProvider = v['tunnel-provider'];
  if (v['relay-host'] !== undefined) raw.relayHost = v['relay-host'];
  if (v['dkim-key'] !== undefined) raw.dkimKey = v['dkim-key'];
  if (v['tls-key'] !== undefined) raw.tlsKey = v['tls-key'];
  if (v['dnssec-key'] !== undefined) raw.dnssecKey = v['dnssec-key'];
  if (v['dns-provider'] !== undefined) raw.dnsProvider = v['dns-provider'];
  if (v.upnp) raw.upnp = true;
  return {
    flags: sourced(raw, 'flag'),
    out: resolve(v.out ?? 'selfmail-bundle'),
    ...(v.config !== undefined ? { configFile: v.config } : {}),
    ...(v['password-file'] !== undefined ? { passwordFile: v['password-file'] } : {}),
    nonInteractive: Boolean(v['non-interactive']),
    demo: Boolean(v.demo),
  };
}

/** The demo setup: example.org on documentation addresses, one mailbox. */
export const DEMO: RawInput = {
  domains: ['example.org'],
  hostname: 'mail.example.org',
  ipv4: '192.0.2.25',
  ipv6: '2001:db8::25',
  users: ['demo@example.org'],
  adminSshFrom: ['198.51.100.0/24'],
};

/**
 * The text of `--password-file` (stdin for "-"), warning when other users can read the file;
 * InputError naming the flag when it cannot be read. Its content never appears in a message.
 */
export async function readPasswordFileText(path: string, io: Io): Promise<string> {
  try {
    if (path === '-') {
      const chunks: Buffer[] = [];
      for await (const c of process.stdin) chunks.push(c as Buffer);
      return Buffer.concat(chunks).toString('utf8');
    }
    const st = await stat(path);
    if (st.mode & 0o077) io.warn(`warning: --password-file ${path} can be read by other users of this machine (mode ${(st.mode & 0o777).toString(8)}); chmod 600 it`);
    return await readFile(path, 'utf8');
  } catch (err) {
    throw new InputError([{ field: '--password-file', message: `cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? 'error'}` }]);
  }
}

/** Read `--password-file` (or stdin for "-"); the passwords never appear in a message. */
export async function readPasswords(path: string, io: Io): Promise<{ passwords: Map<string, string>; issues: InputIssue[] }> {
  const text = await readPasswordFileText(path, io);
  const { parsePasswordFile } = await import('../../mail/passwords.js');
  const parsed = parsePasswordFile(text);
  return { passwords: parsed.passwords, issues: parsed.issues.map((message) => ({ field: '--password-file', message })) };
}

/** A key file larger than this is no exported public key (those are a few kilobytes); it is not read. */
export const MAX_KEY_FILE_BYTES = 1024 * 1024;

/**
 * The files of `EMAIL=FILE` entries, by address: the flags' (paths from the working folder), then
 * the config file's (paths from its folder) for addresses no flag names. `EMAIL=none` and a bare
 * `EMAIL` read nothing. The bytes are judged later (src/openpgp/publish.ts), never shown; a file
 * that cannot be read is an input error naming the flag and the path.
 */
export async function readOpenpgpKeys(flagEntries: readonly string[], configFile: string | undefined): Promise<{ keys: Map<string, GivenKey>; issues: InputIssue[] }> {
  const wanted: Array<{ address: string; file: string; path: string; field: string }> = [];
  const named = (entry: string) => {
    const eq = entry.indexOf('=');
    const file = eq < 0 ? '' : entry.slice(eq + 1).trim();
    return file === '' || file.toLowerCase() === 'none' ? undefined : { address: openpgpEntryAddress(entry), file };
  };
  for (const e of flagEntries) {
    const n = named(e);
    if (n) wanted.push({ ...n, path: resolve(n.file), field: '--openpgp-key' });
  }
  if (configFile !== undefined) {
    const { loadConfigFile } = await import('../../config/load.js');
    const byFlag = new Set(flagEntries.map(openpgpEntryAddress));
    for (const e of (await loadConfigFile(configFile)).openpgpKeys ?? []) {
      const n = named(e);
      if (n && !byFlag.has(n.address)) wanted.push({ ...n, path: resolve(dirname(configFile), n.file), field: `${configFile}: openpgpKeys` });
    }
  }
  const keys = new Map<string, GivenKey>();
  const issues: InputIssue[] = [];
  for (const w of wanted) {
    try {
      const st = await stat(w.path);
      if (!st.isFile()) {
        issues.push({ field: w.field, message: `${w.file} (for ${w.address}) is not a file; give the public key exported with gpg --export --armor ${w.address}` });
        continue;
      }
      if (st.size > MAX_KEY_FILE_BYTES) {
        issues.push({ field: w.field, message: `${w.file} (for ${w.address}) is ${st.size} bytes, far more than an exported public key; give the one of gpg --export --armor ${w.address}` });
        continue;
      }
      keys.set(w.address, { data: await readFile(w.path), field: w.field, file: w.file });
    } catch (err) {
      issues.push({ field: w.field, message: `cannot read ${w.file} (for ${w.address}): ${(err as NodeJS.ErrnoException).code ?? 'error'}` });
    }
  }
  return { keys, issues };
}

export async function run(args: string[], io: Io): Promise<number> {
  const opts = parseInitArgs(args);
  const { generate } = await import('../../generate.js');
  const layers = {
    flags: opts.flags,
    ...(opts.configFile ? { configFile: opts.configFile } : {}),
    demo: opts.demo ? DEMO : undefined,
  };
  const pw = opts.passwordFile ? await readPasswords(opts.passwordFile, io) : { passwords: new Map<string, string>(), issues: [] };
  const pgp = await readOpenpgpKeys(opts.flags.values.openpgpKeys ?? [], opts.configFile);
  const interactive = io.interactive && !opts.nonInteractive && !opts.demo;
  // The wizard (and inquirer with it) is loaded only when there is a terminal to ask on.
  const wizard = interactive ? await import('../../wizard/index.js') : undefined;
  const prompts = wizard ? { ask: wizard.runWizard, endScreen: wizard.showEndScreen } : {};
  return generate(
    { out: opts.out, layers, passwords: pw.passwords, passwordIssues: pw.issues, openpgpKeys: pgp.keys, openpgpKeyIssues: pgp.issues, interactive, demo: opts.demo, ...prompts },
    io,
  );
}
