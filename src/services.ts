/**
 * Every service module that contributes files to the bundle, in a fixed order. Each one is a
 * small module of its own (src/<service>/) with its templates in templates/<service>/.
 */
import type { ServiceModule } from './bundle/types.js';

/** Loaded lazily so that `selfmail --help` never imports a template engine or a crypto library. */
export async function services(): Promise<ServiceModule[]> {
  const [dns, postfix, dovecot, nft, ssh, f2b, unbound, web, acme, rspamd, backup, openpgp, vps, report] = await Promise.all([
    import('./dns/service.js'),
    import('./postfix/index.js'),
    import('./dovecot/index.js'),
    import('./nftables/index.js'),
    import('./ssh/index.js'),
    import('./fail2ban/index.js'),
    import('./unbound/index.js'),
    import('./web/index.js'),
    import('./acme/index.js'),
    import('./rspamd/index.js'),
    import('./backup/service.js'),
    import('./openpgp/service.js'),
    import('./vps/service.js'),
    import('./report/index.js'),
  ]);
  return [
    dns.dnsService,
    postfix.postfixService,
    dovecot.dovecotService,
    nft.nftablesService,
    ssh.sshService,
    f2b.fail2banService,
    unbound.unboundService,
    web.webService,
    acme.acmeService,
    rspamd.rspamdService,
    backup.backupService,
    openpgp.openpgpService,
    vps.vpsService,
    // Last: REPORT.md lists the warnings every other module added.
    report.reportService,
  ];
}
