/**
 * A backup machine of the user's, as `selfmail backup --remote-setup` tells them to set it up:
 * this machine's own OpenSSH server (Debian's sshd_config, with the drop-in and the authorized
 * keys file that --remote-setup prints), a user locked into one folder under /srv/selfmail-backup
 * over SFTP. Everything it changes lives in a mount namespace of its own: /etc/passwd, /etc/shadow,
 * /etc/group and /etc/ssh are copies bind-mounted there, /srv and /run/sshd are tmpfs, so nothing of
 * this machine is touched. With `netns`, it serves inside that network namespace (the tier's
 * outside); else on loopback.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { chmod, copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run } from '../../src/tools/run.js';

export interface RemoteSetup {
  sshdConfig: string;
  confFile: string;
  keysFile: string;
  keysLine: string;
  script: string;
}

export interface BackupMachine {
  address: string;
  port: number;
  /** Its host key as `cat /etc/ssh/ssh_host_ed25519_key.pub` shows it. */
  hostKeyLine: string;
  /** Do on it what --remote-setup printed for `user` (and start its sshd). */
  setUp(user: string, setup: RemoteSetup): Promise<void>;
  /** Another key for that user (the owner's own, to read the backups from their device). */
  addKey(setup: RemoteSetup, line: string): Promise<void>;
  /** A folder as the SFTP user sees it (`/backup`), on this machine's file system. */
  folder(chrootPath: string): string;
  /** A small tmpfs over a folder (a disk that fills), owned by the user. */
  mountSmall(chrootPath: string, size: string): Promise<void>;
  /** Run a command in its mount namespace (as root). */
  exec(argv: string[]): Promise<{ stdout: string; stderr: string; exitCode: number }>;
  stop(): Promise<void>;
}

const CHROOT = '/srv/selfmail-backup';

/** A uid and gid free on this machine, for the backup user. */
async function freeId(): Promise<number> {
  const used = new Set<number>();
  for (const f of ['/etc/passwd', '/etc/group']) for (const l of (await readFile(f, 'utf8')).split('\n')) used.add(Number(l.split(':')[2]));
  let id = 64_900;
  while (used.has(id)) id++;
  return id;
}

