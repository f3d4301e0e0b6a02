/**
 * The rehearsal's checks, each a named step with its time, pass or fail, and a reason. The
 * client side uses maintained libraries: nodemailer (SMTP), imapflow (IMAP), mailauth (DKIM,
 * SPF, DMARC) with a resolver that asks only the rehearsal's NSD; delv validates DNSSEC.
 */
import { randomBytes } from 'node:crypto';
import { connect } from 'node:net';
import { readFile, readdir, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { Config, DomainName, Email } from '../config/types.js';
import { zoneOf } from '../config/types.js';
import { run } from '../tools/run.js';
import { CLIENT_ADDRESS, CLIENT_NAME, type Host, LISTEN } from './host.js';
import type { LoadedBundle, Mailbox } from './load.js';
import { listeningSockets, sleep, tail } from './supervisor.js';
import type { RemoteMx } from './tunnel.js';

export interface StepResult {
  /** Stable identifier: dns, submission, inbound, spam, imap, authentication, learning, sieve, aliases, real-mailboxes, refusals, privacy. */
  id: string;
  title: string;
  ok: boolean;
  /** Why it passed (what was shown) or why it failed (the evidence). */
  reason: string;
  /** Milliseconds. */
  ms: number;
  /** Sub-checks, for steps made of several (the refusals). */
  checks?: Array<{ name: string; ok: boolean; reason: string }>;
}

/** What the steps pass along: the tokens of the messages sent and their fetched sources. */
export interface RunState {
  token: string;
  /** Subjects of the messages: submitted on 587 and on 465 (to b), inbound on 25 (to a). */
  subjects: { submission: string; submissions: string; inbound: string; probableSpam: string };
  sources: Map<string, Buffer>;
}

export interface StepContext {
  bundle: LoadedBundle;
  host: Host;
  state: RunState;
}

export function newState(): RunState {
  const token = randomBytes(6).toString('hex');
  return {
    token,
    subjects: {
      submission: `selfmail rehearsal ${token} submission 587`,
      submissions: `selfmail rehearsal ${token} submissions 465`,
      inbound: `selfmail rehearsal ${token} inbound 25`,
      probableSpam: `selfmail rehearsal ${token} probable spam`,
    },
    sources: new Map(),
  };
}

/** A failed step's message: thrown inside a step, it becomes the reason. */
export class StepFailure extends Error {}

function fail(reason: string): never {
  throw new StepFailure(reason);
}

function errText(e: unknown): string {
  if (e instanceof Error) {
    const extra = e as Error & { response?: string; responseCode?: number; code?: string; responseText?: string };
    return [extra.code, extra.response ?? extra.responseText ?? e.message].filter(Boolean).join(': ');
  }
  return String(e);
}

// ---- 1. DNS ----------------------------------------------------------------------------------

/** The names whose answers must validate: MX, DKIM, TLSA and DMARC of every domain. */
export function dnsQuestions(config: Config, bundle: Pick<LoadedBundle, 'keys'>): Array<{ name: string; type: string; zone: DomainName }> {
  const out: Array<{ name: string; type: string; zone: DomainName }> = [];
  const hostZone = zoneOf(config, config.hostname) ?? config.domains[0]!;
  for (const d of config.domains) {
    out.push({ name: d, type: 'MX', zone: d });
    for (const k of bundle.keys.dkim.filter((x) => x.domain === d && x.state === 'active')) out.push({ name: `${k.selector}._domainkey.${d}`, type: 'TXT', zone: d });
    out.push({ name: `_dmarc.${d}`, type: 'TXT', zone: d });
  }
  out.push({ name: `_25._tcp.${config.hostname}`, type: 'TLSA', zone: hostZone });
  return out;
}

export async function dnsStep(c: StepContext): Promise<string> {
  const { config } = c.bundle;
  const port = String(c.host.profile.ports.dns);
  const questions = dnsQuestions(config, c.bundle);
  if (!config.dnssec) {
    for (const q of questions) {
      const answers = await c.host.resolver.resolve(q.name, q.type).catch((e: unknown) => fail(`${q.name} ${q.type}: no answer (${errText(e)})`));
      if (!Array.isArray(answers) || answers.length === 0) fail(`${q.name} ${q.type}: empty answer`);
    }
    return `${questions.length} answers present; the bundle has DNSSEC turned off, so none can validate as secure`;
  }
  const bad: string[] = [];
  await Promise.all(
    questions.map(async (q) => {
      const r = await run('delv', [`@${c.host.address}`, '-p', port, '-a', c.host.anchorFile, `+root=${q.zone}`, '+nomultiline', q.name, q.type], { timeout: 20_000, okCodes: [0, 1] });
      const out = r.stdout + r.stderr;
      if (!/; fully validated/.test(out)) bad.push(`${q.name} ${q.type}: ${tail(out, 3).replace(/\n/g, ' | ')}`);
    }),
  );
  if (bad.length > 0) fail(`not validated with the bundle's trust anchor: ${bad.sort().join('; ')}`);
  return `${questions.map((q) => `${q.name} ${q.type}`).join(', ')}: fully validated against the bundle's KSK`;
}

// ---- SMTP helpers ------------------------------------------------------------------------------

interface SmtpTarget {
  port: number;
  /** Implicit TLS (465) rather than STARTTLS. */
  secure: boolean;
  auth?: { user: string; pass: string };
  /** Require STARTTLS before anything (587); on 25 it is taken when offered. */
  requireTLS?: boolean;
}

async function transport(c: StepContext, t: SmtpTarget) {
  const nodemailer = (await import('nodemailer')).default;
  const cert = await readTlsCert(c);
  return nodemailer.createTransport({
    host: c.host.address,
    port: t.port,
    secure: t.secure,
    requireTLS: t.requireTLS ?? false,
    name: CLIENT_NAME,
    localAddress: CLIENT_ADDRESS,
    ...(t.auth ? { auth: t.auth } : {}),
    // The bundle's bootstrap certificate is trusted as its own CA and its name checked: nothing
    // is accepted blindly.
    tls: { ca: [cert], servername: c.bundle.config.hostname },
    connectionTimeout: 10_000,
    greetingTimeout: 10_000,
    socketTimeout: 20_000,
  });
}

async function readTlsCert(c: StepContext): Promise<Buffer> {
  const cert = c.bundle.files.get(c.bundle.keys.tls.certPath);
  if (!cert) fail(`the bundle has no ${c.bundle.keys.tls.certPath}`);
  return cert;
}

function message(from: string, to: string, subject: string, token: string, extra = '') {
  return {
    envelope: { from, to: [to] },
    from,
    to,
    subject,
    text:
      `This message was sent by selfmail rehearse (${token}) on loopback. It never left this machine.\n` +
      // Enough words for the spam filter's Bayes classifier to learn from (it skips short texts).
      'The rehearsal starts every service of the bundle under a temporary root, sends mail between two mailboxes, ' +
      'checks the signatures, the spam filter and the mail rules, and stops everything when it is done.\n' +
      extra,
  };
}

async function send(c: StepContext, t: SmtpTarget, from: string, to: string, subject: string, extra = ''): Promise<string> {
  const tr = await transport(c, t);
  try {
    const info = await tr.sendMail(message(from, to, subject, c.state.token, extra));
    if (!info.accepted.map(String).includes(to)) fail(`not accepted for ${to}: ${info.response}`);
    return info.response;
  } finally {
    tr.close();
  }
}

// ---- 2. submission, 3. inbound ---------------------------------------------------------------

export async function submissionStep(c: StepContext): Promise<string> {
  const { a, b } = c.bundle;
  const { ports } = c.host.profile;
  const auth = { user: a.address, pass: a.password };
  const r587 = await send(c, { port: ports.submission, secure: false, requireTLS: true, auth }, a.address, b.address, c.state.subjects.submission).catch((e: unknown) => {
    if (e instanceof StepFailure) throw e;
    return fail(`587 (STARTTLS): ${errText(e)}`);
  });
  const r465 = await send(c, { port: ports.submissions, secure: true, auth }, a.address, b.address, c.state.subjects.submissions).catch((e: unknown) => {
    if (e instanceof StepFailure) throw e;
    return fail(`465 (implicit TLS): ${errText(e)}`);
  });
  return `${a.address} → ${b.address} accepted on 587 with STARTTLS (${r587.trim()}) and on 465 with implicit TLS (${r465.trim()}), certificate verified against the bundle's`;
}

/** The sender of the inbound test message: a domain outside the bundle that can never exist. */
export const OUTSIDE_SENDER = 'someone@outside.invalid';

export async function inboundStep(c: StepContext): Promise<string> {
  const { a } = c.bundle;
  const r = await send(c, { port: c.host.profile.ports.smtp, secure: false }, OUTSIDE_SENDER, a.address, c.state.subjects.inbound).catch((e: unknown) => {
    if (e instanceof StepFailure) throw e;
    return fail(`port 25: ${errText(e)}`);
  });
  return `${OUTSIDE_SENDER} → ${a.address} accepted on port 25 without authentication (${r.trim()})`;
}

/** The spam filter's test pattern (GTUBE): every rspamd refuses a message that holds it. */
export const GTUBE = 'XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X';
/**
 * rspamd's pattern for "add header" (probable spam). Counted only where `gtube_patterns = all`,
 * which the rehearsal's rspamd has and a host's never does (templates/rspamd/options.inc.hbs).
 */
export const GTUBE_ADD_HEADER = 'YJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X';

/**
 * rspamd behind Postfix on port 25, refusing at SMTP time (no bounce to a forged sender): GTUBE,
 * and a message forged in the name of one of the bundle's domains, whose DMARC policy is reject
 * (no DKIM signature, a client outside its SPF). Probable spam is taken and filed into Junk by
 * the global Sieve rule, while the ordinary message of the inbound step is in the INBOX.
 */
export async function spamStep(c: StepContext): Promise<string> {
  const { a, b } = c.bundle;
  const smtp = { port: c.host.profile.ports.smtp, secure: false };
  const refusedAtSmtp = async (what: string, from: string, extra: string): Promise<string> => {
    try {
      const r = await send(c, smtp, from, a.address, `selfmail rehearsal ${c.state.token} ${what}`, extra);
      return fail(`${what} was accepted on port 25 (${r.trim()}): the spam filter let it in; Postfix's last lines:\n${tail(await c.host.postfixLog(), 5)}`);
    } catch (e) {
      if (e instanceof StepFailure) throw e;
      const code = (e as { responseCode?: number }).responseCode;
      if (typeof code !== 'number' || code < 500) fail(`${what} on port 25 failed for another reason: ${errText(e)}`);
      return `${what} refused (${errText(e)})`;
    }
  };
  const gtube = await refusedAtSmtp('GTUBE', OUTSIDE_SENDER, `${GTUBE}\n`);
  const forged = await refusedAtSmtp(`a forgery from ${b.address} (DMARC p=reject)`, b.address, '');
  await send(c, smtp, OUTSIDE_SENDER, a.address, c.state.subjects.probableSpam, `${GTUBE_ADD_HEADER}\n`).catch((e: unknown) => {
    if (e instanceof StepFailure) throw e;
    return fail(`probable spam was refused on port 25 (it should be taken and filed into Junk): ${errText(e)}`);
  });
  const junk = await fetchAll(c, a, [c.state.subjects.probableSpam], 20_000, 'Junk').catch((e: unknown) => fail(`IMAPS as ${a.address}, Junk: ${errText(e)}`));
  const spam = junk.get(c.state.subjects.probableSpam);
  if (!spam) {
    const inbox = await fetchAll(c, a, [c.state.subjects.probableSpam], 1_000).catch(() => new Map<string, Buffer>());
    fail(
      inbox.size > 0
        ? `probable spam was delivered to the INBOX, not to Junk (its X-Spam header: ${/^X-Spam:.*$/im.exec(headerBlock(inbox.values().next().value as Buffer))?.[0] ?? 'none'})`
        : `probable spam is in neither Junk nor INBOX after 20 s; Dovecot's last lines:\n${tail(await c.host.dovecotLog(), 5)}`,
    );
  }
  const inbox = await fetchAll(c, a, [c.state.subjects.inbound]).catch((e: unknown) => fail(`IMAPS as ${a.address}: ${errText(e)}`));
  if (!inbox.has(c.state.subjects.inbound)) fail('the ordinary message of the inbound step is not in the INBOX after 20 s');
  return `at SMTP time on port 25: ${gtube}; ${forged}; probable spam (rspamd's add-header pattern) taken, marked "${/^X-Spam:.*$/im.exec(headerBlock(spam))?.[0] ?? ''}" and filed into Junk by the global Sieve rule; the ordinary message is in the INBOX`;
}

// ---- learning: IMAPSieve teaches rspamd ---------------------------------------------------------

/**
 * What rspamd's Bayes has learned, as rspamd itself keeps it: the `learns_spam` and `learns_ham`
 * fields of its `RS` hash in Redis (the controller's /stat reports them only minutes later).
 */
async function bayesLearned(c: StepContext): Promise<{ spam: number; ham: number }> {
  const reply = await new Promise<string>((resolve, reject) => {
    const s = connect({ host: LISTEN, port: c.host.profile.ports.redis });
    let buf = '';
    const timer = setTimeout(() => {
      s.destroy();
      reject(new Error(`Redis on ${c.host.profile.ports.redis} did not answer within 5 s`));
    }, 5_000);
    s.on('data', (d: Buffer) => {
      buf += d.toString('utf8');
      // *2, then two bulk strings ($n + data, or $-1 for a field not there yet).
      if (/^\*2\r\n(\$-1\r\n|\$\d+\r\n[^\r]*\r\n){2}$/.test(buf)) {
        clearTimeout(timer);
        s.end();
        resolve(buf);
      }
    });
    s.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    s.write('HMGET RS learns_spam learns_ham\r\n');
  }).catch((e: unknown) => fail(`reading rspamd's learned counts from Redis: ${errText(e)}`));
  const values = [...reply.matchAll(/\$(-1|\d+)\r\n(?:([^\r]*)\r\n)?/g)].map((m) => (m[1] === '-1' ? 0 : Number(m[2])));
  return { spam: values[0] ?? 0, ham: values[1] ?? 0 };
}

/** rspamd's last log lines about learning, for a failure reason. */
function learnLines(log: string): string {
  return log.split('\n').filter((l) => /learn/i.test(l)).slice(-4).join('\n') || '(nothing about learning)';
}

async function waitLearned(c: StepContext, kind: 'spam' | 'ham', above: number, timeoutMs = 15_000): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const now = (await bayesLearned(c))[kind];
    if (now > above || Date.now() > deadline) return now;
    await sleep(300);
  }
}

