/**
 * The rehearsal host: the bundle rendered again for a temporary root on loopback and high ports,
 * laid out there, and its daemons (NSD, rspamd and Redis, Dovecot, Postfix) started as root
 * in the foreground under a Supervisor.
 */
import { appendFile, chmod, mkdir, mkdtemp, readFile, stat } from 'node:fs/promises';
import { Resolver } from 'node:dns/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Profile, installedPath, sysPath } from '../bundle/layout.js';
import type { BuildContext, BundleFile } from '../bundle/types.js';
import { ToolError } from '../errors.js';
import type { LoadedBundle } from './load.js';
import { webPaths } from '../web/index.js';
import { freeServicePorts } from '../bundle/ports.js';
import type { Question } from './resolver.js';
import type { Tunnel } from './tunnel.js';
import type { Config } from '../config/types.js';
import { type Supervisor, requireTool, tail, tcpOpen, waitReady } from './supervisor.js';

/** The loopback address every service listens on. */
export const LISTEN = '127.0.0.1';
/** The address test clients connect from, so that a trace of it in a header can be told apart. */
export const CLIENT_ADDRESS = '127.0.0.2';
/** The name test clients give in EHLO, searched for in the headers of the submitted message. */
export const CLIENT_NAME = 'rehearsal-client.invalid';

/** The programs the rehearsal starts or calls, each checked before anything starts. */
export const REQUIRED_TOOLS = ['nsd', 'dovecot', 'postfix', 'delv', 'rspamd', 'redis-server', 'unshare', 'ip', 'nft'] as const;

export interface Host {
  root: string;
  profile: Profile;
  /** The address clients reach the public-facing services on: loopback, or the tunnel's home end (own-vps). */
  address: string;
  /** An own-VPS bundle's VPS and internet (./tunnel.ts); absent otherwise. */
  tunnel?: Tunnel;
  files: BundleFile[];
  /** Postfix's log (maillog_file), for failure reasons. */
  postfixLog: () => Promise<string>;
  dovecotLog: () => Promise<string>;
  /** rspamd's log, for failure reasons. */
  spamLog: () => Promise<string>;
  /** A resolver that asks only the rehearsal NSD. */
  resolver: Resolver;
  /** The trust anchor file for delv: the bundle's KSKs (empty without DNSSEC). */
  anchorFile: string;
  /** Dovecot's process group, to list the ports it listens on. */
  dovecotGroup: number | undefined;
  /** Every question the rehearsal's resolver (127.0.0.1:53) was asked, and how it answered. */
  questions: Question[];
  /** The zones the rehearsal serves. */
  zones: string[];
}

/** A fresh temporary root that the daemons' unprivileged users can traverse. */
export async function makeRoot(): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), 'selfmail-rehearse-'));
  // mkdtemp makes 0700; postfix, dovecot, _rspamd and nobody must reach their files below it.
  await chmod(root, 0o755);
  return root;
}

/**
 * The rehearsal profile: everything under `root`, on 127.0.0.1 and free high ports. An own-VPS
 * bundle's public-facing services listen where they do on its host, on the tunnel's home end and
 * the standard ports (the VPS forwards those ports unchanged; in the rehearsal's own network
 * namespace they are free); its loopback-only services keep free high ports.
 */
export async function rehearsalProfile(root: string, config?: Pick<Config, 'ingress' | 'listenIpv4' | 'listenIpv6'>): Promise<Profile> {
  const ports = await freeServicePorts(LISTEN);
  const base = { kind: 'rehearsal' as const, root, mailUser: { name: 'nobody', group: 'nogroup' } };
  if (config?.ingress === 'own-vps' && config.listenIpv4) {
    const { STANDARD_PORTS: std } = await import('../bundle/layout.js');
    return {
      ...base,
      listen: { ipv4: config.listenIpv4, ...(config.listenIpv6 ? { ipv6: config.listenIpv6 } : {}) },
      ports: { ...ports, smtp: std.smtp, submission: std.submission, submissions: std.submissions, imaps: std.imaps, dns: std.dns, http: std.http, https: std.https, managesieve: std.managesieve },
    };
  }
  return { ...base, listen: { ipv4: LISTEN }, ports };
}

