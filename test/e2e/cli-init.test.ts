/**
 * The foundation's contract, through the real built bin: exit codes, refusals, hostile input,
 * --json, the manifest, idempotent re-runs, and that failures write nothing.
 */
import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, treeState } from '../helpers/cli.js';
import { STAT_CACHE } from '../../src/bundle/write.js';

let work: string;
beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'selfmail-cli-'));
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

const BASE = ['init', '--non-interactive', '--domain', 'example.org', '--ipv4', '192.0.2.25', '--user', 'alice@example.org'];

describe('selfmail --help / --version', () => {
  it('prints help and exits 0', async () => {
    const r = await runCli(['--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/selfmail init/);
    expect(r.stdout).toMatch(/--password-file/);
  });
  it('prints the version', async () => {
    const r = await runCli(['--version']);
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toMatch(/^\d+\.\d+\.\d+$/);
  });
  it('rejects an unknown command with exit 2', async () => {
    const r = await runCli(['frobnicate']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/not a selfmail command/);
  });
});

describe('refusals (exit 3, nothing written)', () => {
  const cases: Array<[string, string[]]> = [
    ['upnp ingress', ['--ingress', 'upnp']],
    ['tunnel ingress', ['--ingress', 'tunnel']],
    ['tunnel provider', ['--tunnel-provider', 'acme-tunnels']],
    ['relay host', ['--relay-host', 'smtp.provider.example']],
    ['dkim key', ['--dkim-key', '/tmp/dkim.pem']],
    ['tls key', ['--tls-key', '/tmp/tls.pem']],
    ['dnssec key', ['--dnssec-key', '/tmp/Kexample']],
    ['dns provider', ['--dns-provider', 'bigdns']],
  ];
  cases.push(['upnp flag', ['--upnp']]);
  it.each(cases)('refuses %s by flag', async (_name, extra) => {
    const out = join(work, `refused-${extra[0]}`);
    const r = await runCli([...BASE, '--out', out, ...extra]);
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/Principle \d/);
    expect(r.stderr).toMatch(/Instead:/);
    await expect(stat(out)).rejects.toThrow();
  });

  const okFile = 'domains: [example.org]\nipv4: 192.0.2.25\nusers: [alice@example.org]\n';
  it.each<[string, string]>([
    ['relayHost', `${okFile}relayHost: smtp.provider.example\n`],
    ['ingress upnp', `${okFile}ingress: upnp\n`],
    ['tlsKey', `${okFile}tlsKey: /tmp/tls.pem\n`],
    ['dynamic DNS domain', 'domains: [me.duckdns.org]\nipv4: 192.0.2.25\nusers: [a@me.duckdns.org]\n'],
    ['ingress tunnel', `${okFile}ingress: tunnel\n`],
    ['upnp', `${okFile}upnp: true\n`],
    ['tunnelProvider', `${okFile}tunnelProvider: some-tunnel\n`],
    ['dkimKey', `${okFile}dkimKey: /tmp/dkim.pem\n`],
    ['dnssecKey', `${okFile}dnssecKey: /tmp/Kexample\n`],
    ['dnsProvider', `${okFile}dnsProvider: bigdns\n`],
    ['carrier-grade NAT', 'domains: [example.org]\nipv4: 100.64.0.9\nusers: [alice@example.org]\n'],
  ])('refuses %s in a config file', async (name, body) => {
    const slug = name.replace(/\W/g, '');
    const cfg = join(work, `refuse-${slug}.yaml`);
    await writeFile(cfg, body);
    const out = join(work, `refused-file-${slug}`);
    const r = await runCli(['init', '--non-interactive', '--config', cfg, '--out', out]);
    expect(r.code).toBe(3);
    expect(r.stderr).toContain(cfg);
    await expect(stat(out)).rejects.toThrow();
  });

  it('refuses a carrier-grade NAT address and still lists the other problems', async () => {
    const out = join(work, 'refused-cgnat');
    const r = await runCli(['init', '--non-interactive', '--domain', 'exa mple.org', '--ipv4', '100.64.0.9', '--user', 'a@example.org', '--out', out]);
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/carrier-grade NAT/);
    expect(r.stderr).toMatch(/--domain: "exa mple.org" contains a space/);
    await expect(stat(out)).rejects.toThrow();
  });
});

