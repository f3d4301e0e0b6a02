/**
 * doctor's network judgements, one rule at a time, on facts made here: dig output, what the
 * parent's servers say, PTR answers, a port 25 attempt, blocklist answers, the router's NAT-PMP
 * and SSDP answers. That the facts are gathered right from real servers (NSD as root and parent,
 * miniupnpd as the router) is shown by the pristine tier.
 */
import { describe, expect, it } from 'vitest';
import {
  type ParentFacts,
  type RouterFacts,
  blocklistName,
  dsOfFile,
  judgeBlocklists,
  judgeCgnat,
  judgeDelegation,
  cdsOfZone,
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
} from '../../src/doctor/network-checks.js';

const DIG_REFERRAL = `
; <<>> DiG 9.18.28-1~deb12u2-Debian <<>> +noall +comments +answer +authority +additional +norecurse @203.0.113.53 example.org NS
;; global options: +cmd
;; Got answer:
;; ->>HEADER<<- opcode: QUERY, status: NOERROR, id: 4242
;; flags: qr; QUERY: 1, ANSWER: 0, AUTHORITY: 1, ADDITIONAL: 3

;; OPT PSEUDOSECTION:
; EDNS: version: 0, flags:; udp: 1232

;; AUTHORITY SECTION:
example.org.		3600	IN	NS	ns1.example.org.

;; ADDITIONAL SECTION:
ns1.example.org.	3600	IN	A	203.0.113.25
ns1.example.org.	3600	IN	AAAA	2001:db8::25
`;

const NS = [{ name: 'ns1.example.org', ipv4: ['203.0.113.25'], ipv6: ['2001:db8::25'], glue: true }];
const DS = '12345 13 2 0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF';
const view = (over: Partial<ParentFacts['views'][number]> = {}) => ({
  server: 'a0.org-servers.test',
  address: '203.0.113.53',
  ns: ['ns1.example.org'],
  glue: { 'ns1.example.org': ['203.0.113.25', '2001:db8::25'] },
  ds: [DS],
  ...over,
});
const parent = (...views: ReturnType<typeof view>[]): ParentFacts => ({ zone: 'example.org', parent: 'org', views });

describe('dig output', () => {
  it('gives the status, flags and each section\'s records, owners lower case without the final dot', () => {
    const r = parseDig(DIG_REFERRAL);
    expect(r.status).toBe('NOERROR');
    expect(r.flags).toEqual(['qr']);
    expect(r.answer).toEqual([]);
    expect(r.authority).toEqual([{ name: 'example.org', type: 'NS', data: 'ns1.example.org.' }]);
    expect(r.additional.map((x) => `${x.type} ${x.data}`)).toEqual(['A 203.0.113.25', 'AAAA 2001:db8::25']);
  });
  it('tells an answer unbound gives from a reverse zone it serves itself (RFC 6303) from a real NXDOMAIN', () => {
    const local = `;; ->>HEADER<<- opcode: QUERY, status: NXDOMAIN, id: 36541
;; flags: qr aa rd ra; QUERY: 1, ANSWER: 0, AUTHORITY: 1, ADDITIONAL: 1

;; AUTHORITY SECTION:
113.0.203.in-addr.arpa.	10800	IN	SOA	localhost. nobody.invalid. 1 3600 1200 604800 10800
`;
    expect(locallyServed(parseDig(local))).toBe('113.0.203.in-addr.arpa');
    expect(locallyServed(parseDig(local.replace('localhost. nobody.invalid.', 'ns1.isp.example. hostmaster.isp.example.')))).toBeUndefined();
    const r = judgePtr([{ address: '203.0.113.25', names: [], status: 'LOCAL 113.0.203.in-addr.arpa', forward: {} }], 'mail.example.org');
    expect(r.status).toBe('unknown');
    expect(r.summary).toMatch(/serves its reverse zone \(113\.0\.203\.in-addr\.arpa\) itself/);
  });
  it('reads the DS records of a bundle\'s DS file, comments aside', () => {
    expect(dsOfFile(`; DS record(s) of example.org: give them to your registrar\nexample.org. IN DS ${DS.toLowerCase()}\n`)).toEqual([DS]);
  });
  it('joins a DS digest dig splits, upper case', () => {
    expect(normalizeDs('12345 13 2 0123456789abcdef0123456789ABCDEF 0123456789ABCDEF0123456789ABCDEF')).toBe(DS);
  });
  it('names the reverse and blocklist owners of IPv4 and IPv6 addresses', () => {
    expect(reverseName('203.0.113.25')).toBe('25.113.0.203.in-addr.arpa');
    expect(reverseName('2001:db8::25')).toBe(`5.2.0.0.${'0.'.repeat(20)}8.b.d.0.1.0.0.2.ip6.arpa`);
    expect(blocklistName('203.0.113.25', 'dnsbl.example.net')).toBe('25.113.0.203.dnsbl.example.net');
  });
});

