/**
 * Every service module that contributes files to the bundle, in a fixed order. Each one is a
 * small module of its own (src/<service>/) with its templates in templates/<service>/.
 */
import type { ServiceModule } from './bundle/types.js';

/** Loaded lazily so that `selfmail --help` never imports a template engine or a crypto library. */
export async function services(): Promise<ServiceModule[]> {
  const { dnsService } = await import('./dns/service.js');
  return [dnsService];
}