/** Log in over IMAPS as `box`, hold `folder`'s lock while `fn` runs, log out. */
async function inFolder<T>(c: StepContext, box: Mailbox, folder: string, fn: (client: Awaited<ReturnType<typeof imapClient>>) => Promise<T>): Promise<T> {
  const client = await imapClient(c, box.address, box.password);
  await client.connect();
  try {
    const lock = await client.getMailboxLock(folder);
    try {
      return await fn(client);
    } finally {
      lock.release();
    }
  } finally {
    await client.logout().catch(() => client.close());
  }
}

/** Move the message with `subject` from `from` to `to` over IMAPS as `box`. */
async function moveMessage(c: StepContext, box: Mailbox, subject: string, from: string, to: string): Promise<void> {
  await inFolder(c, box, from, async (client) => {
    const uids = await client.search({ subject }, { uid: true });
    const uid = Array.isArray(uids) ? uids[0] : undefined;
    if (uid === undefined) fail(`no message "${subject}" in ${from} of ${box.address}`);
    const moved = await client.messageMove(String(uid), to, { uid: true });
    if (!moved) fail(`IMAP MOVE of "${subject}" from ${from} to ${to} failed`);
  });
}

/**
 * Moving a message into Junk over IMAP teaches rspamd spam, moving one out teaches ham: shown by
 * rspamd's learned counts before and after, read from its Redis.
 */
