/**
 * Every service module that contributes files to the bundle, in a fixed order. Each one is a
 * small module of its own (src/<service>/) with its templates in templates/<service>/.
 */
import type { ServiceModule } from './bundle/types.js';

/** Loaded lazily so that `selfmail --help` never imports a template engine or a crypto library. */
export async function services(): Promise<ServiceModule[]> {
  const [{ dnsService }, { postfixService }, { dovecotService }, { opendkimService }] = await Promise.all([
    import('./dns/service.js'),
    import('./postfix/index.js'),
    import('./dovecot/index.js'),
    import('./opendkim/index.js'),
  ]);
  return [dnsService, postfixService, dovecotService, opendkimService];
}
