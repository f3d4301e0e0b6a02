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

/**
 * Where backups go: a folder of this host (an attached disk), or a folder on a machine of the
 * user's, over SFTP with OpenSSH (`sftp://USER@HOST[:PORT]/PATH`, PATH as that machine's SFTP
 * server shows it: inside its chroot, when it has one).
 */
export type TargetSpec =
  | { kind: 'dir'; path: string }
  | { kind: 'sftp'; user: string; host: string; port: number; path: string };

export type SpecCheck<T> = { ok: true; value: T } | { ok: false; error: string };

/** An age identity pasted where it does not belong: refused, never repeated. */
const IDENTITY_PASTED = 'this is an age identity (a private key): it must stay on your own device and never reach the server, and it is not what this asks for';

/** Path segments that can be written into a systemd unit and an sftp batch line as they are. */
const SEGMENT_RE = /^[A-Za-z0-9._@+-]+$/;
const USER_RE = /^[a-z_][a-z0-9_.-]{0,31}$/;
const LABEL_RE = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/;

function checkPath(path: string, what: string): string | undefined {
  if (!path.startsWith('/')) return `${what} must be an absolute path (starting with /)`;
  const segs = path.split('/').filter(Boolean);
  if (segs.length === 0) return `${what} must name a folder, not /`;
  const bad = segs.find((s) => s === '.' || s === '..' || !SEGMENT_RE.test(s));
  if (bad !== undefined) return `${what} may hold only letters, digits and . _ @ + - in each part (not ${JSON.stringify(bad.slice(0, 40))}), and no . or .. part`;
  return undefined;
}

/** A host name (one label or more), an IPv4 address, or an IPv6 address in brackets. */
function checkHost(host: string): SpecCheck<string> {
  if (host.startsWith('[') && host.endsWith(']')) {
    const inner = host.slice(1, -1).toLowerCase();
    if (/^[0-9a-f:.]+$/.test(inner) && inner.includes(':')) return { ok: true, value: inner };
    return { ok: false, error: `${JSON.stringify(host)} is not an IPv6 address in brackets` };
  }
  const h = host.toLowerCase().replace(/\.$/, '');
  if (/^\d+(\.\d+){3}$/.test(h)) {
    if (h.split('.').every((o) => Number(o) <= 255 && String(Number(o)) === o)) return { ok: true, value: h };
    return { ok: false, error: `${JSON.stringify(host)} is not an IPv4 address` };
  }
  if (h.length <= 253 && h.split('.').every((l) => LABEL_RE.test(l))) return { ok: true, value: h };
  return { ok: false, error: `${JSON.stringify(host.slice(0, 80))} is not a host name or address` };
}

/** `--to` / `--backup-to`: an absolute folder, or `sftp://USER@HOST[:PORT]/PATH`. Pure. */
export function parseTargetSpec(text: string): SpecCheck<TargetSpec> {
  const t = text.trim();
  if (/AGE-SECRET-KEY-/i.test(t)) return { ok: false, error: IDENTITY_PASTED };
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(t)?.[1]?.toLowerCase();
  if (scheme === undefined) {
    const error = checkPath(t.replace(/\/+$/, '') || '/', 'a backup folder');
    return error ? { ok: false, error: `${JSON.stringify(t.slice(0, 80))}: ${error}` } : { ok: true, value: { kind: 'dir', path: `/${t.split('/').filter(Boolean).join('/')}` } };
  }
  if (scheme !== 'sftp') {
    return { ok: false, error: `${JSON.stringify(t.slice(0, 80))}: backups go to a folder of this host (an attached disk) or to a machine of yours over SFTP (sftp://USER@HOST/PATH); ${scheme}:// is not one of them` };
  }
  const m = /^sftp:\/\/([^@/]+)@(\[[^\]]+\]|[^:/]+)(?::(\d{1,5}))?(\/.*)?$/i.exec(t);
  if (!m) return { ok: false, error: `${JSON.stringify(t.slice(0, 80))} is not sftp://USER@HOST[:PORT]/PATH (the user the backup machine set up for this host, like sftp://selfmail-backup@nas.home.arpa/backup)` };
  const [, user, rawHost, rawPort, rawPath] = m;
  if (user!.includes(':')) return { ok: false, error: 'holds a password (USER:PASSWORD@), which is never taken: the backup connection logs in with a key made on this host (selfmail backup --remote-setup)' };
  if (!USER_RE.test(user!)) return { ok: false, error: `${JSON.stringify(user)} is not a user name (lower-case letters, digits, _ . -)` };
  const host = checkHost(rawHost!);
  if (!host.ok) return host;
  const port = rawPort === undefined ? 22 : Number(rawPort);
  if (!(port >= 1 && port <= 65535)) return { ok: false, error: `port ${rawPort} is not between 1 and 65535` };
  const path = (rawPath ?? '').replace(/\/+$/, '');
  const error = checkPath(path || '/', 'the folder on the backup machine');
  if (error) return { ok: false, error: `${JSON.stringify(t.slice(0, 80))}: ${error}` };
  return { ok: true, value: { kind: 'sftp', user: user!, host: host.value, port, path } };
}

