/**
 * The wizard through a real pseudo-terminal: the built bin runs under util-linux `script`, which
 * gives it a pty, and the test types like a person, waiting for each prompt before answering.
 * Then a non-interactive run with the same answers as flags, over the bundle the wizard wrote,
 * must change no file: both ways of asking build the same setup.
 */
import { type ChildProcessWithoutNullStreams, execFileSync, spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BIN, runCli, treeState } from '../helpers/cli.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const ENTER = '\r';
const CTRL_C = '\x03';
const PASSWORD = 'a long password for alice';

/** Terminal output as text: colours and cursor movements removed. */
function plain(s: string): string {
  return s.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '').replace(/\x1b[()][A-Z0-9]/g, '');
}

/** A program running on a pty, with a way to wait for text and to type. */
class Terminal {
  private raw = '';
  private seen = 0;
  readonly exit: Promise<number | null>;
  private readonly child: ChildProcessWithoutNullStreams;

  constructor(command: string, cwd: string) {
    // `stty` gives the pty a size (inquirer wraps lines at the terminal width); -e passes the
    // exit code through, -f flushes every write so the test sees prompts as they appear.
    this.child = spawn('script', ['-qfec', `stty cols 200 rows 50; ${command}`, '/dev/null'], { cwd, env: { ...process.env, TERM: 'xterm' } });
    this.child.stdout.on('data', (d: Buffer) => (this.raw += d.toString('utf8')));
    this.child.stderr.on('data', (d: Buffer) => (this.raw += d.toString('utf8')));
    this.exit = new Promise((resolve, reject) => {
      this.child.on('error', reject);
      this.child.on('close', (code) => resolve(code));
    });
  }

  get text(): string {
    return plain(this.raw);
  }

