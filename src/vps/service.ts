/**
 * `--ingress own-vps`: the home end of the tunnel and the `vps/` folder the user copies to their
 * VPS (everything it needs, nothing secret). The home host's WireGuard key is the key store's; the
 * VPS makes its own (vps/setup.sh). Until its public key is given (`--vps-wg-key`), the bundle
 * holds the VPS's files but no home tunnel config, and init says what to run on the VPS.
 */
import { InputError } from '../errors.js';
import { installedPath } from '../bundle/layout.js';
import type { BuildContext, BundleFile, ServiceModule } from '../bundle/types.js';
import { textFile } from '../bundle/types.js';
import { render } from '../render/index.js';
import { run } from '../tools/run.js';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TUNNEL } from './wireguard.js';

/** The ports the VPS forwards home: SMTP, DNS, HTTP(S), submissions, submission, IMAPS, ManageSieve. */
export const FORWARDED_TCP = [25, 53, 80, 443, 465, 587, 993, 4190] as const;
export const FORWARDED_UDP = [53] as const;

export const HOME_WG_CONF = 'wireguard/selfmail.conf';
/** The services that bind to the host's public-facing address, here the tunnel's. */
const LISTENERS = ['nsd.service', 'postfix.service', 'dovecot.service', 'nginx.service'] as const;

async function buildVps(ctx: BuildContext): Promise<BundleFile[]> {
  const { config, profile } = ctx;
  if (config.ingress !== 'own-vps') return [];
  const home = ctx.keys.wireguard;
  if (!home) throw new Error('the key store made no WireGuard key for an own-vps bundle');
  const key = ctx.keys.read(home.keyPath).toString('utf8').trim();
  const homePublicKey = home.publicKey;
  if (config.vpsWgKey === homePublicKey) {
    throw new InputError([{ field: '--vps-wg-key', message: 'is this host\'s own WireGuard public key (vps/wireguard.conf names it): give the VPS\'s, the line vps/setup.sh printed there' }]);
  }
  if (config.vpsWgKey === key) {
    throw new InputError([{ field: '--vps-wg-key', message: 'is this host\'s WireGuard private key: give the VPS\'s public key, the line vps/setup.sh printed there' }]);
  }
  const v4 = (c: string) => !c.includes(':');
  const admin4 = config.adminSshFrom.filter(v4);
  const admin6 = config.adminSshFrom.filter((c) => !v4(c));
  const model = {
    hostname: config.hostname,
    public4: config.ipv4 ?? '',
    public6: config.ipv6 ?? '',
    sshTarget: config.ipv4 ?? `[${config.ipv6}]`,
    tunnel: TUNNEL,
    tcpPorts: [...FORWARDED_TCP],
    udpPorts: [...FORWARDED_UDP],
    admin4,
    admin6,
    adminAll: [...config.adminSshFrom],
    sshAnywhere: config.adminSshFrom.length === 0,
    homePublicKey,
  };
  const files: BundleFile[] = [
    textFile('vps/README.md', await render('vps', 'README.md', model), 'the VPS: what it does, the three commands to set it up'),
    textFile('vps/setup.sh', await render('vps', 'setup.sh', model), 'run on the VPS: makes its WireGuard key there, installs the forwarder', 0o755),
    textFile('vps/wireguard.conf', await render('vps', 'wireguard.conf', model), 'the VPS end of the tunnel (no secret: the key is made on the VPS)'),
    textFile('vps/nftables.conf', await render('vps', 'nftables.conf', model), 'the VPS forwarder rules: mail ports home unchanged, home mail out by SNAT'),
    textFile('vps/sysctl.conf', await render('vps', 'sysctl.conf', model), 'the VPS forwards packets'),
    textFile('vps/selfmail-vps-firewall.service', await render('vps', 'selfmail-vps-firewall.service', model), 'loads the VPS forwarder rules at boot'),
  ];
  if (config.vpsWgKey) {
    const endpoint = config.ipv4 ? `${config.ipv4}:${TUNNEL.port}` : `[${config.ipv6}]:${TUNNEL.port}`;
    const conf = await render('wireguard', 'selfmail.conf', { tunnel: TUNNEL, endpoint, vpsPublicKey: config.vpsWgKey, keyPath: installedPath(profile, home.keyPath) });
    files.push(textFile(HOME_WG_CONF, conf, 'the home end of the WireGuard tunnel to the VPS (wg-quick@selfmail)', 0o600));
    for (const unit of LISTENERS) {
      const dropIn = await render('vps', 'after-tunnel.conf', { unit, address: [config.listenIpv4, config.listenIpv6].filter(Boolean).join(', '), tunnelUnit: `wg-quick@${TUNNEL.name}.service` });
      files.push(textFile(`systemd/${unit}.d/selfmail-tunnel.conf`, dropIn, `${unit} starts after the tunnel it listens on`));
    }
  } else {
    ctx.warnings.push(`own-vps: the VPS's WireGuard key is not given yet: copy vps/ to the VPS and run vps/setup.sh there (vps/README.md), then selfmail init --out BUNDLE --vps-wg-key KEY with the key it prints`);
  }
  return files;
}

/**
 * The VPS's rules loaded by nft itself (in a throwaway network namespace), and both tunnel ends by wg-quick's
 * own parser. These files are not installed on this host, so they are checked from a folder of
 * their own.
 */
async function checkVps(_ctx: BuildContext, files: BundleFile[]): Promise<void> {
  const mine = files.filter((f) => f.path.startsWith('vps/') || f.path === HOME_WG_CONF);
  if (mine.length === 0) return;
  const dir = await mkdtemp(join(tmpdir(), 'selfmail-vps-check-'));
  try {
    await chmod(dir, 0o700);
    const at = (p: string) => join(dir, p.replace(/\//g, '-'));
    for (const f of mine) await writeFile(at(f.path), f.data, { mode: 0o600 });
    // Loaded for real, in a user and network namespace of its own that ends with the command (so
    // also without root; nft -c alone misses some errors a load finds, such as a dnat in a filter chain).
    await run('unshare', ['--user', '--map-root-user', '--net', 'nft', '-f', at('vps/nftables.conf')]);
    // wg-quick reads a config by its interface name: <name>.conf.
    for (const p of ['vps/wireguard.conf', HOME_WG_CONF].filter((x) => mine.some((f) => f.path === x))) {
      const conf = join(dir, `${TUNNEL.name}.conf`);
      await writeFile(conf, files.find((f) => f.path === p)!.data, { mode: 0o600 });
      await run('wg-quick', ['strip', conf]);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

export const vpsService: ServiceModule = { name: 'vps', build: buildVps, check: checkVps };
