/**
 * The installed configuration, checked by the services' own tools. The configs name absolute
 * system paths (/etc/postfix/…), so when apply installs under another root the tools run in a
 * private mount namespace where each staged top-level folder is laid over the real one with a
 * read-only overlay: the tools see the new files at their real paths, merged with what the host
 * already has there (postfix-files, dovecot's conf.d, …), and the host itself is never touched.
 */
import { posix } from 'node:path';
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
}

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
    if (zone && sys) out.push({ name: `nsd-checkzone ${zone}`, cmd: 'nsd-checkzone', args: [zone, sys] });
  }
  for (const p of paths) {
    const sys = installed.get(p);
    if (p.startsWith('nftables/') && /\.(nft|conf)$/.test(p) && sys) {
      out.push({ name: `nft -c -f ${sys}`, cmd: 'nft', args: ['-c', '-f', sys] });
    }
  }
  if (has('ssh/')) out.push({ name: 'sshd -t', cmd: 'sshd', args: ['-t'], needsPrivsepDir: true });
  if (has('unbound/')) out.push({ name: 'unbound-checkconf', cmd: 'unbound-checkconf', args: [] });
  const odk = installed.get('opendkim/opendkim.conf');
  // As root, opendkim -n rejects keys that root does not own; the daemon reads them as opendkim.
  if (odk) out.push({ name: 'opendkim -n', cmd: 'opendkim', args: ['-n', '-x', odk], asUser: 'opendkim' });
  return out;
}

/*
 * Runs as root inside `unshare --mount --propagation private`. Arguments, never interpolated:
 * $1 the staged root, then the top-level folders to overlay, `--`, then the command. Overlays are
 * read-only (lower layers only): nothing a tool does can write into the staged root or /etc.
 */
const NAMESPACE_SCRIPT = `set -e
r=$1; shift
while [ "$1" != "--" ]; do
  mount -t overlay selfmail -o "ro,lowerdir=$r/$1:/$1" "/$1"
  shift
done
shift
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
  const [cmd = v.cmd, ...args] = argv;
  // Only stderr is searched for warnings: stdout may echo the configuration itself.
  let stderr: string;
  try {
    if (root === '/') {
      stderr = (await run(cmd, args)).stderr;
    } else {
      const r = await run(
        'unshare',
        ['--mount', '--propagation', 'private', '--', 'sh', '-c', NAMESPACE_SCRIPT, 'sh', root, ...overlayDirs, '--', ...argv],
        { env: v.needsPrivsepDir ? { SELFMAIL_PRIVSEP: '1' } : {} },
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
