/**
 * The host's inbound firewall (principle 5: nothing on the LAN is trusted). Everything is closed
 * except what the host serves; SSH opens only to the networks the user named, and with none it
 * is not reachable from the network at all. The rules live in a table of their own
 * (`inet selfmail`), so loading them never flushes anybody else's rules (fail2ban's, Docker's).
 */
import type { BuildContext, BundleFile, ServiceModule } from '../bundle/types.js';
import { textFile } from '../bundle/types.js';
import { installedPath } from '../bundle/layout.js';
import type { Cidr, Config } from '../config/types.js';
import type { Profile } from '../bundle/layout.js';
import { render } from '../render/index.js';
import { run } from '../tools/run.js';
import { TUNNEL } from '../vps/wireguard.js';

export const NFT_PATH = 'nftables/selfmail.nft';
export const FIREWALL_UNIT_PATH = 'systemd/selfmail-firewall.service';
/** SSH stays on its standard port; the firewall, not obscurity, keeps it closed. */
export const SSH_PORT = 22;

export interface FirewallModel {
  /** TCP ports open to everybody without a per-source limit: SMTP (MX), DNS, HTTP(S). */
  tcpOpen: number[];
  /** TCP ports open to everybody, with a per-source limit on new connections (clients log in here). */
  tcpLimited: number[];
  udpOpen: number[];
  sshPort: number;
  /** Networks allowed to reach SSH, by family; both empty: SSH closed to the network. */
  sshFromV4: Cidr[];
  sshFromV6: Cidr[];
  /** New connections per source (IPv4 address or IPv6 /64) and minute before drops start. */
  limitPerMinute: number;
  limitBurst: number;
  /** With own-vps: the WireGuard interface the world's connections must come in by (the VPS forwards them); undefined: any. */
  worldVia?: string;
  /** With own-vps: the VPS's addresses and WireGuard port, whose packets are let in even before conntrack knows the tunnel. */
  tunnelPeer?: { ipv4: string; ipv6: string; port: number };
}

/** The firewall of a config, as data (pure). */
export function firewallModel(config: Pick<Config, 'adminSshFrom' | 'ingress' | 'ipv4' | 'ipv6'>, profile: Pick<Profile, 'ports'>): FirewallModel {
  const p = profile.ports;
  const sortNum = (xs: number[]) => [...new Set(xs)].sort((a, b) => a - b);
  return {
    tcpOpen: sortNum([p.smtp, p.dns, p.http, p.https]),
    tcpLimited: sortNum([p.submissions, p.submission, p.imaps, p.managesieve]),
    udpOpen: [p.dns],
    sshPort: SSH_PORT,
    sshFromV4: config.adminSshFrom.filter((c) => !c.includes(':')).sort(),
    sshFromV6: config.adminSshFrom.filter((c) => c.includes(':')).sort(),
    limitPerMinute: 30,
    limitBurst: 20,
    ...(config.ingress === 'own-vps'
      ? { worldVia: TUNNEL.name, tunnelPeer: { ipv4: config.ipv4 ?? '', ipv6: config.ipv6 ?? '', port: TUNNEL.port } }
      : {}),
  };
}

/** Render the nftables ruleset. */
export async function renderFirewall(model: FirewallModel): Promise<string> {
  return render('nftables', 'selfmail.nft', {
    ...model,
    // Mail, DNS and web from the tunnel only when a VPS forwards them: never straight from the LAN or the ISP.
    from: model.worldVia ? `iifname "${model.worldVia}" ` : '',
    tunnelPeer: model.tunnelPeer ?? false,
    tcpOpenList: model.tcpOpen.join(', '),
    tcpLimitedList: model.tcpLimited.join(', '),
    udpOpenList: model.udpOpen.join(', '),
    sshV4List: model.sshFromV4.join(', '),
    sshV6List: model.sshFromV6.join(', '),
  });
}

export const nftablesService: ServiceModule = {
  name: 'nftables',
  async build(ctx: BuildContext): Promise<BundleFile[]> {
    const model = firewallModel(ctx.config, ctx.profile);
    const unit = await render('nftables', 'selfmail-firewall.service', {
      nft: '/usr/sbin/nft',
      ruleset: installedPath(ctx.profile, NFT_PATH),
    });
    return [
      textFile(NFT_PATH, await renderFirewall(model), 'inbound firewall (nftables table inet selfmail)'),
      textFile(FIREWALL_UNIT_PATH, unit, 'loads the firewall table at boot'),
    ];
  },
  async check(ctx: BuildContext): Promise<void> {
    // `nft -c` parses and evaluates the whole transaction in the kernel without committing it,
    // so nothing on this machine changes. It needs CAP_NET_ADMIN: without root, take it inside a
    // fresh user and network namespace of our own.
    const args = ['-c', '-f', installedPath(ctx.profile, NFT_PATH)];
    if (process.getuid?.() === 0) await run('nft', args);
    else await run('unshare', ['--user', '--map-root-user', '--net', 'nft', ...args]);
  },
};
