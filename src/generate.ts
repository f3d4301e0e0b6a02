/**
 * Generating (or updating) a bundle: the request's layers → Config → pipeline → checks → atomic
 * write → summary. `init`, `keys rotate|retire` and `dns resign` all end here, so every way of
 * changing a bundle validates and writes it the same way.
 */
import type { InputIssue } from './errors.js';
import { InputError, RefusalError } from './errors.js';
import { type RawInput, type SourcedInput, overlay, sourced } from './config/raw.js';
import type { Config, DomainName, Email } from './config/types.js';
import { parseEmail } from './config/values.js';
import { type Io, countedOnce } from './cli/io.js';
import { type DiskBundle, type WriteResult, MANIFEST, readBundle, writeBundle } from './bundle/write.js';
import type { PreviousBundle } from './bundle/types.js';
import type { KeySet } from './keys/types.js';
import type { GivenKey } from './openpgp/publish.js';

/** Where a request's values come from, lowest precedence first: this machine's release, demo, bundle, file, flags. */
export interface Layers {
  flags: SourcedInput;
  configFile?: string;
  demo?: RawInput | undefined;
}

/** Ask the user for what is still missing (the wizard); returns the completed request. */
export type Ask = (
  input: SourcedInput,
  passwords: Map<string, string>,
  io: Io,
  /** Mailboxes whose password hash the previous bundle holds. */
  hashed?: ReadonlySet<string>,
) => Promise<{ input: SourcedInput; passwords: Map<string, string> }>;

/** What an interactive run shows once the bundle is written (the wizard's end screen). */
export type EndScreen = (done: { config: Config; keys: KeySet; summary: Summary }, io: Io) => Promise<void>;

export interface GenerateRequest {
  out: string;
  layers: Layers;
  passwords: Map<string, string>;
  passwordIssues: InputIssue[];
  /**
   * OpenPGP key files the CLI read (`--openpgp-key EMAIL=FILE`, a config file's `openpgpKeys`), by
   * address as written; judged with the rest before anything is built (src/openpgp/publish.ts).
   */
  openpgpKeys?: Map<string, GivenKey>;
  /** Key files that could not be read (named by flag and path). */
  openpgpKeyIssues?: InputIssue[];
  interactive: boolean;
  demo: boolean;
  ask?: Ask;
  endScreen?: EndScreen;
  rotateDkim?: DomainName[];
  retireDkimSelectors?: string[];
  /** `keys rotate tls`: the next TLS key serves, a new next key is made (`immediately`: without waiting for its TLSA to spread). */
  rotateTls?: { immediately: boolean };
  /** `keys rotate dnssec`: a ZSK rollover now, a KSK rollover, or its end once the parent serves the new DS. */
  rotateDnssec?: { step: 'zsk' | 'ksk' | 'parent-confirmed'; zones: DomainName[] };
  /** The clock; tests pass a fixed date. */
  now?: Date;
}

export interface Summary {
  ok: true;
  bundle: string;
  changed: boolean;
  files: Array<{ path: string; role: string; mode: string; changed: boolean }>;
  removed: string[];
  ds: string[];
  warnings: string[];
}

/** Merge the layers into one request, remembering where each value came from. */
export async function gatherInput(layers: Layers, previousYaml: Buffer | undefined): Promise<SourcedInput> {
  const [{ parseConfigText, loadConfigFile }, { hostRelease }] = await Promise.all([import('./config/load.js'), import('./config/release.js')]);
  // Unless told otherwise (--target, or the bundle's own record), write for this machine's release.
  const host = await hostRelease();
  let input: SourcedInput = sourced(host.release ? { target: host.release } : {}, 'default');
  if (layers.demo) input = overlay(input, sourced(layers.demo, 'default'));
  if (previousYaml) input = overlay(input, sourced(await parseConfigText(previousYaml.toString('utf8'), 'selfmail.yaml'), 'bundle'));
  if (layers.configFile) input = overlay(input, sourced(await loadConfigFile(layers.configFile), 'file', layers.configFile));
  return overlay(input, layers.flags);
}