  /** Wait until `needle` appears after what was already consumed, then consume up to it. */
  async waitFor(needle: string, timeoutMs = 20_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const text = this.text;
      const at = text.indexOf(needle, this.seen);
      if (at >= 0) {
        this.seen = at + needle.length;
        // Let the prompt finish drawing and enter raw mode before keys arrive.
        await new Promise((r) => setTimeout(r, 80));
        return;
      }
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${JSON.stringify(needle)}; the screen so far:\n${text.slice(-3000)}`);
      await new Promise((r) => setTimeout(r, 40));
    }
  }

  /** Type a line: the characters one by one, then Enter. */
  async type(line: string): Promise<void> {
    for (const ch of line) {
      this.child.stdin.write(ch);
      await new Promise((r) => setTimeout(r, 5));
    }
    this.child.stdin.write(ENTER);
  }

  press(keys: string): void {
    this.child.stdin.write(keys);
  }

  kill(): void {
    if (this.child.exitCode === null) this.child.kill('SIGKILL');
  }
}

let work: string;
const terminals: Terminal[] = [];

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'selfmail-wizard-pty-'));
  // The real built bin: dist/ from the current sources.
  execFileSync('npx', ['tsc', '-p', 'tsconfig.json'], { cwd: ROOT, stdio: 'pipe' });
}, 180_000);

afterAll(async () => {
  for (const t of terminals) t.kill();
  await rm(work, { recursive: true, force: true });
});

function start(args: string): Terminal {
  const t = new Terminal(`exec node ${BIN} ${args}`, work);
  terminals.push(t);
  return t;
}

describe('the wizard on a terminal', () => {
  it('asks like a person expects, writes the bundle, and the same answers as flags change nothing', async () => {
    const out = join(work, 'bundle');
    const t = start(`init --out ${out}`);
    await t.waitFor('never uses UPnP');
    await t.waitFor('Mail domain(s)');
    await t.type('example.org');
    await t.waitFor('Mail host name');
    await t.type(''); // the default, mail.example.org
    await t.waitFor('How does mail reach this machine?');
    // The refused ways are on screen, greyed out, with the policy's reason.
    await t.waitFor('UPnP');
    expect(t.text).toMatch(/UPnP, NAT-PMP\) refused, Principle 3 \(no UPnP\): any infected machine could open router ports/);
    expect(t.text).toMatch(/run by someone else refused, Principle 2 \(nobody else's tunnel\): its operator sees every sender/);
    t.press(ENTER); // the default, a public address on this machine
    await t.waitFor('Public IPv4 address of this host');
    // First a private address: the schema's message appears in place and the prompt stays.
    await t.type('10.0.0.25');
    await t.waitFor('is a private address (10.0.0.0/8)');
    // inquirer keeps the rejected text on the line: clear it before typing the right one.
    t.press('\x7f'.repeat(20));
    await t.type('198.51.100.25');
    await t.waitFor('Public IPv6 address of this host');
    t.press('\x7f'.repeat(60)); // clear a suggestion found on this machine, if any
    await t.type('2001:db8::25');
    await t.waitFor('Name of the name server on this host');
    await t.type('');
    await t.waitFor('Secondary name servers');
    await t.type('');
    await t.waitFor('Sign the zones with DNSSEC?');
    await t.type('');
    await t.waitFor('Mailboxes');
    await t.type('alice@example.org');
    await t.waitFor('Password for alice@example.org');
    await t.type('too short');
    await t.waitFor(`use at least 12`);
    t.press('\x7f'.repeat(20));
    await t.type(PASSWORD);
    await t.waitFor('The same password again for alice@example.org');
    await t.type(PASSWORD);
    await t.waitFor('Admin address');
    await t.type('');
    await t.waitFor('Networks allowed to reach SSH');
    await t.type('203.0.113.0/24');
    await t.waitFor('Outside spam blocklists');
    await t.type('');
    await t.waitFor('Daily encrypted backups');
    await t.type(''); // the default, none
    await t.waitFor('Review:');
    await t.waitFor('Write the bundle with these settings?');
    await t.type('');
    const code = await t.exit;
    const screen = t.text;
    expect(screen, screen.slice(-4000)).toMatch(/Bundle written to/);
    expect(code).toBe(0);
    // The end screen: next steps at the registrar and the ISP, and what is not protected.
    expect(screen).toMatch(/At the registrar of example\.org:/);
    expect(screen).toMatch(/DS: example\.org\. IN DS \d+ 13 2 [0-9A-F]+/);
    expect(screen).toMatch(/PTR\) of 198\.51\.100\.25 and 2001:db8::25 to mail\.example\.org/);
    expect(screen).toMatch(/What it does not protect:/);
    // The password was never echoed, and never written in clear.
    expect(screen).not.toContain(PASSWORD);
    const yaml = await readFile(join(out, 'selfmail.yaml'), 'utf8');
    expect(yaml).not.toContain(PASSWORD);
    expect(yaml).toMatch(/adminSshFrom:\n\s+- 203\.0\.113\.0\/24/);

    // The same answers, as flags, with the same password from a file: nothing changes.
    const before = await treeState(out);
    expect(Object.keys(before).length).toBeGreaterThan(5);
    const pwFile = join(work, 'passwords');
    await writeFile(pwFile, `alice@example.org:${PASSWORD}\n`, { mode: 0o600 });
    const again = await runCli([
      'init',
      '--non-interactive',
      '--out',
      out,
      '--domain',
      'example.org',
      '--ipv4',
      '198.51.100.25',
      '--ipv6',
      '2001:db8::25',
      '--user',
      'alice@example.org',
      '--admin-ssh-from',
      '203.0.113.0/24',
      '--password-file',
      pwFile,
    ]);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toMatch(/Nothing changed/);
    expect(await treeState(out)).toEqual(before);
  }, 240_000);

  it('Ctrl-C at a prompt exits 130 and writes nothing', async () => {
    const out = join(work, 'interrupted');
    const t = start(`init --out ${out}`);
    await t.waitFor('Mail domain(s)');
    await t.type('example.org');
    await t.waitFor('Mail host name');
    t.press('mail.exa');
    t.press(CTRL_C);
    expect(await t.exit).toBe(130);
    expect(t.text).toMatch(/interrupted: nothing was written/);
    await expect(stat(out)).rejects.toMatchObject({ code: 'ENOENT' });
  }, 60_000);
});
