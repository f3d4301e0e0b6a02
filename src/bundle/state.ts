/**
 * What the last run was built from, so that a re-run with nothing to change can stop early.
 *
 * `selfmail.state.json` records the build of selfmail that wrote the bundle, a hash of the
 * selfmail.yaml it was built from, until when nothing time-bound needs redoing (the earliest
 * RRSIG nearing expiry, the bootstrap certificate nearing renewal), each file's mode and role, and
 * the configuration's warnings, and the MTA-STS mode (which follows the certificate installed on
 * the host). When a later `init` brings no new input, runs the same build, and
 * every file still matches MANIFEST.sha256 and its mode, the result of a full run is known in
 * advance: nothing would change. Everything here is derived from the bundle's own bytes, so the
 * file is as deterministic as the rest of the bundle. The state is authenticated (`mac`): the
 * quick path trusts nothing that a hand edit could have made consistent.
 */
import { createHash, createHmac, X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { RESIGN_MARGIN_DAYS, earliestExpiry } from '../dns/sign.js';
import { RENEW_BEFORE_DAYS } from '../keys/tls.js';
import type { BundleFile } from './types.js';
import type { MtaStsMode } from '../web/mtasts.js';
import { MANIFEST, manifestPaths } from './write.js';

export const STATE_PATH = 'selfmail.state.json';
const DAY = 86_400_000;

export interface BundleState {
  build: string;
  input: string;
  validUntil: string;
  /** Every file this run wrote, with its mode, role and SHA-256 (the manifest is only a copy). */
  files: Array<[path: string, mode: string, role: string, sha256: string]>;
  warnings: string[];
  /** The MTA-STS mode the bundle publishes: it follows the certificate installed on the host. */
  mtaSts: MtaStsMode;
  /** Services whose check could not run on the machine that wrote the bundle (apply checks them). */
  unchecked: string[];
  /**
   * HMAC-SHA256 of everything above, keyed with a digest of the bundle's TLS private key: a hand
   * edit that also rewrites MANIFEST.sha256, or this file, cannot make a re-run skip the work.
   */
  mac: string;
}

/** The key of the state's MAC: derived from a secret only the bundle holds (keys/tls/key.pem, 0600). */
export const STATE_KEY_SOURCE = 'keys/tls/key.pem';

function stateMac(state: Omit<BundleState, 'mac'>, secret: Buffer): string {
  const key = createHash('sha256').update('selfmail state v1\0').update(secret).digest();
  return createHmac('sha256', key).update(JSON.stringify(state)).digest('hex');
}

/** The id of this build of selfmail (written by scripts/bundle.mjs); 'dev' when run from sources. */
export async function buildId(): Promise<string> {
  try {
    return (await readFile(new URL('../build-id.txt', import.meta.url), 'utf8')).trim();
  } catch {
    return 'dev';
  }
}

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

/**
 * The state file for a freshly built bundle. `validUntil` is when a run would first do something
 * because of the date alone: re-sign a zone (RESIGN_MARGIN_DAYS before its earliest RRSIG
 * expires) or renew the bootstrap certificate (RENEW_BEFORE_DAYS before it expires).
 */
export function stateFile(files: readonly BundleFile[], build: string, warnings: readonly string[], mtaSts: MtaStsMode, unchecked: readonly string[] = []): BundleFile {
  let until = Number.POSITIVE_INFINITY;
  for (const f of files) {
    if (f.path.startsWith('dns/') && f.path.endsWith('.zone.signed')) {
      const exp = earliestExpiry(f.data.toString('utf8'));
      until = Math.min(until, exp ? exp.getTime() - RESIGN_MARGIN_DAYS * DAY : 0);
    } else if (f.path === 'keys/tls/cert.pem') {
      until = Math.min(until, new Date(new X509Certificate(f.data).validTo).getTime() - RENEW_BEFORE_DAYS * DAY);
    }
  }
  const yaml = files.find((f) => f.path === 'selfmail.yaml');
  const secret = files.find((f) => f.path === STATE_KEY_SOURCE)?.data ?? Buffer.alloc(0);
  const body: Omit<BundleState, 'mac'> = {
    build,
    input: yaml ? sha256(yaml.data) : '',
    validUntil: Number.isFinite(until) ? new Date(until).toISOString() : '9999-12-31T00:00:00.000Z',
    files: files
      .filter((f) => f.path !== STATE_PATH)
      .map((f) => [f.path, f.mode.toString(8), f.role, sha256(f.data)] as [string, string, string, string])
      .sort((a, b) => (a[0] < b[0] ? -1 : 1)),
    warnings: [...warnings],
    mtaSts,
    unchecked: [...unchecked],
  };
  const state: BundleState = { ...body, mac: stateMac(body, secret) };
  return { path: STATE_PATH, data: Buffer.from(`${JSON.stringify(state, null, 1)}\n`), mode: 0o644, role: 'what this bundle was built from (lets an unchanged re-run stop early)' };
}

/** The last run's build and what it could not check, read back without trusting more than that. */
export function previousState(raw: Buffer | undefined): { build: string; unchecked: string[] } | undefined {
  if (!raw) return undefined;
  try {
    const s = JSON.parse(raw.toString('utf8')) as Partial<BundleState>;
    if (typeof s.build !== 'string') return undefined;
    return { build: s.build, unchecked: Array.isArray(s.unchecked) ? s.unchecked.filter((u): u is string => typeof u === 'string') : [] };
  } catch {
    return undefined;
  }
}

/**
 * The recorded state when `disk` is exactly what the last run wrote, with the same build, still
 * before `validUntil`; undefined when a full run is needed.
 */
export function unchangedState(
  disk: { files: Map<string, { data: Buffer; mode: number }> },
  build: string,
  now: Date,
  mtaSts: (bundleCert: Buffer) => MtaStsMode,
): BundleState | undefined {
  if (build === 'dev') return undefined;
  const raw = disk.files.get(STATE_PATH);
  const yaml = disk.files.get('selfmail.yaml');
  const manifest = disk.files.get(MANIFEST);
  if (!raw || !yaml || !manifest) return undefined;
  let state: BundleState;
  try {
    state = JSON.parse(raw.data.toString('utf8')) as BundleState;
  } catch {
    return undefined;
  }
  const { mac, ...body } = state;
  const secret = disk.files.get(STATE_KEY_SOURCE)?.data;
  if (!secret || typeof mac !== 'string' || mac !== stateMac(body, secret)) return undefined;
  if (state.build !== build || state.input !== sha256(yaml.data)) return undefined;
  if (!(now.getTime() < Date.parse(state.validUntil))) return undefined;
  // A certificate installed (or gone) on the host since changes what the bundle publishes.
  const cert = disk.files.get('keys/tls/cert.pem');
  try {
    if (state.mtaSts !== (cert ? mtaSts(cert.data) : 'testing')) return undefined;
  } catch {
    return undefined;
  }
  const listed = manifestPaths(manifest.data);
  const lines = new Map<string, string>();
  for (const line of manifest.data.toString('utf8').split('\n')) {
    const m = /^([0-9a-f]{64}) {2}(.+)$/.exec(line);
    if (m) lines.set(m[2]!, m[1]!);
  }
  if (state.files.length + 1 !== listed.size) return undefined;
  for (const [path, mode, , hash] of state.files) {
    const f = disk.files.get(path);
    // The bytes against the state's own hash, then the manifest against it: both must be this run's.
    if (!f || f.mode.toString(8) !== mode || sha256(f.data) !== hash || lines.get(path) !== hash) return undefined;
  }
  if (lines.get(STATE_PATH) !== sha256(raw.data)) return undefined;
  return state;
}
