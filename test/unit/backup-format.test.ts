/**
 * The backup format's rules, one at a time: which recipients are taken (an identity pasted as a
 * recipient is refused without echoing it), identity files, what a run must send, and the
 * snapshot document restore trusts (no path may climb out of its source).
 */
import { describe, expect, it } from 'vitest';
import { checkRecipient, missingObjects, objectPath, parseIdentities, parseSnapshot, snapshotName, type SnapshotEntry } from '../../src/backup/format.js';

const RECIPIENT = 'age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p';
const IDENTITY = 'AGE-SECRET-KEY-1QYQSZQGPQYQSZQGPQYQSZQGPQYQSZQGPQYQSZQGPQYQSZQGPQYQSYTKGAH';

describe('recipients', () => {
  it('takes an age X25519 public key', () => {
    expect(checkRecipient(RECIPIENT)).toEqual({ ok: true, value: RECIPIENT });
  });
  it('refuses an identity, saying why, without repeating it', () => {
    const r = checkRecipient(IDENTITY);
    expect(r.ok).toBe(false);
    expect(!r.ok && r.error).toMatch(/a private key.*must stay on your own device/);
    expect(!r.ok && r.error).not.toContain('QYQSZQGP');
  });
  it('refuses a truncated key, an SSH key, a plugin or post-quantum recipient, upper case', () => {
    for (const bad of [RECIPIENT.slice(0, -1), 'ssh-ed25519 AAAAC3Nza', 'age1pq1abc', RECIPIENT.toUpperCase()]) expect(checkRecipient(bad).ok, bad).toBe(false);
  });
});

describe('identity files', () => {
  it('reads age-keygen\'s file: comments, then the key', () => {
    expect(parseIdentities(`# created: 2026-12-02\n# public key: ${RECIPIENT}\n${IDENTITY}\n`)).toEqual({ identities: [IDENTITY] });
  });
  it('refuses a file of public keys, or anything else', () => {
    expect(parseIdentities(`${RECIPIENT}\n`).error).toMatch(/holds a recipient/);
    expect(parseIdentities('hello\n').error).toMatch(/not an age identity file/);
    expect(parseIdentities('').error).toMatch(/not an age identity file/);
  });
});

describe('a run sends', () => {
  const e = (rel: string, object: string): SnapshotEntry => ({ source: 'mail', rel, type: 'file', mode: 0o600, uid: 0, gid: 0, size: 1, sha256: object, object, mtimeMs: 0 });
  it('each object the target lacks, once, however many files share it', () => {
    const a = 'a'.repeat(64);
    const b = 'b'.repeat(64);
    expect(missingObjects([e('x', a), e('y', a), e('z', b)], new Set([b])).map((x) => x.rel)).toEqual(['x']);
  });
  it('names objects and snapshots so that they sort and spread', () => {
    expect(objectPath('ab'.repeat(32))).toBe(`objects/ab/${'ab'.repeat(32)}.age`);
    expect(snapshotName(new Date('2026-12-02T01:30:05.123Z'))).toBe('20261202T013005Z');
  });
});

describe('snapshot documents', () => {
  const doc = (rel: string) => JSON.stringify({ format: 1, created: '', hostname: 'h', sources: [{ name: 'mail', path: '/var/vmail' }], entries: [{ source: 'mail', rel, type: 'dir', mode: 0o700, uid: 0, gid: 0, mtimeMs: 0 }] });
  it('are refused when a path would climb out of its source', () => {
    expect(() => parseSnapshot(doc('a/../../etc'))).toThrow(/unsafe path/);
    expect(() => parseSnapshot(doc('/etc'))).toThrow(/unsafe path/);
    expect(parseSnapshot(doc('example.org/alice')).entries).toHaveLength(1);
  });
});
