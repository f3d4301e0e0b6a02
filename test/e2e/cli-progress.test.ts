/**
 * Progress and the last line, as a person and a log see them. On a terminal (a real pty through
 * util-linux `script`) a long init rewrites one progress line per phase — keys k/N, zones signed
 * k/N, checks k/N — and ends with one summary line; without a terminal the same run prints the
 * plain phase lines only, no carriage return, no counter.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BIN, runCli } from '../helpers/cli.js';

const DOMAINS = ['example.org', 'example.net'];

/** Run `args` on a pty; resolves with everything the terminal showed (stdout and stderr together). */
function onTerminal(args: string[]): Promise<{ code: number | null; screen: string }> {
  const quoted = [process.execPath, BIN, ...args].map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
  return new Promise((resolve, reject) => {
    const child = spawn('script', ['-qfec', `stty cols 200 rows 50; ${quoted}`, '/dev/null'], { env: { ...process.env, TERM: 'xterm' } });
    let screen = '';
    child.stdout.on('data', (d: Buffer) => (screen += d.toString('utf8')));
    child.stderr.on('data', (d: Buffer) => (screen += d.toString('utf8')));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, screen }));
  });
}

/** What the terminal shows, one entry per line or rewrite (cursor and erase codes removed). */
const shown = (screen: string) =>
  screen
    .replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '')
    .split(/\r\n|\r|\n/)
    .map((l) => l.trim())
    .filter(Boolean);

describe('progress and the last line', () => {
  let dir: string;
  let args: (out: string) => string[];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'selfmail-progress-'));
    const pw = join(dir, 'passwords');
    await writeFile(pw, DOMAINS.map((d) => `alice@${d}:a long password for ${d}\n`).join(''), { mode: 0o600 });
    args = (out) => [
      'init', '--non-interactive', '--ipv4', '192.0.2.25', '--password-file', pw, '--out', out,
      ...DOMAINS.flatMap((d) => ['--domain', d, '--user', `alice@${d}`]),
    ];
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('on a terminal, counts the keys, the zones signed and the checks, then ends with one summary line', async () => {
    const { code, screen } = await onTerminal(args(join(dir, 'tty')));
    expect(code, screen).toBe(0);
    const lines = shown(screen);
    const counts = (what: string) => lines.filter((l) => l.startsWith(`${what}: `)).map((l) => /^[^:]+: (\d+)\/(\d+)/.exec(l)?.slice(1).map(Number));
    // Two DKIM sets, two DNSSEC sets, one TLS key: 5 of 5, counted one by one.
    expect(counts('Generating keys')).toEqual([1, 2, 3, 4, 5].map((k) => [k, 5]));
    expect(counts('Signing zones')).toEqual([[1, 2], [2, 2]]);
    const checks = counts('Checking with the real tools');
    expect(checks.length).toBeGreaterThan(5);
    expect(checks.at(-1)).toEqual([checks.length, checks.length]);
    expect(lines.at(-1)).toMatch(/^Bundle written to .*tty: \d+ file\(s\) changed, 0 removed\.$/);
  });

  it('without a terminal, prints the phases as plain lines: no counter, no carriage return', async () => {
    const r = await runCli(args(join(dir, 'log')));
    expect(r.code, r.stderr).toBe(0);
    expect(`${r.stdout}${r.stderr}`).not.toMatch(/\r|\x1b|Signing zones|Generating keys:|Checking with the real tools:/);
    const out = r.stdout.trim().split('\n');
    expect(out.slice(0, 3)).toEqual(['Generating keys and configuration…', 'Checking the generated configuration with the real tools…', 'Writing the bundle…']);
    expect(out.at(-1)).toMatch(/^Bundle written to .*log: \d+ file\(s\) changed, 0 removed\.$/);
  });
});