export async function startBackupMachine(opts: { address: string; port: number; netns?: string }): Promise<BackupMachine> {
  const work = await mkdtemp(join(tmpdir(), 'selfmail-backup-machine-'));
  await chmod(work, 0o755);
  const etcSsh = join(work, 'etc-ssh');
  await mkdir(join(etcSsh, 'sshd_config.d'), { recursive: true });
  for (const f of ['sshd_config', 'moduli']) await copyFile(join('/etc/ssh', f), join(etcSsh, f));
  await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'root@backup-machine', '-f', join(etcSsh, 'ssh_host_ed25519_key')]);
  for (const f of ['passwd', 'shadow', 'group']) await copyFile(join('/etc', f), join(work, f));
  const hostKeyLine = (await readFile(join(etcSsh, 'ssh_host_ed25519_key.pub'), 'utf8')).trim();

  // The namespace holder: a process whose mount namespace the sshd and every command share.
  const wrap = (argv: string[]) => (opts.netns ? ['ip', 'netns', 'exec', opts.netns, ...argv] : argv);
  const holderArgv = wrap(['unshare', '--mount', '--propagation', 'private', 'sleep', 'infinity']);
  const holder = spawn(holderArgv[0]!, holderArgv.slice(1), { stdio: 'ignore' });
  // `ip netns exec` and unshare (without --fork) each exec the next: the child is the holder.
  let pid = 0;
  for (let i = 0; i < 50 && !pid; i++) {
    await new Promise((r) => setTimeout(r, 100));
    const cmd = await readFile(`/proc/${holder.pid}/cmdline`, 'utf8').catch(() => '');
    if (cmd.startsWith('sleep\0')) pid = holder.pid!;
  }
  if (!pid) throw new Error('the backup machine\'s mount namespace did not come up');
  const inNs = (argv: string[]) => run('nsenter', ['-t', String(pid), '-m', ...(opts.netns ? ['-n'] : []), ...argv], { okCodes: [0, 1, 2, 255] });
  const must = async (argv: string[]) => {
    const r = await inNs(argv);
    if (r.exitCode !== 0) throw new Error(`${argv.join(' ')}: ${r.stderr}${r.stdout}`);
    return r;
  };
  await must(['mount', '-t', 'tmpfs', '-o', 'mode=0755', 'tmpfs', '/srv']);
  await must(['mount', '-t', 'tmpfs', '-o', 'mode=0755', 'tmpfs', '/run/sshd']).catch(async () => {
    await must(['mkdir', '-p', '/run/sshd']);
  });
  for (const f of ['passwd', 'shadow', 'group']) await must(['mount', '--bind', join(work, f), `/etc/${f}`]);
  await must(['mount', '--bind', etcSsh, '/etc/ssh']);

  let sshd: ChildProcess | undefined;
  let sshdLog = '';
  const startSshd = async () => {
    const argv = ['nsenter', '-t', String(pid), '-m', ...(opts.netns ? ['-n'] : []), '/usr/sbin/sshd', '-D', '-e', '-o', `ListenAddress=${opts.address}`, '-o', `Port=${opts.port}`, '-o', 'PidFile=none'];
    sshd = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'ignore', 'pipe'] });
    sshd.stderr!.on('data', (d: Buffer) => (sshdLog += d.toString()));
    for (let i = 0; i < 50; i++) {
      if (/Server listening/.test(sshdLog)) return;
      if (sshd.exitCode !== null) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`sshd did not start: ${sshdLog}`);
  };
  const stopSshd = async () => {
    if (!sshd || sshd.exitCode !== null) return;
    const done = new Promise((r) => sshd!.once('exit', r));
    sshd.kill('SIGTERM');
    await done;
  };
  const local = (etcPath: string) => join(etcSsh, etcPath.replace(/^\/etc\/ssh\//, ''));

  return {
    address: opts.address,
    port: opts.port,
    hostKeyLine,
    async setUp(user, setup) {
      // useradd --system --user-group … (in the copies: the real files are bind-mounted over).
      const id = await freeId();
      await writeFile(join(work, 'passwd'), `${await readFile(join(work, 'passwd'), 'utf8')}${user}:x:${id}:${id}::${CHROOT}:/usr/sbin/nologin\n`);
      await writeFile(join(work, 'shadow'), `${await readFile(join(work, 'shadow'), 'utf8')}${user}:!:20000::::::\n`);
      await writeFile(join(work, 'group'), `${await readFile(join(work, 'group'), 'utf8')}${user}:x:${id}:\n`);
      // The folders, exactly as the printed lines make them.
      for (const line of setup.script.split('\n').filter((l) => l.startsWith('install -d '))) await must(line.split(' '));
      await writeFile(local(setup.keysFile), `${setup.keysLine}\n`, { mode: 0o644 });
      await writeFile(local(setup.confFile), setup.sshdConfig, { mode: 0o644 });
      await must(['sshd', '-t']);
      await stopSshd();
      await startSshd();
    },
    async addKey(setup, line) {
      const file = local(setup.keysFile);
      await writeFile(file, `${await readFile(file, 'utf8')}${line}\n`);
    },
    folder: (chrootPath) => `/proc/${pid}/root${CHROOT}${chrootPath}`,
    async mountSmall(chrootPath, size) {
      const owner = (await inNs(['stat', '-c', '%u:%g', `${CHROOT}${chrootPath}`])).stdout.trim().split(':');
      await must(['mount', '-t', 'tmpfs', '-o', `size=${size},mode=0700,uid=${owner[0]},gid=${owner[1]}`, 'tmpfs', `${CHROOT}${chrootPath}`]);
    },
    exec: (argv) => inNs(argv),
    async stop() {
      await stopSshd();
      holder.kill('SIGKILL');
      await run('kill', ['-KILL', String(pid)], { okCodes: [0, 1] });
      await rm(work, { recursive: true, force: true });
    },
  };
}
