import { describe, expect, it } from 'vitest';
import type { Email } from '../../src/config/types.js';
import {
  ARGON2ID_PREFIX,
  hashPassword,
  parsePasswordFile,
  parseUsersFile,
  resolvePasswordHashes,
  verifyPassword,
} from '../../src/mail/passwords.js';

const alice = 'alice@example.org' as Email;
const bob = 'bob@example.net' as Email;

describe('parsePasswordFile', () => {
  it('reads address:password lines, skipping comments and blank lines, keeping colons in passwords', () => {
    const { passwords, issues } = parsePasswordFile('# mailboxes\n\nAlice@Example.org:s3cr:et\r\n  # indented comment\nbob@example.net: with space \n');
    expect(issues).toEqual([]);
    expect([...passwords.entries()]).toEqual([
      ['alice@example.org', 's3cr:et'],
      ['bob@example.net', ' with space '],
    ]);
  });

  it('names the line and the address of each problem, never the password', () => {
    const text = [
      'alice@example.org:hunter2-first',
      'alice@example.org:hunter2-second',
      'hunter2-nocolon',
      'not an address:hunter2-bad',
      'bob@example.net:',
    ].join('\n');
    const { passwords, issues } = parsePasswordFile(text);
    expect(passwords.get(alice)).toBe('hunter2-first');
    expect(issues).toHaveLength(4);
    expect(issues[0]).toMatch(/^line 2: alice@example\.org is listed twice/);
    expect(issues[1]).toMatch(/^line 3: /);
    expect(issues[2]).toMatch(/^line 4: "not an address"/);
    expect(issues[3]).toMatch(/^line 5: bob@example\.net has an empty password/);
    for (const issue of issues) expect(issue).not.toContain('hunter2');
  });
});

describe('resolvePasswordHashes', () => {
  it('hashes new passwords in the form Dovecot reads, and lists mailboxes without any', async () => {
    const { hashes, missing } = await resolvePasswordHashes([bob, alice], new Map([[alice, 'correct horse']]), undefined);
    expect(missing).toEqual([bob]);
    const h = hashes.get(alice)!;
    expect(h).toMatch(/^\{ARGON2ID\}\$argon2id\$v=19\$m=65536,t=3,p=1\$[A-Za-z0-9+/]+\$[A-Za-z0-9+/]+$/);
    expect(await verifyPassword(h, 'correct horse')).toBe(true);
    expect(await verifyPassword(h, 'wrong horse')).toBe(false);
  });

  it('keeps a stored hash when no password or the same password is given, rehashes a changed one', async () => {
    const stored = await hashPassword('old password');
    const bobStored = await hashPassword('bob password');
    const previous = Buffer.from(`${alice}:${stored}::::::\n${bob}:${bobStored}::::::\n`);
    const same = await resolvePasswordHashes([alice, bob], new Map([[alice, 'old password']]), previous);
    expect(same.hashes.get(alice)).toBe(stored);
    expect(same.hashes.get(bob)).toBe(bobStored);
    expect(same.missing).toEqual([]);
    const changed = await resolvePasswordHashes([alice], new Map([[alice, 'new password']]), previous);
    expect(changed.hashes.get(alice)).not.toBe(stored);
    expect(await verifyPassword(changed.hashes.get(alice)!, 'new password')).toBe(true);
  });

  it('rehashes a stored hash of another scheme instead of trusting it', async () => {
    const previous = Buffer.from(`${alice}:{PLAIN}old::::::\n`);
    const { hashes } = await resolvePasswordHashes([alice], new Map([[alice, 'old']]), previous);
    expect(hashes.get(alice)!.startsWith(ARGON2ID_PREFIX)).toBe(true);
    expect(parseUsersFile(previous).get(alice)).toBe('{PLAIN}old');
  });
});
