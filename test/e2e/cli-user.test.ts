/**
 * `selfmail user add|passwd|remove|list` through the built bin, on a bundle made by init: each
 * command changes exactly the files a mailbox is in, keeps every other mailbox's hash, leaves a
 * manifest that verifies, and on bad input exits 2 naming the field with nothing changed; and
 * `selfmail import`'s and `selfmail doctor`'s refusals of bad input, on the same bundle.
 */
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run } from '../../src/tools/run.js';
import { runCli, treeState } from '../helpers/cli.js';

let work: string;
let out: string;
const ALICE_PW = 'alice has a long password';
const BOB_PW = 'bob has another long one';
const BOB_PW2 = 'bob changed his password';

async function passwordFile(name: string, text: string): Promise<string> {
  const p = join(work, name);
  await writeFile(p, text);
  await chmod(p, 0o600);
  return p;
}

/** Bundle path → sha256 of its bytes. */
async function hashes(): Promise<Record<string, string>> {
  const tree = await treeState(out);
  return Object.fromEntries(Object.entries(tree).map(([p, v]) => [p, v.split(' ')[2]!]));
}

const changed = (a: Record<string, string>, b: Record<string, string>) =>
  [...new Set([...Object.keys(a), ...Object.keys(b)])].filter((p) => a[p] !== b[p]).sort();

/** The stored hash of a mailbox, and whether Dovecot's own tool accepts a password for it. */
async function hashOf(user: string): Promise<string | undefined> {
  const line = (await readFile(join(out, 'dovecot/users'), 'utf8')).split('\n').find((l) => l.startsWith(`${user}:`));
  return line?.split(':')[1];
}
async function accepts(hash: string, password: string): Promise<boolean> {
  const r = await run('doveadm', ['pw', '-t', hash], { input: `${password}\n`, okCodes: [0, 1, 75, 77] }).catch(() => ({ exitCode: 1 }));
  return r.exitCode === 0;
}

/** Every file MANIFEST.sha256 lists has the hash it gives. */
async function manifestVerifies(): Promise<void> {
  const r = await run('sha256sum', ['--check', '--strict', '--quiet', 'MANIFEST.sha256'], { cwd: out });
  expect(r.exitCode).toBe(0);
}

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'selfmail-user-'));
  out = join(work, 'bundle');
  const pw = await passwordFile('alice.pw', `alice@example.org:${ALICE_PW}\n`);
  const r = await runCli(['init', '--non-interactive', '--out', out, '--domain', 'example.org', '--domain', 'example.net', '--ipv4', '192.0.2.25', '--user', 'alice@example.org', '--password-file', pw, '--admin-ssh-from', '198.51.100.0/24', '--target', 'debian-12']);
  expect(r.code, r.stderr).toBe(0);
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

