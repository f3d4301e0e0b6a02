/**
 * The pristine-host tier, one release at a time: on a fresh debootstrap root, exactly what the
 * README tells a person to do (the package script, the README's main command in a checkout,
 * selfmail installed from `npm pack`, then `selfmail init`, `apply`, `verify`), then the host
 * booted with systemd and proven from the outside: units, mail in and out, DKIM, DNSSEC, MTA-STS,
 * fail2ban, the spam filter, mailboxes and an import, a reboot, a DKIM rotation and a CA-issued
 * certificate.
 */
import { OwnVps, VPS_NET } from './vps.js';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { NET, PristineHost, REPO, type TierRelease, must, sh } from './machine.js';
import { OUTSIDE_MODULES, enabledModules, outsideReferences } from '../../src/rspamd/index.js';
import { OLD, inventoryOf, startOldProvider } from './old-provider.js';
import { WORLD, startWorld } from './world.js';
import { type RemoteSetup, startBackupMachine } from '../helpers/backup-machine.js';
import { ALICE_ARMORED, ALICE_BINARY, ALICE_DANE_LABEL, ALICE_WKD_HASH } from '../helpers/openpgp.js';

const DOMAIN = 'example.org';
const HOSTNAME = `mail.${DOMAIN}`;
const ALICE = { user: `alice@${DOMAIN}`, pass: 'alice-pristine-password-1' };
const BOB = { user: `bob@${DOMAIN}`, pass: 'bob-pristine-password-22' };
const BUNDLE = '/root/bundle';

/** Every unit a selfmail host runs, each of which must be active and enabled. */
export const HOST_UNITS = [
  'postfix.service',
  'dovecot.service',
  'nsd.service',
  'unbound.service',
  'nginx.service',
  'fail2ban.service',
  'ssh.service',
  'selfmail-resign.timer',
  'selfmail-acme.timer',
  'selfmail-firewall.service',
  'selfmail-resolver.service',
  'redis-server.service',
  'rspamd.service',
];

/** The antivirus test file's spam twin (GTUBE): every rspamd rejects a message that holds it. */
const GTUBE = 'XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X';

interface Dkim {
  algo: string;
  selector: string;
  domain: string;
  result: string;
  comment?: string;
}

const MINUTE = 60_000;

