/**
 * A pristine Debian host for the tier: a root made by `debootstrap --variant=minbase` (cached as
 * a tarball outside the repository), prepared with host networking the way a person prepares a
 * fresh machine, then booted with systemd as PID 1 by systemd-nspawn inside a private network.
 * There the host has the public test addresses 203.0.113.25 and 2001:db8::25; a second namespace,
 * "outside", plays the internet (203.0.113.1 and further client addresses, 2001:db8::1) and
 * routes nowhere else. Every process, mount and namespace is removed by `destroy()`.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream, existsSync } from 'node:fs';
import { chmod, mkdir, readFile, readdir, rename, rm, rmdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export type TierRelease = 'debian-13' | 'debian-12';

export const REPO = fileURLToPath(new URL('../../', import.meta.url));
/** Roots, package and npm caches live here, never in the repository. */
export const CACHE = process.env.SELFMAIL_TEST_CACHE ?? '/var/cache/selfmail-test';
const WORK = process.env.SELFMAIL_TEST_WORK ?? '/var/tmp/selfmail-tier';
const MIRROR = 'http://deb.debian.org/debian';
/** Bump when the recipe of the cached base root changes. */
const ROOT_RECIPE = 'minbase+systemd-sysv,dbus/1';

export const SUITE: Record<TierRelease, string> = { 'debian-13': 'trixie', 'debian-12': 'bookworm' };

/** The host's addresses on the test link, and the outside's. */
export const NET = {
  host4: '203.0.113.25',
  host6: '2001:db8::25',
  out4: '203.0.113.1',
  out6: '2001:db8::1',
  /** Extra client addresses of the outside, for tests that get one banned. */
  clients: ['203.0.113.66', '203.0.113.67', '203.0.113.68'],
} as const;

/** The environment of a root login on the host: nothing of the test process leaks in. */
const HOST_ENV = ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'HOME=/root', 'LANG=C.UTF-8', 'TERM=dumb'];

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  input?: string;
  timeout?: number;
  env?: Record<string, string>;
}

/** Run a program; never rejects for a non-zero exit (the caller asserts), only on timeout. */
export function sh(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'], env: opts.env ? { ...process.env, ...opts.env } : process.env });
    let stdout = '';
    let stderr = '';
    const limit = opts.timeout ?? 120_000;
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${cmd} ${args.join(' ')}: no end within ${limit / 1000} s\n${stdout}\n${stderr}`));
    }, limit);
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    // A program that exits without reading its input is no error of ours.
    child.stdin.on('error', () => undefined);
    child.stdin.end(opts.input ?? '');
  });
}

/** As `sh`, but a non-zero exit throws with everything the program said. */
export async function must(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const r = await sh(cmd, args, opts);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.code}\n--- stdout\n${r.stdout.slice(-4000)}\n--- stderr\n${r.stderr.slice(-4000)}`);
  return r;
}

/**
 * The cached base root of `release`: debootstrap minbase plus systemd as init (and D-Bus), which is
 * what a minimal Debian machine boots with. Built once; a tarball, so every run starts from the
 * same bytes.
 */
