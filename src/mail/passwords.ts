/**
 * Mailbox passwords: read the `--password-file`, and turn cleartext into the hashes Dovecot
 * stores in its passwd-file. Cleartext only lives in memory; only hashes reach the bundle.
 *
 * Scheme: ARGON2ID (listed by `doveadm pw -l` on Debian 12, verified by Dovecot through
 * libsodium). Parameters m=64 MiB, t=3, p=1: the cost Dovecot itself uses for ARGON2ID, and
 * p=1 because libsodium only verifies single-lane hashes.
 */
import type { Email } from '../config/types.js';
import { parseEmail } from '../config/values.js';
import { mapPool } from '../tools/pool.js';

/** Argon2id cost, shared by hashing and by the "is this hash current" test. */
export const ARGON2ID_PARAMS = { memoryCost: 65536, timeCost: 3, parallelism: 1 } as const;

/** Dovecot's scheme prefix for an encoded Argon2id hash. */
export const ARGON2ID_PREFIX = '{ARGON2ID}';

export interface ParsedPasswords {
  passwords: Map<Email, string>;
  /** One sentence per bad line; names the line and the address, never the password. */
  issues: string[];
}

/**
 * Parse lines `email:password`. `#` comments and blank lines are ignored; the password is
 * everything after the first colon (it may itself hold colons), with a CR of a CRLF file removed.
 */
export function parsePasswordFile(text: string): ParsedPasswords {
  const passwords = new Map<Email, string>();
  const issues: string[] = [];
  const lines = text.split('\n');
  lines.forEach((raw, i) => {
    const n = i + 1;
    const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    if (line.trim() === '' || line.trimStart().startsWith('#')) return;
    const colon = line.indexOf(':');
    // Without a colon the whole line may be a password: say nothing about its content.
    if (colon < 0) {
      issues.push(`line ${n}: expected "address:password" (no colon found)`);
      return;
    }
    const addressText = line.slice(0, colon).trim();
    const password = line.slice(colon + 1);
    const parsed = parseEmail(addressText);
    if (!parsed.ok) {
      issues.push(`line ${n}: ${JSON.stringify(addressText)} ${parsed.error}`);
      return;
    }
    const address = parsed.value;
    if (password.length === 0) {
      issues.push(`line ${n}: ${address} has an empty password`);
      return;
    }
    if (password.includes('\0')) {
      issues.push(`line ${n}: ${address} has a password with a NUL byte`);
      return;
    }
    if (passwords.has(address)) {
      issues.push(`line ${n}: ${address} is listed twice`);
      return;
    }
    passwords.set(address, password);
  });
  return { passwords, issues };
}

/** Hashes by mailbox from a Dovecot passwd-file (`user:hash:…`); unreadable lines are skipped. */
export function parseUsersFile(data: Buffer | undefined): Map<string, string> {
  const out = new Map<string, string>();
  if (!data) return out;
  for (const line of data.toString('utf8').split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const fields = line.split(':');
    const [user, hash] = fields;
    if (user && hash) out.set(user, hash);
  }
  return out;
}

export interface ResolvedHashes {
  hashes: Map<Email, string>;
  /** Mailboxes with neither a new password nor a stored hash (sorted). */
  missing: Email[];
}

type Argon2 = typeof import('@node-rs/argon2');

async function argon2(): Promise<Argon2> {
  return import('@node-rs/argon2');
}

/** Hash one password in the form Dovecot reads: `{ARGON2ID}$argon2id$v=19$m=…,t=…,p=…$salt$hash`. */
export async function hashPassword(password: string): Promise<string> {
  const { hash } = await argon2();
  // 2 is Algorithm.Argon2id; the enum is declared `const` and cannot be read under isolatedModules.
  const encoded = await hash(password, { ...ARGON2ID_PARAMS, algorithm: 2 as import('@node-rs/argon2').Algorithm });
  return ARGON2ID_PREFIX + encoded;
}

/** True when `password` matches a stored `{ARGON2ID}` hash. Other schemes never match (they get rehashed). */
export async function verifyPassword(stored: string, password: string): Promise<boolean> {
  if (!stored.startsWith(ARGON2ID_PREFIX)) return false;
  const { verify } = await argon2();
  try {
    return await verify(stored.slice(ARGON2ID_PREFIX.length), password);
  } catch {
    // A malformed stored hash is not a match; the caller hashes the new password instead.
    return false;
  }
}

/**
 * The hash of every mailbox in `users`: an existing hash from the previous users file is kept
 * when no new password is given, or when the given one verifies against it (so a re-run with
 * the same password file writes identical bytes); otherwise the new password is hashed.
 * Mailboxes with neither are listed in `missing`.
 */
export async function resolvePasswordHashes(
  users: readonly Email[],
  passwords: ReadonlyMap<Email, string>,
  previousUsersFile: Buffer | undefined,
): Promise<ResolvedHashes> {
  const previous = parseUsersFile(previousUsersFile);
  const hashes = new Map<Email, string>();
  const missing: Email[] = [];
  const sorted = [...users].sort();
  // Hash in parallel on libuv's thread pool, but no more at once than there are cores: each
  // Argon2id hash holds 64 MiB while it runs, and more hashes than cores only add memory.
  const results = await mapPool(sorted, async (user): Promise<string | undefined> => {
    const given = passwords.get(user);
    const stored = previous.get(user);
    if (given === undefined) return stored;
    if (stored !== undefined && (await verifyPassword(stored, given))) return stored;
    return hashPassword(given);
  });
  sorted.forEach((user, i) => {
    const h = results[i];
    if (h === undefined) missing.push(user);
    else hashes.set(user, h);
  });
  return { hashes, missing };
}