/**
 * Every file the loopback host needs: the key files, each service rendered for `profile`, and
 * the bundle's zones exactly as the bundle has them (what would be published is what is served,
 * even where the bundle no longer matches its keys).
 */
export async function renderHost(bundle: LoadedBundle, profile: Profile, config: Config = bundle.rehearsalConfig): Promise<BundleFile[]> {
  const ctx: BuildContext = {
    config,
    keys: bundle.keys,
    previous: bundle.previous,
    profile,
    now: new Date(),
    passwordHashes: bundle.passwordHashes,
    warnings: [],
    // The rehearsal serves the bundle's zones as they are; its web files say what the bundle's say.
    mtaSts: /^mode: enforce\r?$/m.test(bundle.files.get(webPaths(bundle.config.domains[0]!).policy)?.toString('utf8') ?? '') ? 'enforce' : 'testing',
  };
  const { services } = await import('../services.js');
  const files: BundleFile[] = [...bundle.keys.files];
  for (const m of await services()) files.push(...(await m.build(ctx)));
  for (let i = 0; i < files.length; i++) {
    const f = files[i]!;
    if (!f.path.startsWith('dns/')) continue;
    const own = bundle.files.get(f.path);
    if (!own) throw new ToolError(`the bundle has no ${f.path}; run selfmail init again`, 'selfmail');
    files[i] = { ...f, data: own };
  }
  return files;
}

/** The trust anchors delv needs: every zone's KSK as a static key. */
export function anchorText(bundle: Pick<LoadedBundle, 'keys'>): string {
  const lines = bundle.keys.dnssec
    .filter((k) => k.role === 'ksk')
    .map((k) => {
      const [flags, proto, alg, ...b64] = k.dnskey.split(/\s+/);
      return `  ${k.zone}. static-key ${flags} ${proto} ${alg} "${b64.join('')}";`;
    });
  return `trust-anchors {\n${lines.join('\n')}\n};\n`;
}

async function readOr(path: string): Promise<string> {
  return readFile(path, 'utf8').catch(() => '');
}

/** Fail with exit 4 unless this process is root and every daemon is installed. */
export async function requireRootAndTools(): Promise<void> {
  for (const t of REQUIRED_TOOLS) await requireTool(t);
  if (typeof process.getuid === 'function' && process.getuid() !== 0) {
    throw new ToolError('the rehearsal starts NSD, rspamd, Dovecot and Postfix as they run on a host, which needs root: run it with sudo', 'selfmail');
  }
}

/**
 * Stage the host under `root` and start its daemons. Everything started is registered with
 * `sup`, which the caller stops in a `finally`.
 */
