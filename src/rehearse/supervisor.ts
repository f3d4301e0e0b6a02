/**
 * Starts the rehearsal's daemons in the foreground, each in a process group of its own, and
 * stops every one of them (and their children) again: on success, on failure and on Ctrl-C.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { readFile, readdir, readlink } from 'node:fs/promises';
import { connect } from 'node:net';
import { ToolError } from '../errors.js';
import { PACKAGE_OF, hasTool } from '../tools/run.js';

export interface Daemon {
  name: string;
  child: ChildProcess;
  /** The daemon's own stdout and stderr, kept for failure reasons (never secrets: daemons print none). */
  output: () => string;
}

const MAX_OUTPUT = 20_000;

/** The last `lines` lines of a text. */
export function tail(text: string, lines = 15): string {
  return text.trimEnd().split('\n').slice(-lines).join('\n');
}

/** Fails with exit 4 and the package to install when a program is missing. */
export async function requireTool(cmd: string): Promise<void> {
  if (!(await hasTool(cmd))) {
    const pkg = PACKAGE_OF[cmd];
    throw new ToolError(`${cmd} is not installed${pkg ? `: install the Debian package ${pkg} (apt-get install ${pkg})` : ''}`, cmd);
  }
}

export class Supervisor {
  readonly daemons: Daemon[] = [];
  /** Commands run to stop a daemon politely before its group is signalled (postfix stop). */
  private readonly stoppers: Array<() => Promise<void>> = [];

  /** Spawn `cmd args` in a new process group, stdin closed, output captured. */
  start(name: string, cmd: string, args: readonly string[]): Daemon {
    // After a stop (Ctrl-C while starting), a start still under way must not spawn anything new.
    if (this.closed) throw new ToolError(`${name} not started: the rehearsal is stopping`, cmd);
    const child = spawn(cmd, args, { detached: true, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, PATH: withSbin(process.env.PATH) } });
    let out = '';
    const keep = (b: Buffer) => {
      out = (out + b.toString('utf8')).slice(-MAX_OUTPUT);
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    // An ENOENT here would otherwise be an unhandled 'error' event.
    child.on('error', (e) => keep(Buffer.from(`\n${String(e.message)}\n`)));
    const d: Daemon = { name, child, output: () => out };
    this.daemons.push(d);
    return d;
  }

  /** Process groups a daemon made of its own (Postfix's master calls setsid), stopped like the rest. */
  private readonly extraGroups: number[] = [];

  adoptGroup(pgid: number): void {
    if (!this.extraGroups.includes(pgid)) this.extraGroups.push(pgid);
  }

  onStop(fn: () => Promise<void>): void {
    this.stoppers.push(fn);
  }

  /** Stop everything: polite stop commands, SIGTERM to each group, SIGKILL after a grace period. */
  private closed = false;

  async stopAll(graceMs = 1000): Promise<void> {
    this.closed = true;
    for (const s of this.stoppers.splice(0).reverse()) {
      await s().catch(() => undefined); // best effort: the signals below finish the job
    }
    // A rehearsal daemon holds nothing worth a long wait: SIGTERM, a short grace, then SIGKILL.
    const groups = this.groups();
    for (const g of groups) signalGroup(g, 'SIGTERM');
    const deadline = Date.now() + graceMs;
    while (Date.now() < deadline && groups.some(groupAlive)) await sleep(50);
    for (const g of groups) if (groupAlive(g)) signalGroup(g, 'SIGKILL');
    const killed = Date.now() + 2000;
    while (Date.now() < killed && groups.some(groupAlive)) await sleep(50);
  }

  /** Process group ids of the daemons (and of the groups they made), for the leftover check. */
  groups(): number[] {
    const own = this.daemons.map((d) => d.child.pid).filter((p): p is number => p !== undefined);
    return [...new Set([...own, ...this.extraGroups])];
  }
}

function withSbin(path: string | undefined): string {
  const parts = (path ?? '/usr/bin:/bin').split(':');
  for (const d of ['/usr/sbin', '/sbin']) if (!parts.includes(d)) parts.push(d);
  return parts.join(':');
}

