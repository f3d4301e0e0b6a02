/**
 * The internet around the host, as far as doctor's network checks look, made in the outside
 * namespace with this machine's own servers: NSD serving a root zone and `org.` (both signed with
 * ldns, the root's key the host's trust anchor for the test), the reverse zones of the test
 * addresses, a DNS blocklist inside `org.`, an SMTP listener standing for a big provider's MX
 * (bigmail.org), and, when asked, miniupnpd as a router with UPnP IGD and NAT-PMP left on (its
 * outside address a carrier-grade NAT one). The host's unbound is pointed at the fake root by a
 * drop-in (root hints) and the fake root's key in its trust anchor file, both undone by `stop()`.
 *
 * `set()` rewrites what the parent and the ISP publish: right (the bundle's NS, glue and DS, PTR
 * the mail host) or wrong (a parked delegation, a DS for another key, the ISP's generic PTR, the
 * address listed, port 25 blocked outbound).
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { reverseName } from '../../src/doctor/network-checks.js';
import { type PristineHost, must, sh } from './machine.js';

export const WORLD = {
  /** NSD: the root, org., the reverse zones. */
  dns: '203.0.113.53',
  /** bigmail.org's MX. */
  mx: '203.0.113.2',
  blocklist: 'dnsbl.lists.org',
  mxDomain: 'bigmail.org',
  /** miniupnpd's outside address: carrier-grade NAT space. */
  routerOutside: '100.64.0.2',
} as const;

export interface WorldState {
  /** NS names of the delegation of the bundle's zone, with their glue. */
  ns: Record<string, string[]>;
  /** DS RDATA for the zone at the parent. */
  ds: string[];
  /** PTR of the host's IPv4 and IPv6 addresses; undefined: none. */
  ptr4?: string;
  ptr6?: string;
  /** The host's IPv4 address on the blocklist. */
  listed: boolean;
  /** The ISP refuses the host's outbound port 25. */
  port25Blocked: boolean;
  /** miniupnpd runs on the router. */
  upnp: boolean;
}

export interface World {
  set(state: WorldState): Promise<void>;
  /** The logs of the world's servers (NSD, miniupnpd), for a failing assertion's message. */
  logs(): Promise<string>;
  stop(): Promise<void>;
}

const DROP_IN = 'etc/unbound/unbound.conf.d/zz-selfmail-tier-world.conf';
const HINTS = 'etc/unbound/selfmail-tier-root.hints';
const ROOT_KEY = 'var/lib/unbound/root.key';
const ROOT_KEY_SAVED = 'var/lib/unbound/root.key.selfmail-tier';
const ROOT_KEY_NEW = 'etc/unbound/selfmail-tier-root.key';

