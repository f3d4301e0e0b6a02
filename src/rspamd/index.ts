/**
 * rspamd, the spam filter (principle: no third party sees the mail). Debian's package brings the
 * stock configuration; the bundle adds `/etc/rspamd/local.d` and `override.d` files that keep every
 * worker on loopback, keep its state in the local Redis, send DNS only to this host's own resolver,
 * and turn off everything that asks or tells an outside service about a message. What is left is
 * local: SPF, DKIM, DMARC and ARC verification, Bayes, greylisting, rate limits, MIME and header
 * rules, the phishing heuristics. The check asks rspamd itself (`rspamadm configdump -m`) which
 * modules are enabled: a bundle in which any of the outside ones is on is not written.
 */
import { cp, mkdir, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { BuildContext, BundleFile, ServiceModule } from '../bundle/types.js';
import { textFile } from '../bundle/types.js';
import { render } from '../render/index.js';
import { ToolError } from '../errors.js';
import { run } from '../tools/run.js';
import { lookupsOf } from './lookups.js';
import { dkimSigningModel } from './dkim.js';
import { rspamdPorts } from '../mail/paths.js';
import { STANDARD_PORTS } from '../bundle/layout.js';

/** Where Debian's rspamd reads the site's additions (merged) and overrides (replacing). */
const LOCAL = 'rspamd/local.d';
const OVERRIDE = 'rspamd/override.d';

/** rspamd's loopback address: its workers, its Redis (Debian's redis-server listens there). */
const LOOPBACK = '127.0.0.1';

/**
 * Modules that ask or tell someone else about a message, off by default, with who would learn
 * what (REPORT.md says the same). Some exist only in one release (gpt in rspamd 3.12): a file for
 * a module a release lacks is never read. (rspamd lists an `emails` module as enabled: it is an
 * empty tombstone since the blocklist lookups of addresses moved into `rbl`.)
 */
export const OUTSIDE_MODULES: ReadonlyArray<{ module: string; why: string }> = [
  { module: 'rbl', why: 'It asks DNS blocklists (Spamhaus, Mailspike, SenderScore, SURBL, URIBL, rspamd.com and others) about every connecting address, sender domain and URL: each list operator learns who writes to you.' },
  { module: 'fuzzy_check', why: 'It sends a fuzzy hash of every message to fuzzy1.rspamd.com and fuzzy2.rspamd.com.' },
  { module: 'asn', why: 'It asks asn.rspamd.com which network every connecting address belongs to.' },
  { module: 'url_redirector', why: 'It fetches every shortened URL of a message from its web server, which learns that the message arrived.' },
  { module: 'multimap', why: "Its stock rules download maps.rspamd.com's freemail and disposable-address lists." },
  { module: 'whitelist', why: 'Its stock lists are downloaded from maps.rspamd.com.' },
  { module: 'mid', why: 'Its list is downloaded from maps.rspamd.com.' },
  { module: 'rspamd_update', why: 'It downloads rules from updates.rspamd.com.' },
  { module: 'dcc', why: 'It sends checksums of every message to DCC servers.' },
  { module: 'elastic', why: 'It exports message metadata to an Elasticsearch server.' },
  { module: 'metadata_exporter', why: 'It exports message metadata to outside services.' },
  { module: 'clickhouse', why: 'It exports message metadata to a ClickHouse server.' },
  { module: 'aws_s3', why: 'It uploads messages to an S3 bucket.' },
  { module: 'external_services', why: 'It sends messages to outside scanners.' },
  { module: 'antivirus', why: 'It sends messages to an antivirus service.' },
  { module: 'bimi', why: 'It fetches logos and certificates from the senders\' web servers.' },
  { module: 'gpt', why: 'It sends messages to a language-model API (OpenAI or another).' },
];

export const rspamdService: ServiceModule = {
  name: 'rspamd',
  async build(ctx: BuildContext): Promise<BundleFile[]> {
    const { ports } = ctx.profile;
    // DNS to the host's own resolver on loopback port 53: unbound in production; in the
    // rehearsal's own network, the rehearsal's resolver (src/rehearse/resolver.ts), which logs
    // every question and sends none beyond the rehearsal's NSD.
    const model = { listen: LOOPBACK, ports: rspamdPorts(ports.spam), redis: `${LOOPBACK}:${ports.redis}`, resolver: `${LOOPBACK}:${STANDARD_PORTS.dns}`, rehearsal: ctx.profile.kind === 'rehearsal' };
    const files: BundleFile[] = [
      textFile(`${LOCAL}/worker-proxy.inc`, await render('rspamd', 'worker-proxy.inc', model), 'rspamd milter for port 25, on loopback'),
      textFile(`${LOCAL}/worker-normal.inc`, await render('rspamd', 'worker-normal.inc', model), 'rspamd scanner, on loopback'),
      textFile(`${LOCAL}/worker-controller.inc`, await render('rspamd', 'worker-controller.inc', model), 'rspamd controller, on loopback'),
      textFile(`${LOCAL}/redis.conf`, await render('rspamd', 'redis.conf', model), "rspamd's state in the local Redis"),
      textFile(`${LOCAL}/options.inc`, await render('rspamd', 'options.inc', model), "rspamd's DNS through this host's resolver"),
      textFile(`${LOCAL}/milter_headers.conf`, await render('rspamd', 'milter_headers.conf', {}), 'the spam verdict in headers'),
      textFile(`${LOCAL}/dmarc.conf`, await render('rspamd', 'dmarc.conf', {}), 'DMARC p=reject refused at SMTP time'),
      textFile(`${LOCAL}/spf.conf`, await render('rspamd', 'check-local.conf', { module: 'SPF' }), 'SPF checked for every client'),
      textFile(`${LOCAL}/dkim.conf`, await render('rspamd', 'check-local.conf', { module: 'DKIM verification' }), 'DKIM checked for every client'),
    ];
    const lookups = lookupsOf(ctx.config.spamLookups);
    files.push(textFile(`${OVERRIDE}/dkim_signing.conf`, await render('rspamd', 'dkim_signing.conf', dkimSigningModel(ctx.config, ctx.keys.dkim, ctx.profile)), 'DKIM signing of outgoing mail (RSA and Ed25519)'));
    for (const { module, why } of OUTSIDE_MODULES) {
      // The blocklists the user opted in to replace rspamd's stock list; nothing else of rbl runs.
      if (module === 'rbl' && lookups.length > 0) continue;
      files.push(textFile(`${OVERRIDE}/${module}.conf`, await render('rspamd', 'disabled.conf', { module, why }), `rspamd's ${module} module off`));
    }
    if (lookups.length > 0) {
      const names = lookups.map((l) => l.name);
      files.push(textFile(`${OVERRIDE}/rbl.conf`, await render('rspamd', 'rbl.conf', { names, ...Object.fromEntries(names.map((n) => [n, true])) }), `rspamd's blocklists, opted in: ${names.join(', ')}`));
    }
    files.push(
      textFile(`${OVERRIDE}/phishing.conf`, await render('rspamd', 'phishing.conf', {}), "rspamd's phishing heuristics without the outside feeds"),
      textFile(
        `${OVERRIDE}/mime_types.conf`,
        await render('rspamd', 'local-map.conf', { module: 'mime_types', key: 'file', file: 'mime_types.inc', why: 'the file Debian ships is the same list' }),
        "rspamd's MIME type rules from the local map",
      ),
    );
    return files;
  },
  async check(ctx: BuildContext): Promise<void> {
    const root = ctx.profile.root;
    if (!root) throw new Error('the rspamd check needs a scratch root; it never runs against /etc');
    const confdir = await stockConfigInto(root);
    // rspamadm takes --var only as --var=NAME=VALUE, before the command.
    const vars = [`--var=CONFDIR=${confdir}`, `--var=LOCAL_CONFDIR=${confdir}`];
    const conf = join(confdir, 'rspamd.conf');
    // Not -s: with multimap off, a stock rule names its FREEMAIL symbols as dependencies, which
    // strict mode counts as errors; a file rspamd cannot parse fails either way. Side by side:
    // each loads the whole configuration (about half a second).
    const [, modules, dump] = await Promise.all([
      run('rspamadm', [...vars, 'configtest', '-c', conf]),
      run('rspamadm', [...vars, 'configdump', '-m', '-c', conf]),
      run('rspamadm', [...vars, 'configdump', '-j', '-c', conf]),
    ]);
    const on = enabledModules(modules.stdout);
    const lookups = lookupsOf(ctx.config.spamLookups);
    const leaking = outsideModulesOn(on, lookups.length > 0).map((m) => m.module);
    if (leaking.length > 0) {
      throw new ToolError(`rspamd would run ${leaking.join(', ')}, which ${leaking.length > 1 ? 'ask or tell' : 'asks or tells'} an outside service about messages; nothing was written`, 'rspamadm configdump');
    }
    // And what the DKIM signer would sign with is exactly the bundle's active pairs.
    const config = JSON.parse(dump.stdout) as Record<string, unknown>;
    const signs = signingSelectors(on.has('dkim_signing') ? config.dkim_signing : undefined);
    const signWith = dkimSigningModel(ctx.config, ctx.keys.dkim, ctx.profile).domains.flatMap((d) => d.selectors.map((x) => `${d.name} ${x.selector} ${x.path}`)).sort();
    if (signs.join('\n') !== signWith.join('\n')) {
      throw new ToolError(`rspamd would sign with ${signs.join(', ') || 'nothing'}, not the bundle's active DKIM keys (${signWith.join(', ')}); nothing was written`, 'rspamadm configdump');
    }
    // And no module it runs names an outside address (a map URL, a lookup service), whatever a
    // release adds to its stock configuration.
    if (lookups.length > 0) {
      // rbl runs, asking exactly the zones of the lookups opted in to.
      const asked = rblZones(config.rbl);
      const wanted = lookups.flatMap((l) => l.zones).sort();
      if (asked.join(' ') !== wanted.join(' ')) {
        throw new ToolError(`rspamd's blocklists would ask ${asked.join(', ') || 'nothing'}, not the lookups opted in to (${wanted.join(', ')}); nothing was written`, 'rspamadm configdump');
      }
    }
    const named = outsideReferences(config, lookups.length > 0 ? new Set([...on].filter((m) => m !== 'rbl')) : on);
    if (named.length > 0) {
      throw new ToolError(`rspamd's enabled modules name outside services: ${named.join('; ')}; nothing was written`, 'rspamadm configdump');
    }
  },
};

/**
 * Debian's stock rspamd configuration from the installed package, copied under `root` beside the
 * bundle's local.d and override.d (the host's own are left out, so that only the bundle's count).
 * Returns the configuration folder.
 */
export async function stockConfigInto(root: string): Promise<string> {
  const confdir = join(root, 'etc/rspamd');
  await mkdir(confdir, { recursive: true });
  for (const entry of await readdir('/etc/rspamd')) {
    if (entry === 'local.d' || entry === 'override.d') continue;
    await cp(join('/etc/rspamd', entry), join(confdir, entry), { recursive: true, force: false, errorOnExist: false });
  }
  return confdir;
}

/** A value that points outside this host: a URL, or a lookup service rspamd's stock rules use. */
const OUTSIDE = /https?:\/\/|rspamd\.com|spamhaus|surbl|uribl|dnswl|mailspike|senderscore|spameatingmonkey|openphish|phishtank/i;

/**
 * Where the configuration of an enabled module (`rspamadm configdump -j`) names an outside
 * address, as `module.path = value`. The phishing module keeps its OpenPhish and PhishTank
 * settings named; they count by their switches (`*_enabled`). Pure.
 */
export function outsideReferences(dump: Record<string, unknown>, enabled: ReadonlySet<string>): string[] {
  const found: string[] = [];
  const walk = (x: unknown, path: string): void => {
    if (typeof x === 'string') {
      if (OUTSIDE.test(x)) found.push(`${path} = ${x}`);
    } else if (Array.isArray(x)) x.forEach((v, i) => walk(v, `${path}.${i}`));
    else if (x && typeof x === 'object') for (const [k, v] of Object.entries(x)) walk(v, `${path}.${k}`);
  };
  for (const m of [...enabled].sort()) {
    const section = dump[m];
    if (m === 'phishing' && section && typeof section === 'object') {
      // The feeds' addresses live in the module's code, not always in its configuration: a feed
      // that is on counts as outside by its switch alone.
      const ph = section as Record<string, unknown>;
      for (const feed of ['openphish', 'phishtank']) if (ph[`${feed}_enabled`] === true) found.push(`phishing.${feed}_enabled = true`);
      walk(Object.fromEntries(Object.entries(ph).filter(([k]) => !/^(openphish|phishtank)/.test(k))), m);
      continue;
    }
    walk(section, m);
  }
  return found;
}

/**
 * The outside modules among those rspamd runs (`on`), rbl left out when the bundle opted in to
 * blocklists (`--spam-lookups`): what must not run. Pure; init's check and apply's share it.
 */
export function outsideModulesOn(on: ReadonlySet<string>, lookupsOptedIn: boolean): Array<{ module: string; why: string }> {
  return OUTSIDE_MODULES.filter((m) => on.has(m.module) && !(m.module === 'rbl' && lookupsOptedIn));
}

/** The DNS zones rspamd's rbl module asks, from its `configdump -j` section. Pure. */
export function rblZones(section: unknown): string[] {
  const rbls = (section as { rbls?: Record<string, { rbl?: unknown }> } | undefined)?.rbls ?? {};
  return Object.values(rbls)
    .map((r) => r.rbl)
    .filter((z): z is string => typeof z === 'string')
    .sort();
}

/**
 * `domain selector path` for every key rspamd's dkim_signing section (as configdump -j prints it)
 * signs with, sorted; empty when the section is absent. Pure.
 */
export function signingSelectors(section: unknown): string[] {
  type Sel = { selector?: unknown; path?: unknown };
  const domains = (section as { domain?: Record<string, { selectors?: Sel[] | Sel }> } | undefined)?.domain ?? {};
  const out: string[] = [];
  for (const [name, d] of Object.entries(domains)) {
    // UCL prints a one-element list as the element itself.
    const list = Array.isArray(d.selectors) ? d.selectors : d.selectors ? [d.selectors] : [];
    for (const x of list) out.push(`${name} ${String(x.selector)} ${String(x.path)}`);
  }
  return out.sort();
}

/** The modules `rspamadm configdump -m` lists as enabled. Pure. */
export function enabledModules(dump: string): Set<string> {
  const line = /^Modules enabled:(.*)$/m.exec(dump)?.[1];
  if (line === undefined) throw new ToolError(`rspamadm configdump -m printed no "Modules enabled:" line:\n${dump}`, 'rspamadm configdump');
  return new Set(line.split(',').map((m) => m.trim()).filter(Boolean));
}