export async function baseRoot(release: TierRelease): Promise<string> {
  const tarball = join(CACHE, 'roots', `${release}.tar`);
  const stamp = `${tarball}.recipe`;
  if (existsSync(tarball) && (await readFile(stamp, 'utf8').catch(() => '')) === ROOT_RECIPE) return tarball;
  await mkdir(dirname(tarball), { recursive: true });
  const dir = join(CACHE, 'roots', `${release}.build-${process.pid}`);
  await rm(dir, { recursive: true, force: true });
  try {
    await must('debootstrap', ['--variant=minbase', '--include=systemd-sysv,dbus', SUITE[release], dir, MIRROR], { timeout: 900_000 });
    await must('tar', ['-C', dir, '-cf', `${tarball}.tmp`, '.'], { timeout: 300_000 });
    await rename(`${tarball}.tmp`, tarball);
    await writeFile(stamp, ROOT_RECIPE);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  return tarball;
}

export class PristineHost {
  readonly id = randomBytes(3).toString('hex');
  readonly dir: string;
  readonly root: string;
  readonly netns: string;
  readonly outside: string;
  private nspawn: ChildProcess | undefined;
  /** The booted host's own cgroups (see boot). */
  private cgroups: string[] = [];
  private exited: Promise<void> | undefined;
  private pid1: number | undefined;
  private boots = 0;

  private constructor(readonly release: TierRelease) {
    this.dir = join(WORK, `${release}-${this.id}`);
    this.root = join(this.dir, 'root');
    this.netns = `smt${this.id}`;
    this.outside = `smt${this.id}o`;
  }

  /** Unpack the cached base root into a work folder of its own. */
  static async create(release: TierRelease): Promise<PristineHost> {
    const h = new PristineHost(release);
    const tarball = await baseRoot(release);
    await mkdir(h.root, { recursive: true, mode: 0o755 });
    await must('tar', ['-C', h.root, '-xpf', tarball], { timeout: 300_000 });
    await mkdir(join(h.dir, 'logs'), { recursive: true });
    return h;
  }

  /**
   * Run a command in the root with the machine's network, before the host is booted: the steps a
   * person takes on a fresh machine (install packages, install selfmail). Package downloads are
   * cached outside the repository.
   */
  async prepare(argv: readonly string[], opts: RunOptions & { binds?: string[] } = {}): Promise<RunResult> {
    const apt = join(CACHE, 'apt', this.release);
    const npm = join(CACHE, 'npm');
    await mkdir(apt, { recursive: true });
    await mkdir(npm, { recursive: true });
    const env = Object.entries(opts.env ?? {}).map(([k, v]) => `--setenv=${k}=${v}`);
    return sh(
      'systemd-nspawn',
      [
        // A root shell on a fresh machine has CAP_NET_ADMIN (init checks its firewall with nft -c).
        '-q', '--register=no', '--keep-unit', '--pipe', '--resolv-conf=replace-host', '--timezone=off', '--capability=CAP_NET_ADMIN',
        '-D', this.root, '--chdir=/root',
        `--bind=${apt}:/var/cache/apt/archives`, `--bind=${npm}:/root/.npm`,
        ...(opts.binds ?? []).map((b) => `--bind-ro=${b}`),
        ...HOST_ENV.map((e) => `--setenv=${e}`), ...env,
        '--', ...argv,
      ],
      { timeout: opts.timeout ?? 600_000, ...(opts.input !== undefined ? { input: opts.input } : {}) },
    );
  }

  /** Write a file into the root (as root, with `mode`). */
  async put(path: string, text: string, mode = 0o644): Promise<void> {
    const full = join(this.root, path);
    await mkdir(dirname(full), { recursive: true });
    await writeFile(full, text, { mode });
    await chmod(full, mode);
  }

  async read(path: string): Promise<string> {
    return readFile(join(this.root, path), 'utf8');
  }

  /** The outside's end of the test link (its interface towards the host). */
  get outsideLink(): string {
    return `smo${this.id}`;
  }

  /** The test link: the host's namespace and the outside's, joined by a veth pair. */
  private async network(): Promise<void> {
    if (existsSync(`/run/netns/${this.netns}`)) return;
    const ip = (...a: string[]) => must('ip', a);
    const o = this.outsideLink;
    const c = `smc${this.id}`;
    await ip('netns', 'add', this.netns);
    await ip('netns', 'add', this.outside);
    await ip('link', 'add', o, 'type', 'veth', 'peer', 'name', c);
    await ip('link', 'set', c, 'netns', this.netns);
    await ip('link', 'set', o, 'netns', this.outside);
    await ip('-n', this.netns, 'link', 'set', c, 'name', 'eth0');
    for (const ns of [this.netns, this.outside]) await ip('-n', ns, 'link', 'set', 'lo', 'up');
    await ip('-n', this.netns, 'addr', 'add', `${NET.host4}/24`, 'dev', 'eth0');
    await ip('-n', this.netns, 'addr', 'add', `${NET.host6}/64`, 'dev', 'eth0', 'nodad');
    await ip('-n', this.netns, 'link', 'set', 'eth0', 'up');
    await ip('-n', this.netns, 'route', 'add', 'default', 'via', NET.out4);
    await ip('-n', this.netns, '-6', 'route', 'add', 'default', 'via', NET.out6);
    for (const a of [NET.out4, ...NET.clients]) await ip('-n', this.outside, 'addr', 'add', `${a}/24`, 'dev', o);
    await ip('-n', this.outside, 'addr', 'add', `${NET.out6}/64`, 'dev', o, 'nodad');
    await ip('-n', this.outside, 'link', 'set', o, 'up');
    // The outside routes nowhere: what the host sends beyond the link is refused at once.
    await must('ip', ['netns', 'exec', this.outside, 'sysctl', '-qw', 'net.ipv4.ip_forward=1', 'net.ipv6.conf.all.forwarding=1']);
    await ip('-n', this.outside, 'route', 'add', 'unreachable', 'default');
    await ip('-n', this.outside, '-6', 'route', 'add', 'unreachable', 'default');
  }

  /** Boot the root with systemd as PID 1 and wait until it has started everything it will. */
  async boot(): Promise<string> {
    await this.network();
    this.boots++;
    const log = createWriteStream(join(this.dir, 'logs', `boot-${this.boots}.log`));
    const nspawn = [
      'systemd-nspawn',
      '-q', '--register=no', '--keep-unit', '--resolv-conf=off', '--timezone=off', '--console=read-only',
      // A real host has CAP_NET_ADMIN (nftables, fail2ban's bans); nspawn keeps it only on request.
      '--capability=CAP_NET_ADMIN', `--network-namespace-path=/run/netns/${this.netns}`,
      '-D', this.root, '-b',
    ];
    // With --keep-unit nspawn gives the container the cgroup it was started in (its payload/
    // subgroup). Two releases booted from the same test process shared one, and each systemd
    // created, emptied and removed the other's unit cgroups (system.slice/nsd.service…): units
    // failed at random with 219/CGROUP. Each booted host gets cgroups of its own.
    this.cgroups = await ownCgroups(`selfmail-tier-${this.netns}`);
    const child = spawn('sh', ['-c', 'for d in $CGROUPS; do echo $$ > "$d/cgroup.procs" || exit 1; done; exec "$@"', 'sh', ...nspawn], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, CGROUPS: this.cgroups.join(' ') },
    });
    child.stdout?.pipe(log);
    child.stderr?.pipe(log);
    this.nspawn = child;
    this.exited = new Promise((res) => child.on('exit', () => res()));
    const deadline = Date.now() + 60_000;
    while (Date.now() < deadline && this.pid1 === undefined) {
      this.pid1 = await this.findPid1(child.pid ?? -1);
      if (this.pid1 === undefined) await new Promise((r) => setTimeout(r, 200));
    }
    if (this.pid1 === undefined) throw new Error(`${this.release}: systemd did not start (see ${join(this.dir, 'logs')})`);
    // Until systemd has set up its own mount namespace and bus, systemctl cannot reach it.
    const until = Date.now() + 180_000;
    for (;;) {
      const r = await this.exec(['systemctl', 'is-system-running', '--wait'], { timeout: 180_000 });
      const state = r.stdout.trim();
      if (state !== '' || Date.now() > until) return state || `unknown (${r.stderr.trim()})`;
      await new Promise((res) => setTimeout(res, 500));
    }
  }

  /** The host PID of the container's PID 1: nspawn's child that runs systemd. */
  private async findPid1(nspawnPid: number): Promise<number | undefined> {
    for (const p of await readdir('/proc')) {
      if (!/^\d+$/.test(p)) continue;
      const stat = await readFile(`/proc/${p}/stat`, 'utf8').catch(() => '');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid !== nspawnPid) continue;
      const comm = (await readFile(`/proc/${p}/comm`, 'utf8').catch(() => '')).trim();
      if (comm === 'systemd') return Number(p);
    }
    return undefined;
  }

  /** Run a command on the booted host, as root, with a login's clean environment. */
  async exec(argv: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
    if (this.pid1 === undefined) throw new Error('the host is not booted');
    const env = Object.entries(opts.env ?? {}).map(([k, v]) => `${k}=${v}`);
    return sh('nsenter', ['-t', String(this.pid1), '-a', '--', 'env', '-i', ...HOST_ENV, ...env, ...argv], {
      timeout: opts.timeout ?? 120_000,
      ...(opts.input !== undefined ? { input: opts.input } : {}),
    });
  }

  /** A shell script on the booted host; throws unless it exits 0. */
  async run(script: string, opts: RunOptions = {}): Promise<string> {
    const r = await this.exec(['sh', '-c', script], opts);
    if (r.code !== 0) throw new Error(`on ${this.release}: ${script}\nexit ${r.code}\n--- stdout\n${r.stdout.slice(-4000)}\n--- stderr\n${r.stderr.slice(-4000)}`);
    return r.stdout;
  }

  /** A program in the outside namespace (a machine of the internet). */
  async fromOutside(argv: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
    return sh('ip', ['netns', 'exec', this.outside, ...argv], opts);
  }

  /** One request to test/host/probe.mjs, run in the outside namespace. */
  async probe<T = Record<string, unknown>>(request: Record<string, unknown>, timeout = 90_000): Promise<T & { ok: boolean; error?: string }> {
    const r = await this.fromOutside([process.execPath, join(REPO, 'test/host/probe.mjs')], { input: JSON.stringify(request), timeout });
    try {
      return JSON.parse(r.stdout) as T & { ok: boolean; error?: string };
    } catch {
      throw new Error(`probe ${String(request.op)}: no JSON answer (exit ${r.code})\n${r.stdout}\n${r.stderr}`);
    }
  }

  /** Shut the host down cleanly and wait until nspawn has gone. */
  async poweroff(): Promise<void> {
    if (!this.nspawn || this.pid1 === undefined) return;
    await this.exec(['systemctl', 'poweroff'], { timeout: 30_000 }).catch(() => undefined);
    const gone = await Promise.race([this.exited?.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 90_000))]);
    if (!gone) {
      this.nspawn.kill('SIGKILL');
      await this.exited;
    }
    this.nspawn = undefined;
    this.pid1 = undefined;
    for (const d of this.cgroups) await removeCgroup(d);
    this.cgroups = [];
  }

  /** Remove everything: the booted host, the namespaces, the work folder. */
  async destroy(): Promise<void> {
    await this.poweroff().catch(() => undefined);
    for (const ns of [this.netns, this.outside]) await sh('ip', ['netns', 'del', ns]).catch(() => undefined);
    // Mounts left inside the root would make the removal reach outside it: refuse rather than guess.
    const mounts = await readFile('/proc/self/mountinfo', 'utf8');
    if (mounts.includes(` ${this.dir}`)) throw new Error(`mounts remain under ${this.dir}; not removing it`);
    if (!process.env.SELFMAIL_TIER_KEEP) await rm(this.dir, { recursive: true, force: true });
  }
}

