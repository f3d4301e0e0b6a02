/**
 * `init --ingress own-vps` through the built bin: the zone publishes the VPS's addresses, `vps/`
 * holds everything the VPS needs and nothing secret, the home key stays in the bundle (0600), the
 * home end of the tunnel appears once the VPS's public key is given, bad keys and addresses are
 * refused (exit 2, nothing changed, no key echoed), and apply refuses the bundle until the VPS key is given.
 * The forwarding itself, with these very files in namespaces, is test/e2e/own-vps-tunnel.test.ts.
 */
import { mkdir, mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run } from '../../src/tools/run.js';
import { type CliResult, runCli, treeState } from '../helpers/cli.js';

let work: string;
let out: string;
let pw: string;
let firstRun: CliResult;
const VPS4 = '203.0.113.5';
const VPS6 = '2001:db8:5::5';

const init = (...extra: string[]) =>
  runCli(['init', '--non-interactive', '--out', out, '--domain', 'example.org', '--user', 'alice@example.org', '--password-file', pw, '--admin-ssh-from', '198.51.100.0/24', '--target', 'debian-12', '--ingress', 'own-vps', '--vps-ipv4', VPS4, '--vps-ipv6', VPS6, ...extra]);
const wgKeys = async () => {
  const priv = (await run('wg', ['genkey'])).stdout.trim();
  return { priv, pub: (await run('wg', ['pubkey'], { input: `${priv}\n` })).stdout.trim() };
};

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'selfmail-own-vps-'));
  out = join(work, 'bundle');
  pw = join(work, 'pw');
  await writeFile(pw, 'alice@example.org:correct horse battery staple\n', { mode: 0o600 });
  firstRun = await init();
  expect(firstRun.code, firstRun.stderr).toBe(0);
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

