/**
 * `selfmail apply` and `selfmail verify` through the real built bin, on bundles written by the real
 * `selfmail init`: the demo bundle and a two-domain bundle with a secondary name server, SSH
 * admission and mailbox passwords. Each is installed into a temporary root, where every service's
 * own validator passes; a second run changes nothing; verify is clean; tampering, a dry run on a
 * changed bundle and a broken Postfix setting behave as the contract says.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyBundle, seedSystemRoot, treeDigest } from '../helpers/apply-bundle.js';
import { runCli } from '../helpers/cli.js';
import { ensureBuilt } from '../helpers/rehearse-cli.js';

let work: string;
let demo: string;
let two: string;

const fresh = (name: string) => mkdtemp(join(work, `${name}-`));
/** A system root to install into: this machine's accounts and os-release, as apply wants (helpers/apply-bundle.ts). */
const freshRoot = async () => seedSystemRoot(await chmodded(await fresh('root')));
const chmodded = async (d: string) => (await chmod(d, 0o755), d);

/** The validators every real bundle must pass (names as apply reports them). */
const VALIDATORS = [
  'postfix check',
  'postconf -n',
  'postconf -M',
  'doveconf -n',
  'nsd-checkconf',
  'nft -c -f /etc/selfmail/nftables/selfmail.nft',
  'sshd -t',
  'unbound-checkconf',
  'DKIM keys readable by rspamd (_rspamd)',
  'nginx -t',
  'fail2ban-client -t',
];

interface ApplyJson {
  changes: { bundlePath: string; systemPath: string; action: string }[];
  unchanged: number;
  validated: string[];
  diff?: string;
  kept?: { systemPath: string; reason: string }[];
}

async function apply(args: string[]): Promise<{ code: number | null; result: ApplyJson; stderr: string }> {
  const r = await runCli(['apply', ...args, '--json']);
  let result: ApplyJson;
  try {
    result = JSON.parse(r.stdout) as ApplyJson;
  } catch {
    throw new Error(`not one JSON document on stdout (exit ${r.code}):\n${r.stdout}\n${r.stderr}`);
  }
  return { code: r.code, result, stderr: r.stderr };
}

/** Rewrite one bundle file and its MANIFEST.sha256 line, as apply checks the manifest. */
async function editWithManifest(bundle: string, path: string, edit: (t: string) => string): Promise<void> {
  const full = join(bundle, path);
  const text = edit(await readFile(full, 'utf8'));
  await writeFile(full, text);
  const sum = createHash('sha256').update(text).digest('hex');
  const manifest = await readFile(join(bundle, 'MANIFEST.sha256'), 'utf8');
  const lines = manifest.split('\n').map((l) => (l.endsWith(`  ${path}`) ? `${sum}  ${path}` : l));
  await writeFile(join(bundle, 'MANIFEST.sha256'), lines.join('\n'));
}

/** What the validators would leave on this machine if they ran outside their namespace. */
async function hostTraces(): Promise<Record<string, string[] | boolean>> {
  const list = (d: string) => readdir(d).then((n) => n.sort(), () => []);
  return {
    queue: await list('/var/spool/postfix'),
    nginxPid: existsSync('/run/nginx.pid'),
    sshd: existsSync('/run/sshd'),
    nginxLib: await list('/var/lib/nginx'),
  };
}

beforeAll(async () => {
  ensureBuilt();
  work = await mkdtemp(join(tmpdir(), 'selfmail-e2e-apply-'));
  demo = join(work, 'demo');
  two = join(work, 'two');
  const passwords = join(work, 'passwords');
  await writeFile(passwords, 'alice@example.org:alice-apply-pw-1\nbob@example.net:bob-apply-pw-22\n', { mode: 0o600 });
  const [d, t] = await Promise.all([
    runCli(['init', '--demo', '--out', demo]),
    runCli([
      'init', '--demo', '--non-interactive', '--domain', 'example.org', '--domain', 'example.net',
      '--ipv4', '192.0.2.25', '--ipv6', '2001:db8::25', '--user', 'alice@example.org', '--user', 'bob@example.net',
      '--password-file', passwords, '--ns', 'ns1.example.org', '--ns', 'ns2.example.net=198.51.100.53',
      '--admin-ssh-from', '198.51.100.0/24', '--out', two,
    ]),
  ]);
  if (d.code !== 0 || t.code !== 0) throw new Error(`selfmail init failed:\n${d.stderr}\n${t.stderr}`);
}, 120_000);

afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

describe('selfmail apply / verify on real bundles', () => {
  it.each([
    ['the demo bundle', () => demo, ['example.org']],
    ['a two-domain bundle with a secondary name server', () => two, ['example.net', 'example.org']],
  ])('installs %s with every validator passing, and a second run changes nothing', async (_label, bundleOf, zones) => {
    const bundle = bundleOf();
    const root = await freshRoot();
    const hostAnchor = existsSync('/var/lib/unbound/root.key');
    const traces = await hostTraces();
    const first = await apply(['--bundle', bundle, '--root', root, '--no-reload']);
    expect(first.code, first.stderr).toBe(0);
    expect(first.result.changes.every((c) => c.action === 'create')).toBe(true);
    expect(first.result.validated).toEqual(expect.arrayContaining(VALIDATORS));
    for (const z of zones) {
      expect(first.result.validated).toContain(`nsd-checkzone ${z} /etc/nsd/zones/${z}.zone.signed`);
    }
    // The host's resolver is switched by selfmail-resolver.service once unbound answers, not by apply.
    expect(await readFile(join(root, 'etc/selfmail/resolv.conf'), 'utf8')).toBe(await readFile(join(bundle, 'resolver/resolv.conf'), 'utf8'));
    expect(existsSync(join(root, 'etc/resolv.conf'))).toBe(false);
    // The mail account, in the root's own account table, owning the mail folder.
    expect(await readFile(join(root, 'etc/passwd'), 'utf8')).toMatch(/^vmail:x:\d+:\d+:selfmail mailboxes:\/var\/vmail:\/usr\/sbin\/nologin$/m);
    // The trust anchor was only lent to unbound-checkconf: neither the root nor the host got one written.
    expect(await readdir(join(root, 'var/lib')).catch(() => [])).not.toContain('unbound');
    expect(existsSync('/var/lib/unbound/root.key')).toBe(hostAnchor);
    // What the validators write while testing (Postfix's queue, nginx's pid, sshd's folder) stayed in their namespace.
    expect(await hostTraces()).toEqual(traces);

    const digest = await treeDigest(root);
    const second = await apply(['--bundle', bundle, '--root', root, '--no-reload']);
    expect(second.code, second.stderr).toBe(0);
    expect(second.result.changes).toEqual([]);
    expect(second.result.unchanged).toBe(first.result.changes.length);
    expect(await treeDigest(root)).toBe(digest);

    const v = await runCli(['verify', '--bundle', bundle, '--root', root]);
    expect(v.stdout + v.stderr).toMatch(/every installed file matches/);
    expect(v.code).toBe(0);
  });

  it('verify names a tampered installed file and exits 4', async () => {
    const root = await freshRoot();
    expect((await apply(['--bundle', demo, '--root', root, '--no-reload'])).code).toBe(0);
    const main = join(root, 'etc/postfix/main.cf');
    await writeFile(main, `${await readFile(main, 'utf8')}relayhost = [smtp.example.com]\n`);
    const v = await runCli(['verify', '--bundle', demo, '--root', root]);
    expect(v.code).toBe(4);
    expect(v.stdout).toMatch(/^FAIL changed \/etc\/postfix\/main\.cf: /m);
    expect(v.stdout.split('\n').filter((l) => l.startsWith('FAIL'))).toHaveLength(1);
    expect(v.stdout.trim().split('\n').pop()).toMatch(/^verify: 1 failure\(s\) above: selfmail apply --bundle /);

    const j = await runCli(['verify', '--bundle', demo, '--root', root, '--json']);
    expect(j.code).toBe(4);
    const doc = JSON.parse(j.stdout) as { clean: boolean; findings: { path: string; check: string }[] };
    expect(doc.clean).toBe(false);
    expect(doc.findings).toEqual([expect.objectContaining({ path: '/etc/postfix/main.cf', check: 'changed' })]);
  });

  it('--dry-run on a changed bundle shows the diff and leaves the root untouched', async () => {
    const root = await freshRoot();
    expect((await apply(['--bundle', demo, '--root', root, '--no-reload'])).code).toBe(0);
    const changed = await fresh('changed');
    await copyBundle(demo, changed);
    const init = await runCli(['init', '--demo', '--user', 'demo@example.org', '--user', 'carol@example.org', '--out', changed]);
    expect(init.code, init.stderr).toBe(0);
    const digest = await treeDigest(root);
    const r = await apply(['--bundle', changed, '--root', root, '--dry-run']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.result.changes.map((c) => c.systemPath)).toEqual(
      expect.arrayContaining(['/etc/postfix/vmailbox', '/etc/dovecot/users', '/etc/selfmail/MANIFEST.sha256']),
    );
    expect(r.result.diff).toContain('--- a/etc/postfix/vmailbox');
    expect(r.result.diff).toMatch(/^\+carol@example\.org OK$/m);
    // The users file holds password hashes: named, never shown.
    expect(r.result.diff).toMatch(/\/etc\/dovecot\/users: secret, contents not shown/);
    expect(r.result.diff).not.toContain('argon2id');
    expect(await treeDigest(root)).toBe(digest);

    const human = await runCli(['apply', '--bundle', changed, '--root', root, '--dry-run']);
    expect(human.code).toBe(0);
    expect(human.stdout).toMatch(/\+carol@example\.org OK/);
    expect(human.stdout).toMatch(/nothing was changed/);
    expect(await treeDigest(root)).toBe(digest);
  });

  it('a broken Postfix setting: apply exits 4 and the root is byte-identical', async () => {
    const root = await freshRoot();
    expect((await apply(['--bundle', demo, '--root', root, '--no-reload'])).code).toBe(0);
    const broken = await fresh('broken');
    await copyBundle(demo, broken);
    await editWithManifest(broken, 'postfix/main.cf', (t) => `${t}smtpd_tls_frobnicate = yes\n`);
    const digest = await treeDigest(root);
    const r = await runCli(['apply', '--bundle', broken, '--root', root, '--no-reload']);
    expect(r.code).toBe(4);
    expect(r.stderr).toMatch(/smtpd_tls_frobnicate/);
    expect(r.stderr).toMatch(/nothing was changed/);
    expect(await treeDigest(root)).toBe(digest);

    // The same into a fresh root leaves it as it was: no file, no mail account.
    const empty = await freshRoot();
    const before = await treeDigest(empty);
    const e = await runCli(['apply', '--bundle', broken, '--root', empty, '--no-reload']);
    expect(e.code).toBe(4);
    expect(await treeDigest(empty)).toBe(before);
  });

  it("an rspamd file of the host's own that turns an outside lookup back on: apply exits 4 naming it, nothing changed", async () => {
    const root = await freshRoot();
    // rspamd's own "override everything" file, beside what the bundle installs: rspamd then runs
    // rbl despite the bundle's override.d. Only rspamd itself, asked at apply, can tell.
    await mkdir(join(root, 'etc/rspamd'), { recursive: true });
    await writeFile(join(root, 'etc/rspamd/rspamd.conf.override'), 'rbl {\n  enabled = true;\n}\n');
    const before = await treeDigest(root);
    const r = await runCli(['apply', '--bundle', demo, '--root', root, '--no-reload']);
    expect(r.code, r.stderr).toBe(4);
    expect(r.stderr).toMatch(/rspamadm configdump -m \(no outside service\) rejected the new configuration:\s+rspamd would run rbl: It asks DNS blocklists/);
    expect(await treeDigest(root)).toBe(before);
  });
});