export async function learningStep(c: StepContext): Promise<string> {
  const { a } = c.bundle;
  const before = await bayesLearned(c);
  await moveMessage(c, a, c.state.subjects.inbound, 'INBOX', 'Junk');
  const spam = await waitLearned(c, 'spam', before.spam);
  if (spam <= before.spam) fail(`moving a message into Junk taught rspamd nothing: rspamd's learned spam stays at ${spam}; Dovecot's last lines:\n${tail(await c.host.dovecotLog(), 5)}\nrspamd on learning:\n${learnLines(await c.host.spamLog())}`);
  // The same message back out of Junk (rspamd takes back the spam it learned and learns ham; the
  // probable spam of the spam step would teach nothing: rspamd learns nothing from a test pattern).
  await moveMessage(c, a, c.state.subjects.inbound, 'Junk', 'INBOX');
  const ham = await waitLearned(c, 'ham', before.ham);
  if (ham <= before.ham) fail(`moving a message out of Junk taught rspamd nothing: rspamd's learned ham stays at ${ham}; Dovecot's last lines:\n${tail(await c.host.dovecotLog(), 5)}\nrspamd on learning:\n${learnLines(await c.host.spamLog())}`);
  return `IMAP MOVE of a message into Junk: rspamd's learned spam ${before.spam} → ${spam}; the same message out of Junk to the INBOX: learned ham ${before.ham} → ${ham} (rspamd's counts in its Redis)`;
}

// ---- sieve: ManageSieve, a user's rule, a vacation reply ------------------------------------------

/** The user script the sieve step uploads for mailbox a. */
export function rehearsalScript(token: string): string {
  return [
    'require ["fileinto", "mailbox", "vacation"];',
    `if header :contains "subject" "${token} rule" {`,
    '  fileinto :create "Rehearsal";',
    '  stop;',
    '}',
    `vacation :days 1 :subject "Away (selfmail rehearsal ${token})" "This is the rehearsal's vacation reply.";`,
    '',
  ].join('\r\n');
}

async function countInFolder(c: StepContext, box: Mailbox, subject: string, folder: string): Promise<{ count: number; first?: Buffer }> {
  return inFolder(c, box, folder, async (client) => {
    const uids = await client.search({ subject }, { uid: true });
    const list = Array.isArray(uids) ? uids : [];
    const msg = list[0] === undefined ? false : await client.fetchOne(String(list[0]), { source: true }, { uid: true });
    const first = msg ? msg.source : undefined;
    return first ? { count: list.length, first } : { count: list.length };
  });
}

/**
 * ManageSieve on its port: no login before STARTTLS; inside TLS (certificate verified) mailbox a
 * uploads and activates a script. Its rule files a message by header into a folder of its own;
 * its vacation rule answers b once, however many messages b sends (the reply leaves through
 * Postfix's loopback listener for the host's own mail, and is signed there).
 */
