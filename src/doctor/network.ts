/**
 * The facts behind doctor's network checks, gathered from whom each check names and nobody else:
 * this host's own resolver (unbound on 127.0.0.1, validating from the root), the parent zones'
 * authoritative servers (asked directly, without recursion), the router on the LAN (one SSDP
 * M-SEARCH, one NAT-PMP request; nothing is mapped), and, only when the user asks for them, one
 * domain's MX (port 25) and the named DNS blocklists.
 */
import { createSocket } from 'node:dgram';
import { connect as tcpConnect } from 'node:net';
import { networkInterfaces } from 'node:os';
import type { Config } from '../config/types.js';
import { isInZone } from '../config/types.js';
import { run } from '../tools/run.js';
import type { CheckResult } from './checks.js';
import {
  type BlocklistFacts,
  type BundleDs,
  type DnsReply,
  type NatPmpReply,
  type ParentFacts,
  type ParentServerView,
  type PtrFacts,
  type Port25OutFacts,
  type RouterFacts,
  blocklistName,
  cdsOfZone,
  dsOfFile,
  judgeBlocklists,
  judgeCgnat,
  judgeDelegation,
  judgeDsAtParent,
  judgeNat,
  judgePort25In,
  judgePort25Out,
  judgePtr,
  judgeUpnp,
  locallyServed,
  normalizeDs,
  parseDig,
  reverseName,
} from './network-checks.js';

/** This host's resolver: selfmail's unbound. */
export const RESOLVER = '127.0.0.1';
const UDP_WAIT_MS = 2000;
const TCP_TIMEOUT_MS = 10_000;

export interface NetworkOptions {
  /** `--port25-via`: the domain whose MX port 25 is tried. */
  port25Via?: string;
  /** `--ask-blocklists`: DNS blocklists to look the host's addresses up in. */
  blocklists: string[];
}

export async function networkChecks(config: Config, files: Map<string, { data: Buffer }>, opts: NetworkOptions): Promise<CheckResult[]> {
  const publicAddresses = [config.ipv4, config.ipv6].filter((a): a is NonNullable<typeof a> => !!a);
  const [parents, ptr, port25, lists, router] = await Promise.all([
    Promise.all(config.domains.map((zone) => parentFacts(zone))),
    Promise.all(publicAddresses.map((a) => ptrFacts(a))),
    port25Out(opts.port25Via),
    Promise.all(opts.blocklists.flatMap((list) => publicAddresses.map((a) => blocklistFacts(a, list)))),
    routerFacts(),
  ]);
  const expected = config.nameServers.map((n) => ({ name: n.name, ipv4: n.ipv4, ipv6: n.ipv6, glue: false }));
  const bundleDs: BundleDs[] = config.domains.map((zone) => ({
    zone,
    dnssec: config.dnssec,
    ds: dsOfFile(files.get(`dns/${zone}.ds`)?.data.toString('utf8') ?? ''),
    rolling: cdsOfZone(files.get(`dns/${zone}.zone`)?.data.toString('utf8') ?? ''),
  }));
  const local = Object.values(networkInterfaces())
    .flat()
    .filter((i) => i && !i.internal)
    .map((i) => i!.address);
  const tunnel = config.ingress === 'own-vps' ? (config.listenIpv4 ?? config.listenIpv6) : undefined;
  const nat = { public: publicAddresses, local, ingress: config.ingress, router, ...(tunnel ? { tunnel } : {}) };
  return [
    judgeUpnp(router),
    judgeNat(nat),
    judgeCgnat(nat),
    judgePtr(ptr, config.hostname),
    judgePort25Out(port25),
    judgePort25In(config.ingress),
    // Glue is due for the name servers inside each zone; judged zone by zone.
    mergeDelegation(parents.map((p) => judgeDelegation([p], expected.map((e) => ({ ...e, glue: isInZone(e.name, p.zone) }))))),
    judgeDsAtParent(parents, bundleDs),
    judgeBlocklists(lists, opts.blocklists),
  ];
}