export async function startHost(bundle: LoadedBundle, root: string, sup: Supervisor): Promise<Host> {
  // An own-VPS bundle: the internet and the VPS first (the VPS makes its key, which the home end
  // names), then the home host listens on its end of the tunnel.
  let tunnel: Tunnel | undefined;
  let config = bundle.rehearsalConfig;
  if (config.ingress === 'own-vps') {
    const { startTunnel } = await import('./tunnel.js');
    tunnel = await startTunnel(bundle, sup);
    config = { ...config, vpsWgKey: tunnel.vpsPublicKey };
  }
  const profile = await rehearsalProfile(root, config);
  const address = profile.listen.ipv4 ?? LISTEN;
  const files = await renderHost(bundle, profile, config);
  const { stageTree } = await import('../bundle/stage.js');
  await stageTree(files, root);
  const { applyOwners } = await import('../mail/system.js');
  await applyOwners(profile, files);
  if (tunnel) {
    const { HOME_WG_CONF } = await import('../vps/service.js');
    await tunnel.homeUp(installedPath(profile, HOME_WG_CONF));
  }

  const logDir = sysPath(profile, '/var/log');
  await mkdir(logDir, { recursive: true, mode: 0o755 });
  const postfixLogFile = join(logDir, 'postfix.log');
  const dovecotLogFile = join(logDir, 'dovecot.log');
  const postfixDir = sysPath(profile, '/etc/postfix');
  // Postfix logs only to syslog or to maillog_file (under an allowed prefix); Dovecot to syslog
  // unless told otherwise. Both write into the rehearsal root, for failure reasons.
  await appendFile(
    join(postfixDir, 'main.cf'),
    `\n# rehearsal only\nmaillog_file_prefixes = ${root}\nmaillog_file = ${postfixLogFile}\n`,
  );
  await appendFile(installedPath(profile, 'dovecot/dovecot.conf'), `\n# rehearsal only\nlog_path = ${dovecotLogFile}\n`);

  const { nsdRuntimeDirs } = await import('../dns/nsd.js');
  for (const d of nsdRuntimeDirs(profile)) await mkdir(d, { recursive: true });
  const { prepareMailDirs } = await import('../mail/system.js');
  await prepareMailDirs(profile);

  const anchorFile = join(root, 'rehearsal-anchors.conf');
  const { writeFile } = await import('node:fs/promises');
  await writeFile(anchorFile, anchorText(bundle));

  const resolver = new Resolver({ timeout: 2000, tries: 2 });
  resolver.setServers([`${address}:${profile.ports.dns}`]);
  const postfixLog = () => readOr(postfixLogFile);
  const dovecotLog = () => readOr(dovecotLogFile);
  const primary = bundle.config.domains[0]!;

  // NSD first: the resolver and the checks ask it.
  const nsd = sup.start('nsd', 'nsd', ['-d', '-c', installedPath(profile, 'nsd/nsd.conf')]);
  await waitReady(nsd, async () => (await resolver.resolveSoa(primary).then(() => true, () => false)), 15_000);
  // Then the resolver every daemon asks (resolv.conf names it; rspamd is told so), before any of
  // them starts: in the rehearsal's own network it is the only one there is.
  const zones = [...new Set(bundle.config.domains.map(String))];
  const { startResolver } = await import('./resolver.js');
  const dns = await startResolver(zones, address, profile.ports.dns, tunnel?.zone);
  sup.onStop(dns.close);

  // The filter and DKIM signer with its Redis: rspamd from Debian's stock configuration plus the
  // bundle's files, its state and logs under the root; DNS to the rehearsal's resolver only.
  const { startSpamFilter } = await import('./spam.js');
  const spam = await startSpamFilter(sup, profile);

  // `postfix check` creates the queue folders, among them private/ where Dovecot puts its sockets.
  const { run } = await import('../tools/run.js');
  await run('postfix', ['-c', postfixDir, 'check'], { timeout: 60_000 }).catch(async (e: Error) => {
    throw new ToolError(`postfix check failed in the rehearsal root: ${e.message}\n${tail(await postfixLog())}`, 'postfix');
  });

  const dovecot = sup.start('dovecot', 'dovecot', ['-F', '-c', installedPath(profile, 'dovecot/dovecot.conf')]);
  const { mailPaths } = await import('../mail/paths.js');
  const lmtp = mailPaths(profile).lmtpSocket;
  await waitReady(
    dovecot,
    async () => (await tcpOpen(address, profile.ports.imaps)) && (await stat(lmtp).then(() => true, () => false)),
    20_000,
    dovecotLog,
  );
  await spam.ready();

  const postfix = sup.start('postfix', 'postfix', ['-c', postfixDir, 'start-fg']);
  await waitReady(
    postfix,
    async () => {
      for (const p of [profile.ports.smtp, profile.ports.submission, profile.ports.submissions]) if (!(await tcpOpen(address, p))) return false;
      return true;
    },
    30_000,
    postfixLog,
  );
  // master leaves the process group of `postfix start-fg` (setsid): follow it by its pid file.
  const masterPid = Number((await readOr(join(mailPaths(profile).postfixQueueDir, 'pid', 'master.pid'))).trim());
  if (Number.isInteger(masterPid) && masterPid > 1) sup.adoptGroup(masterPid);
  return { root, profile, address, ...(tunnel ? { tunnel } : {}), files, postfixLog, dovecotLog, spamLog: spam.log, resolver, anchorFile, dovecotGroup: dovecot.child.pid, questions: dns.questions, zones };
}
