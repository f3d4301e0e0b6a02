/**
 * `selfmail rehearse`: run a bundle's services on loopback and prove that they work together —
 * DNSSEC, submission, inbound mail, IMAPS, DKIM/SPF/DMARC, and the refusals — before the user
 * touches a registrar or a production host. Everything started is stopped and the temporary
 * root removed, on success, on failure and on Ctrl-C.
 */
import { rm } from 'node:fs/promises';
import { InterruptedError, SelfmailError, ToolError } from '../errors.js';
import { type Host, makeRoot, requireRootAndTools, startHost } from './host.js';
import { type LoadedBundle, loadBundle } from './load.js';
import {
  type StepContext,
  type StepResult,
  StepFailure,
  authenticationStep,
  dnsStep,
  imapStep,
  inboundStep,
  learningStep,
  newState,
  realMailboxesStep,
  aliasesStep,
  privacyStep,
  refusalsStep,
  sieveStep,
  spamStep,
  submissionStep,
  tunnelStep,
} from './steps.js';
import { type Leftover, Supervisor, leftoverProcesses, netnsOf } from './supervisor.js';

export type { StepResult } from './steps.js';

export interface RehearsalOptions {
  bundle: string;
  passwordFile?: string;
  /** Called as each step ends (progress on a terminal). */
  onStep?: (step: StepResult) => void;
}

export interface RehearsalReport {
  ok: boolean;
  bundle: string;
  /** Domains and mailboxes rehearsed (the rehearsal's own included). */
  domains: string[];
  mailboxes: { rehearsal: string[]; real: string[] };
  /** The loopback ports used, for a reader of the report. */
  ports: Record<string, number>;
  steps: StepResult[];
  /** Processes left after the stop (always empty unless something went wrong), and the root removed. */
  cleanup: { leftover: Leftover[]; rootRemoved: boolean };
  ms: number;
}

/** The steps, in order: each later one relies on what the earlier ones sent. */
const STEPS: Array<{ id: string; title: string; run: (c: StepContext) => Promise<string | { reason: string; checks: StepResult['checks'] }>; needs?: string[]; when?: (b: LoadedBundle) => boolean }> = [
  { id: 'dns', title: 'DNS: MX, DKIM, TLSA and DMARC validate as secure with the bundle\'s trust anchor', run: dnsStep },
  { id: 'submission', title: 'Submission on 587 (STARTTLS) and 465 (implicit TLS), authenticated, to another mailbox', run: submissionStep },
  { id: 'inbound', title: 'Inbound on port 25 from an unauthenticated client', run: inboundStep },
  { id: 'spam', title: 'Spam filter (rspamd) on port 25: GTUBE and a DMARC p=reject forgery refused at SMTP time, probable spam filed into Junk, ordinary mail in the INBOX', run: spamStep, needs: ['inbound'] },
  { id: 'imap', title: 'Messages fetched over IMAPS with the mailbox password', run: imapStep, needs: ['submission', 'inbound'] },
  { id: 'authentication', title: 'DKIM (rsa-sha256 + ed25519-sha256), SPF and DMARC pass; no client trace in the headers', run: authenticationStep, needs: ['imap'] },
  // After the IMAP step: it moves the inbound message out of the INBOX.
  { id: 'learning', title: 'Moving a message into Junk over IMAP teaches rspamd spam, out of Junk ham', run: learningStep, needs: ['spam', 'imap'] },
  { id: 'sieve', title: 'ManageSieve (STARTTLS first): an uploaded rule files by header; a vacation reply is sent once, signed', run: sieveStep },
  // Before the refusals: Dovecot slows down every login from an address that just failed one.
  { id: 'aliases', title: 'The bundle\'s aliases deliver on port 25 to the mailboxes they name; a catch-all takes only unnamed addresses', run: aliasesStep, needs: ['inbound'], when: (b) => b.config.aliases.length > 0 },
  { id: 'real-mailboxes', title: 'The bundle\'s own mailboxes log in (--password-file)', run: realMailboxesStep, when: (b) => b.real.length > 0 },
  // Own-vps only: through the VPS the rehearsal made from the bundle's vps/ files.
  { id: 'tunnel', title: 'Through the VPS (own-vps): inbound mail arrives at home with the client\'s own address and TLS ending at home; outbound leaves from the VPS\'s address, signed; the VPS holds nothing but its WireGuard key', run: tunnelStep, when: (b) => b.config.ingress === 'own-vps' },
  { id: 'refusals', title: 'What must fail, fails: relaying, AUTH before TLS, wrong passwords, sending as another user, cleartext IMAP', run: refusalsStep },
  // Last: it judges everything the other steps made the daemons do.
  { id: 'privacy', title: 'Nothing left the rehearsal: no DNS question beyond its own zones, no packet to any address outside it', run: privacyStep },
];

async function timed(id: string, title: string, fn: () => Promise<string | { reason: string; checks: StepResult['checks'] }>): Promise<StepResult> {
  const start = performance.now();
  try {
    const r = await fn();
    const ms = Math.round(performance.now() - start);
    if (typeof r === 'string') return { id, title, ok: true, reason: r, ms };
    const ok = (r.checks ?? []).every((x) => x.ok);
    return { id, title, ok, reason: r.reason, ms, ...(r.checks ? { checks: r.checks } : {}) };
  } catch (e) {
    const ms = Math.round(performance.now() - start);
    const reason = e instanceof StepFailure || e instanceof SelfmailError ? e.message : `unexpected error: ${e instanceof Error ? e.message : String(e)}`;
    return { id, title, ok: false, reason, ms };
  }
}