/** One `delegation` result from the per-zone ones: the worst status, every summary. */
function mergeDelegation(results: CheckResult[]): CheckResult {
  if (results.length === 1) return results[0]!;
  const order = ['fail', 'unknown', 'warn', 'pass'] as const;
  const worst = order.find((s) => results.some((r) => r.status === s)) ?? 'pass';
  const first = results.find((r) => r.status === worst)!;
  return { ...first, summary: results.map((r) => r.summary).join('; '), asked: [...new Set(results.map((r) => r.asked))].join('; ') };
}


/** One query with dig: recursive to this host's resolver (`+cd`: without its validation), or not recursive to an authoritative server. */
export async function query(server: string, name: string, type: string, recurse: boolean, checkingDisabled = false): Promise<DnsReply> {
  const args = ['+noall', '+comments', '+answer', '+authority', '+additional', '+time=3', '+tries=2', recurse ? '+recurse' : '+norecurse', ...(checkingDisabled ? ['+cd'] : []), `@${server}`, name, type];
  const r = await run('dig', args, { okCodes: [0, 9, 10], timeout: 30_000 }).catch((err: Error) => ({ stdout: '', stderr: err.message, exitCode: -1 }));
  if (r.exitCode !== 0) return { status: 'NOANSWER', flags: [], answer: [], authority: [], additional: [], error: r.exitCode === 9 ? `no answer from ${server} within 6 s` : (r.stderr.trim().split('\n').pop() ?? `dig exit ${r.exitCode}`) };
  const reply = parseDig(r.stdout);
  return reply.status ? reply : { ...reply, status: 'NOANSWER', error: 'no reply header' };
}

const addressesOf = async (name: string): Promise<string[]> => {
  const [a, aaaa] = await Promise.all([query(RESOLVER, name, 'A', true), query(RESOLVER, name, 'AAAA', true)]);
  return [...a.answer.filter((r) => r.type === 'A'), ...aaaa.answer.filter((r) => r.type === 'AAAA')].map((r) => r.data);
};

/** The parent zone of `zone` (the closest enclosing zone cut above it), its servers, and what each says of `zone`. */
export async function parentFacts(zone: string): Promise<ParentFacts> {
  const labels = zone.split('.');
  for (let i = 1; i < labels.length; i++) {
    const candidate = labels.slice(i).join('.');
    const ns = await query(RESOLVER, candidate, 'NS', true);
    if (ns.error) return { zone, error: `this host's resolver gave no answer for ${candidate}. NS (${ns.error})`, views: [] };
    if (ns.status !== 'NOERROR') return { zone, error: `this host's resolver answered ${ns.status} for ${candidate}. NS`, views: [] };
    const names = ns.answer.filter((r) => r.type === 'NS' && r.name === candidate).map((r) => r.data.toLowerCase().replace(/\.$/, ''));
    if (names.length === 0) continue;
    const servers = await Promise.all(names.sort().map(async (n) => ({ name: n, addresses: await addressesOf(n) })));
    const targets = servers.flatMap((s) => s.addresses.map((address) => ({ server: s.name, address })));
    if (targets.length === 0) return { zone, parent: candidate, error: `no address found for the servers of ${candidate}. (${names.join(', ')})`, views: [] };
    const views = await Promise.all(targets.map((t) => parentView(zone, t.server, t.address)));
    return { zone, parent: candidate, views };
  }
  return { zone, error: 'no parent zone found', views: [] };
}