/** Passwords keyed by canonical mailbox; addresses that are not mailboxes are input errors. */
function canonicalPasswords(config: Config, given: Map<string, string>): { passwords: Map<Email, string>; issues: InputIssue[] } {
  const passwords = new Map<Email, string>();
  const issues: InputIssue[] = [];
  for (const [addr, pw] of given) {
    const parsed = parseEmail(addr);
    if (!parsed.ok || !config.users.includes(parsed.value)) {
      issues.push({ field: '--password-file', message: `has a password for ${JSON.stringify(addr)}, which is not one of the mailboxes (--user)` });
      continue;
    }
    passwords.set(parsed.value, pw);
  }
  return { passwords, issues };
}

/**
 * The certificate this host serves for the bundle's TLS key, where apply installs it and
 * selfmail-acme renews it: once a CA issued it, the bundle's MTA-STS policy says `enforce`.
 */
async function readInstalledCert(): Promise<Buffer | undefined> {
  const [{ readFile }, { systemPathOf }] = await Promise.all([import('node:fs/promises'), import('./bundle/layout.js')]);
  try {
    return await readFile(systemPathOf('keys/tls/cert.pem'));
  } catch {
    return undefined;
  }
}

/** SSHFP of this machine's SSH host keys, when it is the mail host of `config`. */
async function hostSshfp(config: Config): Promise<string[]> {
  const { localSshfp } = await import('./ssh/sshfp.js');
  return localSshfp([config.listenIpv4, config.listenIpv6, config.ipv4, config.ipv6].filter((a): a is NonNullable<typeof a> => a !== undefined));
}

/** SSHFP of this machine's SSH host keys for a bundle's selfmail.yaml: when this machine is its mail host. */
async function sshfpOfYaml(): Promise<(yaml: Buffer) => string[]> {
  const { hostAddressesOfYaml, localSshfp } = await import('./ssh/sshfp.js');
  return (yaml) => localSshfp(hostAddressesOfYaml(yaml.toString('utf8')));
}

/** Run the whole generation; returns the exit code. */
export async function generate(req: GenerateRequest, io: Io): Promise<number> {
  let interrupted = false;
  const onSigint = () => {
    interrupted = true;
  };
  process.on('SIGINT', onSigint);
  try {
    return await generateInner(req, io, () => interrupted);
  } finally {
    process.off('SIGINT', onSigint);
  }
}

/**
 * One run, in four steps a reader can take one at a time: the quick answer when nothing was asked
 * and nothing is due; the request resolved into a Config (every problem at once); the bundle built
 * and checked with the real tools; the write and what is said about it.
 */
async function generateInner(req: GenerateRequest, io: Io, isInterrupted: () => boolean): Promise<number> {
  const started = Date.now();
  const lap = (what: string) => {
    if (process.env.SELFMAIL_DEBUG) io.warn(`[${Date.now() - started} ms] ${what} (rss ${Math.round(process.memoryUsage.rss() / 2 ** 20)} MB)`);
  };
  const now = req.now ?? new Date();
  const installedCert = await readInstalledCert();
  if (nothingAsked(req) && (await quickAnswer(req.out, now, installedCert, io))) return 0;

  const disk = await readBundle(req.out);
  if (disk.exists && disk.files.size > 0 && !disk.files.has(MANIFEST) && !disk.files.has('selfmail.yaml')) {
    throw new InputError([{ field: '--out', message: `${req.out} exists and is not a selfmail bundle (no MANIFEST.sha256 or selfmail.yaml); choose an empty or new folder` }]);
  }
  if (nothingAsked(req) && disk.exists) {
    // No stat record (a copied bundle, an older build's): the same answer from every file's bytes.
    const [{ buildId, unchangedState }, { mtaStsModeFor }] = await Promise.all([import('./bundle/state.js'), import('./web/mtasts.js')]);
    const state = unchangedState(disk, await buildId(), now, (cert) => mtaStsModeFor(installedCert, cert, now), await sshfpOfYaml());
    if (state) return reportUnchanged(req.out, state, async (p) => disk.files.get(p)?.data, io);
  }

  const resolved = await resolveRequest(req, disk, io);
  const buildInput = {
    ...resolved,
    previous: { dir: req.out, read: (p: string) => disk.files.get(p)?.data } satisfies PreviousBundle,
    now,
    ...(req.rotateDkim ? { rotateDkim: req.rotateDkim } : {}),
    ...(req.retireDkimSelectors ? { retireDkimSelectors: req.retireDkimSelectors } : {}),
    ...(req.rotateTls ? { rotateTls: req.rotateTls } : {}),
    ...(req.rotateDnssec ? { rotateDnssec: req.rotateDnssec } : {}),
    ...(installedCert ? { installedCert } : {}),
    sshfp: await hostSshfp(resolved.config),
  };
  // On a terminal, phases rewrite one progress line; in a log, each is a plain line.
  const step = (s: string) => (io.interactive && io.progress ? io.progress(s) : io.say(s));
  const built = await buildChecked({ ...buildInput, ...(io.progress ? { progress: io.progress } : {}) }, disk, io, step, lap);

  step('Writing the bundle…');
  const result = await writeBundle(disk, built.files, { interrupted: isInterrupted });
  const { recordStats } = await import('./bundle/state.js');
  await recordStats(req.out);
  lap('written');
  return report(req, resolved.config, built, result, io);
}

