/**
 * The web side of the host: the MTA-STS policy and the client autoconfiguration documents for
 * every domain, the Web Key Directory of the domains whose mailboxes publish an OpenPGP key,
 * served by nginx with the host's own certificate, and port 80 only for ACME challenges and a
 * redirect. Nothing else is served.
 */
import { access, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { BuildContext, BundleFile, ServiceModule } from '../bundle/types.js';
import { textFile } from '../bundle/types.js';
import type { Profile } from '../bundle/layout.js';
import { installedPath, sysPath } from '../bundle/layout.js';
import { stageTree } from '../bundle/stage.js';
import type { Config, DomainName } from '../config/types.js';
import { render } from '../render/index.js';
import { CLIENT_CIPHER_STRING } from '../tls/policy.js';
import { run } from '../tools/run.js';
import { clientSettings, outlookAutodiscover, thunderbirdConfig } from './autoconfig.js';
import { mtaStsPolicy } from './mtasts.js';
import { openpgpDomains, wkdHost, wkdPaths } from '../openpgp/names.js';
import { publishedKeys } from '../openpgp/service.js';

export const NGINX_PATH = 'nginx/selfmail.conf';
/** Where certbot's webroot challenges are written and served from (system path). */
export const ACME_WEBROOT = '/var/www/selfmail/acme';

/** Bundle paths of one domain's web documents. */
export function webPaths(domain: DomainName): { policy: string; thunderbird: string; outlook: string } {
  return {
    policy: `www/${domain}/.well-known/mta-sts.txt`,
    thunderbird: `www/${domain}/mail/config-v1.1.xml`,
    outlook: `www/${domain}/autodiscover/autodiscover.xml`,
  };
}

/**
 * The names this host serves over HTTPS for `domain`. Outlook's autodiscover document is served
 * on the autoconfig name too (Outlook finds it through `_autodiscover._tcp.<domain>` SRV), so
 * the certificate needs no third name per domain.
 */
export function siteNames(domain: DomainName): { mtaSts: DomainName; autoconfig: DomainName } {
  return {
    mtaSts: `mta-sts.${domain}` as DomainName,
    autoconfig: `autoconfig.${domain}` as DomainName,
  };
}

/**
 * Every name the host's certificate must cover for the web side (and the DNS must point here):
 * the host name (ACME over HTTP) and, per domain, mta-sts and autoconfig, and openpgpkey for a
 * domain with a published OpenPGP key (the Web Key Directory). Sorted.
 */
export function webNames(config: Pick<Config, 'hostname' | 'domains' | 'openpgpKeys'>): DomainName[] {
  const names = new Set<DomainName>([config.hostname]);
  for (const d of config.domains) for (const n of Object.values(siteNames(d))) names.add(n);
  for (const d of openpgpDomains(config)) names.add(wkdHost(d));
  return [...names].sort();
}

/** `listen` arguments for a port under `profile` (IPv6 in brackets). */
function listenAddresses(profile: Profile, port: number, suffix: string): string[] {
  const out: string[] = [];
  if (profile.listen.ipv4) out.push(`${profile.listen.ipv4}:${port}${suffix}`);
  if (profile.listen.ipv6) out.push(`[${profile.listen.ipv6}]:${port}${suffix}`);
  return out;
}

/** Render the nginx server blocks (pure apart from reading the template). */
export async function renderNginx(ctx: Pick<BuildContext, 'config' | 'profile' | 'keys'>): Promise<string> {
  const { config, profile } = ctx;
  return render('nginx', 'selfmail.conf', {
    httpListen: listenAddresses(profile, profile.ports.http, ''),
    httpsListen: listenAddresses(profile, profile.ports.https, ' ssl'),
    httpNames: webNames(config).join(' '),
    acmeRoot: sysPath(profile, ACME_WEBROOT),
    cert: installedPath(profile, ctx.keys.tls.certPath),
    key: installedPath(profile, ctx.keys.tls.keyPath),
    webRoot: sysPath(profile, '/var/www/selfmail'),
    sites: [...config.domains].sort().map((d) => ({ domain: d, ...siteNames(d) })),
    wkdSites: openpgpDomains(config).map((d) => ({ domain: d, name: wkdHost(d) })),
    clientCiphers: CLIENT_CIPHER_STRING,
  });
}

/**
 * The Web Key Directory, advanced method: each published key under its hashed name, and the
 * (empty) policy file the draft requires of every domain that serves one.
 */
export function wkdFiles(ctx: Pick<BuildContext, 'config' | 'previous' | 'openpgpKeys'>): BundleFile[] {
  const files: BundleFile[] = [];
  const policies = new Set<string>();
  for (const { email, key } of publishedKeys(ctx)) {
    const p = wkdPaths(email);
    files.push({ path: p.key, data: key, mode: 0o644, role: `OpenPGP public key of ${email} in the Web Key Directory` });
    if (!policies.has(p.policy)) files.push(textFile(p.policy, '', `Web Key Directory policy of ${email.slice(email.lastIndexOf('@') + 1)} (empty: no submission service)`));
    policies.add(p.policy);
  }
  return files;
}

export const webService: ServiceModule = {
  name: 'web',
  async build(ctx: BuildContext): Promise<BundleFile[]> {
    const { config } = ctx;
    const missing = webNames(config).filter((n) => !ctx.keys.tls.names.includes(n));
    if (missing.length > 0) {
      ctx.warnings.push(`the TLS certificate does not cover ${missing.join(', ')}; MTA-STS and client autoconfiguration fail on those names until it does`);
    }
    const files: BundleFile[] = [];
    const policy = mtaStsPolicy(config, ctx.mtaSts);
    for (const d of [...config.domains].sort()) {
      const p = webPaths(d);
      const s = clientSettings(config, ctx.profile.ports, d);
      files.push(textFile(p.policy, policy, `MTA-STS policy of ${d}`));
      files.push(textFile(p.thunderbird, await thunderbirdConfig(s), `Thunderbird autoconfig for ${d}`));
      files.push(textFile(p.outlook, await outlookAutodiscover(s), `Outlook autodiscover for ${d}`));
    }
    files.push(...wkdFiles(ctx));
    files.push(textFile(NGINX_PATH, await renderNginx(ctx), 'nginx: MTA-STS, autoconfig, ACME challenges'));
    return files;
  },
  async check(ctx: BuildContext): Promise<void> {
    const root = ctx.profile.root;
    if (!root) throw new Error('the nginx check needs a scratch root; it never runs against /etc');
    const dir = join(root, 'selfmail-check', 'nginx');
    await mkdir(dir, { recursive: true });
    // nginx -t loads the certificate and key; place them if the caller staged only our files.
    try {
      await access(installedPath(ctx.profile, ctx.keys.tls.certPath));
      await access(installedPath(ctx.profile, ctx.keys.tls.keyPath));
    } catch {
      await stageTree(ctx.keys.files.filter((f) => f.path === ctx.keys.tls.certPath || f.path === ctx.keys.tls.keyPath), root);
    }
    // A main file with every path nginx writes inside the scratch root.
    const main = join(dir, 'nginx.conf');
    const temp = (name: string) => `    ${name}_temp_path ${join(dir, name)};`;
    await writeFile(
      main,
      [
        `pid ${join(dir, 'nginx.pid')};`,
        `error_log ${join(dir, 'error.log')};`,
        'events {}',
        'http {',
        '    access_log off;',
        temp('client_body'),
        temp('proxy'),
        temp('fastcgi'),
        temp('uwsgi'),
        temp('scgi'),
        `    include ${installedPath(ctx.profile, NGINX_PATH)};`,
        '}',
        '',
      ].join('\n'),
    );
    await run('nginx', ['-t', '-q', '-p', `${dir}/`, '-e', join(dir, 'error.log'), '-c', main]);
  },
};
