/**
 * The one pipeline that every way of asking (flags, config file, wizard) ends in:
 * Config → keys → password hashes → each service's files → selfmail.yaml → (manifest, by the writer).
 * Pure apart from key and hash generation; nothing here touches the bundle on disk.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import type { Config, DomainName, Email } from './config/types.js';
import { toRaw } from './config/schema.js';
import { ToolError } from './errors.js';
import { type Profile, productionProfile } from './bundle/layout.js';
import { keyFilesUnder, stageTree } from './bundle/stage.js';
import type { BuildContext, BundleFile, PreviousBundle } from './bundle/types.js';
import type { KeySet } from './keys/types.js';
import { services } from './services.js';
import { type MtaStsMode, mtaStsModeFor } from './web/mtasts.js';

export interface BuildInput {
  config: Config;
  /** Cleartext passwords given this run (never stored). */
  passwords: Map<Email, string>;
  previous: PreviousBundle;
  now: Date;
  /** Warnings from the config resolution, carried into the summary and REPORT.md. */
  warnings: string[];
  rotateDkim?: DomainName[];
  retireDkimSelectors?: string[];
  rotateTls?: { immediately: boolean };
  /** `keys rotate dnssec`: a ZSK rollover now, a KSK rollover, or its end once the parent serves the new DS. */
  rotateDnssec?: { step: 'zsk' | 'ksk' | 'parent-confirmed'; zones: DomainName[] };
  /** The certificate installed on this host for the TLS key (`/etc/selfmail/tls/cert.pem`), if any. */
  installedCert?: Buffer;
  /** SSHFP records of this host's SSH host keys, when this machine is the mail host (src/ssh/sshfp.ts). */
  sshfp?: string[];
  /** The mailboxes' OpenPGP public keys (binary), validated before the build (src/openpgp/publish.ts). */
  openpgpKeys?: ReadonlyMap<Email, Buffer>;
  /** A progress line (a terminal's, rewritten in place) for the long steps: keys, zones. */
  progress?: (line: string) => void;
}

export interface Built {
  files: BundleFile[];
  /** Which service module wrote each file (the key store's files are nobody's). */
  owner: Map<string, string>;
  keys: KeySet;
  mtaSts: MtaStsMode;
  sshfp: string[];
  passwordHashes: Map<Email, string>;
  warnings: string[];
}

/** Users that have neither a password this run nor a hash in the previous bundle. */
export class MissingPasswords extends Error {
  constructor(readonly users: Email[]) {
    super(`no password for ${users.join(', ')}`);
  }
}

/** The bundle's own (bootstrap) certificate. */
function bundleCert(keys: KeySet): Buffer {
  const cert = keys.files.find((f) => f.path === keys.tls.certPath);
  if (!cert) throw new Error('the key set has no TLS certificate');
  return cert.data;
}

/** Build every file of the bundle in memory. */
export async function buildBundle(input: BuildInput): Promise<Built> {
  const [{ ensureKeys }, { resolvePasswordHashes }] = await Promise.all([
    import('./keys/store.js'),
    import('./mail/passwords.js'),
  ]);
  const warnings = [...input.warnings];
  const keyOptions = {
    warn: (m: string) => warnings.push(m),
    ...(input.progress ? { progress: (done: number, total: number) => input.progress?.(`Generating keys: ${done}/${total}`) } : {}),
    ...(input.rotateDkim ? { rotateDkim: input.rotateDkim } : {}),
    ...(input.retireDkimSelectors ? { retireDkimSelectors: input.retireDkimSelectors } : {}),
    ...(input.rotateTls ? { rotateTls: input.rotateTls } : {}),
    ...(input.rotateDnssec ? { rotateDnssec: input.rotateDnssec } : {}),
  };
  const [keys, hashed] = await Promise.all([
    ensureKeys(input.config, input.previous, input.now, keyOptions),
    resolvePasswordHashes(input.config.users, input.passwords, input.previous.read('dovecot/users')),
  ]);
  if (hashed.missing.length > 0) throw new MissingPasswords(hashed.missing);
  const ctx: BuildContext = {
    config: input.config,
    keys,
    previous: input.previous,
    profile: productionProfile(input.config),
    now: input.now,
    passwordHashes: hashed.hashes,
    warnings,
    mtaSts: mtaStsModeFor(input.installedCert, bundleCert(keys), input.now),
    sshfp: input.sshfp ?? [],
    ...(input.openpgpKeys ? { openpgpKeys: input.openpgpKeys } : {}),
    ...(input.progress ? { progress: input.progress } : {}),
  };
  const files: BundleFile[] = [...keys.files];
  const owner = new Map<string, string>();
  for (const service of await services()) {
    for (const f of await service.build(ctx)) {
      files.push(f);
      owner.set(f.path, service.name);
    }
  }
  files.push(await configFile(input.config));
  return { files, owner, keys, passwordHashes: hashed.hashes, warnings, mtaSts: ctx.mtaSts, sshfp: ctx.sshfp ?? [] };
}

/** `selfmail.yaml`: the resolved configuration with every default spelled out, and no secret. */
export async function configFile(config: Config): Promise<BundleFile> {
  const header = '# selfmail configuration (no secrets). Re-run with: selfmail init --out <this folder>\n';
  return {
    path: 'selfmail.yaml',
    data: Buffer.from(header + stringify(toRaw(config), { lineWidth: 0 })),
    mode: 0o644,
    role: 'the resolved configuration, re-read by the next run',
  };
}

