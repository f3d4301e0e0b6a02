/**
 * `selfmail rehearse` through the real built bin, with the real NSD, OpenDKIM, Dovecot and
 * Postfix: a demo bundle and a two-domain bundle pass every step; a bundle whose DKIM key does
 * not match its zone fails at the DKIM step; Ctrl-C stops everything; nothing is left behind.
 */
import { spawn } from 'node:child_process';
import { cp, mkdtemp, readdir, rm, writeFile, copyFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BIN, runCli } from '../helpers/cli.js';
import { type Report, ensureBuilt, rehearsalProcesses, rehearsalRoots } from '../helpers/rehearse-cli.js';

let work: string;
let demo: string;
let two: string;
let passwordFile: string;
let rootsBefore: string[];

beforeAll(async () => {
  ensureBuilt();
  work = await mkdtemp(join(tmpdir(), 'selfmail-e2e-rehearse-'));
  demo = join(work, 'demo');
  two = join(work, 'two');
  passwordFile = join(work, 'passwords');
  await writeFile(passwordFile, 'alice@example.org:alice-rehearsal-pw\nbob@example.net:bob-rehearsal-pw\n', { mode: 0o600 });
  // The bundles come from the real CLI, as a user makes them.
  const [d, t] = await Promise.all([
    runCli(['init', '--demo', '--out', demo]),
    runCli(['init', '--non-interactive', '--domain', 'example.org', '--domain', 'example.net', '--ipv4', '192.0.2.25', '--user', 'alice@example.org', '--user', 'bob@example.net', '--password-file', passwordFile, '--alias', 'team@example.org=alice@example.org,bob@example.net', '--alias', '@example.net=alice@example.org', '--out', two]),
  ]);
  if (d.code !== 0 || t.code !== 0) throw new Error(`selfmail init failed:\n${d.stderr}\n${t.stderr}`);
  rootsBefore = await rehearsalRoots();
}, 120_000);

afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

async function rehearse(args: string[]): Promise<{ code: number | null; report: Report; stderr: string }> {
  const r = await runCli(['rehearse', ...args, '--json']);
  let report: Report;
  try {
    report = JSON.parse(r.stdout) as Report;
  } catch {
    throw new Error(`not one JSON document on stdout (exit ${r.code}):\n${r.stdout}\n${r.stderr}`);
  }
  return { code: r.code, report, stderr: r.stderr };
}

/** Nothing left: no process mentioning a rehearsal root, no new rehearsal root in the temp folder. */
async function expectNothingLeft(): Promise<void> {
  expect(await rehearsalProcesses()).toEqual([]);
  expect(await rehearsalRoots()).toEqual(rootsBefore);
}

function summary(report: Report): string {
  return report.steps.map((s) => `${s.ok ? 'ok' : 'FAIL'} ${s.id}: ${s.reason}`).join('\n');
}

