/**
 * The real tools accept what the host modules generate: nft -c, sshd -t, fail2ban-client -t,
 * unbound-checkconf, nginx -t and bash -n, each on files staged under a throwaway root.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BuildContext, BundleFile, ServiceModule } from '../../src/bundle/types.js';
import { installedPath, sysPath } from '../../src/bundle/layout.js';
import { stageTree } from '../../src/bundle/stage.js';
import { ToolError } from '../../src/errors.js';
import { services } from '../../src/services.js';
import { run } from '../../src/tools/run.js';
import { NFT_PATH } from '../../src/nftables/index.js';
import { SSHD_DROPIN_PATH, SSHD_EFFECTIVE, SSH_ALGORITHMS } from '../../src/ssh/index.js';
import { TRUST_ANCHOR, UNBOUND_PATH } from '../../src/unbound/index.js';
import { NGINX_PATH } from '../../src/web/index.js';
import { hostContext, scratchDir } from '../helpers/host-context.js';

let cleanup: () => Promise<void>;
let ctx: BuildContext;
const built = new Map<string, BundleFile[]>();
let mods: ServiceModule[];

beforeAll(async () => {
  const s = await scratchDir();
  cleanup = s.cleanup;
  ctx = hostContext({ adminSshFrom: ['198.51.100.0/24', '2001:db8:1::/48'] }, { root: s.dir, realKeys: true });
  // The host modules only: the DNS and mail modules have checks of their own elsewhere.
  const host = new Set(['nftables', 'ssh', 'fail2ban', 'unbound', 'web', 'acme', 'report']);
  mods = (await services()).filter((m) => host.has(m.name));
  const all: BundleFile[] = [...ctx.keys.files];
  for (const m of mods) {
    const files = await m.build(ctx);
    built.set(m.name, files);
    all.push(...files);
  }
  await stageTree(all, s.dir);
});
afterAll(async () => {
  await cleanup?.();
});

function mod(name: string): ServiceModule {
  const m = mods.find((x) => x.name === name);
  if (!m?.check) throw new Error(`no check for ${name}`);
  return m;
}

describe('host checks with the real tools', () => {
  it('nft -c accepts the ruleset', async () => {
    await mod('nftables').check!(ctx, built.get('nftables')!);
  });

  it('nft -c rejects a broken ruleset (the check can fail)', async () => {
    const path = installedPath(ctx.profile, NFT_PATH);
    const good = await readFile(path);
    try {
      await writeFile(path, good.toString().replace('policy drop', 'policy dorp'));
      await expect(mod('nftables').check!(ctx, [])).rejects.toBeInstanceOf(ToolError);
    } finally {
      await writeFile(path, good);
    }
  });

  it('sshd -t accepts the SSH drop-in, and the settings take effect', async () => {
    await mod('ssh').check!(ctx, built.get('ssh')!);
    const main = `${ctx.profile.root}/selfmail-check/ssh/sshd_config`;
    const { stdout } = await run('sshd', ['-T', '-f', main, '-C', 'user=alice,host=h,addr=198.51.100.1']);
    const effective = new Map(stdout.split('\n').map((l) => [l.split(' ')[0]!, l.slice(l.indexOf(' ') + 1)]));
    for (const [k, v] of Object.entries(SSHD_EFFECTIVE)) expect(`${k} ${effective.get(k)}`).toBe(`${k} ${v}`);
    expect(effective.get('ciphers')).not.toMatch(/cbc/);
    expect(effective.get('macs')).not.toMatch(/sha1|md5/);
  });

  it('sshd -t rejects an unknown algorithm (the check can fail)', async () => {
    const path = installedPath(ctx.profile, SSHD_DROPIN_PATH);
    const good = await readFile(path);
    try {
      await writeFile(path, good.toString().replace('Ciphers ', 'Ciphers rot13-cbc,'));
      await expect(mod('ssh').check!(ctx, [])).rejects.toBeInstanceOf(ToolError);
    } finally {
      await writeFile(path, good);
    }
  });

  it("fail2ban's configuration test accepts the jails, and they are the ones fail2ban runs", async () => {
    await mod('fail2ban').check!(ctx, built.get('fail2ban')!);
    const { stdout } = await run('fail2ban-client', ['-c', `${ctx.profile.root}/etc/fail2ban`, '-d']);
    const added = [...stdout.matchAll(/\['add', '([^']+)', '([^']+)'\]/g)].map((m) => `${m[1]} ${m[2]}`).sort();
    expect(added).toEqual(['dovecot systemd', 'postfix-sasl systemd', 'recidive auto', 'sshd systemd']);
    expect(stdout).toMatch(/nftables/);
  });

  it('the SSH algorithms are all supported by the installed OpenSSH', async () => {
    for (const [query, ours] of [
      ['kex', SSH_ALGORITHMS.kex],
      ['cipher', SSH_ALGORITHMS.ciphers],
      ['mac', SSH_ALGORITHMS.macs],
      ['HostKeyAlgorithms', SSH_ALGORITHMS.hostKeys],
    ] as const) {
      const supported = (await run('ssh', ['-Q', query])).stdout.split('\n');
      for (const a of ours) expect(supported, `${query} ${a}`).toContain(a);
    }
  });

  it('unbound-checkconf accepts the resolver configuration', async () => {
    await mod('unbound').check!(ctx, built.get('unbound')!);
  });

  it('unbound still starts once it has written its RFC 5011 tracking state into Debian\'s anchor file (selfmail does not name that file again)', async () => {
    // What unbound leaves in /var/lib/unbound/root.key after its first successful probe of the root.
    const anchor = sysPath(ctx.profile, TRUST_ANCHOR);
    const seeded = await readFile(anchor, 'utf8');
    const key = seeded.split('\n').find((l) => /\sDNSKEY\s+257\s/.test(l))!.replace(/\s*;.*$/, '');
    try {
      await writeFile(anchor, `; autotrust trust anchor file\n;;id: . 1\n;;last_queried: 1796174096 ;;Wed Dec  2 01:14:56 2026\n;;last_success: 1796174096 ;;Wed Dec  2 01:14:56 2026\n;;next_probe_time: 1796177402 ;;Wed Dec  2 02:10:02 2026\n;;query_failed: 0\n;;query_interval: 3600\n;;retry_time: 3600\n${key} ;;state=2 [  VALID  ] ;;count=0 ;;lastchange=1796174096 ;;Wed Dec  2 01:14:56 2026\n`);
      await mod('unbound').check!(ctx, built.get('unbound')!);
      expect(await readFile(installedPath(ctx.profile, UNBOUND_PATH), 'utf8')).not.toMatch(/^\s*auto-trust-anchor-file:/m);
    } finally {
      await writeFile(anchor, seeded);
    }
  });

  it('nginx -t accepts the web configuration', async () => {
    await mod('web').check!(ctx, built.get('web')!);
  });

  it('nginx -t and unbound-checkconf reject broken files (the checks can fail)', async () => {
    for (const [name, path, from, to] of [
      ['web', NGINX_PATH, 'server_tokens off;', 'server_tokens maybe;'],
      ['unbound', UNBOUND_PATH, 'qname-minimisation: yes', 'qname-minimisation: often'],
    ] as const) {
      const target = installedPath(ctx.profile, path);
      const good = await readFile(target);
      try {
        await writeFile(target, good.toString().replace(from, to));
        await expect(mod(name).check!(ctx, [])).rejects.toBeInstanceOf(ToolError);
      } finally {
        await writeFile(target, good);
      }
    }
  });

  it('bash -n accepts the ACME script', async () => {
    await mod('acme').check!(ctx, built.get('acme')!);
  });
});
