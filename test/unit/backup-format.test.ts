/**
 * The backup format's rules, one at a time: which recipients are taken (an identity pasted as a
 * recipient is refused without echoing it), identity files, what a run must send, the snapshot
 * document restore trusts (no path may climb out of its source), where backups may go (a folder
 * of this host or sftp://, written back in one canonical text), and which SSH host keys are taken.
 */
import { generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  checkRecipient,
  missingObjects,
  objectPath,
  parseHostKey,
  parseIdentities,
  parseSnapshot,
  parseTargetSpec,
  snapshotName,
  targetText,
  type SnapshotEntry,
  type TargetSpec,
} from '../../src/backup/format.js';

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

describe('backup targets', () => {
  it('refuses a password in an sftp:// URL without repeating it: the connection logs in with a key', () => {
    const r = parseTargetSpec('sftp://backup:hunter2secret@nas.home.arpa/backup');
    expect(r).toMatchObject({ ok: false, error: expect.stringMatching(/holds a password \(USER:PASSWORD@\), which is never taken/) });
    expect(!r.ok && r.error).not.toContain('hunter2secret');
  });
  const refusal = (text: string) => {
    const r = parseTargetSpec(text);
    if (r.ok) throw new Error(`${text} was taken as ${JSON.stringify(r.value)}`);
    return r.error;
  };

  it('takes an absolute folder of this host, without its trailing slash', () => {
    expect(parseTargetSpec('/mnt/backup/')).toEqual({ ok: true, value: { kind: 'dir', path: '/mnt/backup' } });
  });
  it('takes sftp://USER@HOST/PATH, on port 22 unless told', () => {
    expect(parseTargetSpec('sftp://selfmail-backup@nas.home.arpa/backup')).toEqual({
      ok: true,
      value: { kind: 'sftp', user: 'selfmail-backup', host: 'nas.home.arpa', port: 22, path: '/backup' },
    });
  });
  it('takes a port and an IPv4 address', () => {
    expect(parseTargetSpec('sftp://u@192.0.2.7:2222/b/c')).toEqual({ ok: true, value: { kind: 'sftp', user: 'u', host: '192.0.2.7', port: 2222, path: '/b/c' } });
  });
  it('takes an IPv6 address in brackets, kept without them, in lower case', () => {
    expect(parseTargetSpec('sftp://u@[2001:DB8::7]:2222/b')).toEqual({ ok: true, value: { kind: 'sftp', user: 'u', host: '2001:db8::7', port: 2222, path: '/b' } });
  });
  it('keeps a host name in lower case, without a final dot', () => {
    expect(parseTargetSpec('sftp://u@NAS.Example.org./b')).toMatchObject({ ok: true, value: { host: 'nas.example.org' } });
  });
  it('refuses a relative folder', () => {
    expect(refusal('backup')).toMatch(/must be an absolute path/);
  });
  it('refuses a . or .. part, here or on the backup machine', () => {
    for (const bad of ['/mnt/../etc', '/mnt/./b', 'sftp://u@nas/backup/..']) expect(refusal(bad), bad).toMatch(/no \. or \.\. part/);
  });
  it('refuses characters a unit file or an sftp batch line cannot carry as they are', () => {
    for (const bad of ['/mnt/my backup', '/mnt/a"b', '/mnt/%h', '/mnt/$HOME', 'sftp://u@nas/a b']) expect(refusal(bad), bad).toMatch(/only letters, digits/);
  });
  it('refuses other schemes, naming the one given', () => {
    expect(refusal('s3://bucket/backup')).toMatch(/s3:\/\/ is not one of them/);
    expect(refusal('https://nas.example.org/backup')).toMatch(/https:\/\/ is not one of them/);
  });
  it('refuses sftp:// without a user', () => {
    expect(refusal('sftp://nas.home.arpa/backup')).toMatch(/is not sftp:\/\/USER@HOST\[:PORT\]\/PATH/);
  });
  it('refuses a user name that is not one', () => {
    expect(refusal('sftp://Backup!@nas/backup')).toMatch(/"Backup!" is not a user name/);
  });
  it('refuses a port outside 1 to 65535', () => {
    expect(refusal('sftp://u@nas:0/backup')).toMatch(/port 0 is not between 1 and 65535/);
    expect(refusal('sftp://u@nas:65536/backup')).toMatch(/port 65536 is not between 1 and 65535/);
  });
  it('refuses an IPv4 address out of range, an unbracketed or bad IPv6 one, a host with odd characters', () => {
    expect(refusal('sftp://u@192.0.2.256/b')).toMatch(/is not an IPv4 address/);
    expect(refusal('sftp://u@[nas]/b')).toMatch(/is not an IPv6 address in brackets/);
    expect(refusal('sftp://u@2001:db8::7/b')).toMatch(/is not sftp:\/\/USER@HOST/);
    expect(refusal('sftp://u@nas_1.example/b')).toMatch(/is not a host name or address/);
  });
  it('refuses / itself, or no folder at all, as the place to write', () => {
    expect(refusal('/')).toMatch(/must name a folder, not \//);
    expect(refusal('sftp://u@nas/')).toMatch(/must name a folder, not \//);
    expect(refusal('sftp://u@nas')).toMatch(/must name a folder, not \//);
  });
});

describe('the text of a target', () => {
  it('reads back as the same target', () => {
    for (const text of ['/mnt/backup', 'sftp://selfmail-backup@nas.home.arpa/backup', 'sftp://u@192.0.2.7:2222/b/c', 'sftp://u@[2001:db8::7]:2222/b']) {
      const r = parseTargetSpec(text);
      expect(r.ok && targetText(r.value), text).toBe(text);
    }
  });
  it('leaves out port 22 and keeps another', () => {
    const spec: TargetSpec = { kind: 'sftp', user: 'u', host: 'nas', port: 22, path: '/b' };
    expect(targetText(spec)).toBe('sftp://u@nas/b');
    expect(targetText({ ...spec, port: 2200 })).toBe('sftp://u@nas:2200/b');
  });
  it('puts an IPv6 host in brackets', () => {
    expect(targetText({ kind: 'sftp', user: 'u', host: '2001:db8::7', port: 22, path: '/b' })).toBe('sftp://u@[2001:db8::7]/b');
  });
});

/** A real ed25519 public key in OpenSSH's wire format: string "ssh-ed25519", string key (each with a uint32 length before it). */
function sshEd25519Blob(): string {
  const raw = generateKeyPairSync('ed25519').publicKey.export({ format: 'der', type: 'spki' }).subarray(-32);
  const str = (b: Buffer) => Buffer.concat([Buffer.from([0, 0, 0, b.length]), b]);
  return Buffer.concat([str(Buffer.from('ssh-ed25519')), str(raw)]).toString('base64');
}

describe('SSH host keys', () => {
  const blob = sshEd25519Blob();

  it('takes a .pub line, and keeps it without its comment', () => {
    expect(parseHostKey(`ssh-ed25519 ${blob} root@nas\n`)).toEqual({ ok: true, value: `ssh-ed25519 ${blob}` });
  });
  it('takes a known_hosts or ssh-keyscan line, without the host in front', () => {
    expect(parseHostKey(`nas.home.arpa ssh-ed25519 ${blob}`)).toEqual({ ok: true, value: `ssh-ed25519 ${blob}` });
    expect(parseHostKey(`[nas.home.arpa]:2222 ssh-ed25519 ${blob}`)).toEqual({ ok: true, value: `ssh-ed25519 ${blob}` });
  });
  it('refuses a private key, saying that a host key is the public one, without repeating it', () => {
    const pem = generateKeyPairSync('ed25519').privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
    const r = parseHostKey(pem);
    expect(r.ok).toBe(false);
    expect(!r.ok && r.error).toMatch(/this is a private key: a host key is the public one, ssh_host_ed25519_key\.pub/);
    expect(!r.ok && r.error).not.toContain(pem.split('\n')[1]!.slice(0, 20));
  });
  it('refuses a key type that is not a host key type', () => {
    expect(parseHostKey(`ssh-dss ${blob}`)).toMatchObject({ ok: false, error: expect.stringMatching(/is not an SSH host public key/) });
  });
  it('refuses a type without a key', () => {
    expect(parseHostKey('ssh-ed25519')).toMatchObject({ ok: false, error: expect.stringMatching(/is not an SSH host public key/) });
  });
  it('refuses a key that is not base64', () => {
    expect(parseHostKey('ssh-ed25519 AAAA*not-base64*')).toMatchObject({ ok: false, error: expect.stringMatching(/the key is not base64/) });
  });
  it('refuses a key whose bytes hold another type than the one stated', () => {
    expect(parseHostKey(`ssh-rsa ${blob}`)).toMatchObject({ ok: false, error: expect.stringMatching(/the key's bytes do not hold a whole ssh-rsa key/) });
  });
  it('refuses a key cut short when pasted (the type right, too few bytes for the key)', () => {
    const cut = Buffer.from(blob, 'base64').subarray(0, -4).toString('base64');
    expect(parseHostKey(`ssh-ed25519 ${cut}`)).toMatchObject({ ok: false, error: expect.stringMatching(/do not hold a whole ssh-ed25519 key \(cut short when pasted\?\)/) });
  });
});

describe('an age identity pasted in the wrong place', () => {
  it('is refused as a target or a host key without being repeated', () => {
    for (const r of [parseTargetSpec(IDENTITY), parseTargetSpec(`/mnt/${IDENTITY}`), parseHostKey(IDENTITY), parseHostKey(`ssh-ed25519 ${IDENTITY}`)]) {
      expect(r).toMatchObject({ ok: false, error: expect.stringMatching(/age identity \(a private key\): it must stay on your own device/) });
      expect(!r.ok && r.error).not.toContain('QYQSZQGP');
    }
  });
});