describe('selfmail rehearse', () => {
  it('passes every step on the demo bundle, and leaves nothing behind', async () => {
    const { code, report } = await rehearse(['--bundle', demo]);
    expect(report.ok, summary(report)).toBe(true);
    expect(code).toBe(0);
    expect(report.steps.map((s) => s.id)).toEqual(['dns', 'submission', 'inbound', 'spam', 'imap', 'authentication', 'learning', 'sieve', 'refusals', 'privacy']);
    for (const s of report.steps) {
      expect(s.ok, `${s.id}: ${s.reason}`).toBe(true);
      expect(s.ms).toBeGreaterThanOrEqual(0);
    }
    const refusals = report.steps.find((s) => s.id === 'refusals')!;
    expect(refusals.checks?.length).toBe(6);
    expect(refusals.checks!.every((c) => c.ok)).toBe(true);
    expect(report.steps.find((s) => s.id === 'authentication')!.reason).toMatch(/rsa-sha256 and ed25519-sha256/);
    const reason = (id: string) => report.steps.find((s) => s.id === id)!.reason;
    expect(reason('spam')).toMatch(/GTUBE refused \(EMESSAGE: 5\d\d .*DMARC p=reject\) refused .*filed into Junk/);
    expect(reason('learning')).toMatch(/learned spam (\d+) → \d+.*learned ham \d+ → \d+/);
    expect(reason('sieve')).toMatch(/no login before STARTTLS.*filed a message into Rehearsal.*answered \S+ once for two messages, the reply signed rsa-sha256 \+ ed25519-sha256/);
    expect(reason('privacy')).toMatch(/^\d+ DNS questions, \d+ for the rehearsal's zones \(example\.org\) answered by its NSD; .*outside\.invalid.*; no packet to any address outside loopback/);
    expect(report.cleanup.leftover).toEqual([]);
    await expectNothingLeft();
  }, 90_000);

  it('passes on a two-domain bundle and logs in as its real mailboxes (--password-file)', async () => {
    const { code, report } = await rehearse(['--bundle', two, '--password-file', passwordFile]);
    expect(report.ok, summary(report)).toBe(true);
    expect(code).toBe(0);
    expect(report.mailboxes.rehearsal[1]).toMatch(/@example\.net$/);
    expect(report.mailboxes.real).toEqual(['alice@example.org', 'bob@example.net']);
    const real = report.steps.find((s) => s.id === 'real-mailboxes');
    expect(real?.ok, real?.reason).toBe(true);
    // Its aliases, through the real Postfix: one alias to two mailboxes, and a catch-all that
    // takes an address nothing names but not a mailbox's mail.
    const aliases = report.steps.find((s) => s.id === 'aliases');
    expect(aliases?.ok, aliases?.reason).toBe(true);
    expect(aliases!.reason).toMatch(/@example\.net → alice@example\.org for an unnamed address, not for the mailbox \S+@example\.net/);
    expect(aliases!.reason).toMatch(/team@example\.org → alice@example\.org, bob@example\.net/);
    // The rehearsal's own mailboxes never reach the bundle.
    const { readFile } = await import('node:fs/promises');
    expect(await readFile(join(two, 'dovecot/users'), 'utf8')).not.toContain('rehearsal-');
    await expectNothingLeft();
  }, 90_000);

  it('fails at the DKIM step, saying why, when the DKIM key does not match the published TXT', async () => {
    const broken = join(work, 'broken');
    await cp(demo, broken, { recursive: true });
    // The other bundle's RSA DKIM key under this bundle's selector: the zone still publishes the old one.
    const dir = 'keys/dkim/example.org';
    const rsa = (await readdir(join(demo, dir))).find((f) => f.endsWith('r.private'))!;
    const otherRsa = (await readdir(join(two, dir))).find((f) => f.endsWith('r.private'))!;
    await copyFile(join(two, dir, otherRsa), join(broken, dir, rsa));
    const { code, report } = await rehearse(['--bundle', broken]);
    expect(code).toBe(4);
    expect(report.ok).toBe(false);
    const byId = new Map(report.steps.map((s) => [s.id, s]));
    for (const id of ['dns', 'submission', 'inbound', 'spam', 'imap', 'learning', 'sieve', 'refusals', 'privacy']) expect(byId.get(id)?.ok, `${id}: ${byId.get(id)?.reason}`).toBe(true);
    const dkim = byId.get('authentication')!;
    expect(dkim.ok).toBe(false);
    expect(dkim.reason).toMatch(/DKIM rsa-sha256 s=\S+ d=example\.org does not verify/);
    expect(dkim.reason).toMatch(/is not the public key of keys\/dkim\/example\.org\/\S+\.private/);
    expect(dkim.reason).not.toMatch(/ed25519-sha256 s=/);
    await expectNothingLeft();
  }, 90_000);

  it('stops everything on Ctrl-C (exit 130)', async () => {
    const child = spawn(process.execPath, [BIN, 'rehearse', '--bundle', demo], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((r) => child.on('close', (code) => r(code)));
    // Wait until the daemons run (their command lines name the rehearsal root).
    for (let i = 0; i < 200 && (await rehearsalProcesses()).filter((p) => /postfix|dovecot/.test(p)).length === 0; i++) await new Promise((r) => setTimeout(r, 100));
    expect((await rehearsalProcesses()).length, out).toBeGreaterThan(0);
    child.kill('SIGINT');
    expect(await exited, out).toBe(130);
    await expectNothingLeft();
  }, 60_000);

  it('refuses a folder that is not a bundle (exit 2)', async () => {
    const r = await runCli(['rehearse', '--bundle', join(work, 'nothing-here')]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/not a selfmail bundle/);
  });
});
