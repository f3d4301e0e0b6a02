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
  /** Owner and group on the host (names; created by the Debian packages, or by apply for the mail account). */
  owner: string;
  group: string;
  /** Mode for files, overriding the bundle's mode; undefined keeps the bundle's. */
  mode?: number;
  /** The systemd units that read these files: reloaded or restarted by apply after a change. */
  units?: string[];
}

/** Every server that offers TLS with the host's key and certificate. */
const TLS_READERS = ['dovecot.service', 'nginx.service', 'postfix.service'];

/** The most specific rule wins: exact paths first, then longer prefixes. */
export const INSTALL_RULES: InstallRule[] = [
  { from: 'selfmail.yaml', to: '/etc/selfmail/selfmail.yaml', owner: 'root', group: 'root' },
  { from: 'REPORT.md', to: '/etc/selfmail/REPORT.md', owner: 'root', group: 'root' },
  { from: 'MANIFEST.sha256', to: '/etc/selfmail/MANIFEST.sha256', owner: 'root', group: 'root' },
  // rspamd signs with them (its workers run as _rspamd); /var/lib/rspamd/dkim is where Debian's
  // rspamd documentation puts them.
  { from: 'keys/dkim/', to: '/var/lib/rspamd/dkim/', owner: '_rspamd', group: '_rspamd', units: ['rspamd.service'] },
  { from: 'keys/tls/', to: '/etc/selfmail/tls/', owner: 'root', group: 'root', units: TLS_READERS },
  { from: 'keys/dnssec/', to: '/etc/selfmail/dnssec/', owner: 'root', group: 'root' },
  { from: 'keys/tsig/', to: '/etc/selfmail/tsig/', owner: 'root', group: 'nsd', mode: 0o640 },
  { from: 'keys/', to: '/etc/selfmail/keys/', owner: 'root', group: 'root' },
  { from: 'dns/', to: '/etc/nsd/zones/', owner: 'root', group: 'nsd', units: ['nsd.service'] },
  { from: 'nsd/nsd.conf', to: '/etc/nsd/nsd.conf', owner: 'root', group: 'nsd', mode: 0o640, units: ['nsd.service'] },
  { from: 'nsd/', to: '/etc/nsd/', owner: 'root', group: 'nsd', mode: 0o640, units: ['nsd.service'] },
  { from: 'postfix/', to: '/etc/postfix/', owner: 'root', group: 'root', units: ['postfix.service'] },
  { from: 'dovecot/users', to: '/etc/dovecot/users', owner: 'dovecot', group: 'dovecot', mode: 0o600, units: ['dovecot.service'] },
  { from: 'dovecot/', to: '/etc/dovecot/', owner: 'root', group: 'root', units: ['dovecot.service'] },
  // OpenDKIM's files, which bundles made before rspamd signed had: kept so that apply removes
  // them from a host that still has them (see RETIRED_UNITS in src/apply/units.ts).
  { from: 'opendkim/opendkim.conf', to: '/etc/opendkim.conf', owner: 'root', group: 'root' },
  { from: 'opendkim/', to: '/etc/opendkim/', owner: 'root', group: 'root' },
  { from: 'nftables/', to: '/etc/selfmail/nftables/', owner: 'root', group: 'root', units: ['selfmail-firewall.service'] },
  { from: 'ssh/', to: '/etc/ssh/', owner: 'root', group: 'root', units: ['ssh.service'] },
  { from: 'fail2ban/', to: '/etc/fail2ban/', owner: 'root', group: 'root', units: ['fail2ban.service'] },
  { from: 'rspamd/', to: '/etc/rspamd/', owner: 'root', group: 'root', units: ['rspamd.service'] },
  { from: 'unbound/', to: '/etc/unbound/unbound.conf.d/', owner: 'root', group: 'root', units: ['unbound.service'] },
  // Not /etc/resolv.conf itself: selfmail-resolver.service points the host there once unbound answers.
  { from: 'resolver/resolv.conf', to: '/etc/selfmail/resolv.conf', owner: 'root', group: 'root', mode: 0o644, units: ['selfmail-resolver.service'] },
  { from: 'nginx/', to: '/etc/nginx/conf.d/', owner: 'root', group: 'root', units: ['nginx.service'] },
  { from: 'www/', to: '/var/www/selfmail/', owner: 'root', group: 'root' },
  { from: 'systemd/', to: '/etc/systemd/system/', owner: 'root', group: 'root' },
  // The home end of the tunnel to the user's VPS (--ingress own-vps); vps/ is for the VPS and is not installed here.
  { from: 'wireguard/', to: '/etc/wireguard/', owner: 'root', group: 'root', mode: 0o600, units: ['wg-quick@selfmail.service'] },
  { from: 'bin/', to: '/usr/local/lib/selfmail/', owner: 'root', group: 'root', mode: 0o755 },
];

/**
 * Where files of a bundle path prefix were installed by earlier versions of selfmail: apply
 * removes what is still there (the DKIM keys OpenDKIM read from /etc/opendkim/keys).
 */
export const FORMER_LOCATIONS: ReadonlyArray<{ from: string; to: string }> = [{ from: 'keys/dkim/', to: '/etc/opendkim/keys/' }];

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
  /** rspamd's milter (inbound mail and signing), on loopback (its scanner and controller take the next two). */
  spam: number;
  /** The Redis rspamd keeps its state in, on loopback. */
  redis: number;
  /** ManageSieve (users' own mail rules), STARTTLS required before any login. */
  managesieve: number;
  /**
   * Postfix's listener for mail this host itself writes (Sieve's vacation replies and redirects),
   * on loopback only: rspamd takes it as a submission (signs it, never judges it as inbound mail).
   */
  localSubmission: number;
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
  spam: 11332,
  redis: 6379,
  managesieve: 4190,
  localSubmission: 10587,
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
