/**
 * SSHFP through the built bin: init on the mail host (a network namespace holding the bundle's
 * address) publishes the SHA-256 of each of this machine's SSH host keys, exactly the records
 * OpenSSH's own `ssh-keygen -r` makes; init on another machine (without that address) publishes
 * none; a new host key (another /etc/ssh, bind-mounted in a mount namespace of its own) is noticed
 * by a re-run that was asked nothing.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run } from '../../src/tools/run.js';
import { type CliResult, runCli } from '../helpers/cli.js';

const NS = `smfp${randomBytes(3).toString('hex')}`;
const ADDRESS = '203.0.113.77';
let work: string;
let pw: string;

/** The CLI under `prefix` (ip netns exec …, unshare …). */
const cliVia = (prefix: string[], args: string[]): Promise<CliResult> => runCli(args, { via: prefix });

const initArgs = (out: string) => ['init', '--non-interactive', '--out', out, '--domain', 'example.org', '--ipv4', ADDRESS, '--user', 'alice@example.org', '--password-file', pw, '--target', 'debian-12'];
const sshfpOf = async (out: string) => [...(await readFile(join(out, 'dns/example.org.zone'), 'utf8')).matchAll(/^mail\s+IN SSHFP\s+(\d 2 [0-9a-f]{64})$/gm)].map((m) => m[1]!).sort();

/** What OpenSSH itself makes of the host keys in `dir`: the SHA-256 lines of `ssh-keygen -r`. */
async function keygenRecords(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const f of (await readdir(dir)).filter((f) => /^ssh_host_\w+_key\.pub$/.test(f))) {
    const r = await run('ssh-keygen', ['-r', 'mail.example.org', '-f', join(dir, f)]);
    for (const l of r.stdout.split('\n')) {
      const m = /IN SSHFP (\d 2 [0-9a-f]{64})$/.exec(l.trim());
      if (m) out.push(m[1]!);
    }
  }
  return out.sort();
}

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'selfmail-sshfp-'));
  pw = join(work, 'pw');
  await writeFile(pw, 'alice@example.org:alice has a long password\n', { mode: 0o600 });
  await run('ip', ['netns', 'add', NS]);
  // The mail host's address on an interface of its own (the namespace's loopback: nothing is sent).
  await run('ip', ['-n', NS, 'addr', 'add', `${ADDRESS}/32`, 'dev', 'lo']);
  await run('ip', ['-n', NS, 'link', 'set', 'lo', 'up']);
});

afterAll(async () => {
  await run('ip', ['netns', 'del', NS], { okCodes: [0, 1] });
  await rm(work, { recursive: true, force: true });
});

describe('SSHFP', () => {
  it('is published on the mail host from its own SSH host keys, as ssh-keygen -r makes them; not elsewhere', async () => {
    const onHost = join(work, 'on-host');
    const r = await cliVia(['ip', 'netns', 'exec', NS], initArgs(onHost));
    expect(r.code, r.stderr).toBe(0);
    const want = await keygenRecords('/etc/ssh');
    expect(want.length).toBeGreaterThan(0);
    expect(await sshfpOf(onHost)).toEqual(want);
    // The keys themselves never enter the bundle.
    for (const f of (await readdir('/etc/ssh')).filter((f) => f.endsWith('.pub'))) {
      const blob = (await readFile(join('/etc/ssh', f), 'utf8')).split(/\s+/)[1]!;
      const r2 = await run('grep', ['-rlF', blob, onHost], { okCodes: [0, 1] });
      expect(r2.stdout, f).toBe('');
    }
    // Made on another machine (this one, which does not hold the bundle's address): none.
    const elsewhere = join(work, 'elsewhere');
    const e = await runCli(initArgs(elsewhere));
    expect(e.code, e.stderr).toBe(0);
    expect(await sshfpOf(elsewhere)).toEqual([]);
  });

  it('follows a new host key: a re-run asked nothing publishes the new records', async () => {
    const onHost = join(work, 'on-host');
    const quiet = await cliVia(['ip', 'netns', 'exec', NS], ['init', '--out', onHost]);
    expect(quiet.code, quiet.stderr).toBe(0);
    expect(quiet.stdout).toMatch(/Nothing changed/);
    // The host's keys made again (as after a reinstall), in a mount namespace of the run's own.
    const etc = join(work, 'etc-ssh');
    await mkdir(etc);
    await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(etc, 'ssh_host_ed25519_key')]);
    const script = `mount --bind ${etc} /etc/ssh && exec "$@"`;
    const r = await cliVia(['ip', 'netns', 'exec', NS, 'unshare', '--mount', '--propagation', 'private', 'sh', '-c', script, 'sh'], ['init', '--out', onHost]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/Bundle written to/);
    expect(await sshfpOf(onHost)).toEqual(await keygenRecords(etc));
  });
});