/** What the checks did: the services checked, and those whose check cannot run on this machine. */
export interface CheckOutcome {
  checked: string[];
  /** Services left for apply to check on the host (a tool of another major version here). */
  unchecked: string[];
  warnings: string[];
}

/** The key files each service's check reads beside its own files: a change there concerns it too. */
const CHECK_READS_KEYS: Record<string, readonly string[]> = {
  rspamd: ['keys/tls/', 'keys/dkim/'],
};
const DEFAULT_KEY_READS = ['keys/tls/'] as const;

/**
 * The services whose check must run: those with a file that differs from the previous bundle, or
 * a key file their check reads that differs, or that the last run could not check here. With
 * `everything` (no previous state, another build of selfmail), all of them. Pure.
 */
export function servicesToCheck(
  built: Pick<Built, 'files' | 'owner'>,
  previous: Pick<PreviousBundle, 'read'>,
  names: readonly string[],
  opts: { everything: boolean; unchecked: readonly string[] },
): string[] {
  if (opts.everything) return [...names];
  const changed = built.files.filter((f) => !previous.read(f.path)?.equals(f.data)).map((f) => f.path);
  return names.filter((name) => {
    if (opts.unchecked.includes(name)) return true;
    const reads = CHECK_READS_KEYS[name] ?? DEFAULT_KEY_READS;
    return changed.some((p) => built.owner.get(p) === name || reads.some((k) => p.startsWith(k)));
  });
}

/**
 * Check the bundle with the real tools: render each service again for a throwaway root of its
 * own, lay it out there, and let the service's own check run (postfix check, doveconf -n,
 * nsd-checkzone, …). The checks are independent, so they run side by side; a separate root each
 * means no check ever reads a file another is writing. The first failure is reported; returns
 * what the checks could not judge here (the run's warnings say so).
 */
export async function checkBundle(
  built: Built,
  input: BuildInput,
  scope: { everything: boolean; unchecked: readonly string[] } = { everything: true, unchecked: [] },
  onCheck?: (done: number, total: number, name: string) => void,
): Promise<CheckOutcome> {
  if (process.getuid?.() !== 0) {
    throw new ToolError(
      'the checks with the real tools (postfix check, doveconf, rspamadm configtest, nsd-checkzone, …) run on a throwaway copy as root, ' +
        'and selfmail writes no bundle it has not checked: run selfmail init as root, on the mail host where the keys will be used. Nothing was written.',
      'selfmail',
    );
  }
  // The same templates, rendered on loopback and free high ports: config testers such as
  // nginx -t bind their listen addresses, and the generating machine need not own the host's
  // addresses, nor its vmail user.
  const { freeServicePorts, hasIpv6Loopback } = await import('./bundle/ports.js');
  const base: Profile = {
    ...productionProfile(input.config),
    listen: { ipv4: '127.0.0.1', ...(input.config.ipv6 && hasIpv6Loopback() ? { ipv6: '::1' } : {}) },
    ports: await freeServicePorts(),
    mailUser: { name: 'nobody', group: 'nogroup' },
  };
  const withCheck = (await services()).filter((m) => m.check);
  // Work in proportion to the change: a service whose files and keys are what the last run
  // checked is not checked again.
  const due = new Set(servicesToCheck(built, input.previous, withCheck.map((m) => m.name), scope));
  const mods = withCheck.filter((m) => due.has(m.name));
  const unchecked: string[] = [];
  let done = 0;
  // Seen from the checks, the bundle just built is the previous one: a module that reuses
  // previous bytes when its inputs are unchanged (the DNS module's signed zones) renders exactly
  // what was built instead of doing the work again.
  const builtFiles = new Map(built.files.map((f) => [f.path, f.data]));
  const previous: PreviousBundle = { dir: input.previous.dir, read: (p) => builtFiles.get(p) ?? input.previous.read(p) };
  const roots: string[] = [];
  const warnings: string[] = [];
  try {
    const results = await Promise.allSettled(
      mods.map(async (m) => {
        const root = await mkdtemp(join(tmpdir(), `selfmail-check-${m.name}-`));
        roots.push(root);
        const ctx: BuildContext = {
          config: input.config,
          keys: built.keys,
          previous,
          profile: { ...base, root },
          now: input.now,
          passwordHashes: built.passwordHashes,
          warnings,
          mtaSts: built.mtaSts,
          sshfp: built.sshfp,
          ...(input.openpgpKeys ? { openpgpKeys: input.openpgpKeys } : {}),
        };
        const files = await m.build(ctx);
        // The TLS key and certificate are read by several services; other keys are staged by
        // the checks of the services that read them.
        await stageTree([...keyFilesUnder(built.keys, 'keys/tls/'), ...files], root);
        const t = Date.now();
        if ((await m.check!(ctx, files)) === 'not-checked') unchecked.push(m.name);
        onCheck?.(++done, mods.length, m.name);
        if (process.env.SELFMAIL_DEBUG) process.stderr.write(`check ${m.name}: ${Date.now() - t} ms\n`);
      }),
    );
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
    return { checked: mods.map((m) => m.name), unchecked: unchecked.sort(), warnings };
  } finally {
    await Promise.all(roots.map((r) => rm(r, { recursive: true, force: true })));
  }
}
