/**
 * Which key each publishing mailbox gets, decided before anything is built: the file given this
 * run (`--openpgp-key EMAIL=FILE`, or `openpgpKeys` in a config file), else the one the bundle
 * already holds. Pure: the CLI read the files, the caller hands in the previous bundle.
 */
import type { Email } from '../config/types.js';
import { parseEmail } from '../config/values.js';
import type { InputIssue, Refusal } from '../errors.js';
import { holdsAddress, readKeyFile } from './key.js';
import { keyPath } from './names.js';

/** A key file the CLI read for a mailbox: its bytes, and how to name it in a message. */
export interface GivenKey {
  data: Buffer;
  /** Where it was asked for: `--openpgp-key`, or `<config file>: openpgpKeys`. */
  field: string;
  /** The file as the user named it. */
  file: string;
}

export const PRINCIPLE_8 = "Principle 8 (OpenPGP private keys stay on the users' own devices)";

/**
 * The refusal of a file that holds a private key: `field` is how it was asked for (`--openpgp-key
 * EMAIL=FILE`, or the bundle's path); names the file and the address, never a byte of it.
 */
export function secretKeyRefusal(field: string, email: string, file: string): Refusal {
  return {
    field,
    principle: PRINCIPLE_8,
    why: `${file} holds an OpenPGP private key. Whoever has it reads every message encrypted to ${email} and signs in that name, and a mail server is the first place an intruder looks; selfmail publishes public keys only and keeps no private one`,
    instead: `on the device that holds the key, export only its public part (gpg --export --armor ${email} > ${email}.asc) and give that file; if this machine is not one of your own devices, delete the private key's copy from it`,
  };
}

export interface JudgedKeys {
  /** The binary key of each mailbox that passed. */
  keys: Map<Email, Buffer>;
  /** Every mailbox a file was given for, passed or not. */
  given: Set<Email>;
  issues: InputIssue[];
  refusals: Refusal[];
}

/** Up to three User IDs for a message, quoted. */
function shownIds(userIds: readonly string[]): string {
  const shown = userIds.slice(0, 3).map((u) => JSON.stringify(u.slice(0, 80)));
  return userIds.length > 3 ? `${shown.join(', ')} and ${userIds.length - 3} more` : shown.join(', ');
}

/**
 * One file for one mailbox: its binary key, or the issue or refusal it earns. `field` names where
 * it was asked for, `what` the file in a message; `refusedAs` is the refusal's field.
 */
function judge(data: Buffer, email: Email, field: string, file: string, what: string, refusedAs: string): { key: Buffer } | { issue: InputIssue } | { refusal: Refusal } {
  const read = readKeyFile(data);
  if (read.kind === 'secret') return { refusal: secretKeyRefusal(refusedAs, email, file) };
  if (read.kind === 'invalid') return { issue: { field, message: `${what} ${read.error}` } };
  if (!holdsAddress(read.userIds, email)) {
    return { issue: { field, message: `${what} has the User ID${read.userIds.length > 1 ? 's' : ''} ${shownIds(read.userIds)}, not ${email}: a key is published only at an address one of its User IDs holds (gpg --quick-add-uid adds one)` } };
  }
  return { key: read.binary };
}

/**
 * Every given file, judged against the address it was given for: a public key whose User IDs name
 * it. Needs no Config, so that a run with other problems still says everything about its files,
 * and a private key is refused whatever else is wrong. (Whether the address is a mailbox is the
 * schema's to say.)
 */
export function judgeGivenKeys(given: ReadonlyMap<string, GivenKey>): JudgedKeys {
  const out: JudgedKeys = { keys: new Map(), given: new Set(), issues: [], refusals: [] };
  for (const [address, g] of given) {
    const p = parseEmail(address);
    if (!p.ok) continue;
    out.given.add(p.value);
    const j = judge(g.data, p.value, g.field, g.file, `${g.file} (for ${p.value})`, `${g.field} ${p.value}=${g.file}`);
    if ('key' in j) out.keys.set(p.value, j.key);
    else if ('issue' in j) out.issues.push(j.issue);
    else out.refusals.push(j.refusal);
  }
  return out;
}

export interface ChosenKeys {
  /** The binary key of each publishing mailbox. */
  keys: Map<Email, Buffer>;
  issues: InputIssue[];
  refusals: Refusal[];
}

/**
 * The key of every mailbox in `publish`: the file given this run (already judged: its problems
 * are `judged`'s), else the bundle's copy (`previous`), judged the same way, since a hand edit may
 * have changed it. Every problem is listed.
 */
export function chooseKeys(publish: readonly Email[], judged: Pick<JudgedKeys, 'keys' | 'given'>, previous: (path: string) => Buffer | undefined): ChosenKeys {
  const out: ChosenKeys = { keys: new Map(), issues: [], refusals: [] };
  for (const email of publish) {
    if (judged.given.has(email)) {
      const key = judged.keys.get(email);
      if (key) out.keys.set(email, key);
      continue;
    }
    const path = keyPath(email);
    const data = previous(path);
    if (!data) {
      out.issues.push({ field: '--openpgp-key', message: `${email} publishes a key, but the bundle holds no ${path}: give it again with --openpgp-key ${email}=FILE, or drop it with --openpgp-key ${email}=none` });
      continue;
    }
    const j = judge(data, email, path, path, `the bundle's copy`, path);
    if ('key' in j) out.keys.set(email, j.key);
    else if ('issue' in j) out.issues.push(j.issue);
    else out.refusals.push(j.refusal);
  }
  return out;
}
