/**
 * The new configuration, checked by the services' own tools at its real paths before anything on
 * the host changes. The configs name absolute system paths (/etc/postfix/…), so every tool runs
 * in a private mount namespace where each top-level folder (/etc, /var, /run, /usr) is an overlay:
 * the staged files on top, the install root's own folder beneath (when it is not `/`), the real
 * folder at the bottom, and a throwaway tmpfs as the writable layer. The tools see the new files
 * merged with what the host already has there (postfix-files, dovecot's conf.d, …); whatever they
 * write while testing (`postfix check` completing a queue that was never set up, `nginx -t`'s pid
 * file, sshd's privilege-separation folder) lands in the tmpfs and is gone with the namespace.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, posix } from 'node:path';
import { ToolError } from '../errors.js';
import { JOURNAL_BACKEND_CHECK } from '../tools/preflight.js';
import { type Release, releaseInfo } from '../config/release.js';
import { hasTool, run } from '../tools/run.js';
import { enabledModules, outsideModulesOn } from '../rspamd/index.js';

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
  /** Postfix prints its complaints only to a terminal (or a log file): give it a pseudo-terminal. */
  pty?: boolean;
  /** Files the daemon creates on its first start, supplied for the check when absent. */
  seeds?: Seed[];
  /**
   * The tool binds its listening sockets even when testing (nginx -t): it runs in a network
   * namespace of its own that allows binding addresses the host does not have (yet), so the check
   * neither depends on the addresses nor collides with a running server.
   */
  ownNetwork?: boolean;
  /** Said instead of the tool's own words when it fails (a missing Python module, say). */
  explain?: string;
  /** Judges the tool's standard output: a reason to refuse the configuration, or undefined. */
  judge?: (stdout: string) => string | undefined;
}

/**
 * A file that a fresh host lacks until its daemon first runs (unbound's trust anchor), while the
 * config names it. For the check only, and only inside the namespace, a copy of `from` is put at
 * `path` (in the throwaway layer).
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
 * The checks that apply to a set of installed files (bundle path → system path) of a bundle for
 * `target`, in a fixed order; each only when its service's files are among them. Pure.
 */
export function validatorsFor(installed: ReadonlyMap<string, string>, target: Release = 'debian-12', opts: { spamLookups?: readonly string[] } = {}): Validator[] {
  const paths = [...installed.keys()].sort();
  const has = (prefix: string) => paths.some((p) => p.startsWith(prefix));
  const out: Validator[] = [];
  if (has('postfix/')) {
    const warn = /(^|\s)(warning|fatal|error|panic):/im;
    out.push({ name: 'postfix check', cmd: 'postfix', args: ['check'], failOn: warn, pty: true });
    out.push({ name: 'postconf -n', cmd: 'postconf', args: ['-n'], failOn: warn });
    out.push({ name: 'postconf -M', cmd: 'postconf', args: ['-M'], failOn: warn });
  }
  if (has('dovecot/')) {
    // Dovecot 2.4 opens the certificate and key it names only with -x.
    const x = releaseInfo(target).dovecot === '2.4';
    out.push({ name: x ? 'doveconf -n -x' : 'doveconf -n', cmd: 'doveconf', args: x ? ['-n', '-x'] : ['-n'] });
  }
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
  if (has('ssh/')) out.push({ name: 'sshd -t', cmd: 'sshd', args: ['-t'] });
  if (has('unbound/')) out.push({ name: 'unbound-checkconf', cmd: 'unbound-checkconf', args: [], seeds: [UNBOUND_ROOT_KEY] });
  // rspamd's workers read the DKIM keys they sign with as _rspamd, after dropping root: each one
  // opens (head reads none of their bytes, so no key reaches an output).
  const dkimKeys = paths.filter((p) => /^keys\/dkim\/.+\.(private|rspamd)$/.test(p)).map((p) => installed.get(p)).filter((p): p is string => p !== undefined);
  if (dkimKeys.length > 0) {
    out.push({ name: 'DKIM keys readable by rspamd (_rspamd)', cmd: 'head', args: ['-q', '-c', '0', '--', ...dkimKeys], asUser: '_rspamd', explain: `rspamd (user _rspamd) cannot open every DKIM key of the bundle (${dkimKeys.join(', ')}), so it could not sign with them` });
  }
  if (has('nginx/')) out.push({ name: 'nginx -t', cmd: 'nginx', args: ['-t', '-q'], ownNetwork: true });
  if (has('rspamd/')) {
    out.push({ name: 'rspamadm configtest', cmd: 'rspamadm', args: ['configtest'] });
    // rspamd itself says what it would run with the host's own files beside the bundle's (an
    // admin's local.d addition included): none of the modules that ask or tell an outside
    // service, but the blocklists the bundle opted in to.
    const optedIn = (opts.spamLookups ?? []).length > 0;
    out.push({
      name: 'rspamadm configdump -m (no outside service)',
      cmd: 'rspamadm',
      args: ['configdump', '-m'],
      judge: (stdout) => {
        const leaking = outsideModulesOn(enabledModules(stdout), optedIn);
        return leaking.length === 0 ? undefined : leaking.map((m) => `rspamd would run ${m.module}: ${m.why}`).join('\n');
      },
    });
  }
  if (has('fail2ban/')) {
    out.push({ name: 'fail2ban-client -t', cmd: 'fail2ban-client', args: ['-t'] });
    out.push({
      name: 'fail2ban journal backend (python3-systemd)',
      cmd: JOURNAL_BACKEND_CHECK.cmd,
      args: [...JOURNAL_BACKEND_CHECK.args],
      explain: "fail2ban's jails read the journal, which needs python3-systemd: install the Debian package python3-systemd (apt-get install python3-systemd)",
    });
  }
  return out;
}

