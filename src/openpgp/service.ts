/**
 * The OpenPGP module: the bundle's copy of each published key (`openpgp/<email>.pgp`, binary,
 * public), which the next run reuses when no file is given. The key is published by the DNS
 * module (OPENPGPKEY, src/dns/records.ts) and the web module (the Web Key Directory,
 * src/web/index.ts); both take it from `publishedKeys`. Nothing here is installed on the host.
 */
import type { BuildContext, BundleFile, ServiceModule } from '../bundle/types.js';
import type { Email } from '../config/types.js';
import { keyPath } from './names.js';

export interface PublishedKey {
  email: Email;
  /** The transferable public key, binary (validated by src/openpgp/publish.ts before the build). */
  key: Buffer;
}

/**
 * The keys the config publishes, in the config's order: those validated this run
 * (`ctx.openpgpKeys`), else the bundle's own copy (the rehearsal renders from the bundle alone).
 */
export function publishedKeys(ctx: Pick<BuildContext, 'config' | 'previous' | 'openpgpKeys'>): PublishedKey[] {
  return ctx.config.openpgpKeys.map((email) => {
    const key = ctx.openpgpKeys?.get(email) ?? ctx.previous.read(keyPath(email));
    if (!key) throw new Error(`internal: no OpenPGP key for ${email} reached the build`);
    return { email, key };
  });
}

export const openpgpService: ServiceModule = {
  name: 'openpgp',
  build(ctx: BuildContext): BundleFile[] {
    return publishedKeys(ctx).map(({ email, key }) => ({
      path: keyPath(email),
      data: key,
      mode: 0o644,
      role: `OpenPGP public key of ${email} (published as OPENPGPKEY and in the Web Key Directory)`,
    }));
  },
};