/** Nothing new asked for: no flag, file, password, prompt or key action. */
function nothingAsked(req: GenerateRequest): boolean {
  return (
    Object.keys(req.layers.flags.values).length === 0 &&
    !req.layers.configFile &&
    req.passwords.size === 0 &&
    req.passwordIssues.length === 0 &&
    (req.openpgpKeys?.size ?? 0) === 0 &&
    (req.openpgpKeyIssues?.length ?? 0) === 0 &&
    !req.interactive &&
    !req.rotateDkim &&
    !req.rotateTls &&
    !req.rotateDnssec &&
    !req.retireDkimSelectors
  );
}

/**
 * When the bundle is exactly what this build wrote last time and no date-bound work is due, a
 * full run would change nothing: say so without doing it (true when said).
 */
async function quickAnswer(out: string, now: Date, installedCert: Buffer | undefined, io: Io): Promise<boolean> {
  const [{ buildId, unchangedOnDisk }, { mtaStsModeFor }] = await Promise.all([import('./bundle/state.js'), import('./web/mtasts.js')]);
  const found = await unchangedOnDisk(out, await buildId(), now, (cert) => mtaStsModeFor(installedCert, cert, now), await sshfpOfYaml());
  if (!found) return false;
  await reportUnchanged(out, found.state, found.read, io);
  return true;
}

/**
 * The request resolved: the layers merged (and the wizard's answers), the Config, the passwords
 * by mailbox, the OpenPGP keys by mailbox. Every problem, passwords and key files included, is
 * reported at once, before any key is made; a private OpenPGP key makes it a refusal (exit 3).
 */
