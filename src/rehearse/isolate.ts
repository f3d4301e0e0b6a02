/**
 * The rehearsal's own network: `selfmail rehearse` runs again inside a new network namespace and
 * mount namespace (unshare). There, loopback is the rehearsal's alone; every other destination is
 * routed to a veth link whose packets the rehearsal's nftables table counts, records by address
 * and refuses; and /etc/resolv.conf (bind-mounted, in this mount namespace only) names the
 * rehearsal's resolver on 127.0.0.1:53, which logs every question (./resolver.ts). What the
 * daemons try to reach outside is then seen, not assumed: the `privacy` step reads both.
 */
import { spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ToolError } from '../errors.js';
import { run } from '../tools/run.js';

/** Set in the environment of the process that runs inside the rehearsal's namespaces. */
const ISOLATED = 'SELFMAIL_REHEARSAL_ISOLATED';

export function isolated(): boolean {
  return process.env[ISOLATED] === '1';
}

/**
 * Run this same command again inside new network and mount namespaces, and return its exit
 * code. Ctrl-C and SIGTERM are passed on; the inner process stops everything it started.
 */
export function runIsolated(): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn('unshare', ['--net', '--mount', '--propagation', 'private', process.execPath, ...process.execArgv, ...process.argv.slice(1)], {
      stdio: 'inherit',
      env: { ...process.env, [ISOLATED]: '1' },
    });
    const pass = (sig: NodeJS.Signals) => () => {
      child.kill(sig);
    };
    const onInt = pass('SIGINT');
    const onTerm = pass('SIGTERM');
    process.on('SIGINT', onInt);
    process.on('SIGTERM', onTerm);
    child.on('error', (e) => {
      process.off('SIGINT', onInt);
      process.off('SIGTERM', onTerm);
      reject(new ToolError(`could not start the rehearsal in a network namespace of its own: ${e.message}`, 'unshare'));
    });
    child.on('exit', (code, signal) => {
      process.off('SIGINT', onInt);
      process.off('SIGTERM', onTerm);
      resolve(code ?? (signal === 'SIGINT' ? 130 : 4));
    });
  });
}

/** The link every non-loopback destination is routed to, and the table that watches it. */
const LINK = 'rehearsal0';
const TABLE = 'selfmail_rehearsal';
/** Addresses of the link (documentation ranges: they reach nothing even where routed). */
const LINK4 = { self: '198.51.100.1/24', gateway: '198.51.100.2' };
const LINK6 = { self: '2001:db8:ffff::1/64', gateway: '2001:db8:ffff::2' };

/**
 * Inside the namespaces: loopback up, a default route to the watched link, the nftables table,
 * and /etc/resolv.conf naming 127.0.0.1 (the rehearsal's resolver). `scratch` holds the file
 * bind-mounted over /etc/resolv.conf.
 */
export async function prepareNetwork(scratch: string): Promise<void> {
  if (!isolated()) throw new Error('prepareNetwork runs only inside the rehearsal namespaces');
  const ip = (...args: string[]) => run('ip', args);
  await ip('link', 'set', 'lo', 'up');
  await ip('link', 'add', LINK, 'type', 'veth', 'peer', 'name', `${LINK}p`);
  await ip('link', 'set', LINK, 'up');
  await ip('link', 'set', `${LINK}p`, 'up');
  await ip('addr', 'add', LINK4.self, 'dev', LINK);
  await ip('-6', 'addr', 'add', LINK6.self, 'dev', LINK, 'nodad');
  await ip('route', 'add', 'default', 'via', LINK4.gateway, 'dev', LINK);
  await ip('-6', 'route', 'add', 'default', 'via', LINK6.gateway, 'dev', LINK);
  // Every packet for a destination that is not loopback is recorded by address and refused (a
  // connection attempt fails at once). The kernel's own IPv6 multicast (neighbour discovery,
  // MLD) is not the daemons' and is left out.
  const rules = [
    `table inet ${TABLE} {`,
    '  set tried4 { type ipv4_addr; flags dynamic; }',
    '  set tried6 { type ipv6_addr; flags dynamic; }',
    '  chain out {',
    '    type filter hook output priority 0; policy accept;',
    '    oifname "lo" accept',
    '    meta nfproto ipv4 add @tried4 { ip daddr } counter reject with icmpx type admin-prohibited',
    '    meta nfproto ipv6 ip6 daddr != { ff00::/8, fe80::/10 } add @tried6 { ip6 daddr } counter reject with icmpx type admin-prohibited',
    '  }',
    '}',
    '',
  ].join('\n');
  await run('nft', ['-f', '-'], { input: rules });
  const resolv = join(scratch, 'rehearsal-resolv.conf');
  await writeFile(resolv, '# selfmail rehearse: the rehearsal resolver only\nnameserver 127.0.0.1\noptions attempts:1 timeout:2\n');
  await run('mount', ['--bind', resolv, '/etc/resolv.conf']);
}

/**
 * The addresses recorded in the `tried4` and `tried6` sets of nftables table `table`, sorted;
 * `nft` runs nft with the given arguments (here, or inside another of the rehearsal's namespaces).
 */
export async function recordedAddresses(table: string, nft: (args: string[]) => Promise<{ stdout: string }> = (args) => run('nft', args)): Promise<string[]> {
  const out: string[] = [];
  for (const set of ['tried4', 'tried6']) {
    const r = await nft(['-j', 'list', 'set', 'inet', table, set]);
    const doc = JSON.parse(r.stdout) as { nftables: Array<{ set?: { elem?: unknown[] } }> };
    for (const item of doc.nftables) for (const e of item.set?.elem ?? []) out.push(typeof e === 'string' ? e : JSON.stringify(e));
  }
  return out.sort();
}

/** Every address outside loopback something in the rehearsal tried to reach, sorted. */
export function triedAddresses(): Promise<string[]> {
  return recordedAddresses(TABLE);
}

/**
 * An own-VPS rehearsal's tunnel (./tunnel.ts): its packets to the VPS on the uplink, and
 * everything through the tunnel, go to the namespaces the rehearsal made, where the internet
 * namespace records any other destination. Inserted before the rules that record and refuse.
 */
export async function allowTunnel(tunnel: string, uplink: string, vps4: string, port: number): Promise<void> {
  await run('nft', ['insert', 'rule', 'inet', TABLE, 'out', 'oifname', uplink, 'ip', 'daddr', vps4, 'udp', 'dport', String(port), 'accept']);
  await run('nft', ['insert', 'rule', 'inet', TABLE, 'out', 'oifname', tunnel, 'accept']);
}