/**
 * Rehearse the bundle at `opts.bundle`. Throws InputError (bundle unusable), ToolError (a
 * daemon missing, not root, or a daemon that does not start) or InterruptedError (Ctrl-C);
 * otherwise returns the report, whose `ok` is true only when every step passed.
 */
export async function rehearse(opts: RehearsalOptions): Promise<RehearsalReport> {
  const started = performance.now();
  await requireRootAndTools();
  const bundle = await loadBundle(opts.bundle, opts.passwordFile !== undefined ? { passwordFile: opts.passwordFile } : {});
  const sup = new Supervisor();
  let root: string | undefined;
  let interrupted = false;
  let rejectInterrupt: (e: Error) => void = () => undefined;
  const interruptedP = new Promise<never>((_, reject) => (rejectInterrupt = reject));
  interruptedP.catch(() => undefined);
  const onSignal = () => {
    interrupted = true;
    rejectInterrupt(new InterruptedError());
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const steps: StepResult[] = [];
  let host: Host | undefined;
  let cleanup: RehearsalReport['cleanup'] = { leftover: [], rootRemoved: false };
  let isolatedNow = false;
  try {
    root = await makeRoot();
    // The rehearsal's own network (./isolate.ts): loopback, and a watched link for the rest.
    const { isolated, prepareNetwork } = await import('./isolate.js');
    if (!isolated()) throw new ToolError('the rehearsal runs in a network of its own, which `selfmail rehearse` sets up: run it through the CLI', 'selfmail');
    isolatedNow = true;
    await prepareNetwork(root);
    host = await Promise.race([startHost(bundle, root, sup), interruptedP]);
    const ctx: StepContext = { bundle, host, state: newState() };
    for (const s of STEPS) {
      if (s.when && !s.when(bundle)) continue;
      const failedNeed = (s.needs ?? []).find((n) => steps.find((x) => x.id === n && !x.ok));
      const result = failedNeed
        ? { id: s.id, title: s.title, ok: false, reason: `not run: the step "${failedNeed}" failed`, ms: 0 }
        : await Promise.race([timed(s.id, s.title, () => s.run(ctx)), interruptedP]);
      steps.push(result);
      opts.onStep?.(result);
    }
  } finally {
    process.off('SIGINT', onSignal);
    // A second Ctrl-C during the stop must not leave daemons behind: ignore it until done.
    const ignore = () => undefined;
    process.on('SIGINT', ignore);
    try {
      await sup.stopAll();
      const r = root ?? '/nonexistent-selfmail-rehearse-root';
      // Everything in the rehearsal's own network namespace but this process is the rehearsal's
      // (wireguard-go detaches from the groups the supervisor knows), and so is all of an own-VPS
      // rehearsal's internet and VPS.
      const namespaces = isolatedNow ? [await netnsOf('self'), ...(host?.tunnel?.namespaces ?? [])] : [];
      let leftover = await leftoverProcesses(r, sup.groups(), namespaces);
      for (const l of leftover) {
        try {
          process.kill(l.pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
      if (leftover.length > 0) {
        await new Promise((r) => setTimeout(r, 300));
        leftover = await leftoverProcesses(r, sup.groups(), namespaces);
      }
      if (root) await rm(root, { recursive: true, force: true });
      cleanup = { leftover, rootRemoved: true };
    } finally {
      process.off('SIGINT', ignore);
      process.off('SIGTERM', onSignal);
    }
  }
  if (interrupted) throw new InterruptedError();
  if (cleanup.leftover.length > 0) {
    steps.push({ id: 'cleanup', title: 'Everything started is stopped', ok: false, reason: `still running after the stop: ${cleanup.leftover.map((l) => `${l.pid} ${l.command}`).join('; ')}`, ms: 0 });
  }
  return {
    ok: steps.length > 0 && steps.every((s) => s.ok),
    bundle: opts.bundle,
    domains: [...bundle.config.domains],
    mailboxes: { rehearsal: [bundle.a.address, bundle.b.address], real: bundle.real.map((r) => r.address) },
    ports: host ? { ...host.profile.ports } : {},
    steps,
    cleanup,
    ms: Math.round(performance.now() - started),
  };
}

/** The report as lines for a terminal. */
export function formatReport(r: RehearsalReport): string[] {
  const lines: string[] = [`Rehearsal of ${r.bundle} (${r.domains.join(', ')}) on loopback${r.steps.some((s) => s.id === 'tunnel') ? ' and through a VPS of its own' : ''}:`];
  for (const s of r.steps) {
    lines.push(`  ${s.ok ? 'PASS' : 'FAIL'}  ${s.title} (${(s.ms / 1000).toFixed(1)} s)`);
    if (s.checks) for (const c of s.checks) lines.push(`          ${c.ok ? 'ok  ' : 'FAIL'} ${c.name}: ${c.reason}`);
    else for (const l of s.reason.split('\n')) lines.push(`          ${l}`);
  }
  lines.push(r.ok ? `Every step passed in ${(r.ms / 1000).toFixed(1)} s.` : `The rehearsal FAILED (${r.steps.filter((s) => !s.ok).length} step(s)); nothing was left running.`);
  return lines;
}
