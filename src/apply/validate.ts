/**
 * The installed configuration, checked by the services' own tools. The configs name absolute
 * system paths (/etc/postfix/…), so when apply installs under another root the tools run in a
 * private mount namespace where each staged top-level folder is laid over the real one with a
 * read-only overlay: the tools see the new files at their real paths, merged with what the host
 * already has there (postfix-files, dovecot's conf.d, …), and the host itself is never touched.
 */
import { existsSync } from 'node:fs';
import { copyFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, posix } from 'node:path';
import { ToolError } from '../errors.js';
import { hasTool, run } from '../tools/run.js';

/** One check by a real tool. */
export interface Validator {
  /** What it checks, for messages: `postfix check`. */
  name: string;
  cmd: string;
  args: string[];
  /** Output lines matching this fail the check even with exit 0 (Postfix only warns about some errors). */
  failOn?: RegExp;
  /** Run as this user (runuser): the daemon reads its files after dropping to it. */
  asUser?: string;
  /** sshd -t needs its privilege separation directory. */
  needsPrivsepDir?: boolean;
  /** Files the daemon creates on its first start, supplied for the check when absent. */
  seeds?: Seed[];
  /**
   * Folders the tool writes into even when only testing (nginx -t creates its temp folders and
   * opens its logs): an empty tmpfs stands in for each, inside the namespace only.
   */
  scratch?: string[];
  /**
   * The tool binds its listening sockets even when testing (nginx -t): it runs in a network
   * namespace of its own that allows binding addresses the host does not have (yet), so the check
   * neither depends on the addresses nor collides with a running server.
   */
  ownNetwork?: boolean;
}

/**
 * A file that a fresh host lacks until its daemon first runs (unbound's trust anchor), while the
 * config names it. For the check only, and only inside the private namespace, a copy of `from` is
 * shown at `path`; the host's own folder is never written.
 */
export interface Seed {
  /** System path the configuration names. */
  path: string;
  /** Where Debian keeps the initial copy. */
  from: string;
  /** The Debian package that ships `from`. */
  pkg: string;
}

/** unbound's RFC 5011 trust anchor: Debian's unbound helper copies it from dns-root-data at start. */
export const UNBOUND_ROOT_KEY: Seed = { path: '/var/lib/unbound/root.key', from: '/usr/share/dns/root.key', pkg: 'dns-root-data' };

/** The zone name of a zone file in the bundle (`dns/example.org.zone.signed` → `example.org`). */
function zoneOf(bundlePath: string): string | undefined {
  const m = /^dns\/([^/]+?)\.zone(\.signed)?$/.exec(bundlePath);
  return m?.[1];
}

/**
 * The checks that apply to a set of installed files (bundle path → system path), in a fixed
 * order; each only when its service's files are among them. Pure.
 */
export function validatorsFor(installed: ReadonlyMap<string, string>): Validator[] {
  const paths = [...installed.keys()].sort();
  const has = (prefix: string) => paths.some((p) => p.startsWith(prefix));
  const out: Validator[] = [];
  if (has('postfix/')) {
    const warn = /(^|\s)(warning|fatal|error):/im;
    out.push({ name: 'postfix check', cmd: 'postfix', args: ['check'], failOn: warn });
    out.push({ name: 'postconf -n', cmd: 'postconf', args: ['-n'], failOn: warn });
    out.push({ name: 'postconf -M', cmd: 'postconf', args: ['-M'], failOn: warn });
  }
  if (has('dovecot/')) out.push({ name: 'doveconf -n', cmd: 'doveconf', args: ['-n'] });
  const nsdConf = installed.get('nsd/nsd.conf');
  if (nsdConf) out.push({ name: 'nsd-checkconf', cmd: 'nsd-checkconf', args: [nsdConf] });
  for (const p of paths) {
    const zone = zoneOf(p);
    const sys = installed.get(p);
    if (zone && sys) out.push({ name: `nsd-checkzone ${zone} ${sys}`, cmd: 'nsd-checkzone', args: [zone, sys] });
  }
  for (const p of paths) {
    const sys = installed.get(p);
    if (p.startsWith('nftables/') && /\.(nft|conf)$/.test(p) && sys) {
      out.push({ name: `nft -c -f ${sys}`, cmd: 'nft', args: ['-c', '-f', sys] });
    }
  }
  if (has('ssh/')) out.push({ name: 'sshd -t', cmd: 'sshd', args: ['-t'], needsPrivsepDir: true });
  if (has('unbound/')) out.push({ name: 'unbound-checkconf', cmd: 'unbound-checkconf', args: [], seeds: [UNBOUND_ROOT_KEY] });
  // As root, opendkim -n rejects keys that root does not own; the daemon reads them as opendkim.
  // Every instance's file (opendkim.conf, opendkim-ed25519.conf) is checked.
  for (const p of paths) {
    const sys = installed.get(p);
    if (/^opendkim\/opendkim[^/]*\.conf$/.test(p) && sys) {
      out.push({ name: `opendkim -n -x ${sys}`, cmd: 'opendkim', args: ['-n', '-x', sys], asUser: 'opendkim' });
    }
  }
  if (has('nginx/')) {
    out.push({ name: 'nginx -t', cmd: 'nginx', args: ['-t', '-q'], scratch: ['/var/lib/nginx', '/var/log/nginx'], ownNetwork: true });
  }
  if (has('fail2ban/')) out.push({ name: 'fail2ban-client -t', cmd: 'fail2ban-client', args: ['-t'] });
  return out;
}