/**
 * Cgroups of its own for one booted host, under this process's own, in each hierarchy nspawn
 * puts a container in: the unified one (nspawn runs a container with a current systemd on
 * cgroup v2 even on a cgroup-v1 machine like this one, mounting it at /sys/fs/cgroup/unified)
 * and the named v1 `systemd` one it mirrors it in. Mounts the unified hierarchy when no one has.
 */
async function ownCgroups(name: string): Promise<string[]> {
  const unified = existsSync('/sys/fs/cgroup/cgroup.controllers') ? '/sys/fs/cgroup' : '/sys/fs/cgroup/unified';
  if (unified !== '/sys/fs/cgroup' && !existsSync(join(unified, 'cgroup.controllers'))) {
    await mkdir(unified, { recursive: true });
    await must('mount', ['-t', 'cgroup2', 'cgroup2', unified]);
  }
  const own = (await readFile('/proc/self/cgroup', 'utf8')).split('\n');
  const pathIn = (re: RegExp) => own.find((l) => re.test(l))?.split(':').slice(2).join(':') ?? '/';
  const dirs = [join(unified, pathIn(/^0::/), name)];
  const v1 = '/sys/fs/cgroup/systemd';
  if (unified !== '/sys/fs/cgroup' && existsSync(join(v1, 'cgroup.procs'))) dirs.push(join(v1, pathIn(/^\d+:name=systemd:/), name));
  for (const d of dirs) await mkdir(d, { recursive: true });
  return dirs;
}

/** Remove a cgroup and what systemd left under it, deepest first (only folders can go). */
async function removeCgroup(dir: string): Promise<void> {
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
  for (const e of entries) if (e.isDirectory()) await removeCgroup(join(dir, e.name));
  await rmdir(dir).catch(() => undefined);
}