async function parentView(zone: string, server: string, address: string): Promise<ParentServerView> {
  const [nsReply, dsReply] = await Promise.all([query(address, zone, 'NS', false), query(address, zone, 'DS', false)]);
  const view: ParentServerView = { server, address };
  if (nsReply.error) view.error = nsReply.error;
  else {
    const ns = [...nsReply.authority, ...nsReply.answer].filter((r) => r.type === 'NS' && r.name === zone).map((r) => r.data.toLowerCase().replace(/\.$/, ''));
    view.ns = [...new Set(ns)].sort();
    const glue: Record<string, string[]> = {};
    for (const r of nsReply.additional) if ((r.type === 'A' || r.type === 'AAAA') && view.ns.includes(r.name)) (glue[r.name] ??= []).push(r.data);
    view.glue = glue;
  }
  if (!dsReply.error && (dsReply.status === 'NOERROR' || dsReply.status === 'NXDOMAIN')) {
    view.ds = dsReply.answer.filter((r) => r.type === 'DS' && r.name === zone).map((r) => normalizeDs(r.data));
  }
  return view;
}

/** The address's PTR names through this host's resolver, and where each name points. */
export async function ptrFacts(address: string): Promise<PtrFacts> {
  const r = await query(RESOLVER, reverseName(address), 'PTR', true);
  const names = r.answer.filter((x) => x.type === 'PTR').map((x) => x.data.toLowerCase().replace(/\.$/, ''));
  const forward: Record<string, string[]> = {};
  for (const n of names) forward[n] = await addressesOf(n);
  const status = r.error ? `no answer: ${r.error}` : locallyServed(r) ? `LOCAL ${locallyServed(r)}` : r.status;
  return { address, names, status, forward };
}

async function blocklistFacts(address: string, list: string): Promise<BlocklistFacts> {
  const r = await query(RESOLVER, blocklistName(address, list), 'A', true);
  return { list, address, status: r.error ? 'NOANSWER' : r.status, codes: r.answer.filter((x) => x.type === 'A').map((x) => x.data) };
}

/** Port 25 of `via`'s first MX: open, read the greeting, QUIT. */
async function port25Out(via: string | undefined): Promise<Port25OutFacts> {
  if (!via) return {};
  const mx = await query(RESOLVER, via, 'MX', true);
  if (mx.status !== 'NOERROR') return { via, lookupError: `the resolver answered ${mx.status}${mx.error ? ` (${mx.error})` : ''}` };
  const best = mx.answer
    .filter((r) => r.type === 'MX')
    .map((r) => r.data.split(' '))
    .map(([pref, host]) => ({ pref: Number(pref), host: (host ?? '').toLowerCase().replace(/\.$/, '') }))
    .filter((m) => m.host)
    .sort((a, b) => a.pref - b.pref)[0];
  if (!best) return { via, lookupError: 'no MX record' };
  const addresses = await addressesOf(best.host);
  const address = addresses.find((a) => !a.includes(':')) ?? addresses[0];
  if (!address) return { via, mx: best.host, lookupError: `${best.host} has no address` };
  const opened = await smtpGreeting(address);
  return { via, mx: best.host, address, ...opened };
}

function smtpGreeting(address: string): Promise<{ greeting?: string; connectError?: string }> {
  return new Promise((resolveGreeting) => {
    const sock = tcpConnect({ host: address, port: 25 });
    let buf = '';
    const done = (r: { greeting?: string; connectError?: string }) => {
      sock.removeAllListeners('data');
      if (r.greeting) sock.end('QUIT\r\n');
      else sock.destroy();
      resolveGreeting(r);
    };
    sock.setTimeout(TCP_TIMEOUT_MS, () => done({ connectError: `no greeting within ${TCP_TIMEOUT_MS / 1000} s` }));
    sock.on('error', (e) => done({ connectError: e.message }));
    sock.on('data', (d: Buffer) => {
      buf += d.toString('latin1');
      const line = buf.split('\r\n').find((l) => /^\d{3} /.test(l));
      if (line) done(line.startsWith('220') ? { greeting: line } : { connectError: `the server said ${line.slice(0, 80)}` });
    });
  });
}