export async function sieveStep(c: StepContext): Promise<string> {
  const { a, b } = c.bundle;
  const { ManageSieve } = await import('./managesieve.js');
  const target = { host: c.host.address, port: c.host.profile.ports.managesieve, localAddress: CLIENT_ADDRESS, ca: await readTlsCert(c), servername: c.bundle.config.hostname };
  // First a connection that tries to log in before STARTTLS, with a made-up password (the real
  // one never crosses a connection without TLS): no mechanism is offered, the attempt is refused.
  const early = await ManageSieve.open(target).catch((e: unknown) => fail(`ManageSieve on ${target.port}: ${errText(e)}`));
  try {
    if (!early.capabilities.some((l) => /^"STARTTLS"/i.test(l))) fail(`ManageSieve offers no STARTTLS: ${early.capabilities.join(' | ')}`);
    const sasl = early.capabilities.find((l) => /^"SASL"/i.test(l)) ?? '"SASL" ""';
    if (!/^"SASL" ""$/i.test(sasl)) fail(`ManageSieve offers login mechanisms before STARTTLS: ${sasl}`);
    const tried = await early.authenticate(a.address, `not-the-password-${c.state.token}`);
    if (tried.status === 'OK') fail('ManageSieve accepted a login before STARTTLS');
  } finally {
    await early.logout();
  }
  const ms = await ManageSieve.open(target).catch((e: unknown) => fail(`ManageSieve on ${target.port}: ${errText(e)}`));
  try {
    await ms.startTls(target).catch((e: unknown) => fail(`ManageSieve STARTTLS: ${errText(e)}`));
    const login = await ms.authenticate(a.address, a.password);
    if (login.status !== 'OK') fail(`ManageSieve login as ${a.address} inside TLS: ${login.status} ${login.text}`);
    await ms.putScript('rehearsal', rehearsalScript(c.state.token)).catch((e: unknown) => fail(errText(e)));
    await ms.setActive('rehearsal').catch((e: unknown) => fail(errText(e)));
  } finally {
    await ms.logout();
  }
  const sub = { port: c.host.profile.ports.submission, secure: false, requireTLS: true, auth: { user: b.address, pass: b.password } };
  const t = c.state.token;
  await send(c, sub, b.address, a.address, `selfmail rehearsal ${t} rule`);
  const ruled = await fetchAll(c, a, [`selfmail rehearsal ${t} rule`], 20_000, 'Rehearsal').catch((e: unknown) => fail(`IMAPS as ${a.address}, folder Rehearsal: ${errText(e)}`));
  if (ruled.size === 0) fail(`the uploaded rule did not file "selfmail rehearsal ${t} rule" into Rehearsal; Dovecot's last lines:\n${tail(await c.host.dovecotLog(), 5)}`);
  const away = `Away (selfmail rehearsal ${t})`;
  for (const n of [1, 2]) await send(c, sub, b.address, a.address, `selfmail rehearsal ${t} vacation ${n}`);
  const delivered = await fetchAll(c, a, [1, 2].map((n) => `selfmail rehearsal ${t} vacation ${n}`));
  if (delivered.size < 2) fail(`the two messages to ${a.address} were not both delivered within 20 s`);
  // Both were delivered, so both vacation decisions are taken: wait for the reply to arrive.
  const replies = await (async () => {
    const deadline = Date.now() + 20_000;
    for (;;) {
      const r = await countInFolder(c, b, away, 'INBOX');
      if (r.count > 0 || Date.now() > deadline) return r;
      await sleep(300);
    }
  })();
  if (replies.count === 0) fail(`no vacation reply reached ${b.address} within 20 s; Postfix's last lines:\n${tail(await c.host.postfixLog(), 5)}`);
  await sleep(2_000);
  const settled = await countInFolder(c, b, away, 'INBOX');
  if (settled.count !== 1) fail(`${settled.count} vacation replies reached ${b.address} for two messages: it must answer once per sender and period`);
  const sigs = [...headerBlock(settled.first ?? replies.first ?? Buffer.alloc(0)).matchAll(/^DKIM-Signature:[^\n]*(?:\n[ \t][^\n]*)*/gim)].map((m) => /\ba=([\w-]+)/.exec(m[0])?.[1]);
  for (const algo of ['rsa-sha256', 'ed25519-sha256']) if (!sigs.includes(algo)) fail(`the vacation reply carries no ${algo} DKIM signature (found: ${sigs.join(', ') || 'none'})`);
  return `ManageSieve: no login before STARTTLS; inside TLS (certificate verified) ${a.address} uploaded and activated a script; its header rule filed a message into Rehearsal; its vacation rule answered ${b.address} once for two messages, the reply signed rsa-sha256 + ed25519-sha256`;
}

// ---- 4. IMAPS --------------------------------------------------------------------------------

async function imapClient(c: StepContext, user: string, pass: string) {
  const { ImapFlow } = await import('imapflow');
  const cert = await readTlsCert(c);
  return new ImapFlow({
    host: c.host.address,
    port: c.host.profile.ports.imaps,
    secure: true,
    auth: { user, pass },
    tls: { ca: [cert], servername: c.bundle.config.hostname },
    logger: false,
    connectionTimeout: 10_000,
    greetingTimeout: 10_000,
  } as ConstructorParameters<typeof ImapFlow>[0]);
}

/** Fetch the sources of the messages with `subjects` from `box`'s `folder`, waiting for delivery. */
async function fetchAll(c: StepContext, box: Mailbox, subjects: string[], timeoutMs = 20_000, folder = 'INBOX'): Promise<Map<string, Buffer>> {
  const client = await imapClient(c, box.address, box.password);
  await client.connect();
  const found = new Map<string, Buffer>();
  try {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const lock = await client.getMailboxLock(folder);
      try {
        for (const s of subjects.filter((x) => !found.has(x))) {
          const uids = await client.search({ subject: s }, { uid: true });
          const uid = Array.isArray(uids) ? uids[0] : undefined;
          if (uid === undefined) continue;
          const msg = await client.fetchOne(String(uid), { source: true }, { uid: true });
          if (msg && msg.source) found.set(s, msg.source);
        }
      } finally {
        lock.release();
      }
      if (found.size === subjects.length || Date.now() > deadline) break;
      await sleep(300);
    }
  } finally {
    await client.logout().catch(() => client.close());
  }
  return found;
}

export async function imapStep(c: StepContext): Promise<string> {
  const { a, b } = c.bundle;
  const { subjects } = c.state;
  const toB = await fetchAll(c, b, [subjects.submission, subjects.submissions]).catch((e: unknown) => fail(`IMAPS login or fetch as ${b.address}: ${errText(e)}`));
  const toA = await fetchAll(c, a, [subjects.inbound]).catch((e: unknown) => fail(`IMAPS login or fetch as ${a.address}: ${errText(e)}`));
  for (const [k, v] of [...toB, ...toA]) c.state.sources.set(k, v);
  const missing = [subjects.submission, subjects.submissions, subjects.inbound].filter((s) => !c.state.sources.has(s));
  if (missing.length > 0) {
    const log = tail(await c.host.postfixLog(), 8);
    fail(`not delivered within 20 s: ${missing.join('; ')}\npostfix log:\n${log}`);
  }
  return `the two submitted messages fetched by ${b.address} and the inbound one by ${a.address} over IMAPS (TLS verified)`;
}

// ---- 5. DKIM, SPF, DMARC, header privacy -------------------------------------------------------

/** mailauth's resolver signature over node's Resolver (which asks only the rehearsal NSD). */
export function mailauthResolver(host: Pick<Host, 'resolver'>) {
  return async (name: string, rrtype: string): Promise<string[][] | string[]> => {
    const answers = await host.resolver.resolve(name, rrtype);
    return answers as unknown as string[][] | string[];
  };
}

function headerBlock(source: Buffer): string {
  const text = source.toString('utf8');
  const end = text.search(/\r?\n\r?\n/);
  return end < 0 ? text : text.slice(0, end);
}

/**
 * Why a DKIM signature fails, when the cause is the usual one: the TXT record the zone publishes
 * is not the public half of the private key rspamd signs with.
 */
async function servedKeyMismatch(c: StepContext, domain: string, selector: string): Promise<string | undefined> {
  const key = c.bundle.keys.dkim.find((k) => k.domain === domain && k.selector === selector);
  if (!key) return `the bundle has no DKIM key ${selector} for ${domain}`;
  const served = await c.host.resolver.resolveTxt(`${selector}._domainkey.${domain}`).catch(() => undefined);
  if (!served || served.length === 0) return `NSD serves no TXT at ${selector}._domainkey.${domain}`;
  const text = served.map((chunks) => chunks.join(''));
  if (!text.includes(key.txt)) {
    return `the TXT the zone publishes at ${selector}._domainkey.${domain} is not the public key of ${key.privateKeyPath}, which rspamd signs with (the zone and the key files disagree: re-run selfmail init on the bundle)`;
  }
  return undefined;
}