async function resolveRequest(
  req: GenerateRequest,
  disk: DiskBundle,
  io: Io,
): Promise<{ config: Config; passwords: Map<Email, string>; warnings: string[]; openpgpKeys: Map<Email, Buffer> }> {
  let input = await gatherInput(req.layers, disk.files.get('selfmail.yaml')?.data);
  let given = req.passwords;
  const { parseUsersFile } = await import('./mail/passwords.js');
  const hashed = parseUsersFile(disk.files.get('dovecot/users')?.data);
  if (req.interactive && req.ask) {
    ({ input, passwords: given } = await req.ask(input, given, io, new Set(hashed.keys())));
  }

  const [{ resolveConfig }, { chooseKeys, judgeGivenKeys }] = await Promise.all([import('./config/schema.js'), import('./openpgp/publish.js')]);
  // The key files are judged whatever else is wrong with the request: a private key is refused
  // (principle 8), and every other problem with them is said with the rest.
  const judged = judgeGivenKeys(req.openpgpKeys ?? new Map<string, GivenKey>());
  const keyIssues = [...(req.openpgpKeyIssues ?? []), ...judged.issues];
  const keyRefusals = judged.refusals;
  /** Mailboxes that have neither a password this run nor a hash from the last one. */
  const givenFor = (u: string) =>
    [...given.keys()].some((k) => {
      const p = parseEmail(k);
      return p.ok && p.value === u;
    });
  const unpassworded = (users: readonly string[]): InputIssue[] =>
    req.demo
      ? []
      : users
          .filter((u) => !givenFor(u) && !hashed.has(u as Email))
          .map((u) => ({ field: '--password-file', message: noPassword(u) }));
  let resolved;
  try {
    resolved = resolveConfig(input);
  } catch (err) {
    // Every problem at once: the password file's, the key files', and the mailboxes (those that are valid) without a password.
    if (err instanceof InputError) {
      const users = (input.values.users ?? []).map((u) => parseEmail(u)).flatMap((p) => (p.ok ? [p.value] : []));
      const issues = [...err.issues, ...req.passwordIssues, ...keyIssues, ...unpassworded(users)];
      if (keyRefusals.length > 0) throw new RefusalError(keyRefusals, issues);
      throw new InputError(issues);
    }
    if (err instanceof RefusalError) throw new RefusalError([...err.refusals, ...keyRefusals], [...err.issues, ...keyIssues]);
    throw err;
  }
  const { config, warnings } = resolved;
  const { passwords, issues } = canonicalPasswords(config, given);
  issues.unshift(...req.passwordIssues);
  if (req.demo) {
    // The demo mailbox gets a random password that is hashed and then forgotten: no one can log
    // in with it, and no cleartext is kept anywhere. Its hash is reused on later runs.
    const { randomBytes } = await import('node:crypto');
    for (const u of config.users) {
      if (!passwords.has(u) && !hashed.has(u)) passwords.set(u, randomBytes(24).toString('base64url'));
    }
  }
  // A mailbox without a password this run nor a hash from the last one: said now, with the rest.
  issues.push(...unpassworded(config.users.filter((u) => !passwords.has(u))));
  const chosen = chooseKeys(config.openpgpKeys, judged, (p) => disk.files.get(p)?.data);
  issues.push(...keyIssues, ...chosen.issues);
  const refused = [...keyRefusals, ...chosen.refusals];
  if (refused.length > 0) throw new RefusalError(refused, issues);
  if (issues.length > 0) throw new InputError(issues);
  return { config, passwords, warnings, openpgpKeys: chosen.keys };
}

const noPassword = (u: string) => `has no password for the mailbox ${u}; add a line "${u}:<password>" (a mailbox never gets a default password)`;

type BuildInput = import('./pipeline.js').BuildInput;
type Built = import('./pipeline.js').Built;

/**
 * Keys and files built in memory, then checked with the real tools — only the services whose
 * files (or the keys their checks read) changed, everything when the build of selfmail did — and
 * the state file that records it.
 */
async function buildChecked(buildInput: BuildInput, disk: DiskBundle, io: Io, step: (s: string) => void, lap: (s: string) => void): Promise<Built> {
  // Every program the run needs, named at once before any key is made.
  const { INIT_TOOLS, JOURNAL_MODULE, requireTools } = await import('./tools/preflight.js');
  await requireTools(INIT_TOOLS, 'selfmail init', [JOURNAL_MODULE]);
  const { buildBundle, checkBundle, MissingPasswords } = await import('./pipeline.js');
  let built: Built;
  step('Generating keys and configuration…');
  try {
    built = await buildBundle(buildInput);
  } catch (err) {
    if (err instanceof MissingPasswords) throw new InputError(err.users.map((u) => ({ field: '--password-file', message: noPassword(u) })));
    throw err;
  }
  lap('built in memory');

  const { buildId, previousState, stateFile, STATE_PATH } = await import('./bundle/state.js');
  const build = await buildId();
  const last = previousState(disk.files.get(STATE_PATH)?.data);
  // Until checked otherwise, what the last run could not check here stays unchecked.
  built.files.push(stateFile(built.files, build, buildInput.warnings, built.mtaSts, last?.unchecked ?? [], built.sshfp, buildInput.now));
  const { manifestOf } = await import('./bundle/write.js');
  const unchanged =
    disk.exists &&
    built.files.every((f) => {
      const old = disk.files.get(f.path);
      return old && old.mode === f.mode && old.data.equals(f.data);
    }) &&
    disk.files.get(MANIFEST)?.data.equals(manifestOf(built.files).data);
  if (unchanged) return built;
  step('Checking the generated configuration with the real tools…');
  const outcome = await checkBundle(
    built,
    buildInput,
    { everything: !last || last.build !== build, unchecked: last?.unchecked ?? [] },
    (done, total, name) => io.progress?.(`Checking with the real tools: ${done}/${total} (${name})`),
  );
  // The checks build each module again: the warnings it gave the first time are not new.
  built.warnings.push(...outcome.warnings.filter((w) => !built.warnings.includes(w)));
  const files = built.files.filter((f) => f.path !== STATE_PATH);
  built.files = [...files, stateFile(files, build, buildInput.warnings, built.mtaSts, outcome.unchecked, built.sshfp, buildInput.now)];
  lap(`checked (${outcome.checked.join(', ') || 'nothing changed that a check reads'})`);
  return built;
}