describe('init --ingress own-vps', () => {
  it('publishes the VPS\'s addresses for the mail host, ns1, mta-sts and autoconfig, and SPF names them through MX', async () => {
    const zone = await readFile(join(out, 'dns/example.org.zone'), 'utf8');
    for (const name of ['mail', 'ns1', 'mta-sts', 'autoconfig']) {
      expect(zone).toMatch(new RegExp(`^${name}\\s+IN A\\s+${VPS4.replace(/\./g, '\\.')}$`, 'm'));
      expect(zone).toMatch(new RegExp(`^${name}\\s+IN AAAA\\s+2001:db8:5::5$`, 'm'));
    }
    expect(zone).toMatch(/^@\s+IN TXT\s+"v=spf1 mx -all"$/m);
    expect(zone).not.toMatch(/10\.77\.77\.|fd77:77::/);
  });

  it('writes vps/ with nothing secret in it, the home key 0600, and says what to run on the VPS until its key is given', async () => {
    const vps = (await readdir(join(out, 'vps'))).sort();
    expect(vps).toEqual(['README.md', 'nftables.conf', 'selfmail-vps-firewall.service', 'setup.sh', 'sysctl.conf', 'wireguard.conf']);
    expect((await stat(join(out, 'vps/setup.sh'))).mode & 0o777).toBe(0o755);
    expect((await stat(join(out, 'keys/wireguard/home.key'))).mode & 0o777).toBe(0o600);
    const homeKey = (await readFile(join(out, 'keys/wireguard/home.key'), 'utf8')).trim();
    const homePub = (await run('wg', ['pubkey'], { input: `${homeKey}\n` })).stdout.trim();
    expect((await readFile(join(out, 'keys/wireguard/home.pub'), 'utf8')).trim()).toBe(homePub);
    for (const f of vps) {
      const text = await readFile(join(out, 'vps', f), 'utf8');
      expect(text, f).not.toContain(homeKey);
      expect(text, f).not.toMatch(/^\s*PrivateKey\s*=/m);
    }
    const wg = await readFile(join(out, 'vps/wireguard.conf'), 'utf8');
    expect(wg).toMatch(new RegExp(`^PublicKey = ${homePub.replace(/[+/]/g, '\\$&')}$`, 'm'));
    expect(wg).toMatch(/^PostUp = wg set %i private-key \/etc\/wireguard\/selfmail\.key$/m);
    const nft = await readFile(join(out, 'vps/nftables.conf'), 'utf8');
    expect(nft).toMatch(/ip daddr 203\.0\.113\.5 tcp dport @forwarded_tcp dnat ip to 10\.77\.77\.2$/m);
    expect(nft).toMatch(/elements = \{ 25, 53, 80, 443, 465, 587, 993, 4190 \}/);
    expect(nft).not.toMatch(/masquerade/);
    expect(nft).toMatch(/^\s+tcp dport 22 ip saddr @admin4 accept$/m);
    await expect(stat(join(out, 'wireguard/selfmail.conf'))).rejects.toThrow();
    expect(firstRun.stderr).toMatch(/run vps\/setup\.sh there \(vps\/README\.md\), then selfmail init --out BUNDLE --vps-wg-key KEY with the key it prints\n/);
    // A re-run keeps the home key (the VPS names its public key).
    const again = await runCli(['init', '--out', out, '--alias', 'info@example.org=alice@example.org']);
    expect(again.code, again.stderr).toBe(0);
    expect((await readFile(join(out, 'keys/wireguard/home.key'), 'utf8')).trim()).toBe(homeKey);
  });

  it('refuses a bad VPS key or address with exit 2, naming the flag, echoing no key, changing nothing', async () => {
    const homeKey = (await readFile(join(out, 'keys/wireguard/home.key'), 'utf8')).trim();
    const homePub = (await readFile(join(out, 'keys/wireguard/home.pub'), 'utf8')).trim();
    const vpsPriv = (await wgKeys()).priv;
    const tree = await treeState(out);
    const cases: [string[], RegExp][] = [
      [['--vps-wg-key', homePub], /--vps-wg-key: is this host's own WireGuard public key/],
      [['--vps-wg-key', 'not-a-key'], /--vps-wg-key: the key given is not a WireGuard public key \(32 bytes of base64/],
      [['--vps-ipv4', '192.168.1.5'], /--vps-ipv4: "192\.168\.1\.5" is a private address/],
    ];
    for (const [extra, why] of cases) {
      const r = await runCli(['init', '--out', out, ...extra]);
      expect(r.code, extra.join(' ')).toBe(2);
      expect(r.stderr).toMatch(why);
    }
    // A private key: the VPS's (no point a public key can be, most of the time) or this host's own.
    const priv = await runCli(['init', '--out', out, '--vps-wg-key', `PrivateKey = ${vpsPriv}`]);
    expect(priv.code).toBe(2);
    expect(priv.stderr).toMatch(/--vps-wg-key: the key given is a WireGuard private key/);
    expect(priv.stderr + priv.stdout).not.toContain(vpsPriv);
    const own = await runCli(['init', '--out', out, '--vps-wg-key', homeKey]);
    expect(own.code).toBe(2);
    expect(own.stderr + own.stdout).not.toContain(homeKey);
    expect(await treeState(out)).toEqual(tree);
  });

  it('apply refuses the bundle until the VPS key is given (exit 2, nothing changed), saying what to do', async () => {
    const root = join(work, 'root');
    await mkdir(join(root, 'etc'), { recursive: true });
    await writeFile(join(root, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\n');
    await writeFile(join(root, 'etc/group'), 'root:x:0:\n');
    const before = await treeState(root);
    const r = await runCli(['apply', '--bundle', out, '--root', root, '--no-reload']);
    expect(r.code, r.stdout + r.stderr).toBe(2);
    expect(r.stderr).toMatch(/--ingress own-vps and does not know the VPS's WireGuard key yet: set up the VPS with vps\/README\.md \(vps\/setup\.sh prints the key\), then selfmail init --out BUNDLE --vps-wg-key KEY/);
    expect(await treeState(root)).toEqual(before);
  });

  it('with the VPS\'s public key: the home end of the tunnel, routed by source, dialling the VPS', async () => {
    const { pub } = await wgKeys();
    const r = await runCli(['init', '--out', out, '--vps-wg-key', pub]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).not.toMatch(/vps-wg-key KEY/);
    const conf = await readFile(join(out, 'wireguard/selfmail.conf'), 'utf8');
    expect((await stat(join(out, 'wireguard/selfmail.conf'))).mode & 0o777).toBe(0o600);
    expect(conf).toContain(`PublicKey = ${pub}\n`);
    expect(conf).toMatch(/^Endpoint = 203\.0\.113\.5:51820$/m);
    expect(conf).toMatch(/^Table = 77$/m);
    expect(conf).toMatch(/^PostUp = wg set %i private-key \/etc\/selfmail\/keys\/wireguard\/home\.key$/m);
    // With the key set, the keepalive is set again: the home host dials the VPS at once.
    const postUps = conf.split('\n').filter((l) => l.startsWith('PostUp = '));
    expect(postUps.findIndex((l) => l.includes('persistent-keepalive 25'))).toBeGreaterThan(postUps.findIndex((l) => l.includes('private-key')));
    expect(conf).toContain(`\nPostUp = wg set %i peer ${pub} persistent-keepalive 25\n`);
    expect(conf).toMatch(/ip -4 rule add from 10\.77\.77\.2 lookup 77 /);
    expect(await readFile(join(out, 'selfmail.yaml'), 'utf8')).toContain(`vpsWgKey: ${pub}`);
    // The host's side: the listeners start after the tunnel, mail leaves by it, and the world's
    // connections are taken from it only.
    for (const unit of ['nsd', 'postfix', 'dovecot', 'nginx']) {
      expect(await readFile(join(out, `systemd/${unit}.service.d/selfmail-tunnel.conf`), 'utf8')).toMatch(/^After=wg-quick@selfmail\.service$/m);
    }
    const main = await readFile(join(out, 'postfix/main.cf'), 'utf8');
    expect(main).toMatch(/^smtp_bind_address = 10\.77\.77\.2$/m);
    expect(main).toMatch(/^smtp_bind_address6 = fd77:77::2$/m);
    const nft = await readFile(join(out, 'nftables/selfmail.nft'), 'utf8');
    expect(nft).toMatch(/^\s+iifname "selfmail" tcp dport \{ 25, 53, 80, 443 \} accept$/m);
    expect(nft).toMatch(/^\s+iifname "selfmail" udp dport \{ 53 \} accept$/m);
    expect(nft).not.toMatch(/^\s+tcp dport \{ 25, 53, 80, 443 \} accept$/m);
    // The tunnel's own packets from the VPS, even before conntrack has seen this host send on it.
    expect(nft).toMatch(/^\s+ip saddr 203\.0\.113\.5 udp sport 51820 accept$/m);
  });

});