/*
 * Runs as root inside `unshare --mount --propagation private`. Arguments, never interpolated:
 * $1 the staged root, then the top-level folders to overlay, `--`, then pairs (a file the config
 * needs, a private folder holding a copy of it), `--`, then the command. Overlays are read-only
 * (lower layers only): nothing a tool does can write into the staged root or /etc. A seed folder
 * is bound over the needed file's folder only when the file is absent, and only in this namespace.
 */
const NAMESPACE_SCRIPT = `set -e
r=$1; shift
while [ "$1" != "--" ]; do
  mount -t overlay selfmail -o "ro,lowerdir=$r/$1:/$1" "/$1"
  shift
done
shift
while [ "$1" != "--" ]; do
  if [ ! -e "$1" ] && [ -d "$(dirname "$1")" ]; then
    mount --bind -o ro "$2" "$(dirname "$1")"
  fi
  shift 2
done
shift
if [ -n "$SELFMAIL_NONLOCAL" ]; then
  echo 1 > /proc/sys/net/ipv4/ip_nonlocal_bind
  echo 1 > /proc/sys/net/ipv6/ip_nonlocal_bind
fi
for d in $SELFMAIL_SCRATCH; do
  if [ -d "$d" ]; then mount -t tmpfs -o mode=0755 selfmail "$d"; fi
done
if [ -n "$SELFMAIL_PRIVSEP" ] && [ ! -d /run/sshd ]; then
  mount -t tmpfs -o mode=0755 selfmail /run
  mkdir -m 0755 /run/sshd
fi
exec "$@"
`;

/** Characters that would break overlayfs' option string (`lowerdir=a:b,ro`) or the script. */
export function rootUnsafeForOverlay(root: string): boolean {
  return /[,:\s\\"'$`]/.test(root);
}

/** The top-level folders (`etc`, `var`, …) that hold the installed files. Pure. */
export function topLevelDirs(systemPaths: Iterable<string>): string[] {
  const dirs = new Set<string>();
  for (const p of systemPaths) {
    const first = posix.normalize(p).split('/')[1];
    if (first) dirs.add(first);
  }
  return [...dirs].sort();
}

/**
 * Run one validator against the configuration installed under `root`. Throws ToolError with the
 * tool's own words when it rejects the configuration (or warns, where `failOn` says so).
 */
export async function runValidator(v: Validator, root: string, overlayDirs: readonly string[]): Promise<void> {
  if (!(await hasTool(v.cmd))) {
    // Inside the namespace a missing program is only "exit 127"; say which package instead.
    await run(v.cmd, v.args);
  }
  const argv = v.asUser ? ['runuser', '-u', v.asUser, '--', v.cmd, ...v.args] : [v.cmd, ...v.args];
  const seedDirs: string[] = [];
  const seedArgs: string[] = [];
  try {
    for (const s of v.seeds ?? []) {
      if (existsSync(join(root, s.path))) continue;
      const dir = await mkdtemp(join(tmpdir(), 'selfmail-seed-'));
      seedDirs.push(dir);
      try {
        await copyFile(s.from, join(dir, posix.basename(s.path)));
      } catch {
        throw new ToolError(`${s.path} is missing and ${s.from} cannot stand in for it: install the Debian package ${s.pkg} (apt-get install ${s.pkg})`, v.cmd);
      }
      seedArgs.push(s.path, dir);
    }
    await check(v, root, overlayDirs, argv, seedArgs);
  } finally {
    for (const d of seedDirs) await rm(d, { recursive: true, force: true });
  }
}

async function check(v: Validator, root: string, overlayDirs: readonly string[], argv: string[], seedArgs: string[]): Promise<void> {
  const [cmd = v.cmd, ...args] = argv;
  // Only stderr is searched for warnings: stdout may echo the configuration itself.
  let stderr: string;
  try {
    const scratch = (v.scratch ?? []).join(' ');
    if (root === '/' && seedArgs.length === 0 && !v.needsPrivsepDir && scratch === '' && !v.ownNetwork) {
      stderr = (await run(cmd, args)).stderr;
    } else {
      const overlays = root === '/' ? [] : overlayDirs;
      const r = await run(
        'unshare',
        ['--mount', ...(v.ownNetwork ? ['--net'] : []), '--propagation', 'private', '--', 'sh', '-c', NAMESPACE_SCRIPT, 'sh', root, ...overlays, '--', ...seedArgs, '--', ...argv],
        { env: { SELFMAIL_PRIVSEP: v.needsPrivsepDir ? '1' : '', SELFMAIL_SCRATCH: scratch, SELFMAIL_NONLOCAL: v.ownNetwork ? '1' : '' } },
      );
      stderr = r.stderr;
    }
  } catch (err) {
    if (err instanceof ToolError) {
      throw new ToolError(`${v.name} rejected the installed configuration:\n${err.output.trim()}`, v.cmd, err.output);
    }
    throw err;
  }
  if (v.failOn) {
    const bad = stderr.split('\n').filter((l) => v.failOn?.test(l));
    if (bad.length > 0) {
      throw new ToolError(`${v.name} warned about the installed configuration:\n${bad.join('\n')}`, v.cmd, bad.join('\n'));
    }
  }
}