/**
 * What a receiver makes of one message the host sent, from `ip` with `helo`: both DKIM signatures
 * (rsa-sha256 and ed25519-sha256) verify with the keys NSD serves, for the sender's domain; SPF
 * and DMARC pass; no header names the submitting client. Returns the problems (labelled) and a
 * note of the signatures that passed.
 */
async function judgeSent(c: StepContext, src: Buffer, label: string, ip: string, helo: string): Promise<{ problems: string[]; note: string }> {
  const { config, a } = c.bundle;
  const { authenticate } = await import('mailauth');
  const problems: string[] = [];
  const res = await authenticate(src, {
    ip,
    sender: a.address,
    helo,
    mta: 'selfmail-rehearsal',
    resolver: mailauthResolver(c.host),
    disableArc: true,
    disableBimi: true,
  } as Parameters<typeof authenticate>[1]);
  const results = (res.dkim.results ?? []) as Array<{ algo?: string; signingDomain?: string; selector?: string; status: { result: string; comment?: string; aligned?: string | false } }>;
  for (const algo of ['rsa-sha256', 'ed25519-sha256']) {
    const sig = results.find((r) => r.algo === algo);
    if (!sig) {
      problems.push(`${label}: no ${algo} DKIM signature (found: ${results.map((r) => r.algo).join(', ') || 'none'})`);
      continue;
    }
    if (sig.status.result !== 'pass') {
      const why = await servedKeyMismatch(c, sig.signingDomain ?? '', sig.selector ?? '');
      problems.push(`${label}: DKIM ${algo} s=${sig.selector} d=${sig.signingDomain} does not verify against the key NSD serves: ${sig.status.result}${sig.status.comment ? ` (${sig.status.comment})` : ''}${why ? `; ${why}` : ''}`);
    } else if (sig.signingDomain !== config.domains[0] && sig.signingDomain !== a.address.split('@')[1]) {
      problems.push(`${label}: DKIM ${algo} signs for ${sig.signingDomain}, not the sender's domain`);
    }
  }
  const spf = res.spf as { status?: { result?: string; comment?: string } } | false;
  if (!spf || spf.status?.result !== 'pass') problems.push(`${label}: SPF for ${ip} is ${spf ? spf.status?.result : 'missing'}${spf && spf.status?.comment ? ` (${spf.status.comment})` : ''}`);
  const dmarc = res.dmarc as { status?: { result?: string; comment?: string }; alignment?: unknown } | false;
  if (!dmarc || dmarc.status?.result !== 'pass') problems.push(`${label}: DMARC is ${dmarc ? dmarc.status?.result : 'missing'}${dmarc && dmarc.status?.comment ? ` (${dmarc.status.comment})` : ''}`);
  const headers = headerBlock(src);
  for (const trace of [CLIENT_ADDRESS, CLIENT_NAME]) {
    if (headers.includes(trace)) {
      const line = headers.split(/\r?\n/).find((l) => l.includes(trace)) ?? '';
      problems.push(`${label}: the submitting client's ${trace === CLIENT_ADDRESS ? 'address' : 'name'} ${trace} appears in a header: ${line.trim()}`);
    }
  }
  return { problems, note: `${label}: ${results.filter((r) => r.status.result === 'pass').map((r) => `${r.algo} s=${r.selector}`).join(' + ')}` };
}

export async function authenticationStep(c: StepContext): Promise<string> {
  const { config } = c.bundle;
  const ip = config.ipv4 ?? config.ipv6;
  if (!ip) fail('the bundle names no public address to check SPF against');
  const problems: string[] = [];
  const notes: string[] = [];
  for (const subject of [c.state.subjects.submission, c.state.subjects.submissions]) {
    const src = c.state.sources.get(subject);
    if (!src) fail(`no fetched copy of "${subject}" (the IMAP step failed)`);
    const judged = await judgeSent(c, src, subject.endsWith('587') ? '587' : '465', ip, config.hostname);
    problems.push(...judged.problems);
    notes.push(judged.note);
  }
  if (problems.length > 0) fail(problems.join('; '));
  return `DKIM rsa-sha256 and ed25519-sha256 verify with the keys NSD serves (${notes.join('; ')}); SPF pass for ${ip}; DMARC pass (aligned); no trace of ${CLIENT_ADDRESS} or ${CLIENT_NAME} in the headers`;
}

// ---- 6. what must fail, fails ------------------------------------------------------------------

/** Read an SMTP reply (multi-line aware) from a raw socket. */
function smtpDialog(host: string, port: number, lines: string[], timeoutMs = 10_000): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const replies: string[] = [];
    const s = connect({ host, port, localAddress: CLIENT_ADDRESS });
    let buf = '';
    let i = 0;
    const timer = setTimeout(() => {
      s.destroy();
      reject(new Error(`no reply within ${timeoutMs / 1000} s (got ${JSON.stringify(replies)})`));
    }, timeoutMs);
    s.on('data', (d: Buffer) => {
      buf += d.toString('utf8');
      // A reply is complete at a line "ddd " (space after the code).
      const m = /(^|\r\n)(\d{3}) [^\r\n]*\r\n$/.exec(buf);
      if (!m) return;
      replies.push(buf.trimEnd());
      buf = '';
      if (i < lines.length) s.write(`${lines[i++]}\r\n`);
      else {
        clearTimeout(timer);
        s.end('QUIT\r\n');
        resolve(replies);
      }
    });
    s.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
  });
}

/** TCP ports on which processes of `pgid`'s group listen. */
async function listeningPorts(pgids: readonly number[]): Promise<number[]> {
  const inodes = await listeningSockets();
  const ports = new Set<number>();
  const groups = new Set(pgids);
  for (const pid of await readdir('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
      const pgrp = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[2]);
      if (!groups.has(pgrp)) continue;
      for (const fd of await readdir(`/proc/${pid}/fd`)) {
        const target = await readlink(`/proc/${pid}/fd/${fd}`).catch(() => '');
        const m = /^socket:\[(\d+)\]$/.exec(target);
        const port = m ? inodes.get(m[1]!) : undefined;
        if (port !== undefined) ports.add(port);
      }
    } catch {
      // the process ended while we looked
    }
  }
  return [...ports].sort((x, y) => x - y);
}

/** The refusal checks in the order the report lists them (by name prefix). */
const ORDER = ['relay', 'AUTH before TLS', 'wrong password on 587', 'wrong password over IMAPS', 'rehearsal', 'no cleartext'];