/*
 * Runs as root inside `unshare --mount [--net] --propagation private`. Arguments, never
 * interpolated into the script: $1 a scratch folder, $2 the staged tree, $3 the install root
 * ('' for /), then the top-level folders to lay over, `--`, then pairs (a file the config needs, a
 * copy of it to put there when absent), `--`, then the command.
 */
const NAMESPACE_SCRIPT = `set -e
s=$1 staged=$2 base=$3
shift 3
mount -t tmpfs -o mode=0700 selfmail "$s"
while [ "$1" != "--" ]; do
  d=$1
  mkdir -p "$s/upper/$d" "$s/work/$d"
  lower="/$d"
  if [ -n "$base" ] && [ -d "$base/$d" ]; then lower="$base/$d:$lower"; fi
  if [ -d "$staged/$d" ]; then lower="$staged/$d:$lower"; fi
  mount -t overlay selfmail -o "lowerdir=$lower,upperdir=$s/upper/$d,workdir=$s/work/$d" "/$d"
  shift
done
shift
while [ "$1" != "--" ]; do
  if [ ! -e "$1" ]; then mkdir -p "$(dirname "$1")"; cp "$2" "$1"; fi
  shift 2
done
shift
# A private /tmp too, so that nothing a tool leaves there outlives the check.
mount -t tmpfs -o mode=1777 selfmail /tmp
if [ -n "$SELFMAIL_NONLOCAL" ]; then
  # Containers mount /proc/sys read-only; this network namespace is ours to configure.
  if ! (echo 1 > /proc/sys/net/ipv4/ip_nonlocal_bind) 2>/dev/null; then mount -t proc proc /proc; fi
  echo 1 > /proc/sys/net/ipv4/ip_nonlocal_bind
  echo 1 > /proc/sys/net/ipv6/ip_nonlocal_bind
fi
# sshd -t wants its privilege-separation folder, which ssh.service makes at start.
mkdir -p -m 0755 /run/sshd
exec "$@"
`;

/** The folders laid over in every check: the ones a tool may write to, and the ones files go to. */
export const ALWAYS_OVERLAID = ['etc', 'run', 'var'] as const;

/** Characters that would break overlayfs' option string (`lowerdir=a:b,ro`) or the script. */
export function rootUnsafeForOverlay(root: string): boolean {
  return /[,:\s\\"'$`]/.test(root);
}

/** The top-level folders (`etc`, `var`, …) that hold the installed files, with the always-overlaid ones. Pure. */
export function topLevelDirs(systemPaths: Iterable<string>): string[] {
  const dirs = new Set<string>(ALWAYS_OVERLAID);
  for (const p of systemPaths) {
    const first = posix.normalize(p).split('/')[1];
    if (first) dirs.add(first);
  }
  return [...dirs].sort();
}

/** Where one validation run finds its files. */
export interface ValidationTree {
  /** The staged files, laid out at their system paths. */
  staged: string;
  /** The install root (`/` or `--root`). */
  root: string;
  /** Top-level folders to overlay (topLevelDirs). */
  overlay: readonly string[];
}

/**
 * Run one validator against the staged configuration. Throws ToolError with the tool's own words
 * when it rejects the configuration (or warns, where `failOn` says so).
 */
export async function runValidator(v: Validator, tree: ValidationTree): Promise<void> {
  if (!(await hasTool(v.cmd))) {
    // Inside the namespace a missing program is only "exit 127"; say which package instead.
    await run(v.cmd, v.args);
  }
  let argv = v.asUser ? ['runuser', '-u', v.asUser, '--', v.cmd, ...v.args] : [v.cmd, ...v.args];
  // script(1) runs its -c text with the shell: these argv are constants of this file, never input.
  if (v.pty) argv = ['script', '-qec', argv.join(' '), '/dev/null'];
  const seedArgs = (v.seeds ?? []).flatMap((s) => [s.path, s.from]);
  const scratch = await mkdtemp(join(tmpdir(), 'selfmail-validate-'));
  let out: string;
  try {
    const r = await run(
      'unshare',
      [
        '--mount',
        ...(v.ownNetwork ? ['--net'] : []),
        '--propagation',
        'private',
        '--',
        'sh',
        '-c',
        NAMESPACE_SCRIPT,
        'sh',
        scratch,
        tree.staged,
        tree.root === '/' ? '' : tree.root,
        ...tree.overlay,
        '--',
        ...seedArgs,
        '--',
        ...argv,
      ],
      { env: { SELFMAIL_NONLOCAL: v.ownNetwork ? '1' : '' }, timeout: 120_000 },
    );
    const refused = v.judge?.(r.stdout);
    if (refused) throw new ToolError(`${v.name} rejected the new configuration:\n${refused}`, v.cmd, refused);
    // Only stderr is searched for warnings: stdout may echo the configuration itself. Under a
    // pseudo-terminal both arrive on stdout.
    out = v.pty ? r.stdout.replace(/\r/g, '') : r.stderr;
  } catch (err) {
    if (err instanceof ToolError) {
      const said = err.output.replace(/\r/g, '').trim();
      throw new ToolError(`${v.name} rejected the new configuration:\n${v.explain ?? said}`, v.cmd, said);
    }
    throw err;
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
  if (v.failOn) {
    const bad = out.split('\n').filter((l) => v.failOn?.test(l));
    if (bad.length > 0) {
      throw new ToolError(`${v.name} warned about the new configuration:\n${bad.join('\n')}`, v.cmd, bad.join('\n'));
    }
  }
}
