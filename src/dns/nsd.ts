/**
 * The model of NSD's configuration: which zones it serves from which files, where it listens,
 * and which secondaries it notifies and lets transfer the zones (always with TSIG). Pure; the
 * templates templates/nsd/*.hbs turn it into text.
 */
import type { Profile } from '../bundle/layout.js';
import { installedPath, sysPath } from '../bundle/layout.js';
import type { Config, DomainName } from '../config/types.js';
import type { KeySet } from '../keys/types.js';

export interface NsdSecondary {
  /** Address of the secondary (NOTIFY goes there, transfers are allowed from there). */
  address: string;
  /** TSIG key name that authenticates NOTIFY and the transfers. */
  key: string;
}

export interface NsdZone {
  name: DomainName;
  zonefile: string;
  secondaries: NsdSecondary[];
}

export interface NsdTsigKey {
  name: string;
  algorithm: string;
  /** Only rendered into the 0600 file nsd/tsig.conf. */
  secret: string;
}

export interface NsdModel {
  /** `addr@port` for each listening address. */
  listen: string[];
  port: number;
  /** '' when NSD must not drop privileges (the rehearsal runs it as the current user). */
  username: string;
  pidfile: string;
  zonesdir: string;
  xfrdfile: string;
  xfrdir: string;
  zonelistfile: string;
  controlSocket: string;
  /** Path of the TSIG include, or undefined when there are no secondaries. */
  tsigInclude?: string;
  zones: NsdZone[];
}

/** Bundle path of the file with the TSIG secrets (mode 0600), included by nsd.conf. */
export const TSIG_CONF = 'nsd/tsig.conf';

/** The runtime folders NSD writes to under `profile`, which must exist before it starts. */
export function nsdRuntimeDirs(profile: Profile): string[] {
  return [sysPath(profile, '/run/nsd'), sysPath(profile, '/var/lib/nsd')];
}

/** The bundle path of the zone file NSD serves for `zone`. */
export function servedZonePath(config: Pick<Config, 'dnssec'>, zone: string): string {
  return config.dnssec ? `dns/${zone}.zone.signed` : `dns/${zone}.zone`;
}

/**
 * The NSD model for `config` under `profile`. Secondaries are the name servers that are not this
 * host; each needs a TSIG key from the key store, else it is left out with a warning (an
 * unauthenticated transfer, NOKEY, is never configured).
 */
export function nsdModel(config: Config, keys: Pick<KeySet, 'tsig'>, profile: Profile, warnings: string[] = []): NsdModel {
  const secondaries: NsdSecondary[] = [];
  for (const ns of config.nameServers.filter((n) => !n.self)) {
    const key = keys.tsig.find((k) => k.server === ns.name);
    if (!key) {
      warnings.push(`nsd: no TSIG key for the secondary ${ns.name}; it gets no NOTIFY and no zone transfer`);
      continue;
    }
    for (const address of [...ns.ipv4, ...ns.ipv6]) secondaries.push({ address, key: key.name });
  }
  secondaries.sort((a, b) => (a.address < b.address ? -1 : a.address > b.address ? 1 : 0));
  const listen = [profile.listen.ipv4, profile.listen.ipv6]
    .filter((a): a is string => a !== undefined)
    .map((a) => `${a}@${profile.ports.dns}`);
  return {
    listen,
    port: profile.ports.dns,
    username: profile.kind === 'production' ? 'nsd' : '',
    pidfile: sysPath(profile, '/run/nsd/nsd.pid'),
    zonesdir: sysPath(profile, '/etc/nsd'),
    xfrdfile: sysPath(profile, '/var/lib/nsd/xfrd.state'),
    // Not NSD's default /tmp: transfers stay in NSD's own folder, which exists on Debian.
    xfrdir: sysPath(profile, '/var/lib/nsd'),
    zonelistfile: sysPath(profile, '/var/lib/nsd/zone.list'),
    controlSocket: sysPath(profile, '/run/nsd/nsd.ctl'),
    ...(secondaries.length > 0 ? { tsigInclude: installedPath(profile, TSIG_CONF) } : {}),
    zones: [...config.domains].sort().map((name) => ({
      name,
      zonefile: installedPath(profile, servedZonePath(config, name)),
      secondaries,
    })),
  };
}

/** The TSIG keys NSD needs, secrets read from the key store (only for the 0600 include). */
export function nsdTsigKeys(config: Config, keys: Pick<KeySet, 'tsig' | 'read'>): NsdTsigKey[] {
  const servers = new Set(config.nameServers.filter((n) => !n.self).map((n) => n.name as string));
  return keys.tsig
    .filter((k) => servers.has(k.server))
    .sort((a, b) => (a.name < b.name ? -1 : 1))
    .map((k) => {
      const secret = keys.read(k.secretPath).toString('utf8').trim();
      if (!/^[A-Za-z0-9+/]+={0,2}$/.test(secret)) throw new Error(`the TSIG secret for ${k.server} is not base64`);
      return { name: k.name, algorithm: k.algorithm, secret };
    });
}