export async function refusalsStep(c: StepContext): Promise<{ reason: string; checks: Array<{ name: string; ok: boolean; reason: string }> }> {
  const { a, b } = c.bundle;
  const { ports } = c.host.profile;
  const checks: Array<{ name: string; ok: boolean; reason: string }> = [];
  const expectRefused = async (name: string, attempt: () => Promise<unknown>, refusedWhen: (e: unknown) => boolean) => {
    try {
      const r = await attempt();
      checks.push({ name, ok: false, reason: `accepted: ${typeof r === 'string' ? r : JSON.stringify(r)}` });
    } catch (e) {
      const ok = refusedWhen(e);
      checks.push({ name, ok, reason: ok ? `refused: ${errText(e)}` : `failed for another reason: ${errText(e)}` });
    }
  };
  const smtpRefusal = (e: unknown) => {
    const code = (e as { responseCode?: number }).responseCode;
    return typeof code === 'number' && code >= 400;
  };

  await Promise.all([
    expectRefused(
      'relay to an outside domain without authentication (port 25)',
      () => send(c, { port: ports.smtp, secure: false }, OUTSIDE_SENDER, 'someone@example.com', `selfmail rehearsal ${c.state.token} relay`),
      (e) => smtpRefusal(e) || /recipients were rejected/i.test(errText(e)),
    ),
    (async () => {
      const name = 'AUTH before TLS on 587 (not offered; refused when tried)';
      try {
        const [, ehlo, authTry] = await smtpDialog(c.host.address, ports.submission, [`EHLO ${CLIENT_NAME}`, 'AUTH PLAIN AGFAYg==']);
        const offered = /^250[ -]AUTH\b/im.test(ehlo ?? '');
        const refused = /^5\d\d /m.test(authTry ?? '');
        checks.push({ name, ok: !offered && refused, reason: `EHLO before STARTTLS ${offered ? 'offers AUTH' : 'offers no AUTH'}; AUTH PLAIN answered "${(authTry ?? '').split('\r\n').pop()}"` });
      } catch (e) {
        checks.push({ name, ok: false, reason: errText(e) });
      }
    })(),
    expectRefused(
      'wrong password on 587',
      async () => {
        const tr = await transport(c, { port: ports.submission, secure: false, requireTLS: true, auth: { user: a.address, pass: `${a.password}-wrong` } });
        try {
          return await tr.verify();
        } finally {
          tr.close();
        }
      },
      (e) => (e as { code?: string }).code === 'EAUTH' && smtpRefusal(e),
    ),
    expectRefused(
      'wrong password over IMAPS',
      async () => {
        const client = await imapClient(c, a.address, `${a.password}-wrong`);
        await client.connect();
        await client.logout();
        return 'logged in';
      },
      (e) => (e as { authenticationFailed?: boolean }).authenticationFailed === true,
    ),
    expectRefused(
      `${a.address}, logged in, sending as ${b.address}`,
      () => send(c, { port: ports.submission, secure: false, requireTLS: true, auth: { user: a.address, pass: a.password } }, b.address, a.address, `selfmail rehearsal ${c.state.token} spoof`),
      smtpRefusal,
    ),
    (async () => {
      const name = 'no cleartext IMAP listener';
      const dovecot = c.host.dovecotGroup;
      const listening = await listeningPorts(dovecot === undefined ? [] : [dovecot]);
      // ManageSieve speaks STARTTLS and takes no login before it (the sieve step shows it).
      const others = listening.filter((p) => p !== ports.imaps && p !== ports.managesieve);
      const ok = listening.includes(ports.imaps) && others.length === 0;
      checks.push({ name, ok, reason: `Dovecot listens on TCP ${listening.join(', ') || 'nothing'}; IMAPS is ${ports.imaps}, ManageSieve ${ports.managesieve}${others.length ? `; unexpected listeners: ${others.join(', ')}` : ''}` });
    })(),
  ]);
  const order = (n: string) => ORDER.findIndex((o) => n.startsWith(o));
  checks.sort((x, y) => order(x.name) - order(y.name));
  return { reason: checks.map((x) => `${x.ok ? 'ok' : 'FAILED'}: ${x.name}: ${x.reason}`).join('; '), checks };
}

// ---- real mailboxes (--password-file) ----------------------------------------------------------

export async function realMailboxesStep(c: StepContext): Promise<string> {
  const done: string[] = [];
  for (const box of c.bundle.real) {
    const tr = await transport(c, { port: c.host.profile.ports.submission, secure: false, requireTLS: true, auth: { user: box.address, pass: box.password } });
    try {
      await tr.verify();
    } catch (e) {
      fail(`${box.address}: SMTP login on 587 failed: ${errText(e)}`);
    } finally {
      tr.close();
    }
    const client = await imapClient(c, box.address, box.password);
    try {
      await client.connect();
      await client.logout();
    } catch (e) {
      fail(`${box.address}: IMAPS login failed: ${errText(e)}`);
    }
    done.push(box.address);
  }
  return `logged in over SMTP submission and IMAPS as ${done.join(', ')}`;
}

// ---- aliases and catch-alls --------------------------------------------------------------------

/** The mailboxes mail to `address` ends in, following aliases (the schema has refused loops). */
export function deliveredTo(config: Pick<Config, 'users' | 'aliases' | 'domains'>, address: string, seen = new Set<string>()): string[] {
  const untagged = address.replace(/\+[^@]*@/, '@');
  if (config.users.includes(untagged as Email)) return [untagged];
  if (seen.has(untagged)) return [];
  seen.add(untagged);
  const domain = untagged.slice(untagged.lastIndexOf('@') + 1);
  const alias = config.aliases.find((a) => a.from === untagged) ?? config.aliases.find((a) => a.from === `@${domain}`);
  if (!alias) return [];
  return [...new Set(alias.to.flatMap((t) => (config.domains.includes(t.slice(t.lastIndexOf('@') + 1) as DomainName) ? deliveredTo(config, t, seen) : [])))].sort();
}

/** The message with `subject` in the Maildir of `mailbox` (any folder), waiting up to `timeoutMs`; with its folder. */
async function fromMaildir(c: StepContext, mailbox: string, subject: string, timeoutMs = 20_000): Promise<{ text: string; folder: string } | undefined> {
  const { mailPaths } = await import('../mail/paths.js');
  const at = mailbox.lastIndexOf('@');
  const dir = join(mailPaths(c.host.profile).mailRoot, mailbox.slice(at + 1), mailbox.slice(0, at), 'Maildir');
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const entries = await readdir(dir, { recursive: true, withFileTypes: true }).catch(() => []);
    for (const e of entries) {
      if (!e.isFile() || !/\/(new|cur)$/.test(e.parentPath)) continue;
      const text = await readFile(join(e.parentPath, e.name), 'utf8').catch(() => '');
      if (text.includes(`Subject: ${subject}`)) return { text, folder: e.parentPath.slice(dir.length + 1).replace(/\/?(new|cur)$/, '').replace(/^\./, '') || 'INBOX' };
    }
    if (Date.now() > deadline) return undefined;
    await sleep(300);
  }
}

/** Whether a message with `subject` lies in the Maildir of `mailbox` (any folder), waiting up to `timeoutMs`. */
async function inMaildir(c: StepContext, mailbox: string, subject: string, timeoutMs = 20_000): Promise<boolean> {
  return (await fromMaildir(c, mailbox, subject, timeoutMs)) !== undefined;
}

/**
 * The bundle's aliases, each sent to on port 25 from outside: the message lands in every mailbox
 * of this host the alias leads to (read from the Maildirs under the rehearsal root). A catch-all
 * takes mail for an address nothing names, and a mailbox of its domain keeps its own mail.
 * Targets elsewhere are not followed (the rehearsal sends nothing out).
 */
