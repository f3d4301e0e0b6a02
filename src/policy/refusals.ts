/**
 * What selfmail refuses on principle. Pure functions over the raw request: they read what was
 * asked for and return the refusals, each naming the principle, the reason and what to do
 * instead. The options behind them exist only so that the refusal can explain itself.
 */
import { parse as parseDomain } from 'tldts';
import type { Refusal } from '../errors.js';
import { type SourcedInput, fieldName } from '../config/raw.js';
import { V4_RE, classifyV4, parseDomainName } from '../config/values.js';

const P1 = 'Principle 1 (keys are born where they are used)';
const P2 = 'Principle 2 (nobody else\'s tunnel)';
const P3 = 'Principle 3 (no UPnP)';
const P4 = 'Principle 4 (own the DNS)';

const UPNP: Omit<Refusal, 'field'> = {
  principle: P3,
  why: 'a program that can open ports on the router by itself is a hole that any infected machine on the network can use too. selfmail never uses UPnP, NAT-PMP or PCP',
  instead: 'forward TCP ports 25, 465, 587 and 993 (and 53 TCP/UDP for DNS, 80/443 for MTA-STS) by hand in the router, use --ingress port-forward --listen-ipv4 <LAN address>, and switch UPnP off on the router',
};

const TUNNEL: Omit<Refusal, 'field'> = {
  principle: P2,
  why: 'a third-party tunnel or relay service sees every sender, recipient and time of your mail, and can read or redirect it before it reaches you',
  instead: 'receive mail directly (--ingress direct on a public address), through a port forward you set by hand (--ingress port-forward), or through a VPS you own',
};

function keyFromElsewhere(what: string): Omit<Refusal, 'field'> {
  return {
    principle: P1,
    why: `a ${what} made somewhere else may be known to whoever made it; selfmail generates every private key on this machine and accepts none from outside`,
    instead: `leave the ${what} to selfmail: it generates one in the bundle's keys/ folder (0600) and reuses it on every re-run; use "selfmail keys rotate" to replace it`,
  };
}

const HOSTED_DNS: Omit<Refusal, 'field'> = {
  principle: P4,
  why: 'a hosted DNS zone lets the provider change your MX, DKIM and TLSA records, and so redirect or read your mail',
  instead: 'let selfmail write and sign the zone and serve it with NSD on this host; add secondaries you run yourself with --ns NAME=ADDR',
};

const RELAY: Omit<Refusal, 'field'> = {
  principle: P2,
  why: 'a third-party smarthost receives every message you send, in clear to its operator, and decides whether it is delivered',
  instead: 'send directly from this host (its address needs a PTR record from your ISP or hosting provider), or relay through a VPS you own',
};

/** True for a name that lies below a private entry of the Public Suffix List (dynamic DNS, vendor subdomains). */
export function underPrivateSuffix(name: string): string | undefined {
  const info = parseDomain(name, { allowPrivateDomains: true });
  if (info.isPrivate && info.publicSuffix && info.publicSuffix !== name) return info.publicSuffix;
  return undefined;
}

/** Every refusal that `input` calls for (empty when nothing refused was asked). */
export function refusals(input: SourcedInput): Refusal[] {
  const v = input.values;
  const out: Refusal[] = [];
  const at = (key: Parameters<typeof fieldName>[1]) => fieldName(input, key);

  if (v.ingress !== undefined) {
    const ingress = v.ingress.toLowerCase();
    if (['upnp', 'nat-pmp', 'natpmp', 'pcp'].includes(ingress)) out.push({ field: at('ingress'), ...UPNP });
    else if (['tunnel', 'relay'].includes(ingress)) out.push({ field: at('ingress'), ...TUNNEL });
  }
  if (v.upnp) out.push({ field: at('upnp'), ...UPNP });
  if (v.tunnelProvider !== undefined) out.push({ field: at('tunnelProvider'), ...TUNNEL });
  if (v.relayHost !== undefined) out.push({ field: at('relayHost'), ...RELAY });
  if (v.dkimKey !== undefined) out.push({ field: at('dkimKey'), ...keyFromElsewhere('DKIM key') });
  if (v.tlsKey !== undefined) out.push({ field: at('tlsKey'), ...keyFromElsewhere('TLS key') });
  if (v.dnssecKey !== undefined) out.push({ field: at('dnssecKey'), ...keyFromElsewhere('DNSSEC key') });
  if (v.dnsProvider !== undefined) out.push({ field: at('dnsProvider'), ...HOSTED_DNS });

  const names: Array<[Parameters<typeof fieldName>[1], string]> = [];
  for (const d of v.domains ?? []) names.push(['domains', d]);
  if (v.hostname !== undefined) names.push(['hostname', v.hostname]);
  for (const ns of v.ns ?? []) names.push(['ns', ns.split('=')[0] ?? '']);
  for (const [key, raw] of names) {
    const parsed = parseDomainName(raw);
    if (!parsed.ok) continue; // the schema reports it
    const suffix = underPrivateSuffix(parsed.value);
    if (suffix) {
      out.push({
        field: `${at(key)} ${parsed.value}`,
        principle: P4,
        why: `${parsed.value} lies under ${suffix}, a name whose owner (a dynamic-DNS or hosting vendor) controls the parent zone and can redirect your mail or obtain certificates for it`,
        instead: 'register a domain of your own at a registrar and use it (or a subdomain of it)',
      });
    }
  }

  for (const key of ['ipv4', 'listenIpv4'] as const) {
    const addr = v[key];
    if (addr === undefined) continue;
    const c = classifyV4(addr);
    if (c.kind === 'cgnat' && key === 'ipv4' && V4_RE.test(addr)) {
      out.push({
        field: `${at(key)} ${addr}`,
        principle: P2,
        why: `${addr} ${c.why}: your ISP shares it between many customers, so no one on the internet can open a connection to your host without someone else's tunnel`,
        instead: 'ask your ISP for a public IPv4 address (or use IPv6 with --ipv6 if it is public), or receive mail through a VPS of your own that only forwards packets over WireGuard (--ingress own-vps --vps-ipv4 ADDR), or run the mail host on that VPS',
      });
    }
  }
  for (const ns of v.ns ?? []) {
    for (const addr of (ns.split('=')[1] ?? '').split(',')) {
      if (addr && V4_RE.test(addr) && classifyV4(addr).kind === 'cgnat') {
        out.push({
          field: `${at('ns')} ${ns}`,
          principle: P2,
          why: `${addr} is a carrier-grade NAT address: no resolver on the internet can reach a name server there`,
          instead: 'run the name server on a public address you control',
        });
      }
    }
  }
  return out;
}