/** The summary (JSON on --json), the warnings once each, the DS records that changed, one last line. */
async function report(req: GenerateRequest, config: Config, built: Built, result: WriteResult, io: Io): Promise<number> {
  const changedSet = new Set(result.changed);
  const ds = built.keys.dnssec.filter((k) => k.ds && k.remove === undefined).map((k) => `${k.zone}. IN DS ${k.ds}`);
  const summary: Summary = {
    ok: true,
    bundle: req.out,
    changed: result.changed.length + result.removed.length > 0,
    files: [...built.files]
      .sort((a, b) => (a.path < b.path ? -1 : 1))
      .map((f) => ({ path: f.path, role: f.role, mode: f.mode.toString(8).padStart(4, '0'), changed: changedSet.has(f.path) })),
    removed: result.removed,
    ds,
    warnings: built.warnings,
  };
  for (const f of result.foreign) summary.warnings.push(`${f} was not written by selfmail; kept as found`);

  if (io.jsonMode) io.json(summary);
  for (const w of countedOnce(summary.warnings)) io.warn(`warning: ${w}`);
  if (req.interactive && req.endScreen) {
    await req.endScreen({ config, keys: built.keys, summary }, io);
  } else {
    // Only what changed: the DS of a zone whose key signing key is new this run.
    const newDs = built.keys.dnssec.filter((k) => k.ds && k.remove === undefined && changedSet.has(`dns/${k.zone}.ds`)).map((k) => `${k.zone}. IN DS ${k.ds}`);
    if (newDs.length > 0) {
      io.say('Give these DS records to your registrar (REPORT.md explains the next steps):');
      for (const d of newDs) io.say(`  ${d}`);
    } else if (ds.length > 0) io.say(`The DS records at your registrar stay as they are (dns/*.ds; REPORT.md).`);
    else io.say('Next steps are in REPORT.md.');
  }
  if (summary.changed) io.say(`Bundle written to ${req.out}: ${result.changed.length} file(s) changed, ${result.removed.length} removed.`);
  else io.say(`Nothing changed in ${req.out}.`);
  return 0;
}

/** The summary of a run that found nothing to do (the quick path): the same shape as a full run's. */
async function reportUnchanged(
  out: string,
  state: import('./bundle/state.js').BundleState,
  read: (path: string) => Promise<Buffer | undefined>,
  io: Io,
): Promise<number> {
  const ds: string[] = [];
  const dsFiles = state.files.map(([path]) => path).filter((p) => p.startsWith('dns/') && p.endsWith('.ds'));
  for (const data of await Promise.all(dsFiles.map(read))) {
    for (const line of data?.toString('utf8').split('\n') ?? []) {
      const m = /^(\S+)\s+(?:\d+\s+)?IN\s+DS\s+(.+)$/.exec(line.trim());
      if (m) ds.push(`${m[1]} IN DS ${m[2]}`);
    }
  }
  const summary: Summary = {
    ok: true,
    bundle: out,
    changed: false,
    files: state.files.map(([path, mode, role]) => ({ path, role, mode: mode.padStart(4, '0'), changed: false })),
    removed: [],
    ds,
    warnings: state.warnings,
  };
  if (io.jsonMode) io.json(summary);
  for (const w of countedOnce(summary.warnings)) io.warn(`warning: ${w}`);
  if (ds.length > 0) io.say(`The DS records at your registrar stay as they are (dns/*.ds; REPORT.md).`);
  io.say(`Nothing changed in ${out}.`);
  return 0;
}