export async function aliasesStep(c: StepContext): Promise<string> {
  const config = c.bundle.rehearsalConfig;
  const port = { port: c.host.profile.ports.smtp, secure: false };
  const done: string[] = [];
  const expectIn = async (to: string, boxes: string[], label: string) => {
    const subject = `${c.state.token} alias ${to}`;
    await send(c, port, OUTSIDE_SENDER, to, subject).catch((e: unknown) => {
      if (e instanceof StepFailure) throw e;
      return fail(`${label}: port 25 refused mail for ${to}: ${errText(e)}`);
    });
    for (const box of boxes) if (!(await inMaildir(c, box, subject))) fail(`${label}: mail for ${to} did not arrive in ${box}`);
    return subject;
  };
  for (const alias of config.aliases) {
    if (alias.from.startsWith('@')) {
      const domain = alias.from.slice(1);
      const nobody = `nobody-${c.state.token.toLowerCase()}@${domain}`;
      const targets = deliveredTo(config, nobody);
      if (targets.length === 0) continue;
      await expectIn(nobody, targets, `catch-all ${alias.from}`);
      // A mailbox of that domain keeps its mail: it is not the catch-all's.
      const own = config.users.find((u) => u.endsWith(`@${domain}`) && !targets.includes(u));
      if (own) {
        const subject = await expectIn(own, [own], `catch-all ${alias.from}`);
        for (const t of targets) if (await inMaildir(c, t, subject, 1500)) fail(`catch-all ${alias.from}: mail for the mailbox ${own} also reached ${t}`);
        done.push(`${alias.from} → ${targets.join(', ')} for an unnamed address, not for the mailbox ${own}`);
      } else done.push(`${alias.from} → ${targets.join(', ')} for an unnamed address`);
      continue;
    }
    const targets = deliveredTo(config, alias.from);
    if (targets.length === 0) {
      done.push(`${alias.from} (forwards elsewhere only: not followed)`);
      continue;
    }
    await expectIn(alias.from, targets, `alias ${alias.from}`);
    done.push(`${alias.from} → ${targets.join(', ')}`);
  }
  return `delivered through the bundle's aliases: ${done.join('; ')}`;
}

// ---- tunnel: mail through the user's own VPS (own-vps) ---------------------------------------------

/** The TLSA 3 1 1 digests (lower-case hex) a zone file publishes for `_25._tcp.<hostname>`. Pure. */
export function tlsaDigests(zoneText: string, hostname: string): string[] {
  const owner = `_25._tcp.${hostname}.`.toLowerCase();
  const out: string[] = [];
  for (const line of zoneText.split('\n')) {
    const f = line.trim().split(/\s+/);
    if ((f[0] ?? '').toLowerCase() !== owner) continue;
    const i = f.indexOf('TLSA');
    if (i < 0 || f[i + 1] !== '3' || f[i + 2] !== '1' || f[i + 3] !== '1') continue;
    out.push(f.slice(i + 4).join('').toLowerCase());
  }
  return [...new Set(out)].sort();
}

/** The Received: line Postfix wrote when it took a message (unfolded; the first such), or ''. Pure. */
export function postfixReceived(message: string): string {
  const head = message.split(/\r?\n\r?\n/)[0] ?? '';
  const lines = [...head.matchAll(/^Received:[^\n]*(?:\r?\n[ \t][^\n]*)*/gim)].map((m) => m[0].replace(/\r?\n[ \t]+/g, ' ').replace(/\r/g, ''));
  return lines.find((l) => /\(Postfix\)/.test(l)) ?? '';
}

/**
 * An own-VPS bundle, through the VPS the rehearsal made from the bundle's vps/ files: a client in
 * the rehearsal's internet delivers to the VPS's address on port 25 and the message arrives at
 * home with the client's own address in Postfix's Received: line, over TLS that ends at home (the
 * key shown through the VPS is the one the zone's TLSA pins); a message submitted at home reaches
 * a remote MX in the internet from the VPS's address with both DKIM signatures, SPF and DMARC
 * valid; the VPS holds its own WireGuard key and nothing else, listens on no TCP port and runs
 * nothing but WireGuard.
 */
export async function tunnelStep(c: StepContext): Promise<string> {
  const tunnel = c.host.tunnel;
  if (!tunnel) fail('the rehearsal made no tunnel for this bundle');
  const { INTERNET_DOMAIN } = await import('./tunnel.js');
  // A well-run sender of the internet: its name and address agree both ways, its SPF names it.
  const sender = `someone@${INTERNET_DOMAIN}`;
  if (!(await tunnel.handshake(30_000))) fail('the home end of the tunnel had no WireGuard handshake with the VPS within 30 s');
  // The internet's MX is up from the start: mail the host sends there (a vacation reply to the
  // client's sender too) finds it, as it would in the world.
  const mx = await tunnel.sink(120_000).catch((e: unknown) => fail(errText(e)));
  try {
    return await throughTunnel(c, tunnel, mx, sender);
  } finally {
    mx.stop();
  }
}