/** `zone`: the bundle's zone (example.org); `host4`/`host6`: its addresses; `link`: the outside's interface towards the host. */
export async function startWorld(host: PristineHost, zone: string, host4: string, host6: string, link: string): Promise<World> {
  const dir = await mkdtemp(join(tmpdir(), 'selfmail-tier-world-'));
  const p = (f: string) => join(dir, f);
  const outside = (argv: string[]) => must('ip', ['netns', 'exec', host.outside, ...argv]);
  for (const a of [WORLD.dns, WORLD.mx]) await outside(['ip', 'addr', 'add', `${a}/24`, 'dev', link]);

  // One signing key per signed zone, made here for the test.
  const rootKey = (await must('sh', ['-c', `cd ${dir} && ldns-keygen -a ECDSAP256SHA256 -k .`])).stdout.trim();
  const orgKey = (await must('sh', ['-c', `cd ${dir} && ldns-keygen -a ECDSAP256SHA256 -k org`])).stdout.trim();
  const dsOf = async (key: string) => (await must('sh', ['-c', `cd ${dir} && ldns-key2ds -n -2 ${key}.key`])).stdout.trim();
  const orgDs = await dsOf(orgKey);
  const rootDnskey = (await readFile(p(`${rootKey}.key`), 'utf8')).trim();

  const rev4 = host4.split('.').slice(0, 3).reverse().join('.') + '.in-addr.arpa';
  const rev6 = '8.b.d.0.1.0.0.2.ip6.arpa';
  const ptr4Owner = `${reverseName(host4)}.`;
  const ptr6Owner = `${reverseName(host6)}.`;
  const soa = (name: string, serial: number) => `${name} 3600 IN SOA a.root-servers.org. hostmaster.${name === '.' ? '' : name} ${serial} 1800 900 604800 1`;

  await writeFile(
    p('nsd.conf'),
    [
      'server:',
      `  ip-address: ${WORLD.dns}`,
      '  port: 53',
      '  username: ""',
      '  chroot: ""',
      '  database: ""',
      `  zonesdir: "${dir}"`,
      `  pidfile: "${p('nsd.pid')}"`,
      `  zonelistfile: "${p('zone.list')}"`,
      `  xfrdfile: "${p('xfrd.state')}"`,
      `  xfrdir: "${dir}"`,
      `  logfile: "${p('nsd.log')}"`,
      '  server-count: 1',
      '  verbosity: 1',
      'remote-control:',
      '  control-enable: no',
      ...[
        ['.', 'root.zone.signed'],
        ['org', 'org.zone.signed'],
        [rev4, 'rev4.zone'],
        [rev6, 'rev6.zone'],
      ].flatMap(([name, file]) => ['zone:', `  name: "${name}"`, `  zonefile: "${file}"`]),
      '',
    ].join('\n'),
  );
  const sign = async (file: string, key: string) => void (await must('sh', ['-c', `cd ${dir} && ldns-signzone -f ${file}.signed ${file} ${key}`]));

  let serial = 1;
  let nsdRunning = false;
  let upnpRunning = false;
  let blocked = false;
  const stopNsd = async () => {
    const pid = (await readFile(p('nsd.pid'), 'utf8').catch(() => '')).trim();
    if (pid) await sh('kill', [pid]);
    for (let i = 0; i < 50 && pid && (await sh('kill', ['-0', pid])).code === 0; i++) await new Promise((r) => setTimeout(r, 100));
    await rm(p('nsd.pid'), { force: true });
    nsdRunning = false;
  };

  const upnpConf = p('miniupnpd.conf');
  const wan = `smw${host.id}`;
  const startUpnp = async () => {
    await outside(['ip', 'link', 'add', wan, 'type', 'veth', 'peer', 'name', `${wan}p`]);
    await outside(['ip', 'addr', 'add', `${WORLD.routerOutside}/10`, 'dev', wan]);
    await outside(['ip', 'link', 'set', wan, 'up']);
    await outside(['ip', 'link', 'set', `${wan}p`, 'up']);
    await writeFile(upnpConf, [`ext_ifname=${wan}`, `listening_ip=${link}`, 'enable_natpmp=yes', 'enable_upnp=yes', 'secure_mode=yes', 'system_uptime=yes', 'uuid=5e1f3a11-7e57-4000-8000-000000000001', 'allow 1024-65535 203.0.113.0/24 1024-65535', 'deny 0-65535 0.0.0.0/0 0-65535', ''].join('\n'));
    const r = await sh('ip', ['netns', 'exec', host.outside, 'sh', '-c', `miniupnpd -d -f ${upnpConf} -P ${p('miniupnpd.pid')} </dev/null >${p('miniupnpd.log')} 2>&1 &`]);
    if (r.code !== 0) throw new Error(`miniupnpd did not start: ${await readFile(p('miniupnpd.log'), 'utf8').catch(() => '')}`);
    for (let i = 0; i < 50; i++) {
      const ss = await outside(['ss', '-lnu']);
      if (/:5351\b/.test(ss.stdout) && /:1900\b/.test(ss.stdout)) break;
      await new Promise((res) => setTimeout(res, 100));
    }
    upnpRunning = true;
  };
  const stopUpnp = async () => {
    const pid = (await readFile(p('miniupnpd.pid'), 'utf8').catch(() => '')).trim();
    if (pid) await sh('kill', [pid]);
    else await sh('pkill', ['-f', `miniupnpd -d -f ${upnpConf}`]);
    for (let i = 0; i < 50 && pid && (await sh('kill', ['-0', pid])).code === 0; i++) await new Promise((r) => setTimeout(r, 100));
    await sh('ip', ['-n', host.outside, 'link', 'del', wan]);
    // miniupnpd leaves its nftables tables behind.
    await sh('ip', ['netns', 'exec', host.outside, 'sh', '-c', 'nft list tables | grep -q miniupnpd && nft delete table inet miniupnpd; nft list tables | grep -q "ip miniupnpd" && nft delete table ip miniupnpd; true']);
    upnpRunning = false;
  };

  // The bigmail.org MX: greets, answers QUIT, and notes who connected.
  const mxScript = p('mx.mjs');
  await writeFile(
    mxScript,
    `import net from 'node:net';\nnet.createServer((s) => { s.write('220 mx.${WORLD.mxDomain} ESMTP\\r\\n'); s.on('data', (d) => { if (/QUIT/i.test(d.toString())) s.end('221 bye\\r\\n'); else s.write('250 ok\\r\\n'); }); s.on('error', () => {}); }).listen(25, '${WORLD.mx}', () => process.stdout.write('ready\\n'));\n`,
  );
  const mxStarted = await sh('ip', ['netns', 'exec', host.outside, 'sh', '-c', `${process.execPath} ${mxScript} </dev/null >${p('mx.log')} 2>&1 & echo $! > ${p('mx.pid')}`]);
  if (mxStarted.code !== 0) throw new Error('the MX listener did not start');
  for (let i = 0; i < 50 && !/ready/.test(await readFile(p('mx.log'), 'utf8').catch(() => '')); i++) await new Promise((r) => setTimeout(r, 100));

  // The host's unbound: the fake root's hints, and its key in place of the real root's in the
  // trust anchor file (unbound refuses a static anchor beside an RFC 5011 one for the same name).
  await host.put(HINTS, `.\t3600000\tNS\ta.root-servers.org.\na.root-servers.org.\t3600000\tA\t${WORLD.dns}\n`);
  await host.put(DROP_IN, `# selfmail's tier: the test's own root, for doctor's network checks. Removed after the test.\nserver:\n    root-hints: "/${HINTS}"\n    local-zone: "${rev4}." nodefault\n    local-zone: "${rev6}." nodefault\n`);
  await host.put(ROOT_KEY_NEW, `${rootDnskey.replace(/\s+/g, ' ')}\n`);
  await host.run(`cp -p /${ROOT_KEY} /${ROOT_KEY_SAVED} && install -o unbound -g unbound -m 0644 /${ROOT_KEY_NEW} /${ROOT_KEY}`);

  const restartUnbound = async () => {
    const r = await host.exec(['sh', '-c', 'systemctl restart unbound.service && for i in $(seq 50); do dig +short +time=1 +tries=1 @127.0.0.1 . SOA >/dev/null && break; sleep 0.1; done']);
    if (r.code !== 0) throw new Error(`unbound did not restart: ${r.stderr}\n${(await host.exec(['journalctl', '-b', '--no-pager', '-n', '40', '-u', 'unbound.service'])).stdout}\n${(await host.exec(['cat', `/${ROOT_KEY}`])).stdout}`);
  };
  const world: World = {
    async set(state) {
      serial++;
      const zoneLines = [
        soa('.', serial),
        '. 3600 IN NS a.root-servers.org.',
        'org. 3600 IN NS a0.org-servers.org.',
        `a0.org-servers.org. 3600 IN A ${WORLD.dns}`,
        `a.root-servers.org. 3600 IN A ${WORLD.dns}`,
        orgDs.replace(/^org\.\s+\d+/, 'org. 3600'),
        `${rev4}. 3600 IN NS a.root-servers.org.`,
        `${rev6}. 3600 IN NS a.root-servers.org.`,
        '',
      ];
      await writeFile(p('root.zone'), zoneLines.join('\n'));
      const org = [
        soa('org.', serial),
        'org. 3600 IN NS a0.org-servers.org.',
        `a0.org-servers.org. 3600 IN A ${WORLD.dns}`,
        `a.root-servers.org. 3600 IN A ${WORLD.dns}`,
        ...Object.entries(state.ns).flatMap(([name, addrs]) => [`${zone}. 60 IN NS ${name}.`, ...addrs.map((a) => `${name}. 60 IN ${a.includes(':') ? 'AAAA' : 'A'} ${a}`)]),
        ...state.ds.map((d) => `${zone}. 60 IN DS ${d}`),
        `${WORLD.mxDomain}. 60 IN MX 10 mx.${WORLD.mxDomain}.`,
        `mx.${WORLD.mxDomain}. 60 IN A ${WORLD.mx}`,
        `host-${host4.replace(/\./g, '-')}.isp.org. 60 IN A ${host4}`,
        `${WORLD.blocklist}. 60 IN TXT "the test's blocklist"`,
        ...(state.listed ? [`${host4.split('.').reverse().join('.')}.${WORLD.blocklist}. 1 IN A 127.0.0.2`] : []),
        '',
      ];
      await writeFile(p('org.zone'), org.join('\n'));
      await writeFile(p('rev4.zone'), [soa(`${rev4}.`, serial), `${rev4}. 3600 IN NS a.root-servers.org.`, ...(state.ptr4 ? [`${ptr4Owner} 1 IN PTR ${state.ptr4}.`] : []), ''].join('\n'));
      await writeFile(p('rev6.zone'), [soa(`${rev6}.`, serial), `${rev6}. 3600 IN NS a.root-servers.org.`, ...(state.ptr6 ? [`${ptr6Owner} 1 IN PTR ${state.ptr6}.`] : []), ''].join('\n'));
      await sign('root.zone', rootKey);
      await sign('org.zone', orgKey);
      if (nsdRunning) await stopNsd();
      const started = await sh('ip', ['netns', 'exec', host.outside, 'sh', '-c', `exec nsd -c ${p('nsd.conf')} </dev/null >${p('nsd.start')} 2>&1`]);
      if (started.code !== 0) throw new Error(`the world's NSD did not start: ${await readFile(p('nsd.start'), 'utf8')}\n${await readFile(p('nsd.log'), 'utf8').catch(() => '')}`);
      for (let i = 0; i < 50; i++) {
        const ok = await sh('ip', ['netns', 'exec', host.outside, 'dig', '+short', '+time=1', '+tries=1', `@${WORLD.dns}`, 'org.', 'SOA']);
        if (ok.stdout.includes(` ${serial} `)) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      nsdRunning = true;
      if (state.upnp && !upnpRunning) await startUpnp();
      if (!state.upnp && upnpRunning) await stopUpnp();
      if (state.port25Blocked !== blocked) {
        // The ISP's filter on the path: the host's port 25 out refused.
        const script = state.port25Blocked
          ? `nft add table inet selfmail-tier-isp && nft add chain inet selfmail-tier-isp input '{ type filter hook input priority 0; }' && nft add rule inet selfmail-tier-isp input ip saddr ${host4} tcp dport 25 reject with tcp reset`
          : 'nft delete table inet selfmail-tier-isp';
        await outside(['sh', '-c', script]);
        blocked = state.port25Blocked;
      }
      // The host's unbound starts afresh: nothing of the previous state cached.
      await restartUnbound();
    },
    async logs() {
      const parts = await Promise.all(['nsd.log', 'miniupnpd.log', 'mx.log'].map(async (f) => `--- ${f}\n${await readFile(p(f), 'utf8').catch(() => '(none)')}`));
      const ss = await sh('ip', ['netns', 'exec', host.outside, 'ss', '-lnup']);
      return `${parts.join('\n')}\n--- ss -lnup (outside)\n${ss.stdout}`;
    },
    async stop() {
      await host.run(`mv /${ROOT_KEY_SAVED} /${ROOT_KEY} && rm -f /${DROP_IN} /${HINTS} /${ROOT_KEY_NEW} && systemctl restart unbound.service`).catch(() => undefined);
      if (nsdRunning) await stopNsd();
      if (upnpRunning) await stopUpnp();
      if (blocked) await sh('ip', ['netns', 'exec', host.outside, 'nft', 'delete', 'table', 'inet', 'selfmail-tier-isp']);
      const mxPid = (await readFile(p('mx.pid'), 'utf8').catch(() => '')).trim();
      if (mxPid) await sh('kill', [mxPid]);
      for (const a of [WORLD.dns, WORLD.mx]) await sh('ip', ['-n', host.outside, 'addr', 'del', `${a}/24`, 'dev', link]);
      await rm(dir, { recursive: true, force: true });
    },
  };
  return world;
}
