/**
 * The backup format, and the rules for its inputs. Pure.
 *
 * A target folder holds only what its owner may see: `FORMAT` (the format's name), `objects/` (each
 * backed-up file's bytes, encrypted with age to the recipients, named by an HMAC of its content
 * under a key only the mail host holds, so that the target's owner cannot even test whether a
 * known file is in it) and `snapshots/` (each run's list of files, encrypted the same way). The
 * identity that opens them is born on the user's own device and never on the server; the
 * server only ever holds the recipients (public keys).
 */

export const FORMAT_LINE = 'selfmail-backup 1';
export const FORMAT_FILE = 'FORMAT';
export const OBJECTS_DIR = 'objects';
export const SNAPSHOTS_DIR = 'snapshots';

/** Where on the host each source is; `--root` prefixes them all. The bundle's own place is given by --bundle. */
export const SYSTEM_SOURCES = [
  { name: 'mail', path: '/var/vmail', why: 'the mailboxes (Maildirs and Sieve scripts)' },
  { name: 'dovecot', path: '/var/lib/dovecot', why: "Dovecot's state" },
  { name: 'rspamd', path: '/var/lib/rspamd', why: "rspamd's state" },
  { name: 'selfmail', path: '/var/lib/selfmail', why: "selfmail's own state (the backup's index key)" },
] as const;

/** The host's key for object names, 0600 in a 0700 folder. */
export const INDEX_KEY_PATH = '/var/lib/selfmail/backup/index.key';
/** What the last run saw of each file (size, mtime, inode → object), so a re-run reads only what changed. */
export const CACHE_PATH = '/var/lib/selfmail/backup/cache.json';

export interface SnapshotEntry {
  source: string;
  /** Path inside the source, `/`-separated; '' is the source's root. */
  rel: string;
  type: 'file' | 'dir' | 'symlink';
  mode: number;
  uid: number;
  gid: number;
  /** Files: bytes, sha256 of the plaintext, and the object holding them. */
  size?: number;
  sha256?: string;
  object?: string;
  /** Symlinks: where they point. */
  target?: string;
  mtimeMs: number;
}

export interface Snapshot {
  format: 1;
  created: string;
  hostname: string;
  sources: { name: string; path: string }[];
  entries: SnapshotEntry[];
}

/** `snapshots/<name>.age`: a UTC timestamp that sorts. */
export function snapshotName(now: Date): string {
  return now.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
}

export const SNAPSHOT_NAME_RE = /^\d{8}T\d{6}Z$/;

/** An object's place: `objects/ab/<64 hex>.age`. */
export function objectPath(object: string): string {
  return `${OBJECTS_DIR}/${object.slice(0, 2)}/${object}.age`;
}

const BECH32 = '[02-9ac-hj-np-z]';
/** An age X25519 recipient, as age-keygen prints it. */
export const RECIPIENT_RE = new RegExp(`^age1${BECH32}{58}$`);
/** An age X25519 identity: a private key. */
export const IDENTITY_RE = new RegExp(`^AGE-SECRET-KEY-1${BECH32.toUpperCase()}{58}$`);

export type RecipientCheck = { ok: true; value: string } | { ok: false; error: string };

/** `--recipient` must be an age X25519 public key; an identity pasted there is refused without echoing it. */
export function checkRecipient(input: string): RecipientCheck {
  const v = input.trim();
  if (/^AGE-SECRET-KEY-/i.test(v)) {
    return { ok: false, error: 'this is an age identity (a private key), not a recipient: it must stay on your own device and never reach the server; give its public key instead (age-keygen -y KEYFILE prints it)' };
  }
  if (/^AGE-PLUGIN-/i.test(v) || /^age1pq/i.test(v) || /^age1[a-z0-9]+1/.test(v)) {
    return { ok: false, error: 'only age X25519 recipients (age1 followed by 58 characters, from age-keygen) are taken: Debian\'s age opens them' };
  }
  if (/^ssh-/.test(v)) return { ok: false, error: 'an SSH key is not taken: make an age key on your own device (age-keygen -o key.txt) and give the public key it prints' };
  if (!RECIPIENT_RE.test(v.toLowerCase()) || v !== v.toLowerCase()) {
    return { ok: false, error: `${JSON.stringify(v.length > 70 ? `${v.slice(0, 70)}…` : v)} is not an age public key (age1 followed by 58 characters, as age-keygen prints it)` };
  }
  return { ok: true, value: v };
}

/** The identities in an identity file (age-keygen's format: comments and AGE-SECRET-KEY-1 lines). */
export function parseIdentities(text: string): { identities: string[]; error?: string } {
  const lines = text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
  if (lines.some((l) => /^age1/.test(l))) return { identities: [], error: 'holds a recipient (a public key, age1…), which cannot open anything: give the identity file age-keygen wrote on your device' };
  const bad = lines.filter((l) => !IDENTITY_RE.test(l));
  if (bad.length > 0 || lines.length === 0) return { identities: [], error: 'is not an age identity file (lines AGE-SECRET-KEY-1…, as age-keygen writes)' };
  return { identities: lines };
}

/** What a run adds: the entries whose object the target lacks. */
export function missingObjects(entries: readonly SnapshotEntry[], present: ReadonlySet<string>): SnapshotEntry[] {
  const seen = new Set<string>();
  const out: SnapshotEntry[] = [];
  for (const e of entries) {
    if (e.type !== 'file' || !e.object || present.has(e.object) || seen.has(e.object)) continue;
    seen.add(e.object);
    out.push(e);
  }
  return out;
}

/** A snapshot document, checked as far as restore relies on it. */
export function parseSnapshot(text: string): Snapshot {
  const doc = JSON.parse(text) as Snapshot;
  if (doc.format !== 1 || !Array.isArray(doc.entries) || !Array.isArray(doc.sources)) throw new Error('not a selfmail backup snapshot (format 1)');
  for (const e of doc.entries) {
    if (!doc.sources.some((s) => s.name === e.source)) throw new Error(`entry of an unknown source ${e.source}`);
    if (e.rel.split('/').some((p) => p === '..' || p === '.') || e.rel.startsWith('/')) throw new Error(`unsafe path ${JSON.stringify(e.rel)}`);
    if (e.type === 'file' && !/^[0-9a-f]{64}$/.test(e.object ?? '')) throw new Error(`bad object name for ${e.rel}`);
  }
  return doc;
}