async function throughTunnel(c: StepContext, tunnel: NonNullable<Host['tunnel']>, mx: RemoteMx, sender: string): Promise<string> {
  const { config, a } = c.bundle;
  const notes: string[] = [];
  const { addresses } = tunnel;
  const { INTERNET_CLIENT, INTERNET_DOMAIN } = await import('./tunnel.js');

  // In: the client's own address and TLS at home.
  const zone = [...c.bundle.files].filter(([p]) => p.startsWith('dns/')).map(([, d]) => d.toString('utf8')).join('\n');
  const pinned = tlsaDigests(zone, config.hostname);
  if (pinned.length === 0) fail(`the bundle's zone publishes no TLSA 3 1 1 record for _25._tcp.${config.hostname}`);
  const inbound: Array<{ from: 'client4' | 'client6'; client: string; vps: string }> = [{ from: 'client4', client: addresses.client4, vps: addresses.vps4 }];
  if (addresses.vps6 && addresses.client6) inbound.push({ from: 'client6', client: addresses.client6, vps: addresses.vps6 });
  for (const way of inbound) {
    const subject = `selfmail rehearsal ${c.state.token} through the VPS from ${way.client}`;
    const data = [`From: ${sender}`, `To: ${a.address}`, `Subject: ${subject}`, `Message-ID: <${c.state.token}.${way.from}@${INTERNET_DOMAIN}>`, `Date: ${new Date().toUTCString()}`, '', 'A message from the rehearsal\'s internet, through the VPS.', ''].join('\r\n');
    const r = await tunnel.send({ from: way.from, to: way.vps, helo: INTERNET_CLIENT, mailFrom: sender, rcptTo: a.address, data, servername: config.hostname });
    if (!r.ok) fail(`a client at ${way.client} delivering to the VPS's ${way.vps} port 25: ${r.error ?? 'failed'}${r.spkiSha256 ? ` (TLS was up: ${r.tlsProtocol})` : ''}; Postfix's last lines:\n${tail(await c.host.postfixLog(), 3)}\nrspamd's:\n${tail(await c.host.spamLog(), 3)}`);
    if (!r.spkiSha256 || !pinned.includes(r.spkiSha256)) fail(`the certificate shown through the VPS's ${way.vps} port 25 has the key ${r.spkiSha256 ?? 'none'}, which the zone's TLSA (${pinned.join(', ')}) does not pin`);
    const got = await fromMaildir(c, a.address, subject);
    if (!got) fail(`the message from ${way.client} through the VPS was accepted (${r.reply ?? ''}) but is not in ${a.address}'s mailbox after 20 s; Postfix's last lines:\n${tail(await c.host.postfixLog(), 5)}`);
    const received = postfixReceived(got.text);
    const shown = [`[${way.client}]`, `[IPv6:${way.client}]`].find((x) => received.includes(x));
    if (!shown) fail(`home's Received: line (Postfix's) does not name the client's own address ${way.client} (the VPS rewrote it?): ${received}`);
    if (!/\bwith ESMTPS\b/.test(received)) fail(`home's Received: line shows no TLS (ESMTPS): ${received}`);
    notes.push(`in from ${way.client} to the VPS's ${way.vps}: delivered (${got.folder}), home's Received: names ${shown}, ESMTPS (${r.tlsProtocol}), the key shown through the VPS is the one TLSA pins`);
  }

  // Out: from the VPS's address, signed.
  const subject = `selfmail rehearsal ${c.state.token} out through the VPS`;
  const to = `rehearsal@${INTERNET_DOMAIN}`;
  await send(c, { port: c.host.profile.ports.submission, secure: false, requireTLS: true, auth: { user: a.address, pass: a.password } }, a.address, to, subject).catch((e: unknown) => {
    if (e instanceof StepFailure) throw e;
    return fail(`submitting a message to ${to}: ${errText(e)}`);
  });
  const out = (await mx.waitFor((m) => (m.data ?? '').includes(`Subject: ${subject}`), 30_000)) ?? { ok: false, error: `no message "${subject}" within 30 s (it took ${mx.messages.length} other(s))` };
  if (!out.ok || !out.data) {
    const smtp = (await c.host.postfixLog()).split('\n').filter((l) => /\/smtp\[/.test(l));
    fail(`the remote MX at ${addresses.mx4} got nothing: ${out.error ?? ''}; Postfix's SMTP client said:\n${smtp.slice(-5).join('\n') || '(nothing)'}`);
  }
  if (out.peer !== addresses.vps4) fail(`the message reached the remote MX from ${out.peer ?? 'nowhere'}, not from the VPS's ${addresses.vps4}`);
  const judged = await judgeSent(c, Buffer.from(out.data, 'latin1'), 'out through the VPS', out.peer, out.helo ?? '');
  if (judged.problems.length > 0) fail(judged.problems.join('; '));
  notes.push(`out to a remote MX at ${addresses.mx4}: from the VPS's ${out.peer} (HELO ${out.helo}), ${judged.note.replace(/^[^:]*: /, '')}, SPF and DMARC pass`);

  // The VPS: its own key only, no mail, nothing but WireGuard.
  const files = await tunnel.vpsFiles();
  const keyLike = files.filter((f) => f.path.startsWith('/etc/wireguard/'));
  const expected = ['/etc/wireguard/selfmail.conf', '/etc/wireguard/selfmail.key'];
  if (JSON.stringify(keyLike.map((f) => f.path)) !== JSON.stringify(expected)) fail(`the VPS's /etc/wireguard holds ${keyLike.map((f) => f.path).join(', ') || 'nothing'}, not just its own key and config`);
  const key = keyLike.find((f) => f.path.endsWith('.key'));
  if (key?.mode !== '600') fail(`the VPS's key is mode ${key?.mode ?? '?'}, not 0600`);
  const other = files.filter((f) => !f.path.startsWith('/etc/wireguard/') && !/^\/run\/wireguard(\/selfmail\.sock)?$/.test(f.path));
  if (other.length > 0) fail(`the VPS holds more than its WireGuard files: ${other.map((f) => f.path).join(', ')}`);
  const listeners = await tunnel.vpsListeners();
  if (listeners.length > 0) fail(`something listens on TCP ${listeners.join(', ')} on the VPS: it must only forward packets`);
  const processes = (await tunnel.vpsProcesses()).filter((p) => p !== 'wireguard-go');
  if (processes.length > 0) fail(`the VPS runs ${processes.join(', ')} besides WireGuard`);
  notes.push(`the VPS holds ${expected.join(' and ')} (its key 0600, made there) and nothing else, listens on no TCP port, runs nothing but WireGuard`);
  return notes.join('; ');
}

// ---- privacy: nothing left the rehearsal ----------------------------------------------------------

/**
 * What the rehearsal's network saw during the whole run (src/rehearse/isolate.ts): the resolver's
 * log, in which a question for a name outside the rehearsal's zones was answered REFUSED there
 * and sent nowhere, and the nftables sets of every address outside loopback anything tried to
 * reach, which must be empty. Pure over its inputs.
 */
export function privacyVerdict(questions: ReadonlyArray<{ name: string; type: number; answer: 'nsd' | 'internet' | 'refused' }>, tried: readonly string[], zones: readonly string[], tunnel = false): { ok: boolean; reason: string } {
  const outside = [...new Set(questions.filter((q) => q.answer === 'refused').map((q) => q.name || '.'))].sort();
  const inside = questions.filter((q) => q.answer === 'nsd').length;
  if (tried.length > 0) {
    return { ok: false, reason: `something in the rehearsal tried to reach ${tried.join(', ')}: no address outside the rehearsal may be contacted` };
  }
  if (questions.length === 0) return { ok: false, reason: 'the rehearsal resolver was asked nothing: the daemons did not use it, so this step shows nothing' };
  const names = outside.length > 0 ? `; ${outside.length} name(s) outside them were answered REFUSED by the rehearsal resolver and asked of no one (${outside.slice(0, 6).join(', ')}${outside.length > 6 ? ', …' : ''})` : '';
  return {
    ok: true,
    reason: tunnel
      ? `${questions.length} DNS questions, ${inside} for the rehearsal's zones (${zones.join(', ')}) answered by its NSD, ${questions.filter((q) => q.answer === 'internet').length} for its internet's names answered by its resolver${names}; no packet to any address outside loopback and the rehearsal's own VPS and internet (nftables: nothing recorded on the rehearsal's watched link, nor by its internet)`
      : `${questions.length} DNS questions, ${inside} for the rehearsal's zones (${zones.join(', ')}) answered by its NSD${names}; no packet to any address outside loopback (nftables: nothing recorded on the rehearsal's only other link)`,
  };
}

export async function privacyStep(c: StepContext): Promise<string> {
  const { triedAddresses } = await import('./isolate.js');
  const tunnel = c.host.tunnel;
  const tried = [...(await triedAddresses()), ...(tunnel ? await tunnel.tried() : [])];
  const v = privacyVerdict(c.host.questions, tried, c.host.zones, tunnel !== undefined);
  if (!v.ok) fail(v.reason);
  return v.reason;
}