describe('delegation', () => {
  it('passes when every parent server delegates to the bundle\'s name servers with its glue', () => {
    expect(judgeDelegation([parent(view())], NS).status).toBe('pass');
  });
  it('fails on other NS names, naming both', () => {
    const r = judgeDelegation([parent(view({ ns: ['ns.registrar-parking.test'], glue: {} }))], NS);
    expect(r.status).toBe('fail');
    expect(r.summary).toMatch(/delegates example\.org to ns\.registrar-parking\.test, the bundle to ns1\.example\.org/);
  });
  it('fails on wrong or missing glue for an in-zone name server', () => {
    expect(judgeDelegation([parent(view({ glue: { 'ns1.example.org': ['203.0.113.99', '2001:db8::25'] } }))], NS).summary).toMatch(/glue ns1\.example\.org 203\.0\.113\.99 2001:db8::25, the bundle 203\.0\.113\.25 2001:db8::25/);
    expect(judgeDelegation([parent(view({ glue: {} }))], NS).status).toBe('fail');
  });
  it('wants no glue for a name server outside the zone', () => {
    const outside = [{ name: 'ns.friend.net', ipv4: ['198.51.100.3'], ipv6: [], glue: false }];
    expect(judgeDelegation([parent(view({ ns: ['ns.friend.net'], glue: {} }))], outside).status).toBe('pass');
  });
  it('fails when one server of several is wrong', () => {
    expect(judgeDelegation([parent(view(), view({ server: 'b0.org-servers.test', ns: [] }))], NS).summary).toMatch(/b0\.org-servers\.test does not delegate/);
  });
  it('is unknown, never pass, when the parent cannot be found or no server answers', () => {
    expect(judgeDelegation([{ zone: 'example.org', error: 'this host\'s resolver answered SERVFAIL for org. NS', views: [] }], NS).status).toBe('unknown');
    const silent = { server: 'a0.org-servers.test', address: '203.0.113.53', error: 'no answer from 203.0.113.53' };
    expect(judgeDelegation([parent(silent as ReturnType<typeof view>)], NS).status).toBe('unknown');
  });
});

