/**
 * A local validating resolver (unbound) on loopback only. Postfix's outbound DANE trusts the AD
 * bit of its resolver, so that resolver must be on this host and validate DNSSEC itself; a
 * resolver across the network (the ISP's) could forge the bit. The host's resolv.conf points at
 * it, with `trust-ad` so that glibc passes the AD bit on to Postfix, but only once unbound
 * answers (selfmail-resolver.service): a host pointed at a resolver that is not running cannot
 * even install packages.
 */
import { access, copyFile, mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { BuildContext, BundleFile, ServiceModule } from '../bundle/types.js';
import { textFile } from '../bundle/types.js';
import { installedPath, sysPath } from '../bundle/layout.js';
import { render } from '../render/index.js';
import { run } from '../tools/run.js';

export const UNBOUND_PATH = 'unbound/selfmail.conf';
export const RESOLV_CONF_PATH = 'resolver/resolv.conf';
export const RESOLVER_SCRIPT_PATH = 'bin/selfmail-resolver';
export const RESOLVER_UNIT_PATH = 'systemd/selfmail-resolver.service';
/** How long the switch waits for unbound to answer, in seconds. */
export const RESOLVER_WAIT_SECONDS = 30;
/**
 * Debian's trust anchor file, kept up to date by unbound's RFC 5011 tracking; Debian's own
 * unbound.conf.d/root-auto-trust-anchor-file.conf names it, and selfmail's file must not again.
 */
export const TRUST_ANCHOR = '/var/lib/unbound/root.key';

export const unboundService: ServiceModule = {
  name: 'unbound',
  async build(ctx: BuildContext): Promise<BundleFile[]> {
    const conf = await render('unbound', 'selfmail.conf', { trustAnchor: sysPath(ctx.profile, TRUST_ANCHOR) });
    const resolv = await render('unbound', 'resolv.conf', {});
    const script = await render('unbound', 'selfmail-resolver', {
      conf: installedPath(ctx.profile, RESOLV_CONF_PATH),
      target: sysPath(ctx.profile, '/etc/resolv.conf'),
      tries: RESOLVER_WAIT_SECONDS,
    });
    const unit = await render('unbound', 'selfmail-resolver.service', { script: installedPath(ctx.profile, RESOLVER_SCRIPT_PATH) });
    return [
      textFile(UNBOUND_PATH, conf, 'local validating resolver on loopback (for DANE)'),
      textFile(RESOLV_CONF_PATH, resolv, "the host's resolver: the local unbound, once it answers"),
      textFile(RESOLVER_SCRIPT_PATH, script, 'points /etc/resolv.conf at unbound once unbound answers', 0o755),
      textFile(RESOLVER_UNIT_PATH, unit, 'runs selfmail-resolver after unbound starts'),
    ];
  },
  async check(ctx: BuildContext): Promise<void> {
    const root = ctx.profile.root;
    if (!root) throw new Error('the unbound check needs a scratch root; it never runs against /etc');
    const dir = join(root, 'selfmail-check', 'unbound');
    await mkdir(dir, { recursive: true });
    // The auto trust anchor must exist to be checked; seed it from Debian's copy of the root key.
    const anchor = sysPath(ctx.profile, TRUST_ANCHOR);
    try {
      await access(anchor);
    } catch {
      await mkdir(dirname(anchor), { recursive: true });
      await copyFile('/usr/share/dns/root.key', anchor);
    }
    // A main file like Debian's (with its root-auto-trust-anchor-file.conf), inside the scratch root.
    const main = join(dir, 'unbound.conf');
    await writeFile(
      main,
      [
        'server:',
        '    chroot: ""',
        `    directory: "${dir}"`,
        `    pidfile: "${join(dir, 'unbound.pid')}"`,
        `    auto-trust-anchor-file: "${anchor}"`,
        `include-toplevel: "${installedPath(ctx.profile, UNBOUND_PATH)}"`,
        '',
      ].join('\n'),
    );
    await run('unbound-checkconf', [main]);
    await run('sh', ['-n', installedPath(ctx.profile, RESOLVER_SCRIPT_PATH)]);
  },
};