/** The canonical text of a target, as selfmail.yaml keeps it and messages show it. */
export function targetText(spec: TargetSpec): string {
  if (spec.kind === 'dir') return spec.path;
  const host = spec.host.includes(':') ? `[${spec.host}]` : spec.host;
  return `sftp://${spec.user}@${host}${spec.port === 22 ? '' : `:${spec.port}`}${spec.path}`;
}

export const HOST_KEY_TYPES = ['ssh-ed25519', 'ecdsa-sha2-nistp256', 'ecdsa-sha2-nistp384', 'ecdsa-sha2-nistp521', 'ssh-rsa'] as const;

/**
 * `--backup-host-key`: the backup machine's SSH host public key, as its
 * `/etc/ssh/ssh_host_ed25519_key.pub` holds it (a known_hosts or ssh-keyscan line is taken too).
 * The only key the backup connection accepts: nothing is learnt on first use. Pure.
 */
export function parseHostKey(text: string): SpecCheck<string> {
  const t = text.trim();
  if (/AGE-SECRET-KEY-/i.test(t)) return { ok: false, error: IDENTITY_PASTED };
  if (/PRIVATE KEY/.test(t)) return { ok: false, error: 'this is a private key: a host key is the public one, ssh_host_ed25519_key.pub on the backup machine (cat /etc/ssh/ssh_host_ed25519_key.pub there)' };
  let words = t.split(/\s+/);
  if (words.length >= 3 && !(HOST_KEY_TYPES as readonly string[]).includes(words[0]!) && (HOST_KEY_TYPES as readonly string[]).includes(words[1]!)) words = words.slice(1);
  const [type, blob] = words;
  const shown = JSON.stringify(t.length > 60 ? `${t.slice(0, 60)}…` : t);
  if (!type || !(HOST_KEY_TYPES as readonly string[]).includes(type) || !blob) {
    return { ok: false, error: `${shown} is not an SSH host public key (a line like "ssh-ed25519 AAAA…", from cat /etc/ssh/ssh_host_ed25519_key.pub on the backup machine)` };
  }
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(blob)) return { ok: false, error: `${shown}: the key is not base64` };
  if (!wholeKey(type, Buffer.from(blob, 'base64'))) return { ok: false, error: `${shown}: the key's bytes do not hold a whole ${type} key (cut short when pasted?)` };
  return { ok: true, value: `${type} ${blob}` };
}

/** The SSH wire form of a public key of `type`, every field there and nothing after (RFC 4253, 5656, 8709). */
function wholeKey(type: string, raw: Buffer): boolean {
  const fields: Buffer[] = [];
  for (let at = 0; at < raw.length; ) {
    if (at + 4 > raw.length) return false;
    const len = raw.readUInt32BE(at);
    if (at + 4 + len > raw.length) return false;
    fields.push(raw.subarray(at + 4, at + 4 + len));
    at += 4 + len;
  }
  if (fields[0]?.toString('latin1') !== type) return false;
  if (type === 'ssh-ed25519') return fields.length === 2 && fields[1]!.length === 32;
  if (type === 'ssh-rsa') return fields.length === 3 && fields[2]!.length >= 256;
  const curve = type.slice('ecdsa-sha2-'.length);
  const point = { nistp256: 65, nistp384: 97, nistp521: 133 }[curve];
  return fields.length === 3 && fields[1]!.toString('latin1') === curve && fields[2]!.length === point && fields[2]![0] === 4;
}