describe('ds-at-parent', () => {
  const bundle = [{ zone: 'example.org', dnssec: true, ds: [DS] }];
  it('passes when the parent serves the bundle\'s DS and no other', () => {
    expect(judgeDsAtParent([parent(view())], bundle).status).toBe('pass');
  });
  it('fails without any DS (the zone looks unsigned), pointing at the DS file', () => {
    const r = judgeDsAtParent([parent(view({ ds: [] }))], bundle);
    expect(r.status).toBe('fail');
    expect(r.fix).toMatch(/dns\/example\.org\.ds/);
  });
  it('fails when the only DS is for another key (the domain goes bogus)', () => {
    const r = judgeDsAtParent([parent(view({ ds: ['54321 13 2 ABCD'] }))], bundle);
    expect(r.status).toBe('fail');
    expect(r.summary).toMatch(/key 54321, for no key of the bundle \(its KSK is key 12345\)/);
  });
  it('warns about a stale DS beside the right one', () => {
    expect(judgeDsAtParent([parent(view({ ds: [DS, '54321 13 2 ABCD'] }))], bundle).status).toBe('warn');
  });
  it('warns while the parent\'s servers disagree', () => {
    const r = judgeDsAtParent([parent(view(), view({ server: 'b0.org-servers.test', ds: [] }))], bundle);
    expect(r.status).toBe('warn');
    expect(r.summary).toMatch(/do not all serve the same DS yet/);
  });
  it('fails on a DS at the parent when the bundle has DNSSEC off', () => {
    expect(judgeDsAtParent([parent(view())], [{ zone: 'example.org', dnssec: false, ds: [] }]).status).toBe('fail');
    expect(judgeDsAtParent([parent(view({ ds: [] }))], [{ zone: 'example.org', dnssec: false, ds: [] }]).status).toBe('pass');
  });
  it('during a KSK rollover: warns until the parent serves the new DS, then says to confirm it', () => {
    const NEW = '54321 13 2 ABCD';
    const rolling = [{ zone: 'example.org', dnssec: true, ds: [DS, NEW], rolling: [NEW] }];
    const waiting = judgeDsAtParent([parent(view())], rolling);
    expect(waiting.status).toBe('warn');
    expect(waiting.summary).toMatch(/KSK rollover: org\. does not serve the new KSK's DS \(key 54321\) yet/);
    expect(waiting.fix).toMatch(/add the new DS from dns\/example\.org\.ds/);
    const served = judgeDsAtParent([parent(view({ ds: [DS, NEW] }))], rolling);
    expect(served.status).toBe('warn');
    expect(served.fix).toMatch(/selfmail keys rotate dnssec --ksk --parent-confirmed/);
    // Without the rollover the same two DS are one stale.
    expect(judgeDsAtParent([parent(view({ ds: [DS, NEW] }))], [{ ...rolling[0]!, ds: [DS], rolling: [] }]).summary).toMatch(/for a key the bundle does not hold/);
  });
  it('reads the CDS of a zone file as DS', () => {
    expect(cdsOfZone('; CDS comment\n@   IN CDS   54321 13 2 ab cd\n@ IN CDNSKEY 257 3 13 AAAA\n')).toEqual(['54321 13 2 ABCD']);
  });
  it('is unknown when nothing could be asked', () => {
    expect(judgeDsAtParent([{ zone: 'example.org', error: 'no parent zone found', views: [] }], bundle).status).toBe('unknown');
  });
});

describe('ptr', () => {
  const good = { address: '203.0.113.25', names: ['mail.example.org'], status: 'NOERROR', forward: { 'mail.example.org': ['203.0.113.25'] } };
  it('passes when the PTR is the host name and it resolves back', () => {
    expect(judgePtr([good], 'mail.example.org').status).toBe('pass');
  });
  it('fails without a PTR, with another name, or when the name does not resolve back', () => {
    expect(judgePtr([{ ...good, names: [], status: 'NXDOMAIN', forward: {} }], 'mail.example.org').summary).toMatch(/203\.0\.113\.25 has no PTR/);
    expect(judgePtr([{ ...good, names: ['host-25.isp.test'], forward: { 'host-25.isp.test': ['203.0.113.25'] } }], 'mail.example.org').summary).toMatch(/PTR host-25\.isp\.test, not mail\.example\.org/);
    expect(judgePtr([{ ...good, forward: { 'mail.example.org': ['203.0.113.7'] } }], 'mail.example.org').summary).toMatch(/resolves to 203\.0\.113\.7/);
  });
  it('is unknown when the resolver cannot tell', () => {
    expect(judgePtr([{ ...good, names: [], status: 'SERVFAIL', forward: {} }], 'mail.example.org').status).toBe('unknown');
  });
});

describe('port25-out and port25-in', () => {
  it('tries nothing unless asked, and says why', () => {
    const r = judgePort25Out({});
    expect(r.status).toBe('unknown');
    expect(r.asked).toMatch(/nobody/);
    expect(r.fix).toMatch(/--port25-via/);
  });
  it('passes on a greeting, fails on a refused or silent connection, is unknown without an MX', () => {
    const mx = { via: 'bigmail.org', mx: 'mx.bigmail.org', address: '203.0.113.2' };
    expect(judgePort25Out({ ...mx, greeting: '220 mx.bigmail.org ESMTP' }).status).toBe('pass');
    const blocked = judgePort25Out({ ...mx, connectError: 'connect ECONNREFUSED 203.0.113.2:25' });
    expect(blocked.status).toBe('fail');
    expect(blocked.fix).toMatch(/own-vps/);
    expect(judgePort25Out({ via: 'bigmail.org', lookupError: 'no MX record' }).status).toBe('unknown');
    expect(judgePort25Out({ ...mx, greeting: '220 x' }).asked).toMatch(/learns this host's address/);
  });
  it('asks no vendor for inbound reachability', () => {
    expect(judgePort25In('direct')).toMatchObject({ status: 'unknown', asked: 'nobody' });
  });
});

describe('blocklists', () => {
  const fact = (codes: string[], status = 'NOERROR') => ({ list: 'dnsbl.lists.test', address: '203.0.113.25', codes, status });
  it('asks nothing unless lists are named', () => {
    expect(judgeBlocklists([], [])).toMatchObject({ status: 'unknown', asked: 'nobody (not asked for)' });
  });
  it('fails when an address is listed, passes on NXDOMAIN', () => {
    expect(judgeBlocklists([fact(['127.0.0.2'])], ['dnsbl.lists.test']).status).toBe('fail');
    expect(judgeBlocklists([fact([], 'NXDOMAIN')], ['dnsbl.lists.test']).status).toBe('pass');
  });
  it('is unknown on an error code (127.255.255.x: the list refuses the resolver) or no answer', () => {
    expect(judgeBlocklists([fact(['127.255.255.254'])], ['dnsbl.lists.test']).status).toBe('unknown');
    expect(judgeBlocklists([fact([], 'SERVFAIL')], ['dnsbl.lists.test']).status).toBe('unknown');
  });
});

describe('upnp, nat, cgnat', () => {
  const quiet: RouterFacts = { gateway: '203.0.113.1', ssdp: [] };
  it('upnp passes when nothing answers, fails on an SSDP answer or on NAT-PMP', () => {
    expect(judgeUpnp(quiet).status).toBe('pass');
    expect(judgeUpnp({ ...quiet, ssdp: ['203.0.113.1: MiniUPnPd/2.3.1'] }).summary).toMatch(/UPnP IGD answers on the LAN \(203\.0\.113\.1: MiniUPnPd/);
    const pmp = judgeUpnp({ ...quiet, natPmp: { result: 0, externalAddress: '198.51.100.7' } });
    expect(pmp.status).toBe('fail');
    expect(pmp.fix).toMatch(/switch UPnP IGD and NAT-PMP\/PCP off/);
    expect(judgeUpnp({ ssdp: [] }).status).toBe('unknown');
  });
  const direct = { public: ['203.0.113.25'], local: ['203.0.113.25', 'fe80::1'], ingress: 'direct', router: quiet };
  const behind = { public: ['198.51.100.7'], local: ['192.168.1.20'], ingress: 'port-forward', router: quiet };
  it('nat passes with the address on an interface, warns behind a port forward, fails when direct ingress has no such address', () => {
    expect(judgeNat(direct).status).toBe('pass');
    expect(judgeNat(behind).status).toBe('warn');
    expect(judgeNat({ ...behind, ingress: 'direct' }).status).toBe('fail');
  });
  it('cgnat fails on a 100.64/10 address here or at the router, or a router without a public address', () => {
    expect(judgeCgnat({ ...behind, local: ['100.64.3.4'] }).status).toBe('fail');
    expect(judgeCgnat({ ...behind, router: { ...quiet, natPmp: { result: 0, externalAddress: '100.72.0.9' } } }).summary).toMatch(/100\.72\.0\.9, in 100\.64\.0\.0\/10/);
    expect(judgeCgnat({ ...behind, router: { ...quiet, natPmp: { result: 3 } } }).summary).toMatch(/no public address of its own/);
  });
  it('through a VPS of your own, nat and cgnat judge the tunnel: pass while its address is up (CGNAT at home or not), fail when it is down', () => {
    const vps = { public: ['203.0.113.5'], local: ['100.64.3.4', '10.77.77.2'], ingress: 'own-vps', router: quiet, tunnel: '10.77.77.2' };
    for (const judge of [judgeNat, judgeCgnat]) {
      expect(judge(vps).status).toBe('pass');
      const down = judge({ ...vps, local: ['100.64.3.4'] });
      expect(down.status).toBe('fail');
      expect(down.fix).toMatch(/systemctl status wg-quick@selfmail/);
    }
  });
  it('cgnat passes with the address here or the router\'s own being the bundle\'s; unknown when nothing says', () => {
    expect(judgeCgnat(direct).status).toBe('pass');
    expect(judgeCgnat({ ...behind, router: { ...quiet, natPmp: { result: 0, externalAddress: '198.51.100.7' } } }).status).toBe('pass');
    expect(judgeCgnat(behind).status).toBe('unknown');
  });
});
