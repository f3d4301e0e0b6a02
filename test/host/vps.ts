/**
 * The user's own VPS for the pristine-host tier: a network namespace on the test's internet (the
 * host's "outside" namespace routes between them) with a mount namespace of its own, where
 * /etc/wireguard and /run are memory-only, so the VPS's key lives there and nowhere else on this
 * machine. It is set up with the bundle's vps/ files as vps/setup.sh would (the key made there
 * with `wg genkey`, the rules loaded with `nft -f`, the tunnel brought up with `wg-quick`); the
 * packages and systemd units of a real VPS are the only steps left out. Without a WireGuard kernel
 * module here, wg-quick runs wireguard-go.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type PristineHost, type RunResult, must, sh } from './machine.js';

export const VPS_NET = {
  vps4: '198.51.100.5',
  vps6: '2001:db8:5::5',
  gw4: '198.51.100.1',
  gw6: '2001:db8:5::1',
} as const;

export class OwnVps {
  private holder: ChildProcess | undefined;
  private holderPid: number | undefined;

  private constructor(
    readonly ns: string,
    private readonly host: PristineHost,
  ) {}

  /** The namespace, linked to the host's outside, and the holder of its mount namespace. */
  static async create(host: PristineHost): Promise<OwnVps> {
    const v = new OwnVps(`${host.netns}v`, host);
    const ip = (...a: string[]) => must('ip', a);
    const outEnd = `sv${host.netns.slice(3)}`;
    await ip('netns', 'add', v.ns);
    await ip('link', 'add', outEnd, 'type', 'veth', 'peer', 'name', `${outEnd}p`);
    await ip('link', 'set', `${outEnd}p`, 'netns', v.ns);
    await ip('link', 'set', outEnd, 'netns', host.outside);
    await ip('-n', v.ns, 'link', 'set', `${outEnd}p`, 'name', 'eth0');
    await ip('-n', v.ns, 'link', 'set', 'lo', 'up');
    await ip('-n', v.ns, 'addr', 'add', `${VPS_NET.vps4}/24`, 'dev', 'eth0');
    await ip('-n', v.ns, 'addr', 'add', `${VPS_NET.vps6}/64`, 'dev', 'eth0', 'nodad');
    await ip('-n', v.ns, 'link', 'set', 'eth0', 'up');
    await ip('-n', v.ns, 'route', 'add', 'default', 'via', VPS_NET.gw4);
    await ip('-n', v.ns, '-6', 'route', 'add', 'default', 'via', VPS_NET.gw6);
    await ip('-n', host.outside, 'addr', 'add', `${VPS_NET.gw4}/24`, 'dev', outEnd);
    await ip('-n', host.outside, 'addr', 'add', `${VPS_NET.gw6}/64`, 'dev', outEnd, 'nodad');
    await ip('-n', host.outside, 'link', 'set', outEnd, 'up');
    // A mount namespace of its own, alive as long as the VPS: its /etc/wireguard and /run in memory.
    const holder = spawn(
      'ip',
      ['netns', 'exec', v.ns, 'unshare', '--mount', '--propagation', 'private', 'sh', '-c', 'mount -t tmpfs -o mode=0700 vps-etc-wireguard /etc/wireguard && mount -t tmpfs vps-run /run && echo ready && exec sleep 100000'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    v.holder = holder;
    await new Promise<void>((resolve, reject) => {
      let err = '';
      holder.stderr?.on('data', (d: Buffer) => (err += d.toString()));
      holder.stdout?.on('data', (d: Buffer) => (d.toString().includes('ready') ? resolve() : undefined));
      holder.on('exit', (code) => reject(new Error(`the VPS's mount namespace did not come up (exit ${code}): ${err}`)));
    });
    v.holderPid = await sleepChildOf(holder.pid ?? -1);
    return v;
  }

  /** A shell command on the VPS (its network and its mount namespace). */
  exec(script: string, input?: string): Promise<RunResult> {
    if (this.holderPid === undefined) throw new Error('the VPS is gone');
    return sh('nsenter', ['-t', String(this.holderPid), '-m', '-n', '--', 'sh', '-c', script], { timeout: 60_000, ...(input !== undefined ? { input } : {}) });
  }

  async must(script: string, input?: string): Promise<string> {
    const r = await this.exec(script, input);
    if (r.code !== 0) throw new Error(`on the VPS: ${script}\nexit ${r.code}\n${r.stdout}\n${r.stderr}`);
    return r.stdout;
  }

  /** vps/setup.sh's steps with the bundle's own files: the key made here, the rules, the tunnel. Returns the VPS's public key. */
  async setUp(vpsDir: string): Promise<string> {
    await this.must('umask 077 && wg genkey > /etc/wireguard/selfmail.key');
    await this.must('umask 077 && cat > /etc/wireguard/selfmail.conf', await readFile(join(vpsDir, 'wireguard.conf'), 'utf8'));
    await this.must('nft -f -', await readFile(join(vpsDir, 'nftables.conf'), 'utf8'));
    for (const line of (await readFile(join(vpsDir, 'sysctl.conf'), 'utf8')).split('\n').filter((l) => /^[a-z]/.test(l))) {
      await this.must(`sysctl -qw '${line.replace(/\s*=\s*/, '=')}'`);
    }
    await this.must('wg-quick up selfmail 2>&1');
    return (await this.must('wg pubkey < /etc/wireguard/selfmail.key')).trim();
  }

  /** The processes running in the VPS's network namespace (their command names). */
  async processes(): Promise<string[]> {
    const mine = (await sh('ip', ['netns', 'pids', this.ns])).stdout.split('\n').filter(Boolean);
    const names: string[] = [];
    for (const p of mine) names.push((await readFile(`/proc/${p}/comm`, 'utf8').catch(() => '?')).trim());
    return names.sort();
  }

  async destroy(): Promise<void> {
    if (this.holderPid !== undefined) await this.exec('wg-quick down selfmail 2>&1').catch(() => undefined);
    for (const p of (await sh('ip', ['netns', 'pids', this.ns]).catch(() => ({ stdout: '' }))).stdout.split('\n').filter(Boolean)) {
      try {
        process.kill(Number(p), 'SIGKILL');
      } catch {
        // already gone
      }
    }
    this.holder?.kill('SIGKILL');
    this.holderPid = undefined;
    await sh('ip', ['netns', 'del', this.ns]).catch(() => undefined);
    void this.host;
  }
}

/** The `sleep` that the holder's shell became (exec), a child of `ip netns exec` … `unshare`. */
async function sleepChildOf(root: number): Promise<number> {
  const { readdir } = await import('node:fs/promises');
  for (let i = 0; i < 50; i++) {
    const pids = (await readdir('/proc')).filter((p) => /^\d+$/.test(p));
    const parent = new Map<number, number>();
    const comm = new Map<number, string>();
    for (const p of pids) {
      const stat = await readFile(`/proc/${p}/stat`, 'utf8').catch(() => '');
      if (!stat) continue;
      parent.set(Number(p), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
      comm.set(Number(p), stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')')));
    }
    const descends = (p: number): boolean => {
      for (let q = p, n = 0; q > 1 && n < 10; q = parent.get(q) ?? 0, n++) if (q === root) return true;
      return false;
    };
    for (const [p, c] of comm) if (c === 'sleep' && descends(p)) return p;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('the VPS holder process was not found');
}
