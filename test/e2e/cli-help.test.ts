/** Help and messages through the built bin: each command's own usage, and errors that belong to the command run. */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';

let work: string;
beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'selfmail-help-'));
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

describe('selfmail <command> --help', () => {
  it.each([
    ['init', ['--target RELEASE', '--password-file FILE', 'Example:']],
    ['apply', ['--allow-ssh-lockout', '--dry-run', '--json', 'Example:']],
    ['verify', ['--root DIR', 'Exit 0 when nothing drifted', 'Example:']],
    ['rehearse', ['--password-file FILE', '--json', 'Example:']],
    ['keys', ['keys retire dkim --bundle DIR --selector S', '--domain NAME', 'Example:']],
    ['dns', ['dns resign --bundle DIR', 'Example:']],
  ])('%s prints its own usage, flags and an example', async (cmd, must) => {
    const r = await runCli([cmd, '--help']);
    expect(r.code).toBe(0);
    expect(r.stdout.startsWith(`selfmail ${cmd}`)).toBe(true);
    for (const m of must) expect(r.stdout).toContain(m);
    // Not the global help.
    expect(r.stdout).not.toContain('Refused on principle');
  });

  it('-V is --version, and the global help points at the commands\' own', async () => {
    const v = await runCli(['-V']);
    expect(v.code).toBe(0);
    expect(v.stdout.trim()).toMatch(/^\d+\.\d+\.\d+$/);
    expect((await runCli(['--help'])).stdout).toContain('selfmail <command> --help');
  });

  it('offers the ingress modes it builds, and no refused one', async () => {
    const r = await runCli(['--help']);
    expect(r.stdout).toMatch(/--ingress MODE +direct \| port-forward \| own-vps \(default direct\)/);
    expect(r.stdout).toMatch(/--vps-wg-key KEY +with own-vps: the VPS's WireGuard public key/);
    // The refused ones are named only as refused.
    expect(r.stdout).toMatch(/^Refused on principle \(exit 3\): --ingress upnp, --ingress tunnel, --tunnel-provider/m);
  });
});

describe('errors belong to the command that was run', () => {
  it('suggests the flag or command meant by a typo', async () => {
    const a = await runCli(['apply', '--bundel', work]);
    expect(a.code).toBe(2);
    expect(a.stderr).toMatch(/Unknown option '--bundel' \(did you mean --bundle\?\)/);
    const c = await runCli(['verfy', '--bundle', work]);
    expect(c.code).toBe(2);
    expect(c.stderr).toMatch(/verfy: is not a selfmail command \(did you mean verify\?\)/);
  });

  it('dns resign and keys on a folder that is no bundle blame --bundle, never --out or init\'s flags', async () => {
    for (const args of [['dns', 'resign', '--bundle', work], ['keys', 'rotate', 'dkim', '--bundle', work], ['keys', 'list', '--bundle', work]]) {
      const r = await runCli(args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr).toMatch(/--bundle: .* is not a selfmail bundle/);
      expect(r.stderr).not.toMatch(/^ {2}--(out|domain|ipv4|user):/m);
    }
  });

  it('keys refuses stray words and flags of another action', async () => {
    const stray = await runCli(['keys', 'list', 'extra', '--bundle', work]);
    expect(stray.code).toBe(2);
    expect(stray.stderr).toMatch(/takes no "extra"/);
    const sel = await runCli(['keys', 'rotate', 'dkim', '--bundle', work, '--selector', 'x']);
    expect(sel.code).toBe(2);
    expect(sel.stderr).toMatch(/--selector: only goes with keys retire dkim/);
  });

  it('rehearse says a folder is no bundle before it starts anything', async () => {
    const r = await runCli(['rehearse', '--bundle', work]);
    expect(r.code).toBe(2);
    expect(r.stdout + r.stderr).not.toMatch(/Starting NSD/);
    expect(r.stderr).toMatch(/--bundle: .* is not a selfmail bundle/);
  });
});
