/**
 * The own-VPS rehearsal's network (`--ingress own-vps`): beside the rehearsal's own namespace,
 * which is the home host, it makes two more, each held by a process of its own:
 *
 *   internet  a client and a remote MX on addresses of their own, routing between the home
 *             host's uplink and the VPS; every packet for an address that is not one of these is
 *             recorded and dropped (the `privacy` step reads the record);
 *   vps       the VPS's public addresses (the bundle's), its own mount namespace whose
 *             /etc/wireguard and /run are memory-only; set up with the bundle's vps/ files as
 *             vps/setup.sh does (its key made there with `wg genkey`, the rules loaded with
 *             `nft -f`, the forwarding sysctls, `wg-quick up`); packages and systemd are the steps
 *             left out.
 *
 * The home end is the bundle's wireguard/selfmail.conf rendered for the rehearsal root, brought
 * up with wg-quick in the rehearsal's namespace. Everything stops with the rehearsal: the tunnel
 * comes down, every process left in the two namespaces is killed, and the namespaces end with
 * their holders.
 */
import { spawn } from 'node:child_process';
import { mkdir, readFile, readdir, rmdir } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type { LoadedBundle } from './load.js';
import { ToolError } from '../errors.js';
import { run } from '../tools/run.js';
import { TUNNEL } from '../vps/wireguard.js';
import type { SendRequest, SendResult, SinkRequest, SinkResult } from './outside.js';
import { type StaticZone, reverseName } from './resolver.js';
import { type Supervisor, listeningSockets, netnsOf, processesIn, requireTool, sleep, tail } from './supervisor.js';

/** The rehearsal's interfaces: the home host's uplink and the link between the internet and the VPS. */
const UPLINK = 'smhome0';
const INTERNET_HOME = 'sminet0';
const INTERNET_VPS = 'smvps0';
/** The home host's uplink sits behind carrier-grade NAT, as many do (RFC 6598 space). */
const UPLINK_NET = { home: '100.64.77.2', internet: '100.64.77.1', prefix: 30 };
/** The internet's end of the VPS link (link-local: reached through an on-link route). */
const VPS_LINK = { internet4: '169.254.77.1', internet6: 'fe80::77:1', vps6: 'fe80::77:2' };
/** Candidates for the client and the remote MX: documentation ranges, never the VPS's address. */
const CANDIDATES4 = ['192.0.2.10', '192.0.2.20', '198.51.100.10', '198.51.100.20', '203.0.113.10', '203.0.113.20'];
const CANDIDATES6 = ['2001:db8:77::10', '2001:db8:77::20', '2001:db8:78::10'];

export interface TunnelAddresses {
  vps4: string;
  vps6?: string;
  client4: string;
  client6?: string;
  mx4: string;
}

/** Where wireguard-go keeps its control sockets (wg-quick and wg look there). */
const RUN_WIREGUARD = '/run/wireguard';

/** The internet's domain: its client, its MX and the sender's address are named under it. */
export const INTERNET_DOMAIN = 'internet.invalid';
export const INTERNET_CLIENT = `client.${INTERNET_DOMAIN}`;
export const INTERNET_MX = `mx.${INTERNET_DOMAIN}`;

/**
 * The internet's names, as a well-run sender has them: its client's address and reverse name
 * agree, its domain's SPF names the client, its MX is the remote MX. The rehearsal's resolver
 * answers them itself. Pure.
 */
export function internetZone(a: TunnelAddresses): StaticZone {
  const client = [a.client4, a.client6].filter((x): x is string => x !== undefined);
  return {
    zone: INTERNET_DOMAIN,
    records: [
      { name: INTERNET_DOMAIN, type: 'MX', data: `10 ${INTERNET_MX}` },
      { name: INTERNET_DOMAIN, type: 'TXT', data: `v=spf1 ${client.map((x) => (x.includes(':') ? `ip6:${x}` : `ip4:${x}`)).join(' ')} -all` },
      { name: INTERNET_MX, type: 'A', data: a.mx4 },
      ...client.map((x) => ({ name: INTERNET_CLIENT, type: x.includes(':') ? ('AAAA' as const) : ('A' as const), data: x })),
      ...client.map((x) => ({ name: reverseName(x), type: 'PTR' as const, data: INTERNET_CLIENT })),
      { name: reverseName(a.mx4), type: 'PTR', data: INTERNET_MX },
    ],
  };
}

