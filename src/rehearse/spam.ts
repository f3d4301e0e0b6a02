/**
 * The rehearsal's spam filter: Redis and rspamd started from the bundle's files under the
 * rehearsal root, on its loopback ports, supervised like the other daemons. rspamd runs as its
 * Debian user (_rspamd), which owns its state, run and log folders under the root.
 */
import { chown, mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type Profile, sysPath } from '../bundle/layout.js';
import { stockConfigInto } from '../rspamd/index.js';
import { ToolError } from '../errors.js';
import { LISTEN } from './host.js';
import { type Supervisor, tcpOpen, waitReady } from './supervisor.js';

/** The user and group Debian's rspamd package runs its workers as. */
const RSPAMD_USER = '_rspamd';

async function idsOf(name: string): Promise<{ uid: number; gid: number }> {
  const line = (await readFile('/etc/passwd', 'utf8')).split('\n').find((l) => l.startsWith(`${name}:`));
  const [, , uid, gid] = line?.split(':') ?? [];
  if (uid === undefined || gid === undefined) throw new ToolError(`the rehearsal runs rspamd as ${name}, which this machine lacks: install the Debian package rspamd`, 'rspamd');
  return { uid: Number(uid), gid: Number(gid) };
}

/** Start Redis and rspamd; `ready` resolves once rspamd's milter port answers. */
export async function startSpamFilter(sup: Supervisor, profile: Profile): Promise<{ ready: () => Promise<void>; log: () => Promise<string> }> {
  const { ports, root } = profile;
  const redisDir = sysPath(profile, '/var/lib/redis');
  await mkdir(redisDir, { recursive: true });
  const redis = sup.start('redis', 'redis-server', [
    '--bind', LISTEN, '--port', String(ports.redis), '--protected-mode', 'yes',
    '--save', '', '--appendonly', 'no', '--dir', redisDir, '--daemonize', 'no', '--logfile', '',
  ]);

  const conf = await stockConfigInto(root);
  const dirs = { DBDIR: sysPath(profile, '/var/lib/rspamd'), RUNDIR: sysPath(profile, '/run/rspamd'), LOGDIR: sysPath(profile, '/var/log/rspamd') };
  const { uid, gid } = await idsOf(RSPAMD_USER);
  for (const d of Object.values(dirs)) {
    await mkdir(d, { recursive: true });
    await chown(d, uid, gid);
  }
  const vars = Object.entries({ CONFDIR: conf, LOCAL_CONFDIR: conf, ...dirs }).map(([k, v]) => `--var=${k}=${v}`);
  const rspamd = sup.start('rspamd', 'rspamd', ['-f', '-u', RSPAMD_USER, '-g', RSPAMD_USER, '-c', join(conf, 'rspamd.conf'), ...vars]);
  const log = () => readFile(join(dirs.LOGDIR, 'rspamd.log'), 'utf8').catch(() => '');
  return {
    log,
    ready: async () => {
      await waitReady(redis, () => tcpOpen(LISTEN, ports.redis), 20_000);
      // rspamd compiles its rules when it starts: a few seconds, more on a busy machine.
      await waitReady(rspamd, () => tcpOpen(LISTEN, ports.spam), 90_000, log);
    },
  };
}