function signalGroup(pgid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(-pgid, sig);
  } catch {
    // the group is already gone
  }
}

function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** True once something accepts TCP connections on host:port. */
export function tcpOpen(host: string, port: number, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host, port });
    const done = (ok: boolean) => {
      s.destroy();
      resolve(ok);
    };
    s.setTimeout(timeoutMs, () => done(false));
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
  });
}

/**
 * Wait until `ready()` is true; fail early when the daemon exited, and after `timeoutMs` with
 * the daemon's own words (and an extra log, e.g. Postfix's maillog_file).
 */
export async function waitReady(d: Daemon, ready: () => Promise<boolean>, timeoutMs: number, log?: () => Promise<string>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await ready()) return;
    const exited = d.child.exitCode !== null || d.child.signalCode !== null;
    if (exited && !d.name.startsWith('postfix')) {
      throw new ToolError(`${d.name} exited (${d.child.exitCode ?? d.child.signalCode}) before it was ready:\n${tail(d.output() + (log ? await log() : ''))}`, d.name);
    }
    if (Date.now() > deadline) {
      throw new ToolError(`${d.name} was not ready within ${timeoutMs / 1000} s:\n${tail(d.output() + (log ? await log() : ''))}`, d.name);
    }
    await sleep(100);
  }
}

export interface Leftover {
  pid: number;
  command: string;
}

/**
 * Processes still running that belong to the rehearsal: their command line mentions `root`, they
 * are in one of the daemons' process groups, or in one of the rehearsal's network `namespaces`
 * (`net:[…]`: its own, and an own-VPS rehearsal's internet and VPS).
 */
export async function leftoverProcesses(root: string, groups: readonly number[], namespaces: readonly string[] = []): Promise<Leftover[]> {
  const out: Leftover[] = [];
  const wanted = new Set(groups);
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    if (pid === process.pid) continue;
    try {
      const cmdline = (await readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0').join(' ').trim();
      const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
      // Fields after the command name "(…)": state ppid pgrp …
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const pgrp = Number(fields[2]);
      if (fields[0] === 'Z') continue;
      let cwd = '';
      try {
        cwd = await readlink(`/proc/${pid}/cwd`);
      } catch {
        // not ours to read
      }
      const netns = namespaces.length > 0 ? await netnsOf(pid).catch(() => '') : '';
      if (cmdline.includes(root) || wanted.has(pgrp) || cwd.startsWith(root) || (netns !== '' && namespaces.includes(netns))) out.push({ pid, command: cmdline });
    } catch {
      // the process ended while we looked
    }
  }
  return out;
}

/**
 * The TCP sockets in LISTEN state of a network namespace, socket inode → port, from its
 * `net/tcp` and `net/tcp6` (`netDir`: /proc/net for this process's namespace, /proc/PID/net for
 * another's).
 */
export async function listeningSockets(netDir = '/proc/net'): Promise<Map<string, number>> {
  const inodes = new Map<string, number>();
  for (const file of ['tcp', 'tcp6']) {
    const text = await readFile(`${netDir}/${file}`, 'utf8').catch(() => '');
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f[3] !== '0A' || !f[1] || !f[9]) continue; // 0A = LISTEN
      inodes.set(f[9], parseInt(f[1].split(':')[1] ?? '0', 16));
    }
  }
  return inodes;
}

/** The `net:[inode]` of a process's network namespace. */
export async function netnsOf(pid: number | 'self'): Promise<string> {
  return readlink(`/proc/${pid}/ns/net`);
}

/** Processes whose network namespace is one of `namespaces` (`net:[…]`), but `except`. */
export async function processesIn(namespaces: readonly string[], except: readonly number[] = []): Promise<number[]> {
  const out: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry) || except.includes(Number(entry))) continue;
    const ns = await readlink(`/proc/${entry}/ns/net`).catch(() => '');
    if (ns && namespaces.includes(ns)) out.push(Number(entry));
  }
  return out;
}