/** The default gateway and what it (and the LAN) answers to UPnP IGD discovery and NAT-PMP. */
export async function routerFacts(): Promise<RouterFacts> {
  const route = await run('ip', ['-j', 'route', 'show', 'default'], { okCodes: [0, 1, 2] }).catch((err: Error) => ({ stdout: '[]', stderr: err.message }));
  let gateway: string | undefined;
  try {
    gateway = (JSON.parse(route.stdout || '[]') as Array<{ gateway?: string }>).find((r) => r.gateway)?.gateway;
  } catch {
    gateway = undefined;
  }
  if (!gateway) return { ssdp: [] };
  const [natPmp, ssdp] = await Promise.all([natPmpAsk(gateway), ssdpSearch(gateway)]);
  return { gateway, ...(natPmp ? { natPmp } : {}), ssdp };
}

/** NAT-PMP external-address request (RFC 6886: version 0, opcode 0). A PCP server answers it with version 2. */
function natPmpAsk(gateway: string): Promise<NatPmpReply | undefined> {
  return new Promise((resolveAsk) => {
    const sock = createSocket('udp4');
    const timers: NodeJS.Timeout[] = [];
    let done = false;
    const finish = (r: NatPmpReply | undefined) => {
      if (done) return;
      done = true;
      timers.forEach(clearTimeout);
      sock.close();
      resolveAsk(r);
    };
    const send = () => !done && sock.send(Buffer.from([0, 0]), 5351, gateway, () => undefined);
    sock.on('error', () => finish(undefined));
    sock.on('message', (m, from) => {
      if (from.address !== gateway || from.port !== 5351 || m.length < 4) return;
      if (m[0] === 2) return finish({ result: m[3] ?? 0, pcp: true });
      if (m[0] !== 0 || m[1] !== 128) return;
      const result = m.readUInt16BE(2);
      const ext = m.length >= 12 ? `${m[8]}.${m[9]}.${m[10]}.${m[11]}` : undefined;
      finish({ result, ...(ext && ext !== '0.0.0.0' ? { externalAddress: ext } : {}) });
    });
    sock.bind(0, () => {
      send();
      // Sent again after 250 ms and 750 ms, as RFC 6886 §3.1 retransmits (UDP may lose one).
      timers.push(setTimeout(send, 250), setTimeout(send, 750), setTimeout(() => finish(undefined), UDP_WAIT_MS));
    });
  });
}

/**
 * M-SEARCH for an Internet Gateway Device, to the gateway itself and to the LAN's multicast group.
 * Answers to the multicast one come from another address than the one asked, which the host's
 * own firewall drops; the one to the gateway is answered from where it was sent.
 */
function ssdpSearch(gateway: string): Promise<string[]> {
  const request = ['M-SEARCH * HTTP/1.1', 'HOST: 239.255.255.250:1900', 'MAN: "ssdp:discover"', 'MX: 1', 'ST: urn:schemas-upnp-org:device:InternetGatewayDevice:1', '', ''].join('\r\n');
  return new Promise((resolveSearch) => {
    const sock = createSocket('udp4');
    const seen: string[] = [];
    const timer = setTimeout(() => {
      sock.close();
      resolveSearch(seen);
    }, UDP_WAIT_MS);
    sock.on('error', () => {
      clearTimeout(timer);
      sock.close();
      resolveSearch(seen);
    });
    sock.on('message', (m, from) => {
      const text = m.toString('latin1');
      if (!/^HTTP\/1\.[01] 200/.test(text) || !/InternetGatewayDevice|WANIPConnection|WANPPPConnection/i.test(text)) return;
      const server = /^SERVER:\s*(.+)$/im.exec(text)?.[1]?.trim();
      seen.push(`${from.address}${server ? `: ${server.slice(0, 80)}` : ''}`);
    });
    sock.bind(0, () => {
      sock.send(request, 1900, gateway, () => undefined);
      sock.send(request, 1900, '239.255.255.250', () => undefined);
    });
  });
}
