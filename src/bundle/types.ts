import type { Config, Email } from '../config/types.js';
import type { KeySet } from '../keys/types.js';
import type { Profile } from './layout.js';
import type { MtaStsMode } from '../web/mtasts.js';

/** One file of the bundle, in memory: nothing is on disk until the writer runs. */
export interface BundleFile {
  /** Relative to the bundle root, with forward slashes: `postfix/main.cf`. */
  path: string;
  data: Buffer;
  /** File mode: 0o600 for anything secret (private keys, password hashes, TSIG), else 0o644. */
  mode: number;
  /** What the file is for, one short phrase (shown in --json output). */
  role: string;
}

/** Read access to the bundle as it is on disk before this run (empty on a first run). */
export interface PreviousBundle {
  /** The bundle root, whether or not it exists yet. */
  readonly dir: string;
  read(path: string): Buffer | undefined;
}

/** Everything a service module may look at while building its files. */
export interface BuildContext {
  config: Config;
  keys: KeySet;
  previous: PreviousBundle;
  /** Where and how the configs will run: production, or the rehearsal's loopback folder. */
  profile: Profile;
  /** The run's clock, injected so tests are deterministic. */
  now: Date;
  /** Password hashes (Dovecot scheme prefix included, e.g. `{ARGON2ID}$argon2id$…`) by mailbox. */
  passwordHashes: Map<Email, string>;
  /** Non-fatal remarks collected for the summary and REPORT.md. */
  warnings: string[];
  /** `enforce` once a CA-issued certificate for the bundle's key is installed on this host. */
  mtaSts: MtaStsMode;
  /** SSHFP records of this host's own SSH host keys (`4 2 <hex>`), when init runs on the mail host. */
  sshfp?: string[];
  /**
   * The OpenPGP public keys (binary) of the mailboxes in `config.openpgpKeys`, validated this run;
   * a mailbox missing here takes the bundle's own copy (src/openpgp/service.ts).
   */
  openpgpKeys?: ReadonlyMap<Email, Buffer>;
  /** A progress line for long steps (signing 100 zones): `Signing zones: 12/100`. */
  progress?: (line: string) => void;
}

/** A service module: pure apart from reading `previous`; returns the files it owns. */
export type Contributor = (ctx: BuildContext) => Promise<BundleFile[]> | BundleFile[];

/**
 * One service of the bundle (postfix, dovecot, nsd, …): how it builds its files, and how the real
 * tool checks them. `check` runs after `stageTree` installed the files under `ctx.profile.root`
 * (a throwaway folder, rendered with that root), and throws ToolError with the tool's own words.
 */
export interface ServiceModule {
  name: string;
  build: Contributor;
  /** Resolves to 'not-checked' when the check cannot judge the files on this machine (and warns why). */
  check?: (ctx: BuildContext, files: BundleFile[]) => Promise<void | 'not-checked'>;
}

export function textFile(path: string, text: string, role: string, mode = 0o644): BundleFile {
  return { path, data: Buffer.from(text, 'utf8'), mode, role };
}