export function pristineTier(release: TierRelease): void {
  let host: PristineHost;
  let sshKey: string;
  const tag = () => `${release} ${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;

  /** Submit a message as alice on `port`, fetch it from bob's mailbox, and return its DKIM verdicts. */
  async function submitAndVerify(port: 587 | 465): Promise<Dkim[]> {
    const subject = `submission ${port} ${tag()}`;
    const sent = await host.probe({ op: 'send', host: NET.host4, port, servername: HOSTNAME, user: ALICE.user, pass: ALICE.pass, from: ALICE.user, to: BOB.user, subject });
    expect(sent, JSON.stringify(sent)).toMatchObject({ ok: true });
    const got = await host.probe<{ source: string }>({ op: 'fetch', host: NET.host4, servername: HOSTNAME, user: BOB.user, pass: BOB.pass, subject, wait: 40 });
    expect(got.ok, got.error).toBe(true);
    const v = await host.probe<{ dkim: Dkim[] }>({ op: 'dkim', source: got.source, dns: NET.host4, ip: NET.host4, sender: ALICE.user, helo: HOSTNAME });
    expect(v.ok, v.error).toBe(true);
    return v.dkim;
  }

  function expectBothSignaturesPass(dkim: Dkim[]): { rsa: string; ed: string } {
    const rsa = dkim.find((d) => d.algo === 'rsa-sha256');
    const ed = dkim.find((d) => d.algo === 'ed25519-sha256');
    expect(rsa, JSON.stringify(dkim)).toMatchObject({ result: 'pass', domain: DOMAIN });
    expect(ed, JSON.stringify(dkim)).toMatchObject({ result: 'pass', domain: DOMAIN });
    return { rsa: rsa!.selector, ed: ed!.selector };
  }

  /** rspamd loads its rules for seconds after it starts; its milter port answers once it is ready. */
  async function rspamdReady(): Promise<void> {
    const ready = await host.exec(['bash', '-c', 'for i in $(seq 90); do (exec 3<>/dev/tcp/127.0.0.1/11332) 2>/dev/null && exit 0; sleep 1; done; exit 1'], { timeout: 120_000 });
    expect(ready.code, 'rspamd milter on 127.0.0.1:11332').toBe(0);
  }

  /** Reload each unit as selfmail-acme does after installing a certificate; a failure shows the unit's status and log. */
  async function reloadAsAcmeDoes(units: string[]): Promise<void> {
    for (const u of units) {
      const r = await host.exec(['systemctl', 'reload', u]);
      if (r.code === 0) continue;
      const why = await host.exec(['sh', '-c', `systemctl status --no-pager -l ${u} 'postfix@-.service'; journalctl --no-pager -n 60 -u ${u} -u 'postfix@-.service'`]);
      expect(r.code, `systemctl reload ${u}: ${r.stderr}\n${why.stdout}`).toBe(0);
    }
  }

  async function unitStates(): Promise<string[]> {
    const bad: string[] = [];
    for (const u of HOST_UNITS) {
      const active = (await host.exec(['systemctl', 'is-active', u])).stdout.trim();
      const enabled = (await host.exec(['systemctl', 'is-enabled', u])).stdout.trim();
      if (active !== 'active' || enabled !== 'enabled') bad.push(`${u}: ${active}, ${enabled}`);
    }
    return bad;
  }

  async function apply(...extra: string[]) {
    return host.exec(['selfmail', 'apply', '--bundle', BUNDLE, ...extra], { timeout: 5 * MINUTE });
  }

  beforeAll(async () => {
    host = await PristineHost.create(release);
    // What the Debian installer writes: the host's name resolves without asking the network.
    await host.put('etc/hostname', 'mail\n');
    await host.put('etc/hosts', `127.0.0.1\tlocalhost\n127.0.1.1\t${HOSTNAME} mail\n::1\t\tlocalhost ip6-localhost ip6-loopback\n`);
    // npm trusts only the root's certificates; this machine's reach the registry through its proxy.
    const ca = process.env.NODE_EXTRA_CA_CERTS ?? '/etc/ssl/certs/ca-certificates.crt';
    await host.put('usr/local/share/selfmail-test/ca.crt', await readFile(ca, 'utf8'));
    const npmEnv = { NODE_EXTRA_CA_CERTS: '/usr/local/share/selfmail-test/ca.crt' };

    // Node.js 20 and npm, the README's prerequisite: Debian 13 ships them; Debian 12 ships
    // Node 18, so the machine brings its own Node.js 20 (as NodeSource's package would).
    if (release === 'debian-13') {
      const r = await host.prepare(['sh', '-c', 'apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends nodejs npm'], { timeout: 15 * MINUTE });
      expect(r.code, r.stderr.slice(-3000)).toBe(0);
    } else {
      const npmDir = join(process.execPath, '../../lib/node_modules/npm');
      await must('tar', ['-cf', join(host.dir, 'node.tar'), '-C', '/', process.execPath.slice(1), npmDir.slice(1)]);
      await must('tar', ['-xf', join(host.dir, 'node.tar'), '-C', host.root]);
      await host.prepare(['sh', '-c', 'ln -sf ../lib/node_modules/npm/bin/npm-cli.js /usr/bin/npm && ln -sf ../lib/node_modules/npm/bin/npx-cli.js /usr/bin/npx']);
    }

    // The README's main command, in a checkout of the project: the files git would commit.
    const files = execFileSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], { cwd: REPO })
      .toString('utf8')
      .split('\0')
      .filter((f) => f && existsSync(join(REPO, f)));
    const list = join(host.dir, 'files.txt');
    await writeFile(list, files.join('\n'));
    await mkdir(join(host.root, 'root/selfmail'), { recursive: true });
    await must('tar', ['-C', REPO, '-cf', join(host.dir, 'checkout.tar'), '-T', list]);
    await must('tar', ['-C', join(host.root, 'root/selfmail'), '-xf', join(host.dir, 'checkout.tar')]);
    // This machine's kernel has no WireGuard module (a Debian kernel has it): the own-VPS test's
    // tunnel runs on wireguard-go, the userspace implementation wg-quick falls back to.
    const main = await host.prepare(['sh', '-c', 'cd /root/selfmail && bash scripts/install-debian-packages.sh && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends wireguard-go && npm install && npx selfmail init --demo'], {
      env: npmEnv,
      timeout: 20 * MINUTE,
    });
    expect(main.code, `${main.stdout.slice(-3000)}\n${main.stderr.slice(-3000)}`).toBe(0);
    expect(main.stdout).toMatch(/Bundle written to \/root\/selfmail\/selfmail-bundle/);

    // selfmail as a user installs it: the package made by `npm pack` of this very build.
    const pack = await must('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', host.dir], { timeout: 2 * MINUTE, env: { npm_config_loglevel: 'error' } });
    const tgz = (JSON.parse(pack.stdout) as Array<{ filename: string }>)[0]!.filename;
    await must('cp', [join(host.dir, tgz), join(host.root, 'root/selfmail.tgz')]);
    const inst = await host.prepare(['npm', 'install', '-g', '--no-audit', '--no-fund', '/root/selfmail.tgz'], { env: npmEnv, timeout: 10 * MINUTE });
    expect(inst.code, inst.stderr.slice(-3000)).toBe(0);

    // The administrator's SSH key, made on "their own machine" (here), put on the host later.
    const keys = await mkdtemp(join(tmpdir(), 'selfmail-tier-ssh-'));
    await must('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'tier-admin', '-f', join(keys, 'id')]);
    sshKey = await readFile(join(keys, 'id.pub'), 'utf8');
    await rm(keys, { recursive: true, force: true });

    const state = await host.boot();
    // Fresh Debian units fail on their empty defaults (Postfix "No configuration", NSD without zones).
    expect(['running', 'degraded']).toContain(state);
  }, 45 * MINUTE);

  afterAll(async () => {
    await host?.destroy();
  }, 5 * MINUTE);

  it('init writes the bundle for this release; apply refuses to lock the admin out, then installs; verify is clean', async () => {
    await host.put('root/passwords', `${ALICE.user}:${ALICE.pass}\n${BOB.user}:${BOB.pass}\n`, 0o600);
    // Alice's OpenPGP public key, as she exported it with GnuPG on her own device.
    await host.put('root/alice.asc', ALICE_ARMORED, 0o644);
    const init = await host.exec(
      [
        'selfmail', 'init', '--non-interactive', '--domain', DOMAIN, '--ipv4', NET.host4, '--ipv6', NET.host6,
        '--user', ALICE.user, '--user', BOB.user, '--password-file', '/root/passwords',
        '--admin-ssh-from', '203.0.113.0/24', '--openpgp-key', `${ALICE.user}=/root/alice.asc`, '--out', BUNDLE,
      ],
      { timeout: 5 * MINUTE },
    );
    expect(init.code, init.stderr).toBe(0);
    expect(await host.read('root/bundle/selfmail.yaml')).toMatch(new RegExp(`^target: ${release}$`, 'm'));

    // keys-only sshd while root has no authorized key: stop, change nothing.
    const refused = await apply();
    expect(refused.code, refused.stdout + refused.stderr).toBe(2);
    expect(refused.stderr).toMatch(/no login user \(root\) has an authorized key/);
    expect((await host.exec(['sh', '-c', 'test ! -e /etc/selfmail && ! getent passwd vmail'])).code).toBe(0);

    await host.put('root/.ssh/authorized_keys', sshKey, 0o600);
    await chmod(join(host.root, 'root/.ssh'), 0o700);
    const applied = await apply();
    expect(applied.code, `${applied.stdout}\n${applied.stderr}`).toBe(0);
    expect(applied.stdout).toMatch(/^account {2}vmail created/m);
    const verify = await host.exec(['selfmail', 'verify', '--bundle', BUNDLE]);
    expect(verify.code, verify.stdout + verify.stderr).toBe(0);
    expect(verify.stdout).toMatch(/every installed file matches/);
  }, 15 * MINUTE);

  it('runs every unit, enabled; the mail account has no shell; /etc/resolv.conf points at unbound', async () => {
    expect(await unitStates()).toEqual([]);
    expect((await host.exec(['systemctl', 'is-system-running'])).stdout.trim()).toBe('running');
    expect(await host.run('getent passwd vmail | cut -d: -f7')).toBe('/usr/sbin/nologin\n');
    expect(await host.read('etc/resolv.conf')).toMatch(/^nameserver 127\.0\.0\.1$/m);
    expect(await host.run('nft list table inet selfmail >/dev/null && echo loaded')).toBe('loaded\n');
    // The renewal has its client (certbot is given the bundle's CSR), and the re-signing job runs.
    expect((await host.exec(['certbot', '--version'])).code).toBe(0);
    expect((await host.exec(['systemctl', 'start', 'selfmail-resign.service'], { timeout: 60_000 })).code).toBe(0);
  }, 5 * MINUTE);

  type Doctor = { ok: boolean; checks: { id: string; status: string; summary: string; fix?: string; asked: string }[] };
  const doctor = async (...extra: string[]) => {
    const r = await host.exec(['selfmail', 'doctor', '--bundle', BUNDLE, '--json', ...extra], { timeout: 3 * MINUTE });
    try {
      return { code: r.code, stderr: r.stderr, ...(JSON.parse(r.stdout) as Doctor) };
    } catch {
      throw new Error(`doctor ${extra.join(' ')}: exit ${r.code}, no JSON\n${r.stdout}\n${r.stderr}`);
    }
  };
  const status = (d: Doctor) => Object.fromEntries(d.checks.map((c) => [c.id, c.status]));
  /** The network checks with no DNS beyond the host: the router and interfaces answer, the rest cannot be known. */
  const OFFLINE = { upnp: 'pass', nat: 'pass', cgnat: 'pass', ptr: 'unknown', 'port25-out': 'unknown', 'port25-in': 'unknown', delegation: 'unknown', 'ds-at-parent': 'unknown', blocklists: 'unknown' };

  it('doctor: every check passes on the installed host (the certificate still the bundle\'s self-signed one: warnings), and fails for the right reason when units and the re-sign timer stop', async () => {
    const healthy = await doctor();
    expect(healthy.code, JSON.stringify(healthy.checks, null, 1)).toBe(0);
    // No DNS beyond the host yet (the outside has none): what needs the parent is unknown, never pass.
    expect(status(healthy)).toEqual({ services: 'pass', 'resign-timer': 'pass', backup: 'warn', 'cert-expiry': 'warn', 'tlsa-matches': 'pass', 'dnssec-valid': 'pass', 'mta-sts': 'warn', ...OFFLINE });
    expect(healthy.checks.find((c) => c.id === 'mta-sts')?.summary).toMatch(/certificate senders do not trust/);
    expect(healthy.checks.find((c) => c.id === 'cert-expiry')?.summary).toMatch(/port 25: the bundle's self-signed certificate/);
    const human = await host.exec(['selfmail', 'doctor', '--bundle', BUNDLE], { timeout: 2 * MINUTE });
    expect(human.stdout).toMatch(/No web service is asked about this host/);

    await host.run('systemctl disable --now selfmail-resign.timer && systemctl stop nginx.service nsd.service');
    try {
      const broken = await doctor();
      expect(broken.code, JSON.stringify(broken.checks, null, 1)).toBe(5);
      expect(status(broken)).toEqual({ services: 'fail', 'resign-timer': 'fail', backup: 'warn', 'cert-expiry': 'fail', 'tlsa-matches': 'unknown', 'dnssec-valid': 'fail', 'mta-sts': 'fail', ...OFFLINE });
      const by = (id: string) => broken.checks.find((c) => c.id === id)!;
      expect(by('services').summary).toMatch(/nginx\.service inactive, enabled/);
      expect(by('services').summary).toMatch(/selfmail-resign\.timer inactive, disabled/);
      expect(by('resign-timer').fix).toMatch(/systemctl enable --now selfmail-resign\.timer/);
      expect(by('backup').summary).toMatch(/no daily backup is set up/);
      expect(by('cert-expiry').summary).toMatch(/port 443: no TLS/);
      expect(by('dnssec-valid').summary).toMatch(new RegExp(`${DOMAIN}: does not validate against its DS`));
      expect(by('mta-sts').summary).toMatch(/no _mta-sts TXT record/);
    } finally {
      await host.run('systemctl enable --now selfmail-resign.timer && systemctl start nsd.service nginx.service');
    }
    expect((await doctor()).code).toBe(0);
  }, 5 * MINUTE);

  it('doctor on the network: the parent\'s delegation and DS, PTR, port 25 out, a blocklist, UPnP on the router; right, then wrong, then offline', async () => {
    const bundleDs = (await host.read(`root/bundle/dns/${DOMAIN}.ds`))
      .split('\n')
      .filter((l) => !l.startsWith(';') && /\sIN\s+DS\s/.test(l))
      .map((l) => l.slice(l.indexOf(' DS ') + 4).trim());
    expect(bundleDs.length).toBeGreaterThan(0);
    const opted = ['--port25-via', WORLD.mxDomain, '--ask-blocklists', WORLD.blocklist];
    // A second bundle, never applied, for a host behind a router's port forward: its public
    // address is the router's (198.51.100.7), the host has a LAN address for the services.
    const NAT_BUNDLE = '/root/bundle-behind-nat';
    const natInit = await host.exec(
      ['selfmail', 'init', '--non-interactive', '--domain', DOMAIN, '--ingress', 'port-forward', '--ipv4', '198.51.100.7', '--listen-ipv4', '192.168.1.20', '--user', ALICE.user, '--user', BOB.user, '--password-file', '/root/passwords', '--admin-ssh-from', '203.0.113.0/24', '--out', NAT_BUNDLE],
      { timeout: 3 * MINUTE },
    );
    expect(natInit.code, natInit.stderr).toBe(0);
    await host.run('ip addr add 192.168.1.20/24 dev eth0');
    const behindNat = async () => {
      const r = await host.exec(['selfmail', 'doctor', '--bundle', NAT_BUNDLE, '--json'], { timeout: 3 * MINUTE });
      return (JSON.parse(r.stdout) as Doctor).checks.filter((c) => c.id === 'nat' || c.id === 'cgnat');
    };
    const world = await startWorld(host, DOMAIN, NET.host4, NET.host6, host.outsideLink);
    try {
      await world.set({ ns: { [`ns1.${DOMAIN}`]: [NET.host4, NET.host6] }, ds: bundleDs, ptr4: HOSTNAME, ptr6: HOSTNAME, listed: false, port25Blocked: false, upnp: false });
      const right = await doctor(...opted);
      const rightBy = (id: string) => right.checks.find((c) => c.id === id)!;
      expect(status(right), JSON.stringify(right.checks, null, 1)).toMatchObject({ upnp: 'pass', nat: 'pass', cgnat: 'pass', ptr: 'pass', 'port25-out': 'pass', 'port25-in': 'unknown', delegation: 'pass', 'ds-at-parent': 'pass', blocklists: 'pass' });
      expect(right.code).toBe(0);
      expect(rightBy('delegation').asked).toMatch(new RegExp(`a0\\.org-servers\\.org \\(${WORLD.dns.replace(/\./g, '\\.')}\\)`));
      expect(rightBy('port25-out').summary).toMatch(new RegExp(`mx\\.${WORLD.mxDomain.replace('.', '\\.')} \\(${WORLD.mx.replace(/\./g, '\\.')}\\) opens: 220 `));
      expect(rightBy('port25-out').asked).toMatch(/learns this host's address/);
      expect(rightBy('ptr').summary).toMatch(new RegExp(`${NET.host4.replace(/\./g, '\\.')}, ${NET.host6}: PTR ${HOSTNAME.replace(/\./g, '\\.')}`));
      // The chain from the (test's) root validates in the host's own resolver: AD on the mail host's address.
      expect(await host.run(`dig +dnssec +noall +comments @127.0.0.1 ${HOSTNAME} A | grep -c 'flags:.* ad'`)).toBe('1\n');

      expect(rightBy('dnssec-valid').summary).toMatch(new RegExp(`through this host's resolver: ${DOMAIN.replace('.', '\\.')} secure`));
      // Behind NAT, with a router that says nothing of its outside address: nat warns, cgnat cannot tell.
      expect((await behindNat()).map((c) => `${c.id} ${c.status}`)).toEqual(['nat warn', 'cgnat unknown']);

      // The registrar dropped the IPv6 glue and holds a DS for another key; the ISP's generic PTR,
      // no IPv6 PTR; the address listed; port 25 blocked outbound; UPnP left on in the router.
      await world.set({ ns: { [`ns1.${DOMAIN}`]: [NET.host4] }, ds: [`4242 13 2 ${'AB'.repeat(32)}`], ptr4: 'host-203-0-113-25.isp.org', listed: true, port25Blocked: true, upnp: true });
      const wrong = await doctor(...opted);
      const by = (id: string) => wrong.checks.find((c) => c.id === id)!;
      expect(status(wrong), JSON.stringify(wrong.checks, null, 1)).toMatchObject({ 'dnssec-valid': 'fail', upnp: 'fail', nat: 'pass', cgnat: 'pass', ptr: 'fail', 'port25-out': 'fail', delegation: 'fail', 'ds-at-parent': 'fail', blocklists: 'fail' });
      expect(wrong.code).toBe(5);
      expect(by('upnp').summary).toMatch(/UPnP IGD answers on the LAN \(203\.0\.113\.1: .*MiniUPnPd/);
      expect(by('upnp').summary, await world.logs()).toMatch(/the gateway answers NAT-PMP/);
      expect(by('delegation').summary).toMatch(new RegExp(`gives glue ns1\\.${DOMAIN.replace('.', '\\.')} ${NET.host4.replace(/\./g, '\\.')}, the bundle ${NET.host4.replace(/\./g, '\\.')} ${NET.host6}`));
      expect(by('dnssec-valid').summary).toMatch(/own validating resolver refuses it \(bogus from the root/);
      expect(by('ds-at-parent').summary).toMatch(/serves DS key 4242, for no key of the bundle/);
      expect(by('ptr').summary).toMatch(/203\.0\.113\.25 has PTR host-203-0-113-25\.isp\.org, not mail\.example\.org/);
      expect(by('ptr').summary).toMatch(/2001:db8::25 has no PTR/);
      expect(by('port25-out').summary).toMatch(/does not open from here: .*ECONNREFUSED/);
      // Behind NAT, with miniupnpd whose outside address is 100.64.0.2: it answers NAT-PMP with
      // "network failure" (no public address of its own), which is carrier-grade NAT.
      const cg = await behindNat();
      expect(cg.map((c) => `${c.id} ${c.status}`)).toEqual(['nat warn', 'cgnat fail']);
      expect(cg[1]!.summary).toMatch(/no public address of its own/);
      expect(cg[1]!.fix).toMatch(/--ingress own-vps/);
      expect(by('blocklists').summary).toMatch(new RegExp(`203\\.0\\.113\\.25 is on ${WORLD.blocklist.replace(/\./g, '\\.')} \\(127\\.0\\.0\\.2\\)`));
    } finally {
      await world.stop();
      await host.run(`ip addr del 192.168.1.20/24 dev eth0; rm -rf ${NAT_BUNDLE}`);
    }
    // The world gone (no root answers): nothing that needs the parent passes.
    const offline = await doctor(...opted);
    expect(status(offline), JSON.stringify(offline.checks, null, 1)).toMatchObject({ ...OFFLINE });
    for (const id of ['ptr', 'port25-out', 'delegation', 'ds-at-parent', 'blocklists']) expect(offline.checks.find((c) => c.id === id)!.summary).not.toBe('');
    // The host's resolver is its own again: the real root's key (20326) in its anchor file, no drop-in.
    expect(await host.run('test ! -e /etc/unbound/unbound.conf.d/zz-selfmail-tier-world.conf && echo gone')).toBe('gone\n');
    expect(await host.read('var/lib/unbound/root.key')).toMatch(/\b20326\b/);
  }, 8 * MINUTE);

  it('takes mail from outside on port 25, over IPv4 and IPv6, into the mailbox', async () => {
    // The outside plays the internet, but has no DNS of its own: the sender's domain, its SPF
    // record and the outside's reverse names are given to the host's resolver here, as the
    // internet's DNS would answer them. Without them every outside client is a server with no
    // reverse name and a domain that does not resolve, which rspamd rightly greylists.
    const internet = [
      'server:',
      '  local-zone: "example.net." static',
      '  local-data: "example.net. 300 IN MX 10 outside.example.net."',
      `  local-data: 'example.net. 300 IN TXT "v=spf1 ip4:${NET.out4} ip6:${NET.out6} -all"'`,
      `  local-data: "outside.example.net. 300 IN A ${NET.out4}"`,
      `  local-data: "outside.example.net. 300 IN AAAA ${NET.out6}"`,
      '  local-zone: "113.0.203.in-addr.arpa." static',
      '  local-zone: "8.b.d.0.1.0.0.2.ip6.arpa." static',
      `  local-data-ptr: "${NET.out4} outside.example.net."`,
      `  local-data-ptr: "${NET.out6} outside.example.net."`,
      '',
    ].join('\n');
    const dns = await host.exec(['sh', '-c', 'cat > /etc/unbound/unbound.conf.d/zz-tier-internet.conf && unbound-checkconf && systemctl restart unbound'], { input: internet });
    expect(dns.code, dns.stdout + dns.stderr).toBe(0);
    expect((await host.exec(['sh', '-c', 'for i in $(seq 30); do getent hosts outside.example.net >/dev/null && exit 0; sleep 1; done; exit 1'])).code).toBe(0);
    // And rspamd scans what arrives: its milter answers (it loads its rules for a while after
    // boot; mail that arrives before is taken unfiltered, milter_default_action = accept).
    await rspamdReady();
    for (const server of [NET.host4, NET.host6]) {
      const subject = `inbound ${server} ${tag()}`;
      const sent = await host.probe({ op: 'send', host: server, port: 25, from: 'someone@example.net', to: ALICE.user, subject, helo: 'outside.example.net' });
      expect(sent, JSON.stringify(sent)).toMatchObject({ ok: true });
      const got = await host.probe({ op: 'fetch', host: NET.host4, servername: HOSTNAME, ...ALICE, subject, wait: 40 });
      expect(got.ok, got.error).toBe(true);
    }
  }, 5 * MINUTE);

  it('signs submissions on 587 and 465 with both DKIM keys, and refuses to relay', async () => {
    expectBothSignaturesPass(await submitAndVerify(587));
    expectBothSignaturesPass(await submitAndVerify(465));
    const relay = await host.probe({ op: 'send', host: NET.host4, port: 25, from: 'someone@example.net', to: 'victim@example.com', subject: 'relay?' });
    expect(relay.ok).toBe(false);
    expect(String(relay.error)).toMatch(/Relay access denied/i);
    const anonymous = await host.probe({ op: 'send', host: NET.host4, port: 587, servername: HOSTNAME, from: ALICE.user, to: 'victim@example.com', subject: 'no auth' });
    expect(anonymous.ok).toBe(false);
  }, 5 * MINUTE);

  it('serves DNS answers that validate against the DS given to the registrar, and the MTA-STS policy', async () => {
    const ds = (await host.read(`root/bundle/dns/${DOMAIN}.ds`)).split('\n').filter((l) => !l.startsWith(';') && /\sIN\s+DS\s/.test(l));
    const anchors = ds.map((l) => {
      const words = l.trim().split(/\s+/);
      const [tag, alg, type, ...digest] = words.slice(words.indexOf('DS') + 1);
      return `  ${DOMAIN}. static-ds ${tag} ${alg} ${type} "${digest.join('')}";`;
    });
    const anchorFile = join(host.dir, 'anchors.conf');
    await writeFile(anchorFile, `trust-anchors {\n${anchors.join('\n')}\n};\n`);
    const openpgpName = `${ALICE_DANE_LABEL}._openpgpkey.${DOMAIN}`;
    for (const [name, type] of [[DOMAIN, 'MX'], [`_25._tcp.${HOSTNAME}`, 'TLSA'], [`_dmarc.${DOMAIN}`, 'TXT'], [HOSTNAME, 'AAAA'], [HOSTNAME, 'SSHFP'], [openpgpName, 'OPENPGPKEY']] as const) {
      const r = await host.fromOutside(['delv', `@${NET.host4}`, '-a', anchorFile, `+root=${DOMAIN}`, name, type], { timeout: 30_000 });
      expect(r.stdout + r.stderr, `${name} ${type}`).toMatch(/; fully validated/);
    }
    // SSHFP: the host's own SSH host keys (openssh-server made them at install), exactly as
    // OpenSSH's ssh-keygen -r writes their SHA-256 records.
    const served = (await host.fromOutside(['dig', '+short', `@${NET.host4}`, HOSTNAME, 'SSHFP'])).stdout
      .split('\n')
      .filter(Boolean)
      .map((l) => {
        // dig may split long hex data with spaces.
        const [alg, type, ...hex] = l.trim().split(/\s+/);
        return `${alg} ${type} ${hex.join('').toLowerCase()}`;
      })
      .sort();
    const own = (await host.run(`for f in /etc/ssh/ssh_host_*_key.pub; do ssh-keygen -r ${HOSTNAME} -f "$f"; done`))
      .split('\n')
      .map((l) => /IN SSHFP (\d 2 [0-9a-f]{64})$/.exec(l.trim())?.[1])
      .filter((x): x is string => !!x)
      .sort();
    expect(own.length).toBeGreaterThan(0);
    expect(served).toEqual(own);
    // Alice's OpenPGP key: the OPENPGPKEY record (RFC 7929) and the Web Key Directory over HTTPS
    // with the bundle's certificate, which names openpgpkey.<domain>: the very bytes she exported.
    const record = (await host.fromOutside(['dig', '+short', `@${NET.host4}`, openpgpName, 'OPENPGPKEY'])).stdout.replace(/\s+/g, '');
    expect(Buffer.from(record, 'base64').equals(ALICE_BINARY)).toBe(true);
    const wkd = join(host.dir, 'alice.wkd');
    const url = `https://openpgpkey.${DOMAIN}/.well-known/openpgpkey/${DOMAIN}/hu/${ALICE_WKD_HASH}`;
    const caFile = join(host.root, 'root/bundle/keys/tls/cert.pem');
    const got = await host.fromOutside(['curl', '-sS', '-D', '-', '--cacert', caFile, '--resolve', `openpgpkey.${DOMAIN}:443:${NET.host4}`, '-o', wkd, url], { timeout: 30_000 });
    expect(got.code, got.stderr).toBe(0);
    expect(got.stdout).toMatch(/^HTTP\/1\.1 200/);
    expect(got.stdout).toMatch(/^content-type: application\/octet-stream\r?$/im);
    expect((await readFile(wkd)).equals(ALICE_BINARY)).toBe(true);
    const policy = await host.probe<{ status: number; body: string }>({ op: 'https', host: NET.host4, servername: `mta-sts.${DOMAIN}`, path: '/.well-known/mta-sts.txt' });
    expect(policy.status, policy.error).toBe(200);
    expect(policy.body).toBe(await host.read(`root/bundle/www/${DOMAIN}/.well-known/mta-sts.txt`));
    // The certificate is still the self-signed bootstrap one: senders must not enforce yet.
    expect(policy.body).toMatch(/^mode: testing\r$/m);
  }, 5 * MINUTE);

  it('offers only TLS 1.2 and 1.3 with ECDHE and AEAD ciphers on every client port, by an independent scanner (testssl)', async () => {
    /** testssl's findings for one endpoint, scanned from outside. */
    const scan = async (target: string, extra: string[]): Promise<Array<{ id: string; finding: string }>> => {
      const json = join(host.dir, `testssl-${target.replace(/[^a-z0-9]/gi, '_')}.json`);
      await rm(json, { force: true });
      const r = await host.fromOutside(['testssl', '--quiet', '--color', '0', '--warnings', 'off', '--nodns', 'none', '--jsonfile', json, ...extra, target], { timeout: 5 * MINUTE });
      const text = await readFile(json, 'utf8').catch(() => '');
      if (!text) throw new Error(`testssl wrote no findings for ${target} (exit ${r.code})\n${r.stdout.slice(-2000)}\n${r.stderr.slice(-2000)}`);
      return JSON.parse(text) as Array<{ id: string; finding: string }>;
    };
    const endpoints: Array<[string, string[]]> = [
      [`${NET.host4}:465`, ['-p', '-E']],
      [`${NET.host4}:587`, ['-p', '-E', '--starttls', 'smtp']],
      [`${NET.host4}:993`, ['-p', '-E']],
      [`mta-sts.${DOMAIN}:443`, ['-p', '-E', '-B', '--ip', NET.host4]],
    ];
    const problems: string[] = [];
    const PROTOCOLS = ['SSLv2', 'SSLv3', 'TLS1', 'TLS1_1', 'TLS1_2', 'TLS1_3'];
    const decided = (f: Array<{ id: string; finding: string }>) =>
      PROTOCOLS.every((p) => /^(not )?offered/.test(f.find((x) => x.id === p)?.finding ?? ''));
    // The login ports (465, 587, 993) take 30 new connections a minute per address, burst 20
    // (the bundle's firewall, set login_flood_v4); a scan opens 23 to 38, so past the burst each
    // one waited for the limit: 135 of this test's 175 s. The scanner's address is let past it
    // for this test alone; the limit itself is shown by "slows password guessing at the firewall".
    const rule = await host.run(`nft --echo --handle insert rule inet selfmail input ip saddr ${NET.out4} tcp dport '{ 465, 587, 993 }' accept`);
    const handle = /# handle (\d+)/.exec(rule)?.[1];
    if (!handle) throw new Error(`no handle for the scanner's exemption: ${rule}`);
    try {
      for (const [target, args] of endpoints) {
        // One at a time (a loaded machine makes testssl skip checks); once more when a protocol
        // was left undecided, which says nothing about the server.
        let findings = await scan(target, args);
        if (!decided(findings)) findings = await scan(target, args);
        const by = new Map(findings.map((f) => [f.id, f.finding]));
        for (const old of ['SSLv2', 'SSLv3', 'TLS1', 'TLS1_1']) if (!/^not offered/.test(by.get(old) ?? '')) problems.push(`${target}: ${old} ${by.get(old)}`);
        for (const ok of ['TLS1_2', 'TLS1_3']) if (!/^offered/.test(by.get(ok) ?? '')) problems.push(`${target}: ${ok} ${by.get(ok)}`);
        const ciphers = findings.filter((f) => f.id.startsWith('cipher-tls1_2_'));
        if (ciphers.length === 0) problems.push(`${target}: no TLS 1.2 cipher listed`);
        // "TLS 1.2  xc030  ECDHE-RSA-AES256-GCM-SHA384  ECDH 253  AESGCM  256  TLS_ECDHE_…"
        for (const c of ciphers) if (!/\sECDH \d+\s+(AESGCM|ChaCha20)\s/.test(c.finding)) problems.push(`${target}: offers ${c.finding.replace(/\s+/g, ' ')}`);
        if (target.endsWith(':443') && !/^no gzip|^No compression|not vulnerable/i.test(by.get('BREACH') ?? '')) problems.push(`${target}: BREACH ${by.get('BREACH')}`);
      }
    } finally {
      await host.run(`nft delete rule inet selfmail input handle ${handle}`);
    }
    expect(problems).toEqual([]);
  }, 15 * MINUTE);

  it('slows password guessing at the firewall: one address gets 20 new login connections at once, the next are dropped; another address still gets in', async () => {
    const guesser = '203.0.113.69';
    await host.fromOutside(['ip', 'addr', 'add', `${guesser}/24`, 'dev', host.outsideLink]);
    try {
      const burst = await host.probe<{ results: string[] }>({ op: 'tcpBurst', host: NET.host4, port: 993, from_address: guesser, count: 26, timeout: 0.5 });
      expect(burst.ok, burst.error).toBe(true);
      // The burst (20), then one new connection every 2 s (30 a minute): the rest are dropped.
      expect(burst.results.slice(0, 20), burst.results.join(' ')).toEqual(Array<string>(20).fill('open'));
      expect(burst.results.slice(20).filter((r) => r === 'timeout').length, burst.results.join(' ')).toBeGreaterThanOrEqual(3);
      // Per address: another one is not held back.
      expect((await host.probe<{ result: string }>({ op: 'tcp', host: NET.host4, port: 993, from_address: NET.out4 })).result).toBe('open');
    } finally {
      await host.fromOutside(['ip', 'addr', 'del', `${guesser}/24`, 'dev', host.outsideLink]);
    }
  }, 2 * MINUTE);

  it('refuses GTUBE on port 25 at SMTP time (rspamd), and the rspamd it runs asks no outside service', async () => {
    // (A DMARC forgery is the rehearsal's to show: here the host's resolver has no internet to
    // find the delegation of its own domain, so rspamd cannot read the DMARC policy.)
    // rspamd loads its rules for a few seconds after it starts; its milter port answers once ready.
    await rspamdReady();
    const spam = await host.probe({ op: 'send', host: NET.host4, port: 25, from: 'someone@example.net', to: ALICE.user, subject: `gtube ${tag()}`, body: `${GTUBE}\n`, helo: 'outside.example.net' });
    expect(spam.ok, JSON.stringify(spam)).toBe(false);
    // rspamd names the rule: "5.7.1 Gtube pattern" (3.12), or its reject message "Spam message rejected".
    expect(String(spam.error)).toMatch(/\b5\d\d\b.*(gtube|spam)/i);
    const on = enabledModules((await host.exec(['rspamadm', 'configdump', '-m'])).stdout);
    expect(on).toContain('dkim');
    expect(OUTSIDE_MODULES.map((m) => m.module).filter((m) => on.has(m))).toEqual([]);
    // This release's own stock configuration: no module it runs names an outside address.
    const dump = JSON.parse((await host.exec(['rspamadm', 'configdump', '-j'])).stdout) as Record<string, unknown>;
    expect(outsideReferences(dump, on)).toEqual([]);
    // Nothing of rspamd or Redis listens beyond loopback.
    const listening = (await host.exec(['bash', '-c', 'cat /proc/net/tcp /proc/net/tcp6'])).stdout;
    const ports = new Set([11332, 11333, 11334, 6379]);
    const exposed = listening
      .split('\n')
      .map((l) => l.trim().split(/\s+/))
      .filter((f) => f[3] === '0A' && ports.has(parseInt(f[1]!.split(':')[1]!, 16)))
      .map((f) => f[1]!)
      .filter((local) => !/^(0100007F|00000000000000000000000001000000):/.test(local));
    expect(exposed).toEqual([]);
  }, 5 * MINUTE);

  it('refuses at port 25 a client that speaks before the greeting (postscreen), asking no blocklist', async () => {
    const r = await host.probe<{ transcript: string }>({ op: 'pregreet', host: NET.host4, from_address: NET.clients[2], from: 'bot@example.net', to: ALICE.user, wait: 8 }, 60_000);
    expect(r.ok, r.error).toBe(true);
    // postscreen plays SMTP with a client that failed a test and refuses its RCPT; smtpd never
    // sees it. (MAIL is answered 250 by postscreen itself.)
    expect(r.transcript, r.transcript).toMatch(/^250 2\.1\.0 Ok\r?\n550 5\.5\.1 Protocol error\r?$/m);
    expect(r.transcript).not.toMatch(/^250 2\.1\.5 /m);
    const log = (await host.exec(['journalctl', '-q', '--no-pager', '-o', 'cat', '-t', 'postfix/postscreen'])).stdout;
    expect(log).toMatch(new RegExp(`PREGREET \\d+ after [\\d.]+ from \\[${NET.clients[2]!.replace(/\./g, '\\.')}\\]`));
    expect(log).not.toMatch(/DNSBL/);
  }, 2 * MINUTE);

  it('serves ManageSieve on 4190 to the outside: no login before STARTTLS, then TLS 1.2 and 1.3 with the bundle certificate', async () => {
    const early = await host.probe<{ transcript: string }>({ op: 'sieveEarly', host: NET.host4, from_address: NET.clients[2], user: ALICE.user });
    expect(early.ok, early.error).toBe(true);
    expect(early.transcript, early.transcript).toMatch(/^"STARTTLS"\r?$/m);
    // No login mechanism offered before TLS (an empty SASL list, or none).
    expect(early.transcript).not.toMatch(/^"SASL" "[^"]+"/m);
    expect(early.transcript).toMatch(/\nNO .*(TLS|SSL)/i);
    const anchor = join(host.dir, 'sieve-ca.pem');
    await writeFile(anchor, await host.read(`root/bundle/keys/tls/cert.pem`));
    for (const version of ['-tls1_2', '-tls1_3']) {
      const r = await host.fromOutside(['openssl', 's_client', '-connect', `${NET.host4}:4190`, '-starttls', 'sieve', '-servername', HOSTNAME, '-verify_hostname', HOSTNAME, '-CAfile', anchor, '-verify_return_error', version], { input: '', timeout: 30_000 });
      expect(r.code, `${version}: ${r.stdout.slice(-1500)}${r.stderr.slice(-800)}`).toBe(0);
      expect(r.stdout).toMatch(/Verify return code: 0 \(ok\)/);
      // OpenSSL names the protocol in its "New, TLSv1.x, Cipher is …" line.
      expect(r.stdout).toMatch(new RegExp(`^New, TLSv1\\.${version.slice(-1)}, Cipher is `, 'm'));
    }
  }, 2 * MINUTE);

  it('rehearses the bundle on loopback on this release: spam, learning and sieve pass with its rspamd and Dovecot, nothing left running', async () => {
    // The rehearsal beside the live host, with this release's own daemons (Dovecot 2.4 and
    // rspamd 3.12 on Debian 13): what `selfmail rehearse` shows here holds for this release.
    const r = await host.exec(['selfmail', 'rehearse', '--bundle', BUNDLE, '--json'], { timeout: 5 * MINUTE });
    const report = JSON.parse(r.stdout) as { ok: boolean; steps: Array<{ id: string; ok: boolean; reason: string }>; cleanup: { leftover: unknown[] } };
    const summary = report.steps.map((x) => `${x.ok ? 'ok' : 'FAIL'} ${x.id}: ${x.reason}`).join('\n');
    expect(report.ok, summary).toBe(true);
    expect(r.code).toBe(0);
    expect(report.steps.map((x) => x.id)).toEqual(expect.arrayContaining(['spam', 'learning', 'sieve']));
    expect(report.cleanup.leftover).toEqual([]);
    // Nothing of the rehearsal is left: no temporary root, no second rspamd.
    expect((await host.exec(['sh', '-c', 'ls -d /tmp/selfmail-rehearse-* 2>/dev/null | wc -l'])).stdout.trim()).toBe('0');
    expect((await host.exec(['sh', '-c', 'pgrep -c -x rspamd -P 1 || true'])).stdout.trim()).toBe('1');
  }, 6 * MINUTE);

  it('adds a mailbox (with a quota) and an alias on the host (--apply), changes the password and the quota, removes both: each takes effect at once', async () => {
    const CAROL = { user: `carol@${DOMAIN}`, pass: 'carol-pristine-password-33' };
    const login = async (pass: string) => (await host.probe<{ result: string }>({ op: 'imapLogin', host: NET.host4, servername: HOSTNAME, user: CAROL.user, pass, from_address: NET.out4 })).result;
    await host.put('root/carol.pw', `${CAROL.user}:${CAROL.pass}\n`, 0o600);
    const add = await host.exec(['selfmail', 'user', 'add', CAROL.user, '--bundle', BUNDLE, '--password-file', '/root/carol.pw', '--quota', '1M', '--apply'], { timeout: 5 * MINUTE });
    expect(add.code, add.stdout + add.stderr).toBe(0);
    expect(await login(CAROL.pass)).toBe('ok');
    // Dovecot enforces the quota: a message of 920 KB arrives and takes carol past 90 %, for
    // which she gets a note from postmaster; the next one, of 120 KB, would pass 1 MiB and is
    // refused.
    expect((await host.exec(['doveadm', 'quota', 'get', '-u', CAROL.user])).stdout).toMatch(/^User quota\s+STORAGE\s+\d+\s+1024\s/m);
    const sizes = [14_500, 2_000];
    const bigSubjects = [`big one ${tag()}`, `big two ${tag()}`];
    for (const [i, subject] of bigSubjects.entries()) {
      const r = await host.probe({ op: 'send', host: NET.host4, port: 25, from: 'someone@example.net', to: CAROL.user, subject, body: `${'0123456789abcdef'.repeat(4)}\n`.repeat(sizes[i]!), helo: 'outside.example.net' });
      expect(r, JSON.stringify(r)).toMatchObject({ ok: true });
      if (i === 0) expect((await host.probe({ op: 'fetch', host: NET.host4, servername: HOSTNAME, ...CAROL, subject, wait: 40 })).ok).toBe(true);
    }
    const note = await host.probe<{ source: string }>({ op: 'fetch', host: NET.host4, servername: HOSTNAME, ...CAROL, subject: 'Your mailbox is 90% full', wait: 40 });
    expect(note.ok, note.error).toBe(true);
    expect(note.source).toMatch(/^From: postmaster@/m);
    const refused = await host.exec(['sh', '-c', `for i in $(seq 40); do journalctl -q --no-pager -o cat -t postfix/lmtp | grep -q 'to=<${CAROL.user}>.*status=bounced.*Mailbox full' && exit 0; sleep 1; done; exit 1`]);
    const lmtpLog = (await host.exec(['sh', '-c', `journalctl -q --no-pager -o cat -t postfix/lmtp | grep 'to=<${CAROL.user}>' | tail -n 4`])).stdout;
    expect(refused.code, `Postfix's LMTP client logs the second delivery refused by Dovecot for the quota:\n${lmtpLog}`).toBe(0);
    expect((await host.probe({ op: 'fetch', host: NET.host4, servername: HOSTNAME, ...CAROL, subject: bigSubjects[1], wait: 3 })).ok).toBe(false);
    // Lifted, the next one arrives.
    const lift = await host.exec(['selfmail', 'user', 'quota', CAROL.user, 'none', '--bundle', BUNDLE, '--apply'], { timeout: 5 * MINUTE });
    expect(lift.code, lift.stdout + lift.stderr).toBe(0);
    const third = `big three ${tag()}`;
    expect(await host.probe({ op: 'send', host: NET.host4, port: 25, from: 'someone@example.net', to: CAROL.user, subject: third, body: `${'0123456789abcdef'.repeat(4)}\n`.repeat(2_000), helo: 'outside.example.net' })).toMatchObject({ ok: true });
    expect((await host.probe({ op: 'fetch', host: NET.host4, servername: HOSTNAME, ...CAROL, subject: third, wait: 40 })).ok).toBe(true);
    const alias = await host.exec(['selfmail', 'alias', 'add', `team@${DOMAIN}`, CAROL.user, ALICE.user, '--bundle', BUNDLE, '--apply'], { timeout: 5 * MINUTE });
    expect(alias.code, alias.stdout + alias.stderr).toBe(0);
    // Mail from outside to the alias reaches both mailboxes.
    const subject = `alias ${tag()}`;
    const sent = await host.probe({ op: 'send', host: NET.host4, port: 25, from: 'someone@example.net', to: `team@${DOMAIN}`, subject, helo: 'outside.example.net' });
    expect(sent, JSON.stringify(sent)).toMatchObject({ ok: true });
    for (const box of [CAROL, ALICE]) {
      const got = await host.probe({ op: 'fetch', host: NET.host4, servername: HOSTNAME, user: box.user, pass: box.pass, subject, wait: 40 });
      expect(got.ok, `${box.user}: ${got.error}`).toBe(true);
    }
    // A new password replaces the old one at once.
    await host.put('root/carol.pw', `${CAROL.user}:carol-changed-password-44\n`, 0o600);
    const passwd = await host.exec(['selfmail', 'user', 'passwd', CAROL.user, '--bundle', BUNDLE, '--password-file', '/root/carol.pw', '--apply'], { timeout: 5 * MINUTE });
    expect(passwd.code, passwd.stdout + passwd.stderr).toBe(0);
    expect(await login('carol-changed-password-44')).toBe('ok');
    expect(await login(CAROL.pass)).not.toBe('ok');
    // Removed: the alias first (it delivers to carol), then the mailbox, which can log in no more.
    const carolHome = `/var/vmail/${DOMAIN}/carol`;
    expect((await host.exec(['test', '-d', `${carolHome}/Maildir`])).code).toBe(0);
    let removed = '';
    for (const argv of [['alias', 'remove', `team@${DOMAIN}`], ['user', 'remove', CAROL.user]]) {
      const r = await host.exec(['selfmail', ...argv, '--bundle', BUNDLE, '--apply'], { timeout: 5 * MINUTE });
      expect(r.code, r.stdout + r.stderr).toBe(0);
      removed = r.stdout;
    }
    expect(await login('carol-changed-password-44')).not.toBe('ok');
    // Its mail goes with it (--keep-mail would keep it): carol had the quota note, one big message, the third and the alias's.
    expect(removed).toMatch(new RegExp(`carol@${DOMAIN} is gone from the host, with its mail: [1-9]\\d* messages under ${carolHome} deleted`));
    expect((await host.exec(['test', '-e', carolHome])).code).not.toBe(0);
    await host.exec(['rm', '-f', '/root/carol.pw']);
    const verify = await host.exec(['selfmail', 'verify', '--bundle', BUNDLE]);
    expect(verify.code, verify.stdout).toBe(0);
  }, 10 * MINUTE);

  it('imports a mailbox from an old provider over verified TLS: every folder, message and flag, once; the old server unchanged', async () => {
    const old = await startOldProvider(host, NET.out4);
    try {
      await host.run(`echo '${NET.out4} ${OLD.name}' >> /etc/hosts`);
      await host.put('root/old-ca.pem', await readFile(old.caPem, 'utf8'), 0o644);
      await host.put('root/old.pw', `${OLD.password}\n`, 0o600);
      const importArgs = ['selfmail', 'import', '--bundle', BUNDLE, '--mailbox', ALICE.user, '--from', `imaps://${OLD.name}`, '--login', OLD.login, '--password-file', '/root/old.pw'];
      const copied = async () => inventoryOf((await host.exec(['doveadm', 'fetch', '-u', ALICE.user, 'mailbox flags hdr.message-id', 'all'])).stdout);
      const source = await old.inventory();
      expect(source).toHaveLength(Object.values(OLD.folders).reduce((a, b) => a + b, 0));

      // The old server's certificate is checked: its CA is none of the system's.
      const untrusted = await host.exec(importArgs, { timeout: 5 * MINUTE });
      expect(untrusted.code, untrusted.stdout + untrusted.stderr).toBe(4);
      expect(untrusted.stderr).toMatch(/certificate/i);
      expect(await copied()).toEqual([]);

      const first = await host.exec([...importArgs, '--ca-file', '/root/old-ca.pem', '--json'], { timeout: 5 * MINUTE });
      expect(first.code, first.stdout + first.stderr).toBe(0);
      expect((JSON.parse(first.stdout) as { added: number }).added).toBe(source.length);
      // Every message in its folder with its flags (\Seen, \Answered, \Flagged, $Forwarded).
      expect(await copied()).toEqual(source);
      expect((await host.exec(['sh', '-c', 'ls -d /run/selfmail-import-* 2>/dev/null'])).stdout).toBe('');

      // A re-run copies nothing twice; what arrived at the old server since comes over.
      const late = 'From: Late <late@old.example>\r\nSubject: arrived after the first import\r\nMessage-ID: <late-1@old.example>\r\n\r\nlate\r\n';
      await old.save('INBOX', late);
      const again = await host.exec([...importArgs, '--ca-file', '/root/old-ca.pem', '--json'], { timeout: 5 * MINUTE });
      expect(again.code, again.stdout + again.stderr).toBe(0);
      expect((JSON.parse(again.stdout) as { added: number }).added).toBe(1);
      const after = await old.inventory();
      expect(await copied()).toEqual(after);
      // Read only: the old server holds what it held, flags included.
      expect(after.filter((l) => !l.startsWith('<late-1@'))).toEqual(source);
    } finally {
      await old.stop();
      await host.exec(['rm', '-f', '/root/old.pw']);
    }
  }, 10 * MINUTE);

  it('bans an address after failed logins: IMAP (dovecot), SMTP AUTH (postfix-sasl), SSH (sshd)', async () => {
    const [imapClient, smtpClient, sshClient] = NET.clients;
    for (let i = 0; i < 6; i++) {
      const r = await host.probe<{ result: string }>({ op: 'imapLogin', host: NET.host4, servername: HOSTNAME, user: ALICE.user, pass: 'wrong-password', from_address: imapClient });
      if (r.result !== 'no') break;
    }
    for (let i = 0; i < 6; i++) {
      const r = await host.probe({ op: 'send', host: NET.host4, port: 587, servername: HOSTNAME, user: BOB.user, pass: 'wrong-password', from: BOB.user, to: ALICE.user, subject: 'x', from_address: smtpClient });
      if (r.ok) throw new Error('a wrong password was accepted on 587');
    }
    // The ban may land in the middle of an attempt, whose packets are then turned away: ssh would
    // wait for TCP to give up. `timeout` ends such an attempt; the ban is checked below.
    for (let i = 0; i < 4; i++) {
      await host.fromOutside(['timeout', '-k', '2', '15', 'ssh', '-b', sshClient!, '-o', 'BatchMode=yes', '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'ConnectTimeout=5', `nosuchuser@${NET.host4}`, 'true'], { timeout: 30_000 });
    }
    const banned = async (jail: string, ip: string) => {
      for (let i = 0; i < 40; i++) {
        const s = await host.exec(['fail2ban-client', 'status', jail]);
        if (new RegExp(`Banned IP list:.*\\b${ip.replace(/\./g, '\\.')}\\b`).test(s.stdout)) return true;
        await new Promise((r) => setTimeout(r, 1000));
      }
      return false;
    };
    expect(await banned('dovecot', imapClient!)).toBe(true);
    expect(await banned('postfix-sasl', smtpClient!)).toBe(true);
    expect(await banned('sshd', sshClient!)).toBe(true);
    // The banned address is turned away (fail2ban's nftables action rejects); another one still gets in.
    expect((await host.probe<{ result: string }>({ op: 'tcp', host: NET.host4, port: 993, from_address: imapClient })).result).toMatch(/^(timeout|error: ECONNREFUSED)$/);
    expect((await host.probe<{ result: string }>({ op: 'imapLogin', host: NET.host4, servername: HOSTNAME, ...ALICE, from_address: NET.out4 })).result).toBe('ok');
  }, 5 * MINUTE);

  it('backs up every day over SFTP to a machine of the user\'s, encrypted to a key made off the host: apply enables the timer; a drill from the user\'s machine passes; a re-run sends little', async () => {
    // The user's device is this machine: the identity is made and stays here; the host gets the public key.
    const device = await mkdtemp(join(tmpdir(), 'selfmail-tier-device-'));
    // The machine that keeps the backups: this machine's sshd in the outside namespace, set up as
    // --remote-setup says (a user locked into one folder, SFTP only, the host's key only).
    const machine = await startBackupMachine({ address: NET.out4, port: 22, netns: host.outside });
    const journal = async () => (await host.exec(['journalctl', '-q', '--no-pager', '-o', 'cat', '-u', 'selfmail-backup.service'])).stdout;
    try {
      const keygen = await must('age-keygen', ['-o', join(device, 'key.txt')]);
      const recipient = /Public key: (age1\S+)/.exec(keygen.stderr + keygen.stdout)![1]!;
      const url = `sftp://selfmail-backup@${NET.out4}/backup`;
      const rs = await host.exec(['selfmail', 'backup', '--remote-setup', '--to', url, '--json']);
      expect(rs.code, rs.stderr).toBe(0);
      await machine.setUp('selfmail-backup', JSON.parse(rs.stdout) as RemoteSetup);

      // The daily backup in the bundle; apply checks it can run (the bundle's folder, selfmail where systemd finds it) and enables the timer.
      const init = await host.exec(['selfmail', 'init', '--out', BUNDLE, '--non-interactive', '--backup-to', url, '--backup-recipient', recipient, '--backup-host-key', machine.hostKeyLine], { timeout: 5 * MINUTE });
      expect(init.code, init.stderr).toBe(0);
      const a = await apply();
      expect(a.code, a.stdout + a.stderr).toBe(0);
      for (const q of ['is-enabled', 'is-active']) expect((await host.exec(['systemctl', q, 'selfmail-backup.timer'])).stdout.trim(), q).toMatch(/^(enabled|active)$/);
      expect(await host.run('systemctl show -p NextElapseUSecRealtime --value selfmail-backup.timer')).not.toMatch(/^(n\/a)?\n$/);

      // The service, as the timer starts it.
      const mailFiles = Number(await host.run('find /var/vmail -type f | wc -l'));
      const first = await host.exec(['systemctl', 'start', 'selfmail-backup.service'], { timeout: 5 * MINUTE });
      expect(first.code, `${first.stderr}\n${await journal()}`).toBe(0);
      const log1 = await journal();
      expect(log1).toMatch(new RegExp(`snapshot \\d{8}T\\d{6}Z in ${url.replace(/[./]/g, '\\$&')}`));
      // The mail the tests delivered before is in it: every file under /var/vmail.
      expect(log1).toMatch(new RegExp(`^ {2}mail {6}/var/vmail \\(${mailFiles} files\\)$`, 'm'));
      const added1 = Number(/new this run: (\d+) files/.exec(log1)![1]);
      // The identity is nowhere on the host (looked for by its own bytes, given on stdin); the host's own keys private.
      const secret = (await readFile(join(device, 'key.txt'), 'utf8')).split('\n').find((l) => l.startsWith('AGE-SECRET-KEY-'))!;
      expect(await host.run('grep -rIlF -f - /root /etc /var /srv /tmp /home 2>/dev/null | wc -l', { input: `${secret}\n` })).toBe('0\n');
      expect(await host.run('stat -c %a /var/lib/selfmail/backup /var/lib/selfmail/backup/index.key /var/lib/selfmail/backup/ssh /var/lib/selfmail/backup/ssh/id_ed25519')).toBe('700\n600\n700\n600\n');

      // The backup machine's disk, read on the user's machine with the identity that never left it.
      const drill = await sh(process.execPath, [join(REPO, 'bin/selfmail.js'), 'restore', '--from', machine.folder('/backup'), '--identity', join(device, 'key.txt'), '--drill', '--json'], { timeout: 5 * MINUTE });
      expect(drill.code, drill.stdout + drill.stderr).toBe(0);
      expect((JSON.parse(drill.stdout) as { checks: { id: string; ok: boolean }[] }).checks.map((c) => `${c.id} ${c.ok}`)).toEqual(['files true', 'manifest true', 'dkim true', 'dnssec true', 'tlsa true']);

      // doctor sees the daily job run and succeed.
      const d1 = (await doctor()).checks.find((c) => c.id === 'backup')!;
      expect(d1, JSON.stringify(d1)).toMatchObject({ status: 'pass', summary: expect.stringMatching(new RegExp(`^to ${url.replace(/[./]/g, '\\$&')}: enabled, last ran .*, succeeded$`)) });

      const again = await host.exec(['systemctl', 'start', 'selfmail-backup.service'], { timeout: 5 * MINUTE });
      expect(again.code, await journal()).toBe(0);
      const added2 = [...(await journal()).matchAll(/new this run: (\d+) files/g)].map((m) => Number(m[1]));
      expect(added2).toHaveLength(2);
      // Only what the daemons changed since (Dovecot's indexes, rspamd's state): a small part.
      expect(added2[1]).toBeLessThan(added1 / 5);

      // Turned off: apply stops and disables the timer whose files the bundle no longer has.
      const off = await host.exec(['selfmail', 'init', '--out', BUNDLE, '--non-interactive', '--backup-to', 'none'], { timeout: 5 * MINUTE });
      expect(off.code, off.stderr).toBe(0);
      const a2 = await host.exec(['selfmail', 'apply', '--bundle', BUNDLE, '--json'], { timeout: 5 * MINUTE });
      expect(a2.code, a2.stdout + a2.stderr).toBe(0);
      expect((JSON.parse(a2.stdout) as { retired: string[] }).retired).toEqual(['selfmail-backup.timer']);
      expect((await host.exec(['systemctl', 'is-active', 'selfmail-backup.timer'])).stdout.trim()).not.toBe('active');
      expect((await host.exec(['systemctl', 'is-enabled', 'selfmail-backup.timer'])).stdout.trim()).not.toBe('enabled');
      expect((await host.exec(['test', '-e', '/etc/systemd/system/selfmail-backup.service'])).code).not.toBe(0);
      expect((await host.exec(['selfmail', 'verify', '--bundle', BUNDLE])).code).toBe(0);
      expect((await doctor()).checks.find((c) => c.id === 'backup')?.status).toBe('warn');
    } finally {
      await machine.stop();
      await rm(device, { recursive: true, force: true });
    }
  }, 12 * MINUTE);

  it('comes back after a reboot: every unit running, mail signed and delivered', async () => {
    await host.poweroff();
    expect(await host.boot()).toBe('running');
    expect(await unitStates()).toEqual([]);
    // rspamd signs: until it has loaded its rules (seconds after boot), a submission is deferred.
    await rspamdReady();
    expectBothSignaturesPass(await submitAndVerify(587));
  }, 10 * MINUTE);

  it('retires OpenDKIM where an earlier selfmail ran it: stopped, disabled, its copies of the keys gone; rspamd signs', async () => {
    // The host as an earlier selfmail left it: Debian's opendkim and the second instance's unit,
    // both enabled and running after boot, and a DKIM key in OpenDKIM's folder.
    await host.poweroff();
    const old = await host.prepare(['sh', '-c', [
      'set -e',
      'DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends opendkim >/dev/null',
      'printf "[Unit]\\nDescription=OpenDKIM Ed25519 signing instance\\n[Service]\\nExecStart=/bin/sleep infinity\\n[Install]\\nWantedBy=multi-user.target\\n" > /etc/systemd/system/opendkim-ed25519.service',
      'systemctl enable opendkim.service opendkim-ed25519.service',
      `k=$(ls /var/lib/rspamd/dkim/${DOMAIN}/*r.private | head -n1)`,
      `mkdir -p /etc/opendkim/keys/${DOMAIN} && cp -p "$k" /etc/opendkim/keys/${DOMAIN}/ && chmod 600 /etc/opendkim/keys/${DOMAIN}/*`,
      `basename "$k"`,
    ].join('\n')], { timeout: 5 * MINUTE });
    expect(old.code, old.stderr).toBe(0);
    const former = `/etc/opendkim/keys/${DOMAIN}/${old.stdout.trim()}`;
    expect(await host.boot()).toBe('running');
    for (const u of ['opendkim.service', 'opendkim-ed25519.service']) expect((await host.exec(['systemctl', 'is-active', u])).stdout.trim(), u).toBe('active');

    const a = await apply('--json');
    expect(a.code, a.stdout + a.stderr).toBe(0);
    const result = JSON.parse(a.stdout) as { retired: string[]; changes: { systemPath: string; action: string }[]; backupDir: string };
    expect(result.retired).toEqual(['opendkim.service', 'opendkim-ed25519.service']);
    for (const u of ['opendkim.service', 'opendkim-ed25519.service']) {
      expect((await host.exec(['systemctl', 'is-active', u])).stdout.trim(), u).not.toBe('active');
      expect((await host.exec(['systemctl', 'is-enabled', u])).stdout.trim(), u).not.toBe('enabled');
    }
    expect(result.changes).toContainEqual(expect.objectContaining({ systemPath: former, action: 'remove' }));
    expect((await host.exec(['test', '-e', former])).code).not.toBe(0);
    expect(await host.run(`stat -c %a ${result.backupDir}${former}`)).toBe('600\n');
    expect(await unitStates()).toEqual([]);
    await rspamdReady();
    expectBothSignaturesPass(await submitAndVerify(465));
    // A second apply has nothing left to retire.
    const again = await apply('--json');
    expect(again.code, again.stderr).toBe(0);
    expect((JSON.parse(again.stdout) as { retired: string[] }).retired).toEqual([]);
  }, 10 * MINUTE);

  it('rotates DKIM: both new selectors sign after apply; retired keys are gone from disk, kept 0600 in the backup', async () => {
    const before = expectBothSignaturesPass(await submitAndVerify(587));
    const rotate = await host.exec(['selfmail', 'keys', 'rotate', 'dkim', '--bundle', BUNDLE], { timeout: 5 * MINUTE });
    expect(rotate.code, rotate.stderr).toBe(0);
    const a1 = await apply();
    expect(a1.code, a1.stdout + a1.stderr).toBe(0);
    const after = expectBothSignaturesPass(await submitAndVerify(587));
    expect(after.rsa).not.toBe(before.rsa);
    expect(after.ed).not.toBe(before.ed);

    const retire = await host.exec(['selfmail', 'keys', 'retire', 'dkim', '--bundle', BUNDLE, '--selector', before.rsa, '--selector', before.ed], { timeout: 5 * MINUTE });
    expect(retire.code, retire.stderr).toBe(0);
    const stale = await host.exec(['selfmail', 'verify', '--bundle', BUNDLE]);
    // rspamd signs Ed25519 from its own form of the key, which goes with it.
    const retired = [`${before.rsa}.private`, `${before.ed}.private`, `${before.ed}.rspamd`].map((f) => `/var/lib/rspamd/dkim/${DOMAIN}/${f}`);
    for (const path of retired) expect(stale.stdout).toContain(`FAIL stale ${path}: should be gone`);
    const a2 = await apply('--json');
    expect(a2.code, a2.stderr).toBe(0);
    const result = JSON.parse(a2.stdout) as { changes: { systemPath: string; action: string }[]; backupDir: string };
    for (const path of retired) {
      expect(result.changes).toContainEqual(expect.objectContaining({ systemPath: path, action: 'remove' }));
      expect((await host.exec(['test', '-e', path])).code).not.toBe(0);
      expect(await host.run(`stat -c %a ${result.backupDir}${path}`)).toBe('600\n');
    }
    expect((await host.exec(['selfmail', 'verify', '--bundle', BUNDLE])).code).toBe(0);
    expectBothSignaturesPass(await submitAndVerify(465));
  }, 15 * MINUTE);

  it('rotates the TLS key with no DANE gap: the key that serves after was pinned before; the old one stays pinned', async () => {
    type Row = { type: string; id: string; state: string; fingerprint: string };
    const tlsRows = async () => (JSON.parse(await host.run(`selfmail keys list --bundle ${BUNDLE} --json`)) as { keys: Row[] }).keys.filter((k) => k.type === 'tls');
    /** The 3 1 1 pins the host's own name server answers for a port, from outside. */
    const pinsOf = async (port: number) =>
      (await host.fromOutside(['dig', '+short', '+norecurse', `@${NET.host4}`, `_${port}._tcp.${HOSTNAME}`, 'TLSA'])).stdout
        .split('\n')
        .filter((l) => /^3 1 1 /.test(l))
        .map((l) => l.slice(6).replace(/\s+/g, '').toLowerCase())
        .sort();
    const before = await tlsRows();
    expect(before.map((r) => r.state)).toEqual(['active', 'next']);
    const pinnedBefore = await pinsOf(25);
    expect(pinnedBefore).toEqual(before.map((r) => r.fingerprint).sort());
    // Too early for a planned rotation (the next key's TLSA was published minutes ago): nothing changes.
    const early = await host.exec(['selfmail', 'keys', 'rotate', 'tls', '--bundle', BUNDLE], { timeout: 5 * MINUTE });
    expect(early.code, early.stderr).toBe(2);
    expect(early.stderr).toMatch(/rotate from .* on .*or now with --immediately/);
    const rotate = await host.exec(['selfmail', 'keys', 'rotate', 'tls', '--immediately', '--bundle', BUNDLE], { timeout: 5 * MINUTE });
    expect(rotate.code, rotate.stderr).toBe(0);
    const a = await apply();
    expect(a.code, a.stdout + a.stderr).toBe(0);
    const after = await tlsRows();
    expect(after.map((r) => r.state)).toEqual(['active', 'next', 'retiring']);
    // The key every port serves now is the one pinned before the rotation: a DANE sender still
    // holding the old TLSA set finds it there; the new set pins it, the next one, and the old one.
    expect(after[0]!.fingerprint).toBe(before[1]!.fingerprint);
    expect(pinnedBefore).toContain(after[0]!.fingerprint);
    for (const port of [25, 465, 587, 993]) expect(await pinsOf(port), `port ${port}`).toEqual(after.map((r) => r.fingerprint).sort());
    const d = await host.exec(['selfmail', 'doctor', '--bundle', BUNDLE, '--json'], { timeout: 3 * MINUTE });
    const checks = (JSON.parse(d.stdout) as { checks: { id: string; status: string; summary: string }[] }).checks;
    expect(checks.find((c) => c.id === 'tlsa-matches'), d.stdout).toMatchObject({ status: 'pass' });
    expect(checks.find((c) => c.id === 'cert-expiry')?.summary, d.stdout).not.toMatch(/another key/i);
    expect((await host.exec(['selfmail', 'verify', '--bundle', BUNDLE])).code).toBe(0);
    await rspamdReady();
    expectBothSignaturesPass(await submitAndVerify(465));
  }, 10 * MINUTE);

  it('rolls the DNSSEC keys with no validation gap: a ZSK by pre-publication, a KSK with CDS/CDNSKEY; the old DS and the new validate at each step', async () => {
    const dsOf = async () =>
      (await host.read(`root/bundle/dns/${DOMAIN}.ds`))
        .split('\n')
        .filter((l) => !l.startsWith(';') && /\sIN\s+DS\s/.test(l))
        .map((l) => l.trim().split(/\s+/).slice(3).join(' '));
    const anchorFile = async (name: string, ds: string[]) => {
      const file = join(host.dir, name);
      const lines = ds.map((d) => {
        const [tag, alg, type, ...digest] = d.split(' ');
        return `  ${DOMAIN}. static-ds ${tag} ${alg} ${type} "${digest.join('')}";`;
      });
      await writeFile(file, `trust-anchors {\n${lines.join('\n')}\n};\n`);
      return file;
    };
    const validates = async (anchor: string, what: string) => {
      for (const [name, type] of [[DOMAIN, 'MX'], [`_25._tcp.${HOSTNAME}`, 'TLSA'], [DOMAIN, 'DNSKEY']] as const) {
        const r = await host.fromOutside(['delv', `@${NET.host4}`, '-a', anchor, `+root=${DOMAIN}`, name, type], { timeout: 30_000 });
        expect(r.stdout + r.stderr, `${what}: ${name} ${type}`).toMatch(/; fully validated/);
      }
    };
    const served = async (type: string) =>
      (await host.fromOutside(['dig', '+short', '+norecurse', `@${NET.host4}`, DOMAIN, type])).stdout.split('\n').filter(Boolean);
    const step = async (args: string[]) => {
      const r = await host.exec(['selfmail', 'keys', 'rotate', 'dnssec', ...args, '--bundle', BUNDLE], { timeout: 5 * MINUTE });
      expect(r.code, r.stdout + r.stderr).toBe(0);
      const a = await apply();
      expect(a.code, a.stdout + a.stderr).toBe(0);
      expect((await host.exec(['selfmail', 'verify', '--bundle', BUNDLE])).code).toBe(0);
    };
    const oldDs = await dsOf();
    expect(oldDs).toHaveLength(1);
    const oldAnchor = await anchorFile('anchor-old.conf', oldDs);
    expect((await served('DNSKEY')).filter((l) => l.startsWith('256 ')).length).toBe(1);

    // ZSK: the next one is published beside the signing one; nothing changes at the registrar.
    await step(['--zsk']);
    expect((await served('DNSKEY')).filter((l) => l.startsWith('256 ')).length).toBe(2);
    expect(await dsOf()).toEqual(oldDs);
    await validates(oldAnchor, 'after --zsk, old DS');
    // The daily job agrees with the bundle: nothing to do today.
    const job = await host.exec(['systemctl', 'start', 'selfmail-resign.service'], { timeout: 2 * MINUTE });
    expect(job.code, job.stderr).toBe(0);
    expect((await host.exec(['selfmail', 'verify', '--bundle', BUNDLE])).code).toBe(0);

    // KSK: a new one signs the DNSKEY set beside the old; CDS and CDNSKEY name it; both DS validate.
    await step(['--ksk']);
    const both = await dsOf();
    expect(both).toHaveLength(2);
    const newDs = both.filter((d) => !oldDs.includes(d));
    const cds = (await served('CDS')).map((l) => l.replace(/\s+/g, ' ').toUpperCase());
    expect(cds.map((c) => c.split(' ').slice(0, 3).join(' ') + ' ' + c.split(' ').slice(3).join(''))).toEqual(newDs.map((d) => d.toUpperCase()));
    expect(await served('CDNSKEY')).toHaveLength(1);
    expect((await served('DNSKEY')).filter((l) => l.startsWith('257 ')).length).toBe(2);
    await validates(oldAnchor, 'during the KSK rollover, old DS');
    await validates(await anchorFile('anchor-new.conf', newDs), 'during the KSK rollover, new DS');

    // The parent serves the new DS: CDS/CDNSKEY go, the old KSK stays two days for resolvers that cached the old DS.
    await step(['--ksk', '--parent-confirmed']);
    expect(await dsOf()).toEqual(newDs);
    expect(await served('CDS')).toEqual([]);
    expect((await served('DNSKEY')).filter((l) => l.startsWith('257 ')).length).toBe(2);
    await validates(oldAnchor, 'after --parent-confirmed, old DS still cached');
    await validates(await anchorFile('anchor-new.conf', newDs), 'after --parent-confirmed, new DS');
    const rows = (JSON.parse(await host.run(`selfmail keys list --bundle ${BUNDLE} --json`)) as { keys: { type: string; state: string }[] }).keys;
    expect(rows.filter((k) => k.type === 'dnssec-ksk').map((k) => k.state).sort()).toEqual(['active', 'retiring']);
    expect(rows.filter((k) => k.type === 'dnssec-zsk').map((k) => k.state).sort()).toEqual(['active', 'next']);
  }, 12 * MINUTE);

  it('publishes MTA-STS enforce once a CA-issued certificate for the bundle key is installed', async () => {
    // A CA of the test's own signs the bundle's CSR, as an ACME CA would for selfmail-acme.
    const ca = await mkdtemp(join(tmpdir(), 'selfmail-tier-ca-'));
    try {
      await must('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', join(ca, 'ca.key'), '-out', join(ca, 'ca.pem'), '-days', '30', '-subj', '/CN=selfmail tier test CA']);
      await writeFile(join(ca, 'csr.pem'), await host.read('etc/selfmail/tls/csr.pem'));
      await must('openssl', ['x509', '-req', '-in', join(ca, 'csr.pem'), '-CA', join(ca, 'ca.pem'), '-CAkey', join(ca, 'ca.key'), '-CAcreateserial', '-days', '20', '-copy_extensions', 'copy', '-out', join(ca, 'cert.pem')]);
      const chain = (await readFile(join(ca, 'cert.pem'), 'utf8')) + (await readFile(join(ca, 'ca.pem'), 'utf8'));
      // The host trusts this CA as it trusts the public ones (doctor checks the policy's TLS against them).
      await host.put('usr/local/share/ca-certificates/selfmail-tier-ca.crt', await readFile(join(ca, 'ca.pem'), 'utf8'), 0o644);
      await host.run('update-ca-certificates >/dev/null');
      await host.put('etc/selfmail/tls/cert.pem.new', chain, 0o644);
      await host.run('mv -f /etc/selfmail/tls/cert.pem.new /etc/selfmail/tls/cert.pem');
      await reloadAsAcmeDoes(['postfix.service', 'dovecot.service', 'nginx.service']);
    } finally {
      await rm(ca, { recursive: true, force: true });
    }
    const oldTxt = (await host.fromOutside(['dig', '+short', `@${NET.host4}`, `_mta-sts.${DOMAIN}`, 'TXT'])).stdout.trim();
    const init = await host.exec(['selfmail', 'init', '--out', BUNDLE, '--non-interactive'], { timeout: 5 * MINUTE });
    expect(init.code, init.stderr).toBe(0);
    expect(await host.read(`root/bundle/www/${DOMAIN}/.well-known/mta-sts.txt`)).toMatch(/^mode: enforce\r$/m);
    const a = await apply();
    expect(a.code, a.stdout + a.stderr).toBe(0);
    const policy = await host.probe<{ body: string }>({ op: 'https', host: NET.host4, servername: `mta-sts.${DOMAIN}`, path: '/.well-known/mta-sts.txt' });
    expect(policy.body).toMatch(/^mode: enforce\r$/m);
    const newTxt = (await host.fromOutside(['dig', '+short', `@${NET.host4}`, `_mta-sts.${DOMAIN}`, 'TXT'])).stdout.trim();
    expect(newTxt).toMatch(/v=STSv1; id=/);
    expect(newTxt).not.toBe(oldTxt);
    const v = await host.exec(['selfmail', 'verify', '--bundle', BUNDLE]);
    expect(v.code, v.stdout + v.stderr).toBe(0);
    expect(v.stdout).toMatch(/NOTE renewed \/etc\/selfmail\/tls\/cert\.pem: issued by a CA/);
    // doctor sees the CA-issued certificate on every port, and the enforce policy over trusted TLS.
    const d = await host.exec(['selfmail', 'doctor', '--bundle', BUNDLE, '--json'], { timeout: 2 * MINUTE });
    const checks = (JSON.parse(d.stdout) as { checks: { id: string; status: string; summary: string }[] }).checks;
    // The test's internet (zz-tier-internet.conf, since the mail tests) serves the reverse zones
    // of the test addresses statically with a PTR for the outside only: the host's resolver
    // rightly says the host has none, and that is the one failing check.
    const internet = existsSync(join(host.root, 'etc/unbound/unbound.conf.d/zz-tier-internet.conf'));
    expect(checks.filter((c) => c.status === 'fail').map((c) => c.id), d.stdout).toEqual(internet ? ['ptr'] : []);
    if (internet) expect(checks.find((c) => c.id === 'ptr')?.summary).toMatch(/203\.0\.113\.25 has no PTR/);
    expect(d.code).toBe(internet ? 5 : 0);
    expect(checks.find((c) => c.id === 'cert-expiry')?.status, d.stdout).toBe('pass');
    expect(checks.find((c) => c.id === 'mta-sts')?.status, d.stdout).toBe('pass');
  }, 10 * MINUTE);

  it('takes mail through a VPS of its own that only forwards packets, rehearsed first: the client\'s own address and TLS at home, mail out from the VPS\'s address, the VPS running nothing but WireGuard', async () => {
    const vps = await OwnVps.create(host);
    try {
      const init = await host.exec(['selfmail', 'init', '--out', BUNDLE, '--non-interactive', '--ingress', 'own-vps', '--vps-ipv4', VPS_NET.vps4, '--vps-ipv6', VPS_NET.vps6], { timeout: 5 * MINUTE });
      expect(init.code, init.stderr).toBe(0);
      expect(init.stderr).toMatch(/run vps\/setup\.sh there/);
      // Rehearsed before anything is installed: the rehearsal makes an internet and a VPS of its
      // own from the bundle's vps/ files (the VPS's key made there: the bundle names none yet).
      const rehearsal = await host.exec(['selfmail', 'rehearse', '--bundle', BUNDLE, '--json'], { timeout: 5 * MINUTE });
      const report = JSON.parse(rehearsal.stdout) as { ok: boolean; steps: Array<{ id: string; ok: boolean; reason: string }>; cleanup: { leftover: unknown[] } };
      expect(report.steps, `exit ${rehearsal.code}: ${rehearsal.stdout}\n${rehearsal.stderr}`).toBeDefined();
      expect(report.ok, report.steps.map((x) => `${x.ok ? 'ok' : 'FAIL'} ${x.id}: ${x.reason}`).join('\n')).toBe(true);
      expect(rehearsal.code).toBe(0);
      const tunnel = report.steps.find((x) => x.id === 'tunnel')?.reason ?? '';
      expect(tunnel).toMatch(/home's Received: names \[192\.0\.2\.10\], ESMTPS/);
      expect(tunnel).toMatch(/home's Received: names \[IPv6:2001:db8:77::10\], ESMTPS/);
      expect(tunnel).toContain(`from the VPS's ${VPS_NET.vps4} (HELO ${HOSTNAME}), rsa-sha256`);
      expect(tunnel).toMatch(/runs nothing but WireGuard/);
      expect(report.cleanup.leftover).toEqual([]);
      expect((await host.exec(['sh', '-c', 'ls -d /tmp/selfmail-rehearse-* /run/wireguard 2>/dev/null | wc -l; pgrep -c wireguard-go || true'])).stdout.split('\n').map((l) => l.trim())).toEqual(['0', '0', '']);
      // apply refuses until the VPS's key is known; nothing changes.
      const early = await apply();
      expect(early.code, early.stdout + early.stderr).toBe(2);
      // The VPS, set up with the bundle's vps/ folder: its key made there.
      const vpsKey = await vps.setUp(join(host.root, 'root/bundle/vps'));
      const keyed = await host.exec(['selfmail', 'init', '--out', BUNDLE, '--vps-wg-key', vpsKey], { timeout: 5 * MINUTE });
      expect(keyed.code, keyed.stderr).toBe(0);
      const a = await apply();
      expect(a.code, a.stdout + a.stderr).toBe(0);
      expect((await host.exec(['systemctl', 'is-active', 'wg-quick@selfmail.service'])).stdout.trim()).toBe('active');
      expect((await host.exec(['systemctl', 'is-enabled', 'wg-quick@selfmail.service'])).stdout.trim()).toBe('enabled');
      // The home end dials the VPS: a handshake within seconds.
      expect((await host.exec(['sh', '-c', 'for i in $(seq 20); do wg show selfmail latest-handshakes | awk \'$2 > 0 { ok = 1 } END { exit !ok }\' && exit 0; sleep 0.5; done; exit 1'])).code).toBe(0);

      // The zone, served through the VPS (UDP 53 forwarded), names the VPS for the mail host.
      const a4 = await host.fromOutside(['dig', '+short', '+norecurse', `@${VPS_NET.vps4}`, HOSTNAME, 'A']);
      expect(a4.stdout.trim()).toBe(VPS_NET.vps4);
      // TLS ends at home: the key the VPS's port 25 shows is the bundle's, pinned by TLSA.
      const tls = (JSON.parse(await host.run(`selfmail keys list --bundle ${BUNDLE} --json`)) as { keys: { type: string; state: string; fingerprint: string }[] }).keys.find((k) => k.type === 'tls' && k.state === 'active')!;
      const spki = await host.fromOutside(['sh', '-c', `openssl s_client -starttls smtp -connect ${VPS_NET.vps4}:25 -servername ${HOSTNAME} </dev/null 2>/dev/null | openssl x509 -pubkey -noout | openssl pkey -pubin -outform der | sha256sum`], { timeout: 30_000 });
      expect(spki.stdout.split(' ')[0]).toBe(tls.fingerprint);
      // Inbound mail from an outside client: delivered, and Postfix saw the client's own address.
      await rspamdReady();
      const subject = `through the VPS ${tag()}`;
      const sent = await host.probe({ op: 'send', host: VPS_NET.vps4, port: 25, from: 'someone@example.net', to: ALICE.user, subject, helo: 'outside.example.net', from_address: NET.out4 });
      expect(sent, JSON.stringify(sent)).toMatchObject({ ok: true });
      const got = await host.probe<{ source: string }>({ op: 'fetch', host: VPS_NET.vps4, servername: HOSTNAME, ...ALICE, subject, wait: 40 });
      expect(got.ok, got.error).toBe(true);
      // Postfix's own Received: line (Dovecot's LMTP one comes first).
      const received = [...got.source.matchAll(/^Received: [^\n]*(?:\n[ \t][^\n]*)*/gm)].map((m) => m[0]).find((r) => r.includes('(Postfix)')) ?? '';
      expect(received).toMatch(/with ESMTPS/);
      expect(received).toContain(`[${NET.out4}]`);
      expect(received).not.toContain(VPS_NET.vps4);
      // Outbound: Postfix sends from the tunnel address, which leaves the VPS as its own: a
      // message Alice submits (through the VPS too) reaches the remote MX from the VPS's address,
      // both DKIM signatures valid.
      expect((await host.run('postconf -h smtp_bind_address')).trim()).toBe('10.77.77.2');
      const outSubject = `out through the VPS ${tag()}`;
      const sink = host.probe<{ peer: string; source: string }>({ op: 'sink', host: NET.out4, port: 25, wait: 90, subject: outSubject }, 120_000);
      await new Promise((r) => setTimeout(r, 1000));
      const submitted = await host.probe({ op: 'send', host: VPS_NET.vps4, port: 587, servername: HOSTNAME, ...ALICE, from: ALICE.user, to: 'someone@example.net', subject: outSubject });
      expect(submitted, JSON.stringify(submitted)).toMatchObject({ ok: true });
      const arrived = await sink;
      expect(arrived.ok, arrived.error).toBe(true);
      expect(arrived.peer).toBe(VPS_NET.vps4);
      expect(arrived.source).toContain(outSubject);
      const verdict = await host.probe<{ dkim: { algo: string; result: string }[] }>({ op: 'dkim', source: arrived.source, dns: VPS_NET.vps4, ip: VPS_NET.vps4, sender: ALICE.user, helo: HOSTNAME });
      expect(verdict.dkim.map((d) => `${d.algo} ${d.result}`).sort(), JSON.stringify(verdict)).toEqual(['ed25519-sha256 pass', 'rsa-sha256 pass']);
      const listener = host.fromOutside([process.execPath, '-e', `const s = require('net').createServer((c) => { console.log(c.remoteAddress); process.exit(0); }).listen(2525, '${NET.out4}'); setTimeout(() => process.exit(3), 20000);`], { timeout: 30_000 });
      await new Promise((r) => setTimeout(r, 500));
      await host.run(`python3 -c "import socket; socket.create_connection(('${NET.out4}', 2525), timeout=10, source_address=('10.77.77.2', 0)).close()"`);
      expect((await listener).stdout.trim()).toBe(VPS_NET.vps4);
      // The home host takes the world's connections from the tunnel only.
      const direct = await host.probe<{ result: string }>({ op: 'tcp', host: NET.host4, port: 25, timeout: 3 });
      expect(direct.result).not.toBe('open');
      // The VPS holds its own WireGuard key and nothing else of ours, and runs nothing but WireGuard.
      expect((await vps.must('ls -A /etc/wireguard')).split('\n').filter(Boolean).sort()).toEqual(['selfmail.conf', 'selfmail.key']);
      expect((await vps.processes()).filter((p) => p !== 'sleep')).toEqual(['wireguard-go']);
      // doctor: the tunnel is up (nat, cgnat); verify: everything installed is the bundle's.
      const d = await host.exec(['selfmail', 'doctor', '--bundle', BUNDLE, '--json'], { timeout: 2 * MINUTE });
      const checks = (JSON.parse(d.stdout) as { checks: { id: string; status: string; summary: string }[] }).checks;
      expect(checks.find((c) => c.id === 'nat'), d.stdout).toMatchObject({ status: 'pass' });
      expect(checks.find((c) => c.id === 'cgnat'), d.stdout).toMatchObject({ status: 'pass' });
      const v = await host.exec(['selfmail', 'verify', '--bundle', BUNDLE]);
      expect(v.code, v.stdout + v.stderr).toBe(0);
    } finally {
      await vps.destroy();
    }
  }, 12 * MINUTE);
}
