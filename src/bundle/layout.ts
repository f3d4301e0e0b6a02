/**
 * Where each bundle file lives on a host, and how the rendered configs refer to system paths.
 *
 * One table maps bundle paths to Debian's standard locations. `apply` installs by it; the
 * templates use the same table (through a Profile) to name the files they point at, so a config
 * and the place its key or map is installed can never disagree. The rehearsal renders with a
 * Profile whose `root` is a temporary folder, so every path in every config moves there.
 */

export interface InstallRule {
  /** A bundle path prefix (ending in `/`) or an exact bundle path. */
  from: string;
  /** The system path it maps to (prefix or exact, like `from`). */
  to: string;
  /** Owner and group on the host (names; created by the Debian packages, or by apply for vmail). */
  owner: string;
  group: string;
  /** Mode for files, overriding the bundle's mode; undefined keeps the bundle's. */
  mode?: number;
  /** The service to reload after a change (systemd unit name). */
  service?: string;
}

/** The most specific rule wins: exact paths first, then longer prefixes. */
export const INSTALL_RULES: InstallRule[] = [
  { from: 'selfmail.yaml', to: '/etc/selfmail/selfmail.yaml', owner: 'root', group: 'root' },
  { from: 'REPORT.md', to: '/etc/selfmail/REPORT.md', owner: 'root', group: 'root' },
  { from: 'MANIFEST.sha256', to: '/etc/selfmail/MANIFEST.sha256', owner: 'root', group: 'root' },
  { from: 'keys/dkim/', to: '/etc/opendkim/keys/', owner: 'opendkim', group: 'opendkim', service: 'opendkim' },
  { from: 'keys/tls/', to: '/etc/selfmail/tls/', owner: 'root', group: 'root', service: 'postfix' },
  { from: 'keys/dnssec/', to: '/etc/selfmail/dnssec/', owner: 'root', group: 'root' },
  { from: 'keys/tsig/', to: '/etc/selfmail/tsig/', owner: 'root', group: 'nsd', mode: 0o640 },
  { from: 'keys/', to: '/etc/selfmail/keys/', owner: 'root', group: 'root' },
  { from: 'dns/', to: '/etc/nsd/zones/', owner: 'root', group: 'nsd', service: 'nsd' },
  { from: 'nsd/nsd.conf', to: '/etc/nsd/nsd.conf', owner: 'root', group: 'nsd', mode: 0o640, service: 'nsd' },
  { from: 'nsd/', to: '/etc/nsd/', owner: 'root', group: 'nsd', mode: 0o640, service: 'nsd' },
  { from: 'postfix/', to: '/etc/postfix/', owner: 'root', group: 'root', service: 'postfix' },
  { from: 'dovecot/users', to: '/etc/dovecot/users', owner: 'dovecot', group: 'dovecot', mode: 0o600, service: 'dovecot' },
  { from: 'dovecot/', to: '/etc/dovecot/', owner: 'root', group: 'root', service: 'dovecot' },
  { from: 'opendkim/opendkim.conf', to: '/etc/opendkim.conf', owner: 'root', group: 'root', service: 'opendkim' },
  { from: 'opendkim/', to: '/etc/opendkim/', owner: 'opendkim', group: 'opendkim', service: 'opendkim' },
  { from: 'nftables/', to: '/etc/selfmail/nftables/', owner: 'root', group: 'root', service: 'selfmail-firewall' },
  { from: 'ssh/', to: '/etc/ssh/', owner: 'root', group: 'root', service: 'ssh' },
  { from: 'fail2ban/', to: '/etc/fail2ban/', owner: 'root', group: 'root', service: 'fail2ban' },
  { from: 'unbound/', to: '/etc/unbound/unbound.conf.d/', owner: 'root', group: 'root', service: 'unbound' },
  { from: 'resolver/resolv.conf', to: '/etc/resolv.conf', owner: 'root', group: 'root', mode: 0o644 },
  { from: 'nginx/', to: '/etc/nginx/conf.d/', owner: 'root', group: 'root', service: 'nginx' },
  { from: 'www/', to: '/var/www/selfmail/', owner: 'root', group: 'root' },
  { from: 'systemd/', to: '/etc/systemd/system/', owner: 'root', group: 'root' },
  { from: 'bin/', to: '/usr/local/lib/selfmail/', owner: 'root', group: 'root', mode: 0o755 },
];

const SORTED = [...INSTALL_RULES].sort((a, b) => {
  const exactA = !a.from.endsWith('/');
  const exactB = !b.from.endsWith('/');
  if (exactA !== exactB) return exactA ? -1 : 1;
  return b.from.length - a.from.length;
});

/** The rule that applies to a bundle path, or undefined when the file is not installed. */
export function ruleFor(bundlePath: string): InstallRule | undefined {
  return SORTED.find((r) => (r.from.endsWith('/') ? bundlePath.startsWith(r.from) : bundlePath === r.from));
}

/** The absolute system path of a bundle file (without any install root). */
export function systemPathOf(bundlePath: string): string {
  const rule = ruleFor(bundlePath);
  if (!rule) throw new Error(`no install rule for bundle path ${bundlePath}`);
  return rule.from.endsWith('/') ? rule.to + bundlePath.slice(rule.from.length) : rule.to;
}

export interface Ports {
  smtp: number;
  submission: number;
  submissions: number;
  imaps: number;
  dns: number;
  http: number;
  https: number;
  /** The OpenDKIM milter, on loopback. */
  milter: number;
}

/**
 * How configs are rendered for one place. Production: the paths and ports of a Debian host.
 * Rehearsal: everything under a temporary root, on loopback addresses and high ports.
 */
export interface Profile {
  kind: 'production' | 'rehearsal';
  /** Prefix of every absolute path written into a config; '' in production. */
  root: string;
  /** Addresses the public-facing services bind to (undefined: that family is not served). */
  listen: { ipv4?: string; ipv6?: string };
  ports: Ports;
  /** The unprivileged owner of the mailboxes. */
  mailUser: { name: string; group: string };
}

/** A system path as a rendered config must name it under `profile`. */
export function sysPath(profile: Profile, path: string): string {
  return profile.root + path;
}

/** Where a bundle file is found by the running services under `profile`. */
export function installedPath(profile: Profile, bundlePath: string): string {
  return sysPath(profile, systemPathOf(bundlePath));
}

export const STANDARD_PORTS: Ports = {
  smtp: 25,
  submission: 587,
  submissions: 465,
  imaps: 993,
  dns: 53,
  http: 80,
  https: 443,
  milter: 8891,
};

/** The production profile of a config: binds to the LAN address behind a port forward, else the public one. */
export function productionProfile(config: {
  ipv4?: string;
  ipv6?: string;
  listenIpv4?: string;
  listenIpv6?: string;
}): Profile {
  const listen: Profile['listen'] = {};
  const v4 = config.listenIpv4 ?? config.ipv4;
  const v6 = config.listenIpv6 ?? config.ipv6;
  if (v4) listen.ipv4 = v4;
  if (v6) listen.ipv6 = v6;
  return { kind: 'production', root: '', listen, ports: STANDARD_PORTS, mailUser: { name: 'vmail', group: 'vmail' } };
}