/** The internet's MX: every message it took, in order. */
export interface RemoteMx {
  messages: SinkResult[];
  /** The first message `pick` chooses, waiting up to `ms`; undefined if none came. */
  waitFor: (pick: (m: SinkResult) => boolean, ms: number) => Promise<SinkResult | undefined>;
  stop: () => void;
}

export interface Tunnel {
  addresses: TunnelAddresses;
  /** The internet's names, answered by the rehearsal's resolver. */
  zone: StaticZone;
  /** The VPS's WireGuard public key, made in the VPS's namespace. */
  vpsPublicKey: string;
  /** `ns/net` links of the two namespaces, for the leftover check. */
  namespaces: string[];
  /** Bring the home end up (after the bundle is staged) from its rendered config. */
  homeUp: (confPath: string) => Promise<void>;
  /** Wait until the home end has a handshake with the VPS; false after `timeoutMs`. */
  handshake: (timeoutMs: number) => Promise<boolean>;
  send: (req: Omit<SendRequest, 'localAddress' | 'port' | 'host'> & { from: 'client4' | 'client6'; to: string }) => Promise<SendResult>;
  /** Start the remote MX (for at most `timeoutMs`); resolves once it listens. */
  sink: (timeoutMs: number) => Promise<RemoteMx>;
  /** The VPS's own files (its memory-only /etc/wireguard and /run), with modes. */
  vpsFiles: () => Promise<Array<{ path: string; mode: string }>>;
  /** Command names of the processes in the VPS's namespace, but its holder. */
  vpsProcesses: () => Promise<string[]>;
  /** TCP ports anything listens on in the VPS's namespace. */
  vpsListeners: () => Promise<number[]>;
  /** Addresses the internet was asked to carry packets to that are none of its own. */
  tried: () => Promise<string[]>;
}

/** Two addresses from `from` that are not `avoid`. Pure. */
export function pickAddresses(from: readonly string[], avoid: readonly (string | undefined)[]): [string, string] {
  const free = from.filter((a) => !avoid.includes(a));
  if (free.length < 2) throw new Error('no free rehearsal addresses');
  return [free[0]!, free[1]!];
}