describe('selfmail user', () => {
  it('adds a mailbox: its hash, its maps, selfmail.yaml; every other file and hash as it was', async () => {
    const before = await hashes();
    const alice = await hashOf('alice@example.org');
    const pw = await passwordFile('bob.pw', `bob@example.net:${BOB_PW}\n`);
    const r = await runCli(['user', 'add', 'bob@example.net', '--bundle', out, '--password-file', pw]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout + r.stderr).not.toContain(BOB_PW);
    expect(changed(before, await hashes())).toEqual(['MANIFEST.sha256', 'dovecot/users', 'postfix/sender_login', 'postfix/vmailbox', 'selfmail.state.json', 'selfmail.yaml']);
    expect(await hashOf('alice@example.org')).toBe(alice);
    const bob = (await hashOf('bob@example.net'))!;
    expect(bob).toMatch(/^\{ARGON2ID\}/);
    expect(await accepts(bob, BOB_PW)).toBe(true);
    expect(await accepts(bob, ALICE_PW)).toBe(false);
    expect(await readFile(join(out, 'postfix/vmailbox'), 'utf8')).toMatch(/^bob@example\.net\s/m);
    expect(await readFile(join(out, 'selfmail.yaml'), 'utf8')).toMatch(/users:\n  - alice@example\.org\n  - bob@example\.net\n/);
    await manifestVerifies();
    const list = await runCli(['user', 'list', '--bundle', out, '--json']);
    expect(JSON.parse(list.stdout)).toMatchObject({ admin: 'alice@example.org', mailboxes: [{ address: 'alice@example.org', admin: true }, { address: 'bob@example.net', admin: false }] });
  });

  it('changes one password: that hash only', async () => {
    const before = await hashes();
    const alice = await hashOf('alice@example.org');
    const old = (await hashOf('bob@example.net'))!;
    const pw = await passwordFile('bob2.pw', `bob@example.net:${BOB_PW2}\n`);
    const r = await runCli(['user', 'passwd', 'bob@example.net', '--bundle', out, '--password-file', pw]);
    expect(r.code, r.stderr).toBe(0);
    expect(changed(before, await hashes())).toEqual(['MANIFEST.sha256', 'dovecot/users', 'selfmail.state.json']);
    const now = (await hashOf('bob@example.net'))!;
    expect(now).not.toBe(old);
    expect(await accepts(now, BOB_PW2)).toBe(true);
    expect(await accepts(now, BOB_PW)).toBe(false);
    expect(await hashOf('alice@example.org')).toBe(alice);
    await manifestVerifies();
  });

  it('sets and lifts a storage limit: the users file and selfmail.yaml only', async () => {
    const before = await hashes();
    const alice = await hashOf('alice@example.org');
    const r = await runCli(['user', 'quota', 'bob@example.net', '2G', '--bundle', out]);
    expect(r.code, r.stderr).toBe(0);
    expect(changed(before, await hashes())).toEqual(['MANIFEST.sha256', 'dovecot/users', 'selfmail.state.json', 'selfmail.yaml']);
    expect(await readFile(join(out, 'dovecot/users'), 'utf8')).toMatch(/^bob@example\.net:[^:\n]+::::::userdb_quota_rule=\*:storage=2G$/m);
    expect(await hashOf('alice@example.org')).toBe(alice);
    expect((await runCli(['user', 'list', '--bundle', out])).stdout).toMatch(/^bob@example\.net  quota 2G$/m);
    for (const [size, said] of [
      ['lots', /selfmail user quota SIZE: "lots" is not a size/],
      ['100K', /selfmail user quota SIZE: 100K is below 1M/],
    ] as const) {
      const tree = await treeState(out);
      const bad = await runCli(['user', 'quota', 'bob@example.net', size, '--bundle', out]);
      expect(bad.code).toBe(2);
      expect(bad.stderr).toMatch(said);
      expect(await treeState(out)).toEqual(tree);
    }
    const lift = await runCli(['user', 'quota', 'bob@example.net', 'none', '--bundle', out]);
    expect(lift.code, lift.stderr).toBe(0);
    expect(await readFile(join(out, 'dovecot/users'), 'utf8')).toMatch(/^bob@example\.net:[^:\n]+::::::$/m);
    await manifestVerifies();
  });

  it('refuses bad input with exit 2, naming the field, and changes nothing', async () => {
    const tree = await treeState(out);
    const pw = await passwordFile('carol.pw', 'carol@example.com:carol has a long password\n');
    const short = await passwordFile('short.pw', 'carol@example.org:short\n');
    for (const [args, said] of [
      [['user', 'add', 'carol@example.com', '--password-file', pw], /selfmail user add EMAIL: carol@example\.com is not in one of the bundle's mail domains \(example\.org, example\.net\)/],
      [['user', 'add', 'bob@example.net', '--password-file', pw], /bob@example\.net is already a mailbox of this bundle/],
      [['user', 'add', 'not an address', '--password-file', pw], /selfmail user add EMAIL: "not an address"/],
      [['user', 'add', 'carol@example.org', '--password-file', short], /--password-file: the password for carol@example\.org is 5 characters long/],
      [['user', 'add', 'carol@example.org', '--password-file', pw], /--password-file: has no line for carol@example\.org/],
      [['user', 'add', 'carol@example.org'], /--password-file: is required without a terminal.*never taken from the command line/],
      [['user', 'passwd', 'dave@example.org', '--password-file', pw], /dave@example\.org is not a mailbox of this bundle/],
      [['user', 'remove', 'alice@example.org'], /alice@example\.org is the admin address: postmaster@ and abuse@ .* Name another admin first/],
      [['user', 'remove', 'bob@example.net', '--password-file', pw], /--password-file: only goes with user add and user passwd/],
      [['user', 'rename', 'bob@example.net'], /selfmail user: usage: selfmail user add EMAIL/],
      [['user', 'remove', 'bob@example.net', '--keep-mail'], /--keep-mail: only goes with user remove --apply \(without --apply the mail is never touched\)/],
      [['user', 'passwd', 'bob@example.net', '--keep-mail', '--apply', '--password-file', pw], /--keep-mail: only goes with user remove --apply/],
    ] as const) {
      const r = await runCli([...args, '--bundle', out]);
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(2);
      expect(r.stderr).toMatch(said);
      expect(r.stderr).not.toContain('long password');
    }
    expect(await treeState(out)).toEqual(tree);
  });

  it('removes a mailbox; without --apply its mail stays on the host, and it says where', async () => {
    const before = await hashes();
    const alice = await hashOf('alice@example.org');
    const r = await runCli(['user', 'remove', 'bob@example.net', '--bundle', out]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/Its messages stay on the host, under \/var\/vmail\/example\.net\/bob, until you delete that folder there \(user remove --apply does both/);
    expect(changed(before, await hashes())).toEqual(['MANIFEST.sha256', 'dovecot/users', 'postfix/sender_login', 'postfix/vmailbox', 'selfmail.state.json', 'selfmail.yaml']);
    expect(await hashOf('bob@example.net')).toBeUndefined();
    expect(await hashOf('alice@example.org')).toBe(alice);
    expect(await readFile(join(out, 'postfix/vmailbox'), 'utf8')).not.toContain('bob@');
    await manifestVerifies();
  });

  it('keeps the last mailbox, also when the admin lives elsewhere', async () => {
    const solo = join(work, 'solo');
    const pw = await passwordFile('solo.pw', `carol@example.org:${ALICE_PW}\n`);
    const made = await runCli(['init', '--non-interactive', '--out', solo, '--domain', 'example.org', '--ipv4', '192.0.2.25', '--user', 'carol@example.org', '--admin', 'ops@elsewhere.example', '--password-file', pw, '--admin-ssh-from', '198.51.100.0/24', '--target', 'debian-12']);
    expect(made.code, made.stderr).toBe(0);
    const tree = await treeState(solo);
    const r = await runCli(['user', 'remove', 'carol@example.org', '--bundle', solo]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/carol@example\.org is the bundle's only mailbox; a mail host needs at least one/);
    expect(await treeState(solo)).toEqual(tree);
    const list = await runCli(['user', 'list', '--bundle', solo]);
    expect(list.stdout).toMatch(/admin: ops@elsewhere\.example \(outside this host/);
  });

  it('changes nothing when run again on what is already so', async () => {
    const again = await hashes();
    const r = await runCli(['init', '--non-interactive', '--out', out]);
    expect(r.code, r.stderr).toBe(0);
    expect(changed(again, await hashes())).toEqual([]);
  });
});

// `selfmail import` copies into a mailbox of the installed host (the pristine tier shows it on
// both releases); here, what it refuses before touching anything.
describe('selfmail import', () => {
  it('refuses bad input with exit 2, naming the field and the rule, and changes nothing', async () => {
    const tree = await treeState(out);
    const pw = await passwordFile('old.pw', 'Zq8-old-provider-pass\n');
    const twoLines = await passwordFile('old2.pw', 'one\ntwo\n');
    const base = ['import', '--bundle', out, '--mailbox', 'alice@example.org', '--login', 'alice@old.example', '--password-file', pw];
    const cases: [string[], RegExp][] = [
      [[...base, '--from', 'imap://imap.old.example'], /--from: "imap:\/\/imap\.old\.example" has no TLS \(imap:\/\/\): the old password and every message would cross the network in clear/],
      [[...base, '--from', 'imaps://alice:secret@imap.old.example'], /--from: .* must not hold the login or the password/],
      [[...base, '--from', 'imaps://imap.old.example:99999'], /--from: .* the port must be a number from 1 to 65535/],
      [['import', '--bundle', out, '--mailbox', 'alice@example.org', '--from', 'imaps://imap.old.example', '--password-file', pw], /--login: is required/],
      [[...base.map((a) => (a === 'alice@example.org' ? 'nobody@example.org' : a)), '--from', 'imaps://imap.old.example'], /--mailbox: nobody@example\.org is not a mailbox of this bundle/],
      [[...base.map((a) => (a === pw ? twoLines : a)), '--from', 'imaps://imap.old.example'], /--password-file: must hold the old server's password alone, on one line/],
      [[...base, '--from', 'imaps://imap.old.example', '--ca-file', pw], /--ca-file: .* is not a readable file of PEM certificates/],
    ];
    for (const [argv, message] of cases) {
      const r = await runCli(argv);
      expect(r.code, `${argv.join(' ')}\n${r.stderr}`).toBe(2);
      expect(r.stderr).toMatch(message);
      // Neither the password nor the login's secret is ever echoed.
      expect(r.stderr + r.stdout).not.toContain('Zq8-old-provider-pass');
      expect(r.stderr + r.stdout).not.toContain('secret');
    }
    expect(await treeState(out)).toEqual(tree);
  });
});

describe('selfmail doctor', () => {
  it('refuses a bad opt-in name with exit 2, naming the flag, before asking anyone', async () => {
    const tree = await treeState(out);
    const cases: [string[], RegExp][] = [
      [['doctor', '--bundle', out, '--port25-via', 'not a domain'], /--port25-via: .*a domain whose MX port 25 is tried/],
      [['doctor', '--bundle', out, '--ask-blocklists', 'zen.spamhaus.org,bad_list!'], /--ask-blocklists: "bad_list!": .*a DNS blocklist zone/],
      [['doctor', '--port25-via', 'example.net'], /--bundle: is required/],
    ];
    for (const [argv, message] of cases) {
      const r = await runCli(argv);
      expect(r.code, `${argv.join(' ')}\n${r.stderr}`).toBe(2);
      expect(r.stderr).toMatch(message);
    }
    expect(await treeState(out)).toEqual(tree);
  });
});

// The hashes are what the bundle holds: nothing of a password is anywhere in it.
describe('the bundle after the user commands', () => {
  it('holds no password in clear', async () => {
    for (const [p] of Object.entries(await hashes())) {
      const text = await readFile(join(out, p)).catch(() => Buffer.alloc(0));
      for (const pw of [ALICE_PW, BOB_PW, BOB_PW2]) expect(text.includes(pw), p).toBe(false);
    }
  });
});
