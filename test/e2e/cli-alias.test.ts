/**
 * `selfmail alias add|remove|list` through the built bin: the Postfix maps and selfmail.yaml
 * change and nothing else; a catch-all never takes a mailbox's mail; bad input exits 2 naming
 * the command, with nothing changed.
 */
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run } from '../../src/tools/run.js';
import { runCli, treeState } from '../helpers/cli.js';

let work: string;
let out: string;

async function hashes(): Promise<Record<string, string>> {
  const tree = await treeState(out);
  return Object.fromEntries(Object.entries(tree).map(([p, v]) => [p, v.split(' ')[2]!]));
}
const changed = (a: Record<string, string>, b: Record<string, string>) =>
  [...new Set([...Object.keys(a), ...Object.keys(b)])].filter((p) => a[p] !== b[p]).sort();
const virtual = async () => (await readFile(join(out, 'postfix/virtual'), 'utf8')).split('\n').filter((l) => l && !l.startsWith('#'));

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'selfmail-alias-'));
  out = join(work, 'bundle');
  const pw = join(work, 'pw');
  await writeFile(pw, 'alice@example.org:alice has a long password\nbob@example.net:bob has a long password too\n');
  await chmod(pw, 0o600);
  const r = await runCli(['init', '--non-interactive', '--out', out, '--domain', 'example.org', '--domain', 'example.net', '--ipv4', '192.0.2.25', '--user', 'alice@example.org', '--user', 'bob@example.net', '--password-file', pw, '--admin-ssh-from', '198.51.100.0/24', '--target', 'debian-12']);
  expect(r.code, r.stderr).toBe(0);
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

describe('selfmail alias', () => {
  it('adds an alias to two mailboxes: the maps and selfmail.yaml change, nothing else', async () => {
    const before = await hashes();
    const r = await runCli(['alias', 'add', 'team@example.org', 'alice@example.org', 'bob@example.net', '--bundle', out]);
    expect(r.code, r.stderr).toBe(0);
    expect(changed(before, await hashes())).toEqual(['MANIFEST.sha256', 'postfix/virtual', 'selfmail.state.json', 'selfmail.yaml']);
    expect(await virtual()).toContain('team@example.org alice@example.org, bob@example.net');
    expect(await readFile(join(out, 'selfmail.yaml'), 'utf8')).toMatch(/aliases:\n  - team@example\.org=alice@example\.org,bob@example\.net\n/);
    expect((await run('sha256sum', ['--check', '--strict', '--quiet', 'MANIFEST.sha256'], { cwd: out })).exitCode).toBe(0);
  });

  it('adds a catch-all that never takes a mailbox\'s or an alias\'s mail', async () => {
    const r = await runCli(['alias', 'add', '@example.org', 'bob@example.net', '--bundle', out]);
    expect(r.code, r.stderr).toBe(0);
    const lines = await virtual();
    expect(lines).toContain('@example.org bob@example.net');
    // alice is a mailbox of that domain: her own entry comes first in Postfix's lookup order.
    expect(lines).toContain('alice@example.org alice@example.org');
    expect(lines).toContain('team@example.org alice@example.org, bob@example.net');
    expect(lines).toContain('postmaster@example.org alice@example.org');
    // bob's domain has no catch-all: no entry of his own is needed.
    expect(lines).not.toContain('bob@example.net bob@example.net');
    const list = await runCli(['alias', 'list', '--bundle', out, '--json']);
    expect(JSON.parse(list.stdout)).toEqual({ ok: true, aliases: [{ from: '@example.org', to: ['bob@example.net'] }, { from: 'team@example.org', to: ['alice@example.org', 'bob@example.net'] }] });
  });

  it('refuses bad input with exit 2, naming the command, and changes nothing', async () => {
    const tree = await treeState(out);
    for (const [args, said] of [
      [['alias', 'add', 'alice@example.org', 'bob@example.net'], /selfmail alias add: alice@example\.org is a mailbox; an alias cannot take its mail/],
      [['alias', 'add', 'x@example.com', 'bob@example.net'], /selfmail alias add: x@example\.com is not in one of the mail domains/],
      [['alias', 'add', 'team@example.org', 'bob@example.net'], /selfmail alias add SOURCE: team@example\.org is already an alias/],
      [['alias', 'add', 'sales@example.org', 'nobody@example.org'], /delivers to nobody@example\.org, which is in your domains but is neither a mailbox nor an alias/],
      [['alias', 'add', 'abuse@example.net', 'bob@example.net'], /abuse@example\.net always reaches the admin/],
      [['alias', 'add', 'ops@example.org'], /selfmail alias add: needs at least one TARGET address/],
      [['alias', 'remove', 'ops@example.org'], /selfmail alias remove SOURCE: ops@example\.org is not an alias of this bundle/],
    ] as const) {
      const r = await runCli([...args, '--bundle', out]);
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(2);
      expect(r.stderr).toMatch(said);
    }
    expect(await treeState(out)).toEqual(tree);
    // Removing an alias another one delivers to would leave that one pointing nowhere.
    expect((await runCli(['alias', 'add', 'a@example.org', 'alice@example.org', '--bundle', out])).code).toBe(0);
    expect((await runCli(['alias', 'add', 'b@example.org', 'a@example.org', '--bundle', out])).code).toBe(0);
    const chain = await treeState(out);
    const orphan = await runCli(['alias', 'remove', 'a@example.org', '--bundle', out]);
    expect(orphan.code).toBe(2);
    expect(orphan.stderr).toMatch(/b@example\.org delivers to a@example\.org, which is in your domains but is neither a mailbox nor an alias/);
    expect(await treeState(out)).toEqual(chain);
    // A loop can only come in whole, through init: refused there.
    const loop = await runCli(['init', '--non-interactive', '--out', out, '--alias', 'c@example.org=d@example.org', '--alias', 'd@example.org=c@example.org']);
    expect(loop.code).toBe(2);
    expect(loop.stderr).toMatch(/--alias: c@example\.org → d@example\.org → c@example\.org is a loop/);
    expect(await treeState(out)).toEqual(chain);
    for (const x of ['b@example.org', 'a@example.org']) expect((await runCli(['alias', 'remove', x, '--bundle', out])).code).toBe(0);
  });

  it('removes an alias; the catch-all\'s mailbox entries go with the catch-all', async () => {
    const before = await hashes();
    const r = await runCli(['alias', 'remove', '@example.org', '--bundle', out]);
    expect(r.code, r.stderr).toBe(0);
    expect(changed(before, await hashes())).toEqual(['MANIFEST.sha256', 'postfix/virtual', 'selfmail.state.json', 'selfmail.yaml']);
    const lines = await virtual();
    expect(lines.filter((l) => l.startsWith('@'))).toEqual([]);
    expect(lines).not.toContain('alice@example.org alice@example.org');
    expect(lines).toContain('team@example.org alice@example.org, bob@example.net');
  });
});