function kill(pids: readonly number[]): void {
  for (const p of pids) {
    try {
      process.kill(p, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

/** A holder process in new namespaces, started under the supervisor; resolves with its pid once `ready` is printed. */
async function holder(sup: Supervisor, name: string, unshareArgs: string[], script: string): Promise<number> {
  const d = sup.start(name, 'unshare', [...unshareArgs, 'sh', '-c', `${script}echo ready; exec sleep 2147483647`]);
  const deadline = Date.now() + 10_000;
  while (!d.output().includes('ready')) {
    if (d.child.exitCode !== null || Date.now() > deadline) throw new ToolError(`the rehearsal's ${name} namespace did not come up: ${tail(d.output())}`, 'unshare');
    await sleep(20);
  }
  if (d.child.pid === undefined) throw new ToolError(`the rehearsal's ${name} namespace has no process`, 'unshare');
  return d.child.pid;
}

/** The bundle file `path` as text, or a clear failure. */
function bundleText(bundle: LoadedBundle, path: string): string {
  const data = bundle.files.get(path);
  if (!data) throw new ToolError(`the bundle has no ${path}; run selfmail init on it again`, 'selfmail');
  return data.toString('utf8');
}

/**
 * Make the internet and the VPS, set the VPS up from the bundle's vps/ files, and route the home
 * host's uplink. Everything made is registered with `sup` (stopped with the rehearsal).
 */
export async function startTunnel(bundle: LoadedBundle, sup: Supervisor): Promise<Tunnel> {
  for (const t of ['wg', 'wg-quick', 'nsenter']) await requireTool(t);
  const { config } = bundle;
  if (!config.ipv4) throw new ToolError('the own-VPS rehearsal reaches the VPS over IPv4: the bundle names no --vps-ipv4', 'selfmail');
  const [client4, mx4] = pickAddresses(CANDIDATES4, [config.ipv4]);
  const addresses: TunnelAddresses = { vps4: config.ipv4, client4, mx4 };
  if (config.ipv6) {
    addresses.vps6 = config.ipv6;
    addresses.client6 = pickAddresses(CANDIDATES6, [config.ipv6])[0];
  }
  // The VPS's memory-only /etc/wireguard is mounted there (the package makes the folder).
  if (!(await readdir('/etc/wireguard').then(() => true, () => false))) throw new ToolError('/etc/wireguard is missing: install the Debian package wireguard-tools', 'wg');

  const namespaces: string[] = [];
  const pids: number[] = [];
  // Stopped last (registered first): every process left in the two namespaces.
  sup.onStop(async () => kill(await processesIn(namespaces, pids)));
  // Each has a mount namespace of its own with a /proc of its own: the sysctls of its network
  // namespace are written there (a container such as systemd-nspawn's keeps /proc/sys read-only).
  const ownProc = 'mount -t proc selfmail-rehearsal-proc /proc && ';
  const internetPid = await holder(sup, 'internet', ['--net', '--mount', '--propagation', 'private'], ownProc);
  pids.push(internetPid);
  namespaces.push(await netnsOf(internetPid));
  const vpsPid = await holder(sup, 'vps', ['--net', '--mount', '--propagation', 'private'], `${ownProc}mount -t tmpfs -o mode=0700 selfmail-vps-wireguard /etc/wireguard && mount -t tmpfs -o mode=0755 selfmail-vps-run /run && `);
  pids.push(vpsPid);
  namespaces.push(await netnsOf(vpsPid));

  const ip = (...a: string[]) => run('ip', a);
  const inet = (...a: string[]) => run('nsenter', ['-t', String(internetPid), '-n', '-m', '--', ...a]);
  const vps = (...a: string[]) => run('nsenter', ['-t', String(vpsPid), '-n', '-m', '--', ...a], { timeout: 60_000 });
  const vpsSh = (script: string, input?: string) => run('nsenter', ['-t', String(vpsPid), '-n', '-m', '--', 'sh', '-c', script], { timeout: 60_000, ...(input !== undefined ? { input } : {}) });

  // The internet: the client and the remote MX on its loopback, the home uplink, the VPS link.
  await inet('ip', 'link', 'set', 'lo', 'up');
  for (const a of [client4, mx4]) await inet('ip', 'addr', 'add', `${a}/32`, 'dev', 'lo');
  if (addresses.client6) await inet('ip', '-6', 'addr', 'add', `${addresses.client6}/128`, 'dev', 'lo');
  await ip('link', 'add', UPLINK, 'type', 'veth', 'peer', 'name', INTERNET_HOME);
  await ip('link', 'set', INTERNET_HOME, 'netns', String(internetPid));
  await ip('link', 'add', INTERNET_VPS, 'type', 'veth', 'peer', 'name', 'smvpseth0');
  await ip('link', 'set', INTERNET_VPS, 'netns', String(internetPid));
  await ip('link', 'set', 'smvpseth0', 'netns', String(vpsPid));
  await ip('addr', 'add', `${UPLINK_NET.home}/${UPLINK_NET.prefix}`, 'dev', UPLINK);
  await ip('link', 'set', UPLINK, 'up');
  // Only the VPS is reached through the uplink: everything else keeps the rehearsal's watched link.
  await ip('route', 'add', `${addresses.vps4}/32`, 'via', UPLINK_NET.internet, 'dev', UPLINK);
  await inet('ip', 'addr', 'add', `${UPLINK_NET.internet}/${UPLINK_NET.prefix}`, 'dev', INTERNET_HOME);
  await inet('ip', 'link', 'set', INTERNET_HOME, 'up');
  await inet('ip', 'addr', 'add', `${VPS_LINK.internet4}/32`, 'dev', INTERNET_VPS);
  await inet('ip', '-6', 'addr', 'add', `${VPS_LINK.internet6}/64`, 'dev', INTERNET_VPS, 'nodad');
  await inet('ip', 'link', 'set', INTERNET_VPS, 'up');
  await inet('ip', 'route', 'add', `${addresses.vps4}/32`, 'dev', INTERNET_VPS);
  if (addresses.vps6) await inet('ip', '-6', 'route', 'add', `${addresses.vps6}/128`, 'via', VPS_LINK.vps6, 'dev', INTERNET_VPS);
  await inet('sysctl', '-qw', 'net.ipv4.ip_forward=1');
  const known4 = [client4, mx4, addresses.vps4, UPLINK_NET.home, UPLINK_NET.internet, VPS_LINK.internet4];
  const known6 = ['fe80::/10', 'ff00::/8', ...[addresses.client6, addresses.vps6].filter((a): a is string => a !== undefined)];
  await run('nsenter', ['-t', String(internetPid), '-n', '-m', '--', 'nft', '-f', '-'], {
    input: [
      'table inet selfmail_internet {',
      '  set tried4 { type ipv4_addr; flags dynamic; }',
      '  set tried6 { type ipv6_addr; flags dynamic; }',
      '  chain pre {',
      '    type filter hook prerouting priority 0; policy accept;',
      `    meta nfproto ipv4 ip daddr != { ${known4.join(', ')} } add @tried4 { ip daddr } counter drop`,
      `    meta nfproto ipv6 ip6 daddr != { ${known6.join(', ')} } add @tried6 { ip6 daddr } counter drop`,
      '  }',
      '}',
      '',
    ].join('\n'),
  });

  // The VPS: its public addresses on its link, routes through the internet.
  await vps('ip', 'link', 'set', 'lo', 'up');
  await vps('ip', 'link', 'set', 'smvpseth0', 'name', 'eth0');
  await vps('ip', 'addr', 'add', `${addresses.vps4}/32`, 'dev', 'eth0');
  if (addresses.vps6) await vps('ip', '-6', 'addr', 'add', `${addresses.vps6}/128`, 'dev', 'eth0', 'nodad');
  await vps('ip', '-6', 'addr', 'add', `${VPS_LINK.vps6}/64`, 'dev', 'eth0', 'nodad');
  await vps('ip', 'link', 'set', 'eth0', 'up');
  await vps('ip', 'route', 'add', `${VPS_LINK.internet4}/32`, 'dev', 'eth0');
  await vps('ip', 'route', 'add', 'default', 'via', VPS_LINK.internet4, 'dev', 'eth0');
  await vps('ip', '-6', 'route', 'add', 'default', 'via', VPS_LINK.internet6, 'dev', 'eth0');
  // vps/setup.sh's steps, with the bundle's own files: the key made here, the rules, the tunnel.
  await vpsSh('umask 077 && wg genkey > /etc/wireguard/selfmail.key');
  await vpsSh('umask 077 && cat > /etc/wireguard/selfmail.conf', bundleText(bundle, 'vps/wireguard.conf'));
  await vpsSh('nft -f -', bundleText(bundle, 'vps/nftables.conf'));
  for (const line of bundleText(bundle, 'vps/sysctl.conf').split('\n').filter((l) => /^[a-z]/.test(l))) {
    await vps('sysctl', '-qw', line.replace(/\s*=\s*/, '='));
  }
  await vpsSh('wg-quick up selfmail 2>&1').catch((e: Error) => {
    throw new ToolError(`the rehearsal's VPS could not bring its WireGuard tunnel up (a Debian kernel has WireGuard; elsewhere install wireguard-go): ${e.message}`, 'wg-quick');
  });
  const vpsPublicKey = (await vpsSh('wg pubkey < /etc/wireguard/selfmail.key')).stdout.trim();
  sup.onStop(async () => {
    await vpsSh('wg-quick down selfmail 2>&1').catch(() => undefined);
  });

  // The home end's tunnel traffic is the rehearsal's own: the watched link's table lets it pass
  // (the internet namespace records anything else the home host sends through it).
  const { allowTunnel } = await import('./isolate.js');
  await allowTunnel(TUNNEL.name, UPLINK, addresses.vps4, TUNNEL.port);

  // Compiled beside this file, and found from dist/app/ (the bundled CLI) at the same depth.
  const outsideJs = fileURLToPath(new URL('../rehearse/outside.js', import.meta.url));
  const outside = (op: 'send' | 'sink') =>
    spawn('nsenter', ['-t', String(internetPid), '-n', '-m', '--', process.execPath, outsideJs, op], { stdio: ['pipe', 'pipe', 'pipe'] }).on('error', () => undefined);
  const lines = (child: ReturnType<typeof outside>, onLine: (l: string) => void) => {
    let buf = '';
    child.stdout?.on('data', (d: Buffer) => {
      buf += d.toString('utf8');
      for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
        onLine(buf.slice(0, i));
        buf = buf.slice(i + 1);
      }
    });
  };

  return {
    addresses,
    zone: internetZone(addresses),
    vpsPublicKey,
    namespaces,
    homeUp: async (confPath) => {
      // wireguard-go (where the kernel has no WireGuard) keeps its socket in /run/wireguard: a
      // folder of the rehearsal's own, so that a tunnel of this host's is never touched.
      // A folder this host lacks is made for the mount and removed after it (the stop is
      // registered first: a Ctrl-C in between leaves nothing).
      const made = !(await readdir(RUN_WIREGUARD).then(() => true, () => false));
      sup.onStop(async () => {
        await run('wg-quick', ['down', confPath]).catch(() => undefined);
        // Lazily: wireguard-go may still be closing its socket there.
        await run('umount', ['--lazy', RUN_WIREGUARD]).catch(() => undefined);
        if (made) await rmdir(RUN_WIREGUARD).catch(() => undefined);
      });
      if (made) await mkdir(RUN_WIREGUARD, { mode: 0o700 });
      await run('mount', ['-t', 'tmpfs', '-o', 'mode=0700', 'selfmail-rehearsal-wireguard', RUN_WIREGUARD]);
      await run('wg-quick', ['up', confPath]).catch((e: Error) => {
        throw new ToolError(`the home end of the rehearsal's tunnel did not come up (a Debian kernel has WireGuard; elsewhere install wireguard-go): ${e.message}`, 'wg-quick');
      });
    },
    handshake: async (timeoutMs) => {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const r = await run('wg', ['show', TUNNEL.name, 'latest-handshakes']).catch(() => ({ stdout: '' }));
        if (/\s[1-9]\d*\s*$/m.test(r.stdout)) return true;
        if (Date.now() > deadline) return false;
        await sleep(200);
      }
    },
    send: (req) =>
      new Promise((resolve) => {
        const { from, to, ...rest } = req;
        const localAddress = (from === 'client6' ? addresses.client6 : undefined) ?? addresses.client4;
        const child = outside('send');
        let result: SendResult = { ok: false, error: 'the client printed nothing' };
        let err = '';
        lines(child, (l) => (result = JSON.parse(l) as SendResult));
        child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
        child.on('exit', () => resolve(result.error && err ? { ...result, error: `${result.error} ${tail(err, 3)}` } : result));
        child.stdin?.end(JSON.stringify({ ...rest, localAddress, host: to, port: 25 } satisfies SendRequest));
      }),
    sink: (timeoutMs) =>
      new Promise((resolveListening, rejectListening) => {
        const child = outside('sink');
        let err = '';
        child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
        const messages: SinkResult[] = [];
        let listening = false;
        lines(child, (l) => {
          const msg = JSON.parse(l) as { listening?: boolean } & SinkResult;
          if (msg.listening) {
            listening = true;
            resolveListening({
              messages,
              waitFor: async (pick, ms) => {
                const deadline = Date.now() + ms;
                for (;;) {
                  const m = messages.find(pick);
                  if (m || Date.now() > deadline || child.exitCode !== null) return m;
                  await sleep(200);
                }
              },
              stop: () => {
                child.kill('SIGKILL');
              },
            });
          } else messages.push(msg);
        });
        child.on('exit', () => {
          if (!listening) rejectListening(new Error(`the remote MX did not start: ${tail(err, 3)}`));
        });
        child.stdin?.end(JSON.stringify({ address: mx4, port: 25, timeoutMs } satisfies SinkRequest));
      }),
    vpsFiles: async () => {
      const r = await vpsSh('find /etc/wireguard /run -mindepth 1 -printf "%p %m\\n"');
      return r.stdout
        .split('\n')
        .filter(Boolean)
        .map((l) => {
          const [path = '', mode = ''] = l.split(' ');
          return { path, mode };
        })
        .sort((x, y) => (x.path < y.path ? -1 : 1));
    },
    vpsProcesses: async () => {
      const names: string[] = [];
      for (const p of await processesIn([namespaces[1]!], [vpsPid])) names.push((await readFile(`/proc/${p}/comm`, 'utf8').catch(() => '?')).trim());
      return names.sort();
    },
    vpsListeners: async () => [...new Set((await listeningSockets(`/proc/${vpsPid}/net`)).values())].sort((x, y) => x - y),
    tried: async () => {
      const { recordedAddresses } = await import('./isolate.js');
      return recordedAddresses('selfmail_internet', (args) => inet('nft', ...args));
    },
  };
}
