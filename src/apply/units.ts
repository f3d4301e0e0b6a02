/**
 * The systemd side of `apply`: which units a bundle needs running, which of them a change
 * concerns, and the one systemctl sequence that enables, starts, reloads and restarts them.
 * Deciding is pure (`unitPlan`); doing is `applyUnits`.
 */
import { existsSync } from 'node:fs';
import { lstat, readdir, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { connect } from 'node:net';
import { STANDARD_PORTS, ruleFor } from '../bundle/layout.js';
import { MILTER_HOST, rspamdPorts } from '../mail/paths.js';
import { ToolError } from '../errors.js';
import { run } from '../tools/run.js';

/** The unit that brings up the tunnel to the user's VPS (own-vps): wg-quick's, for the bundle's wireguard/selfmail.conf. */
export const TUNNEL_UNIT = 'wg-quick@selfmail.service';

/**
 * The Debian packages' own units that serve the bundle's files. Debian enables them when it
 * installs them; apply enables them again (a host may have had them disabled) and starts them.
 */
export const DEBIAN_UNITS = [
  'nsd.service',
  'unbound.service',
  'dovecot.service',
  'postfix.service',
  'nginx.service',
  'fail2ban.service',
  'ssh.service',
  'redis-server.service',
  'rspamd.service',
] as const;

/**
 * How a unit takes a new configuration. A reload keeps clients connected (SMTP sessions, the SSH
 * session apply may run in); NSD and unbound bind their sockets at start only, a
 * oneshot unit redoes its work only when restarted, and Dovecot's reload waits up to 20 s for its
 * old processes where a restart takes a moment (IMAP clients reconnect by themselves).
 */
const RELOADS = new Set(['postfix.service', 'nginx.service', 'ssh.service', 'fail2ban.service']);

/**
 * The order apply brings units up in: the name servers first (Debian's default NSD listens on
 * every address, unbound's loopback port included), the resolver switch after unbound, the
 * filter and signer (rspamd) before Postfix hands it mail, Postfix before Dovecot (Dovecot's LMTP
 * and auth sockets live in Postfix's queue, which Postfix completes at its first start on a fresh
 * host). Units not listed follow, by name.
 */
export const START_ORDER = [
  // The tunnel to the user's VPS first (own-vps): the services bind to its address.
  TUNNEL_UNIT,
  'nsd.service',
  'unbound.service',
  'selfmail-resolver.service',
  'selfmail-firewall.service',
  'redis-server.service',
  'rspamd.service',
  'postfix.service',
  'dovecot.service',
  'nginx.service',
  'fail2ban.service',
  'ssh.service',
];

/**
 * Units of earlier selfmail versions that no longer serve a bundle: the two OpenDKIM signers,
 * whose work rspamd does since it signs both algorithms. Apply stops and disables them where they
 * still run (a host set up before), after the units that took over are up.
 */
export const RETIRED_UNITS = ['opendkim.service', 'opendkim-ed25519.service'] as const;

/** `units` sorted by START_ORDER, the others after them by name. Pure. */
export function inStartOrder(units: readonly string[]): string[] {
  const rank = (u: string) => {
    const i = START_ORDER.indexOf(u);
    return i < 0 ? START_ORDER.length : i;
  };
  return [...units].sort((a, b) => rank(a) - rank(b) || (a < b ? -1 : a > b ? 1 : 0));
}

/** A unit file the bundle ships, as it sits in the bundle (`systemd/<name>`). */
export interface ShippedUnit {
  name: string;
  /** The unit has an [Install] section: enabled and started by apply (else a timer starts it). */
  installable: boolean;
}

/** The units of the bundle's systemd/ folder, and wg-quick's for a tunnel config it ships. Pure. */
export function shippedUnits(entries: readonly { path: string; data: Buffer }[]): ShippedUnit[] {
  const own = entries
    .filter((e) => /^systemd\/[^/]+\.(service|timer)$/.test(e.path))
    .map((e) => ({ name: e.path.slice('systemd/'.length), installable: /^\[Install\]\s*$/m.test(e.data.toString('utf8')) }));
  const tunnel = entries.some((e) => e.path === 'wireguard/selfmail.conf') ? [{ name: TUNNEL_UNIT, installable: true }] : [];
  return [...own, ...tunnel].sort((a, b) => (a.name < b.name ? -1 : 1));
}

export interface UnitPlan {
  /** Units that must be enabled and running: Debian's and the bundle's installable ones. */
  wanted: string[];
  /** Units whose files changed: reloaded or restarted when they already run. */
  touched: string[];
  /** A unit file changed: systemd must re-read them first. */
  daemonReload: boolean;
  /** Units whose files an earlier bundle shipped and this one dropped: stopped and disabled. */
  dropped: string[];
}

/**
 * The units a change concerns. `changed` and `removed` are bundle paths; a changed unit file
 * concerns the unit itself. Pure.
 */
export function unitPlan(units: readonly ShippedUnit[], changed: readonly string[], removed: readonly string[]): UnitPlan {
  const wanted = [...DEBIAN_UNITS, ...units.filter((u) => u.installable).map((u) => u.name)];
  const touched = new Set<string>();
  let daemonReload = false;
  const dropped = [
    ...removed.filter((p) => /^systemd\/[^/]+\.(service|timer)$/.test(p)).map((p) => p.slice('systemd/'.length)),
    // A unit only removed files served (the tunnel's, when a bundle leaves own-vps).
    ...removed.flatMap((p) => ruleFor(p)?.units ?? []),
  ].filter((u, i, all) => !wanted.includes(u) && all.indexOf(u) === i);
  for (const p of [...changed, ...removed]) {
    if (p.startsWith('systemd/')) {
      daemonReload = true;
      const name = p.slice('systemd/'.length);
      if (wanted.includes(name)) touched.add(name);
      continue;
    }
    for (const u of ruleFor(p)?.units ?? []) touched.add(u);
  }
  return { wanted: [...new Set(wanted)].sort(), touched: [...touched].filter((u) => wanted.includes(u)).sort(), daemonReload, dropped: dropped.sort() };
}

export interface UnitOutcome {
  enabled: string[];
  started: string[];
  reloaded: string[];
  restarted: string[];
  /** Retired units (and units the bundle dropped) that were running or enabled here, now stopped and disabled. */
  retired: string[];
  /** Why units were enabled but not started (no service manager running), or nothing was done. */
  skipped?: string;
}

/** Is a service manager running on this system (not a chroot, an image being built, a container without systemd)? */
export function systemdRunning(): boolean {
  return existsSync('/run/systemd/system');
}

async function activeState(unit: string): Promise<string> {
  const r = await run('systemctl', ['is-active', unit], { okCodes: [0, 1, 2, 3, 4] });
  return r.stdout.trim();
}

/** The last lines the journal holds for `unit`, for an error message. */
export async function unitLog(unit: string): Promise<string> {
  const r = await run('journalctl', ['-u', unit, '-n', '15', '--no-pager', '-o', 'cat'], { okCodes: [0, 1] }).catch(() => undefined);
  return r?.stdout.trim() ?? '';
}

/**
 * Enable every wanted unit and, when systemd runs, start those that are not running and reload
 * or restart the running ones a change concerns; once all run, stop and disable the
 * RETIRED_UNITS (not with `retire: false`: a rollback's files may still need them). Throws
 * ToolError naming each unit that is not active afterwards, with its last log lines.
 */
export async function applyUnits(plan: UnitPlan, opts: { retire?: boolean } = {}): Promise<UnitOutcome> {
  const retire = opts.retire ?? true;
  const out: UnitOutcome = { enabled: [], started: [], reloaded: [], restarted: [], retired: [] };
  const running = systemdRunning();
  if (running && plan.daemonReload) await run('systemctl', ['daemon-reload']);
  // Offline (a chroot, an image) `systemctl enable` still links the units: they start at boot.
  // Each enable of a unit with an init script reloads systemd: enable only what is not yet.
  const toEnable: string[] = [];
  for (const u of plan.wanted) {
    // One unit per call: for a unit it cannot find, systemctl prints no line at all.
    const r = await run('systemctl', ['is-enabled', u], { okCodes: [0, 1, 4] });
    if (r.stdout.trim() !== 'enabled') toEnable.push(u);
  }
  if (toEnable.length > 0) await run('systemctl', ['enable', '--quiet', ...toEnable], { timeout: 120_000 });
  out.enabled = [...plan.wanted];
  if (!running) {
    if (retire) out.retired = await retireUnits([...RETIRED_UNITS, ...plan.dropped], false);
    out.skipped = 'no service manager (systemd) is running here: the units are enabled and start at the next boot';
    return out;
  }
  // One unit at a time, in START_ORDER: a fresh host runs Debian's defaults, and NSD's binds
  // every address's port 53, so it must have taken its new configuration before unbound starts.
  for (const u of inStartOrder(plan.wanted)) {
    const state = await activeState(u);
    if (state !== 'active' && state !== 'reloading') {
      out.started.push(u);
      // A unit that failed on Debian's defaults at boot may have hit its start limit.
      if (state === 'failed') await run('systemctl', ['reset-failed', u], { okCodes: [0, 1] });
      await startOrExplain(['start', u]);
      await untilListening(u);
    } else if (plan.touched.includes(u)) {
      const reload = RELOADS.has(u);
      (reload ? out.reloaded : out.restarted).push(u);
      await startOrExplain([reload ? 'reload-or-restart' : 'restart', u]);
      await untilListening(u);
    }
  }
  const failed: string[] = [];
  for (const u of plan.wanted) if ((await activeState(u)) !== 'active') failed.push(u);
  if (failed.length > 0) throw await unitsFailed(failed);
  // Only once everything that took over runs.
  if (retire) out.retired = await retireUnits([...RETIRED_UNITS, ...plan.dropped], true);
  return out;
}

/**
 * Stop (when systemd runs) and disable `units` where this host still has them: the RETIRED_UNITS,
 * and the units an earlier bundle shipped that this one dropped (the backup timer when
 * --backup-to none). A unit whose file the bundle shipped is gone by now (apply removed it): it
 * may still run, and its link in a `.wants` folder points nowhere; both go. Returns the units
 * that were running or enabled.
 */
async function retireUnits(units: readonly string[], running: boolean): Promise<string[]> {
  const done: string[] = [];
  for (const u of units) {
    let acted = false;
    if (running && (await activeState(u)) === 'active') {
      await run('systemctl', ['stop', u], { timeout: 120_000 });
      acted = true;
    }
    const enabled = (await run('systemctl', ['is-enabled', u], { okCodes: [0, 1, 4] })).stdout.trim();
    if (enabled === 'enabled') {
      await run('systemctl', ['disable', '--quiet', u], { timeout: 120_000 });
      acted = true;
    }
    for (const link of await danglingWants(u)) {
      await unlink(link);
      acted = true;
    }
    if (acted) done.push(u);
  }
  return done;
}

/** Links named `unit` in /etc/systemd/system/*.wants whose target no longer exists. */
async function danglingWants(unit: string): Promise<string[]> {
  const base = '/etc/systemd/system';
  const out: string[] = [];
  for (const d of await readdir(base).catch(() => [] as string[])) {
    if (!d.endsWith('.wants')) continue;
    const link = join(base, d, unit);
    const st = await lstat(link).catch(() => undefined);
    if (st?.isSymbolicLink() && !existsSync(link)) out.push(link);
  }
  return out;
}

/**
 * Units that are active before they serve: rspamd loads its rules for seconds after systemd calls
 * it started, and until its milter answers, Postfix defers every submission (the signer is
 * missing). Apply waits for the port, so that a host it returns from signs mail.
 */
const LISTENS_ON: Record<string, { host: string; port: number }> = {
  'rspamd.service': { host: MILTER_HOST, port: rspamdPorts(STANDARD_PORTS.spam).proxy },
};

async function untilListening(unit: string, timeoutMs = 120_000): Promise<void> {
  const at = LISTENS_ON[unit];
  if (!at) return;
  const deadline = Date.now() + timeoutMs;
  while (!(await tcpAnswers(at.host, at.port))) {
    if (Date.now() > deadline || (await activeState(unit)) !== 'active') {
      const log = await unitLog(unit);
      throw new ToolError(`${unit} did not open ${at.host}:${at.port} within ${timeoutMs / 1000} s${log ? `; its last log lines:\n${log.replace(/^/gm, '    ')}` : ''}`, 'systemctl');
    }
    await new Promise((r) => setTimeout(r, 250));
  }
}

function tcpAnswers(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host, port });
    const done = (ok: boolean) => {
      s.destroy();
      resolve(ok);
    };
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
    s.setTimeout(1000, () => done(false));
  });
}

async function startOrExplain(args: string[]): Promise<void> {
  const r = await run('systemctl', args, { okCodes: [0, 1, 3, 4, 5], timeout: 180_000 });
  if (r.exitCode === 0) return;
  const failed: string[] = [];
  for (const u of args.slice(1)) if ((await activeState(u)) !== 'active') failed.push(u);
  throw await unitsFailed(failed.length > 0 ? failed : args.slice(1), r.stderr.trim());
}

async function unitsFailed(units: string[], said = ''): Promise<ToolError> {
  const parts: string[] = [];
  for (const u of units) {
    const log = await unitLog(u);
    parts.push(`${u} is not running${log ? `; its last log lines:\n${log.replace(/^/gm, '    ')}` : ''}`);
  }
  return new ToolError(`systemctl ${said ? `said: ${said}\n` : ''}${parts.join('\n')}`, 'systemctl', said);
}
