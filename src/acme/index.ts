/**
 * ACME with the key made here (principle 1): certbot is given the bundle's CSR, never a key, so
 * the certificate changes at each renewal but the key does not, and the TLSA records (DANE) that
 * pin the key stay valid. A systemd timer runs the script daily; it renews 30 days before expiry
 * (or at once while the self-signed bootstrap certificate is in place) and reloads the services.
 */
import type { BuildContext, BundleFile, ServiceModule } from '../bundle/types.js';
import { textFile } from '../bundle/types.js';
import { installedPath, sysPath } from '../bundle/layout.js';
import { render } from '../render/index.js';
import { run } from '../tools/run.js';
import { ACME_WEBROOT } from '../web/index.js';

export const ACME_SCRIPT_PATH = 'bin/selfmail-acme';
export const ACME_SERVICE_PATH = 'systemd/selfmail-acme.service';
export const ACME_TIMER_PATH = 'systemd/selfmail-acme.timer';
/** Services that read the certificate and must reload after a renewal. */
export const RELOAD_AFTER_RENEWAL = ['dovecot', 'nginx', 'postfix'] as const;
/** The CA certbot talks to without `--server`. */
const CERTBOT_DEFAULT_CA = 'letsencrypt.org';

export const acmeService: ServiceModule = {
  name: 'acme',
  async build(ctx: BuildContext): Promise<BundleFile[]> {
    const { profile, keys, config } = ctx;
    if (config.acmeCa !== CERTBOT_DEFAULT_CA) {
      ctx.warnings.push(
        `CAA names ${config.acmeCa} as the certificate authority, but certbot uses Let's Encrypt unless told otherwise: put ACME_SERVER=<the CA's ACME directory URL> in /etc/default/selfmail-acme`,
      );
    }
    const script = await render('acme', 'selfmail-acme', {
      csr: installedPath(profile, keys.tls.csrPath),
      cert: installedPath(profile, keys.tls.certPath),
      webroot: sysPath(profile, ACME_WEBROOT),
      contact: config.admin,
      services: RELOAD_AFTER_RENEWAL.join(' '),
    });
    const service = await render('acme', 'selfmail-acme.service', {
      script: installedPath(profile, ACME_SCRIPT_PATH),
      defaults: sysPath(profile, '/etc/default/selfmail-acme'),
    });
    const timer = await render('acme', 'selfmail-acme.timer', {});
    return [
      textFile(ACME_SCRIPT_PATH, script, 'obtains and renews the certificate for the local key (certbot --csr)', 0o755),
      textFile(ACME_SERVICE_PATH, service, 'runs selfmail-acme'),
      textFile(ACME_TIMER_PATH, timer, 'runs selfmail-acme daily'),
    ];
  },
  async check(ctx: BuildContext): Promise<void> {
    // Syntax only: running it would ask a CA for a certificate.
    await run('bash', ['-n', installedPath(ctx.profile, ACME_SCRIPT_PATH)]);
  },
};