describe('hostile and invalid values (exit 2, nothing written)', () => {
  // Each value breaks exactly one rule, and the run names that field and that rule, and nothing else.
  const hostile: Array<[string, string[], RegExp]> = [
    ['newline in domain', ['--domain', 'example.org\nmynetworks = 0.0.0.0/0'], /^ {2}--domain: ".*" contains a line break; a domain name has only letters, digits, hyphens and dots$/m],
    ['quote in hostname', ['--hostname', 'mail"example.org'], /^ {2}--hostname: ".*" contains the character "\\""; a domain name has only letters/m],
    ['brace in user', ['--user', 'al{ice}@example.org'], /^ {2}--user: "al\{ice\}@example\.org" has a local part with characters other than letters, digits/m],
    ['semicolon in admin', ['--admin', 'a;b@example.org'], /^ {2}--admin: "a;b@example\.org" has a local part with characters other than letters, digits/m],
    ['space in ns', ['--ns', 'ns1.example.org =192.0.2.25'], /^ {2}--ns: ".*" contains a space; a domain name has only letters/m],
    ['non-ASCII local part', ['--user', 'ålice@example.org'], /^ {2}--user: "ålice@example\.org" has a local part \(before the @\) that contains a non-ASCII character/m],
    ['over-long label', ['--hostname', `${'a'.repeat(64)}.example.org`], /^ {2}--hostname: "a+\.example\.org" has a label of 64 characters; a label has at most 63$/m],
    ['private address', ['--ipv4', '192.168.1.2'], /^ {2}--ipv4: "192\.168\.1\.2" is a private address \(192\.168\.0\.0\/16\)/m],
    ['unknown spam lookup', ['--spam-lookups', 'spamhaus,multi.uribl.com'], /^ {2}--spam-lookups: "multi\.uribl\.com" is not a lookup selfmail knows; the lookups are spamhaus, surbl \(or none\)$/m],
  ];
  it.each(hostile)('rejects %s, naming the field and the rule', async (_name, extra, rule) => {
    const out = join(work, 'hostile');
    const pw = join(work, 'pw-hostile');
    await writeFile(pw, 'alice@example.org:correct horse battery staple\n', { mode: 0o600 });
    const r = await runCli([...BASE, '--password-file', pw, '--out', out, ...extra]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(rule);
    expect(r.stderr.match(/^ {2}--/gm), r.stderr).toHaveLength(1);
    await expect(stat(out)).rejects.toThrow();
  });

  it('rejects a NUL byte coming from a config file (argv cannot carry one)', async () => {
    const cfg = join(work, 'nul.yaml');
    await writeFile(cfg, 'domains: [example.org]\nipv4: 192.0.2.25\nusers: [alice@example.org]\nadminSshFrom: ["203.0.113.0/24\\0"]\n');
    const out = join(work, 'nul');
    const r = await runCli(['init', '--non-interactive', '--config', cfg, '--out', out]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/adminSshFrom: .*NUL byte/);
    await expect(stat(out)).rejects.toThrow();
  });

  it('reports every missing value at once', async () => {
    const r = await runCli(['init', '--non-interactive', '--out', join(work, 'missing')]);
    expect(r.code).toBe(2);
    for (const flag of ['--domain', '--ipv4', '--user']) expect(r.stderr).toContain(`${flag}: is required`);
  });

  it('rejects unknown flags and unknown config keys', async () => {
    await writeFile(join(work, 'pw-u'), 'alice@example.org:correct horse battery staple\n', { mode: 0o600 });
    // Everything else is valid: the unknown flag alone makes the run fail.
    const u = await runCli([...BASE, '--password-file', join(work, 'pw-u'), '--out', join(work, 'unknown-flag'), '--frobnicate']);
    expect(u.code).toBe(2);
    expect(u.stderr).toMatch(/^ {2}selfmail init: Unknown option '--frobnicate'/m);
    await expect(stat(join(work, 'unknown-flag'))).rejects.toThrow();
    const cfg = join(work, 'typo.yaml');
    await writeFile(cfg, 'domains: [example.org]\nipv4: 192.0.2.25\nusers: [alice@example.org]\nhostnmae: mail.example.org\n');
    const r = await runCli(['init', '--non-interactive', '--config', cfg, '--out', join(work, 'typo')]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/unknown setting "hostnmae"/);
  });

  it('reports a missing password with every other problem, before any key is generated', async () => {
    const out = join(work, 'nopw-and-more');
    const r = await runCli(['init', '--non-interactive', '--domain', 'example.org', '--ipv4', '192.0.2.25', '--user', 'alice@example.org', '--user', 'bob@example.org', '--admin-ssh-from', 'nope', '--out', out]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^ {2}--admin-ssh-from: "nope"/m);
    expect(r.stderr).toMatch(/^ {2}--password-file: has no password for the mailbox alice@example\.org/m);
    expect(r.stderr).toMatch(/^ {2}--password-file: has no password for the mailbox bob@example\.org/m);
    expect(r.stdout + r.stderr).not.toMatch(/Generating keys/);
    await expect(stat(out)).rejects.toThrow();
  });

  it('requires a password for every mailbox, without a default', async () => {
    const out = join(work, 'nopw');
    const r = await runCli([...BASE, '--out', out]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/no password for the mailbox alice@example.org/);
    await expect(stat(out)).rejects.toThrow();
  });

  it('rejects a release it does not write for, by flag and by config file, naming the supported ones', async () => {
    await writeFile(join(work, 'pw-t'), 'alice@example.org:correct horse battery staple\n', { mode: 0o600 });
    const out = join(work, 'bad-target');
    // Only the target is wrong: with a password file, everything else would pass.
    const r = await runCli([...BASE, '--password-file', join(work, 'pw-t'), '--target', 'debian-11', '--out', out]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^ {2}--target: "debian-11" is not a supported release: selfmail writes for debian-13 \(Debian 13 "trixie"\) and debian-12 \(Debian 12 "bookworm"\)$/m);
    expect(r.stderr.match(/^ {2}--/gm)).toHaveLength(1);
    await expect(stat(out)).rejects.toThrow();
    const cfg = join(work, 'target.yaml');
    await writeFile(cfg, 'domains: [example.org]\nipv4: 192.0.2.25\nusers: [alice@example.org]\ntarget: ubuntu-24.04\n');
    const f = await runCli(['init', '--non-interactive', '--config', cfg, '--password-file', join(work, 'pw-t'), '--out', out]);
    expect(f.code).toBe(2);
    expect(f.stderr).toMatch(/target\.yaml: target: "ubuntu-24\.04" is not a supported release/);
    await expect(stat(out)).rejects.toThrow();
  });

  it('refuses to take over a folder that is not a bundle', async () => {
    const out = join(work, 'not-a-bundle');
    await rm(out, { recursive: true, force: true });
    await writeFile(join(work, 'pw-x'), 'alice@example.org:correct horse battery staple\n', { mode: 0o600 });
    execFileSync('mkdir', ['-p', out]);
    await writeFile(join(out, 'precious.txt'), 'keep me');
    const r = await runCli([...BASE, '--password-file', join(work, 'pw-x'), '--out', out]);
    expect(r.code).toBe(2);
    expect(await readdir(out)).toEqual(['precious.txt']);
  });
});

describe('a real bundle', () => {
  let out: string;
  let pwFile: string;
  const secret = 'correct horse battery staple 42';

  beforeAll(async () => {
    out = join(work, 'bundle');
    pwFile = join(work, 'passwords');
    await writeFile(pwFile, `alice@example.org:${secret}\n`, { mode: 0o600 });
  });

  it('writes the bundle and prints one JSON document on stdout', async () => {
    const r = await runCli([...BASE, '--password-file', pwFile, '--out', out, '--json']);
    expect(r.stderr).not.toMatch(/internal error/);
    expect(r.code).toBe(0);
    const doc = JSON.parse(r.stdout) as { ok: boolean; bundle: string; files: Array<{ path: string; role: string }>; ds: string[]; warnings: string[] };
    expect(doc.ok).toBe(true);
    expect(doc.bundle).toBe(out);
    const paths = doc.files.map((f) => f.path);
    for (const p of ['selfmail.yaml', 'REPORT.md', 'dns/example.org.zone', 'dns/example.org.zone.signed', 'postfix/main.cf', 'dovecot/dovecot.conf']) {
      expect(paths).toContain(p);
    }
    expect(doc.ds[0]).toMatch(/^example\.org\. IN DS \d+ 13 2 [0-9A-F]{64}$/);
    // A first run hands out the DS, and ends with its summary (human output goes to stderr with --json).
    expect(r.stderr).toMatch(/^Give these DS records to your registrar/m);
    expect(r.stderr.trim().split('\n').pop()).toMatch(/^Bundle written to /);
    expect(doc.warnings.join('\n')).toMatch(/documentation address/);
    // No private key material anywhere in what the user sees.
    expect(r.stdout + r.stderr).not.toMatch(/PRIVATE KEY|PrivateKey:|argon2id\$/);
  });

  it('writes a manifest that sha256sum -c accepts, covering every file but itself', async () => {
    const out2 = execFileSync('sha256sum', ['-c', 'MANIFEST.sha256'], { cwd: out, encoding: 'utf8' });
    expect(out2).not.toMatch(/FAILED/);
    const listed = (await readFile(join(out, 'MANIFEST.sha256'), 'utf8')).trim().split('\n').length;
    const all = Object.keys(await treeState(out)).length;
    expect(listed).toBe(all - 1);
    // Beside them, the quick path's stat record: not listed, not one of the bundle's files.
    expect((await stat(join(out, STAT_CACHE))).isFile()).toBe(true);
    expect(await readFile(join(out, 'MANIFEST.sha256'), 'utf8')).not.toContain(STAT_CACHE);
  });

  it('records the release it wrote for: this machine\'s, or --target', async () => {
    const host = (await readFile('/etc/os-release', 'utf8')).match(/^VERSION_ID="?(\d+)/m)?.[1];
    expect(await readFile(join(out, 'selfmail.yaml'), 'utf8')).toMatch(new RegExp(`^target: debian-${host}$`, 'm'));
  });

  it('keeps keys private and secrets out of selfmail.yaml', async () => {
    expect((await stat(join(out, 'keys'))).mode & 0o777).toBe(0o700);
    const state = await treeState(out);
    for (const [p, s] of Object.entries(state)) {
      const text = await readFile(join(out, p), 'utf8');
      if (/PRIVATE KEY|^PrivateKey:/m.test(text)) expect(s.split(' ')[0]).toBe('600');
      expect(text).not.toContain(secret);
    }
    const yaml = await readFile(join(out, 'selfmail.yaml'), 'utf8');
    expect(yaml).not.toMatch(/PRIVATE|argon2|password/i);
  });

  it('re-runs from the bundle alone and rewrites nothing', async () => {
    const before = await treeState(out);
    const r = await runCli(['init', '--non-interactive', '--out', out]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/Nothing changed/);
    expect(await treeState(out)).toEqual(before);
  });

  it('restores a file changed by hand on the next run, and only that file', async () => {
    const path = join(out, 'postfix/main.cf');
    const original = await readFile(path, 'utf8');
    const before = await treeState(out);
    await writeFile(path, `${original}smtpd_relay_restrictions = permit\n`);
    const r = await runCli(['init', '--non-interactive', '--out', out]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/1 file\(s\) changed/);
    expect(await readFile(path, 'utf8')).toBe(original);
    const after = await treeState(out);
    for (const p of Object.keys(before)) if (p !== 'postfix/main.cf') expect(after[p]).toBe(before[p]);
  });

  it('restores a hand edit even when MANIFEST.sha256 was updated to match it (the quick path is not fooled)', async () => {
    const path = join(out, 'postfix/main.cf');
    const original = await readFile(path, 'utf8');
    const edited = `${original}smtpd_relay_restrictions = permit\n`;
    await writeFile(path, edited);
    const { createHash } = await import('node:crypto');
    const sum = createHash('sha256').update(edited).digest('hex');
    const manifest = await readFile(join(out, 'MANIFEST.sha256'), 'utf8');
    await writeFile(join(out, 'MANIFEST.sha256'), manifest.replace(/^[0-9a-f]{64}( {2}postfix\/main\.cf)$/m, `${sum}$1`));
    const r = await runCli(['init', '--non-interactive', '--out', out]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).not.toMatch(/Nothing changed/);
    expect(await readFile(path, 'utf8')).toBe(original);
    expect(await readFile(join(out, 'MANIFEST.sha256'), 'utf8')).toBe(manifest);
  });

  it('re-runs with the same flags and password file and rewrites nothing', async () => {
    const before = await treeState(out);
    const r = await runCli([...BASE, '--password-file', pwFile, '--out', out]);
    expect(r.code).toBe(0);
    expect(await treeState(out)).toEqual(before);
  });

  it('a new mailbox re-checks only Postfix and Dovecot, whose files change', async () => {
    const carol = join(work, 'pw-carol');
    await writeFile(carol, 'carol@example.org:carol long password 9\n', { mode: 0o600 });
    const r = await runCli(['init', '--non-interactive', '--out', out, '--user', 'alice@example.org', '--user', 'carol@example.org', '--password-file', carol], { env: { SELFMAIL_DEBUG: '1' } });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/ ms\] checked \(postfix, dovecot\) /);
    // Back to the one mailbox, for the tests after this one.
    const back = await runCli(['init', '--non-interactive', '--out', out, '--user', 'alice@example.org']);
    expect(back.code, back.stderr).toBe(0);
  });

  it('writes nothing when a real tool rejects what it generated: exit 4, the bundle as it was', async () => {
    // A postconf that rejects everything stands in for a configuration Postfix refuses.
    const bin = join(work, 'rejecting-bin');
    execFileSync('mkdir', ['-p', bin]);
    await writeFile(join(bin, 'postconf'), '#!/bin/sh\necho "postconf: fatal: /etc/postfix/main.cf, line 3: missing \\"=\\" after attribute name: \\"smtpd_tls\\"" >&2\nexit 1\n', { mode: 0o755 });
    const env = { PATH: `${bin}:${process.env.PATH ?? ''}` };
    const before = await treeState(out);
    // A change that Postfix's check must judge: another mailbox.
    const bobPw = join(work, 'pw-bob');
    await writeFile(bobPw, 'bob@example.org:another long password 7\n', { mode: 0o600 });
    const changed = await runCli(['init', '--non-interactive', '--out', out, '--user', 'alice@example.org', '--user', 'bob@example.org', '--password-file', bobPw], { env });
    expect(changed.code, changed.stderr).toBe(4);
    expect(changed.stderr).toMatch(/postconf .*failed.*missing "=" after attribute name/s);
    expect(await treeState(out)).toEqual(before);
    const fresh = join(work, 'rejected-fresh');
    const first = await runCli([...BASE, '--password-file', pwFile, '--out', fresh], { env });
    expect(first.code).toBe(4);
    await expect(stat(fresh)).rejects.toThrow();
  });

  it('leaves the bundle as it was when the new input is invalid', async () => {
    const before = await treeState(out);
    const r = await runCli(['init', '--non-interactive', '--out', out, '--ipv4', '10.9.9.9']);
    expect(r.code).toBe(2);
    expect(await treeState(out)).toEqual(before);
  });
});

describe('--demo', () => {
  it('builds a complete example.org bundle without questions, twice identically', async () => {
    const out = join(work, 'demo');
    const r = await runCli(['init', '--demo', '--out', out]);
    expect(r.code).toBe(0);
    const users = await readFile(join(out, 'dovecot/users'), 'utf8');
    expect(users).toMatch(/^demo@example\.org:\{ARGON2ID\}/m);
    const before = await treeState(out);
    const again = await runCli(['init', '--demo', '--out', out]);
    expect(again.code).toBe(0);
    expect(await treeState(out)).toEqual(before);
  });
});
