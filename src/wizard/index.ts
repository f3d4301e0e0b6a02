/**
 * The interactive wizard: the same setup as the flags, asked for in a terminal. It only asks: each
 * answer lands in the same raw request (`SourcedInput`) that flags and config files fill, every
 * answer is checked in place by the schema (./check.ts), and what it returns goes through the
 * very same `resolveConfig` and pipeline as a non-interactive run. Nothing is written here.
 *
 * Answers already given by flags or `--config` are not asked again (unless the schema rejects
 * them: then the wizard says so and asks). Values from the previous bundle's selfmail.yaml are
 * the defaults. Every default is the safe choice.
 */
import { networkInterfaces } from 'node:os';
import type { Ask, EndScreen } from '../generate.js';
import type { Io } from '../cli/io.js';
import { InputError, RefusalError } from '../errors.js';
import { type RawInput, type RawKey, type SourcedInput, fieldName, sourced } from '../config/raw.js';
import { resolveConfig } from '../config/schema.js';
import type { Config, Email } from '../config/types.js';
import { parseDomainName, parseEmail } from '../config/values.js';
import { refusals } from '../policy/refusals.js';
import { type Interfaces, localAddresses } from './addresses.js';
import { checkFields, validatorFor, withAnswer } from './check.js';
import { type Choice, type Prompter, guarded, inquirerPrompter } from './prompter.js';

export type { Prompter } from './prompter.js';

/**
 * The shortest mailbox password the wizard accepts. The IMAP and submission ports face the
 * internet, where bots guess passwords all day; fail2ban slows them down, and 12 characters put a
 * password out of their reach.
 */
export const MIN_PASSWORD_LENGTH = 12;

export interface WizardDeps {
  prompter: Prompter;
  /** Mailboxes whose password hash the previous bundle already holds (keeping it is offered). */
  hashed?: ReadonlySet<string>;
  /** This machine's interfaces (os.networkInterfaces); tests pass a fixed set. */
  interfaces?: () => Interfaces;
}

/** The ingress choices the select shows, including the refused and unbuilt ones (disabled). */
export type IngressChoice = 'direct' | 'port-forward' | 'own-vps' | 'upnp' | 'tunnel';

export const WELCOME = [
  'selfmail builds a mail host for your own domains: keys, signed DNS zones, Postfix, Dovecot, firewall, all made on this machine.',
  'It never uses UPnP, a third-party tunnel or relay, hosted DNS or a key made elsewhere, and asks no web service anything.',
  'Nothing is written before you confirm the review at the end, and nothing is installed (that is selfmail apply). Ctrl-C quits.',
];

/** The end screen of an interactive run (src/wizard/end.ts, loaded only once the bundle is written). */
export const showEndScreen: EndScreen = async (done, io) => {
  const { printEndScreen } = await import('./end.js');
  printEndScreen(done, io);
};

/** `runWizard` as `generate` calls it: the terminal prompter and this machine's interfaces. */
export const runWizard: Ask = async (input, passwords, io, hashed) =>
  wizard(input, passwords, io, { prompter: await inquirerPrompter(io), interfaces: networkInterfaces, ...(hashed ? { hashed } : {}) });

/** One entry per whitespace- or comma-separated word; "none" or blank gives an empty list. */
function words(answer: string): string[] {
  const list = answer.split(/[\s,]+/).filter(Boolean);
  return list.length === 1 && list[0]!.toLowerCase() === 'none' ? [] : list;
}

/** An optional single value: blank or "none" is no value. */
function optional(answer: string): string | undefined {
  const a = answer.trim();
  return a === '' || a.toLowerCase() === 'none' ? undefined : a;
}

function canonicalEmail(raw: string): string {
  const parsed = parseEmail(raw);
  return parsed.ok ? parsed.value : raw;
}

/** The choices of "how does mail reach this machine"; the refused ones are disabled, naming the principle they break. */
export function ingressChoices(): Array<Choice<IngressChoice>> {
  // The principle comes from the policy itself; the one-line reason is the short form of its text.
  const principle = (ingress: string) => refusals(sourced({ ingress }, 'wizard'))[0]?.principle ?? 'policy';
  const upnp = `refused, ${principle('upnp')}: any infected machine could open router ports the same way`;
  const tunnel = `refused, ${principle('tunnel')}: its operator sees every sender, recipient and time`;
  return [
    { value: 'direct', name: 'A public address on this machine', description: 'Mail servers connect straight to this host.' },
    {
      value: 'port-forward',
      name: 'A port forward I set by hand on my router',
      description: 'This host sits on your LAN; you forward the mail ports to it in the router, yourself.',
    },
    { value: 'upnp', name: 'Let this machine open router ports (UPnP, NAT-PMP)', disabled: upnp },
    { value: 'tunnel', name: 'A tunnel or relay service run by someone else', disabled: tunnel },
  ];
}

/**
 * Ask for everything that is still missing, check each answer with the schema, show a review, and
 * return the completed request and the mailbox passwords (keyed by canonical address).
 * Throws RefusalError at once when the given flags or file ask for something refused, and
 * InterruptedError on Ctrl-C.
 */
export async function wizard(
  input: SourcedInput,
  given: Map<string, string>,
  io: Io,
  deps: WizardDeps,
): Promise<{ input: SourcedInput; passwords: Map<string, string> }> {
  // A refused request is refused before any question: no one should answer ten questions first.
  const refused = refusals(input);
  if (refused.length > 0) throw new RefusalError(refused);

  const p = guarded(deps.prompter);
  const found = localAddresses((deps.interfaces ?? networkInterfaces)());
  const passwords = new Map(given);
  const typedHere = new Set<string>();
  // Mailboxes whose hash the bundle holds, whether they are listed by the bundle or by flags.
  const bundleUsers = new Set([
    ...(input.origins.users === 'bundle' ? (input.values.users ?? []).map(canonicalEmail) : []),
    ...[...(deps.hashed ?? [])].map(canonicalEmail),
  ]);
  let draft = input;

  for (const line of WELCOME) io.say(line);

  const isGiven = (key: RawKey) => draft.origins[key] === 'flag' || draft.origins[key] === 'file';
  /** True when `key` came from a flag or the file and the schema accepts it: then it is not asked. */
  const settled = (key: RawKey): boolean => {
    if (!isGiven(key)) return false;
    const { problems } = checkFields(draft, [key]);
    if (problems.length === 0) return true;
    io.warn(`${fieldName(draft, key)}: ${problems.join('; ')}`);
    io.warn('  Asking for it instead.');
    return false;
  };
  /** A value to offer as the default: an earlier answer or the previous bundle's, never a given one. */
  const prior = <K extends RawKey>(key: K): RawInput[K] | undefined => (isGiven(key) ? undefined : draft.values[key]);
  /** Accept an answer; print the schema's remarks about it (documentation address, host bits, …). */
  const answer = <K extends RawKey>(key: K, value: RawInput[K] | undefined) => {
    draft = withAnswer(draft, key, value);
    for (const w of checkFields(draft, [key]).warnings) io.say(`  note: ${w}`);
  };
  const acceptable = <K extends RawKey>(key: K, value: RawInput[K] | undefined) =>
    value !== undefined && checkFields(withAnswer(draft, key, value), [key]).problems.length === 0;

  for (;;) {
    // Mail domains.
    if (!settled('domains')) {
      const ans = await p.input({
        message: 'Mail domain(s), the primary first',
        why: 'The domains you receive mail for. Each becomes a DNS zone that this host signs and serves itself.',
        default: prior('domains')?.join(' '),
        validate: validatorFor(draft, 'domains', (a) => words(a)),
      });
      answer('domains', words(ans));
    }
    const primaryParsed = parseDomainName(draft.values.domains?.[0] ?? '');
    const primary = primaryParsed.ok ? primaryParsed.value : '';

    // Host name.
    if (!settled('hostname')) {
      const before = prior('hostname');
      const ans = await p.input({
        message: 'Mail host name',
        why: 'The name other mail servers connect to (MX); its TLS key is pinned in DNS (DANE). It must lie inside one of your domains.',
        default: acceptable('hostname', before) ? before : `mail.${primary}`,
        validate: validatorFor(draft, 'hostname', (a) => a.trim()),
      });
      answer('hostname', ans.trim());
    }

    // How mail reaches this machine.
    if (!settled('ingress')) {
      const before = prior('ingress');
      const ingress = await p.select<IngressChoice>({
        message: 'How does mail reach this machine?',
        why: 'Mail must arrive without anyone else\'s tunnel or relay in the way; refused ways are shown greyed out with the reason.',
        choices: ingressChoices(),
        default: before === 'direct' || before === 'port-forward' ? before : draft.values.listenIpv4 !== undefined ? 'port-forward' : 'direct',
      });
      answer('ingress', ingress);
    }
    const portForward = draft.values.ingress === 'port-forward';
    if (!portForward) {
      // LAN addresses only mean something behind a port forward (an earlier run's are dropped).
      if (!isGiven('listenIpv4')) draft = withAnswer(draft, 'listenIpv4', undefined);
      if (!isGiven('listenIpv6')) draft = withAnswer(draft, 'listenIpv6', undefined);
    }

    // Public addresses.
    const where = portForward ? 'your router' : 'this host';
    if (!settled('ipv4')) {
      const suggestion = portForward ? undefined : found.publicV4[0];
      const seen = !portForward && found.publicV4.length > 0 ? ` Found on this machine: ${found.publicV4.join(', ')}.` : '';
      const ans = await p.input({
        message: `Public IPv4 address of ${where} (none if it has none)`,
        why: portForward
          ? 'The address your ISP gave your router (see its status page; selfmail asks no web service). Mail servers connect to it.'
          : `Mail servers connect to it; it goes into the A, MX and SPF records.${seen}`,
        default: prior('ipv4') ?? suggestion,
        validate: (a) => (optional(a) === undefined ? true : validatorFor(draft, 'ipv4', optional)(a)),
      });
      answer('ipv4', optional(ans));
    }
    if (!settled('ipv6')) {
      const seen = found.publicV6.length > 0 ? ` Found on this machine: ${found.publicV6.join(', ')}.` : '';
      const ans = await p.input({
        message: `Public IPv6 address of ${where} (none if it has none)`,
        why: `Many mail servers prefer IPv6; give a stable address, not a temporary one.${seen}`,
        default: prior('ipv6') ?? found.publicV6[0],
        // A blank answer is fine when there is an IPv4 address; the schema says so otherwise.
        validate: validatorFor(draft, 'ipv6', optional, ['ipv4']),
      });
      answer('ipv6', optional(ans));
    }
    if (portForward && draft.values.ipv4 !== undefined && !settled('listenIpv4')) {
      const before = prior('listenIpv4');
      const ans = await p.input({
        message: 'LAN address of this host (the router forwards the mail ports to it)',
        why: 'The services listen on this private address; you forward the ports to it by hand. selfmail never opens router ports itself.',
        default: acceptable('listenIpv4', before) ? before : found.lanV4[0],
        validate: validatorFor(draft, 'listenIpv4', optional),
      });
      answer('listenIpv4', optional(ans));
    } else if (draft.values.ipv4 === undefined && !isGiven('listenIpv4')) {
      draft = withAnswer(draft, 'listenIpv4', undefined);
    }

    // Name servers: this host first, then secondaries the user runs.
    if (!settled('ns')) {
      const before = prior('ns') ?? [];
      const selfBefore = before.find((s) => !s.includes('=')) ?? before[0];
      const ans = await p.input({
        message: 'Name of the name server on this host',
        why: 'This host serves your signed zones itself (NSD), so no DNS provider can change your records; the registrar gets this name.',
        default: acceptable('ns', selfBefore === undefined ? undefined : [selfBefore]) ? selfBefore : `ns1.${primary}`,
        validate: validatorFor(draft, 'ns', (a) => [a.trim()]),
      });
      const self = ans.trim();
      const secondariesBefore = before.filter((s) => s !== selfBefore);
      const more = await p.input({
        message: 'Secondary name servers you run, as NAME=ADDR (none for none)',
        why: 'Optional: a second server of yours keeps your domains resolvable while this host is down; it gets the zones over TSIG-signed transfers.',
        default: secondariesBefore.length > 0 ? secondariesBefore.join(' ') : undefined,
        // NAME=ADDR,ADDR keeps its commas: secondaries are separated by spaces only.
        validate: validatorFor(draft, 'ns', (a) => [self, ...spaced(a)]),
      });
      answer('ns', [self, ...spaced(more)]);
    }

    // DNSSEC.
    if (!isGiven('dnssec')) {
      const yes = await p.confirm({
        message: 'Sign the zones with DNSSEC?',
        why: 'Signing lets resolvers detect forged answers, and DANE (your TLS key pinned for other mail servers) needs it. Say no only if your registrar takes no DS record.',
        default: prior('dnssec') ?? true,
      });
      answer('dnssec', yes);
    }

    // Mailboxes, then their passwords.
    if (!settled('users')) {
      const ans = await p.input({
        message: 'Mailboxes (addresses, space-separated)',
        why: 'Each mailbox gets an IMAP and submission login with a password you choose now; each must be in one of your domains.',
        default: prior('users')?.join(' '),
        validate: validatorFor(draft, 'users', (a) => words(a)),
      });
      answer('users', words(ans));
    }
    const users = (draft.values.users ?? []).map(canonicalEmail);
    for (const u of typedHere) {
      if (!users.includes(u)) {
        passwords.delete(u);
        typedHere.delete(u);
      }
    }
    for (const u of users) {
      if ([...passwords.keys()].some((k) => canonicalEmail(k) === u)) continue;
      if (bundleUsers.has(u)) {
        const keep = await p.confirm({
          message: `Keep the current password of ${u}?`,
          why: 'The bundle already holds its hash; keeping it changes nothing.',
          default: true,
        });
        if (keep) continue;
      }
      passwords.set(u, await newPassword(p, u, io));
      typedHere.add(u);
    }

    // Admin address.
    if (!settled('admin')) {
      const before = prior('admin');
      const ans = await p.input({
        message: 'Admin address (postmaster, abuse, DMARC and TLS reports)',
        why: 'Bounces, abuse complaints and the daily DMARC and TLS reports go there; it may be outside your domains.',
        default: acceptable('admin', before) ? before : users[0],
        validate: validatorFor(draft, 'admin', (a) => a.trim()),
      });
      answer('admin', ans.trim());
    }

    // SSH.
    if (!settled('adminSshFrom')) {
      const before = prior('adminSshFrom') ?? [];
      const ans = await p.input({
        message: 'Networks allowed to reach SSH, in CIDR form (none: SSH closed to the network)',
        why: 'Your LAN is not trusted by default: any machine on it may be infected. Name only the addresses you administer from.',
        default: before.length > 0 ? before.join(' ') : undefined,
        validate: validatorFor(draft, 'adminSshFrom', (a) => words(a)),
      });
      answer('adminSshFrom', words(ans));
    }

    // Review.
    let resolved: { config: Config; warnings: string[] };
    try {
      resolved = resolveConfig(draft);
    } catch (err) {
      // A contradiction among the answers that no single question caught: say it and ask again,
      // unless it lies only in the flags or the file, which the wizard does not change.
      const fields = err instanceof RefusalError ? [...err.refusals, ...err.issues] : err instanceof InputError ? err.issues : undefined;
      if (!fields) throw err;
      const asked = (Object.keys(draft.origins) as RawKey[]).filter((k) => draft.origins[k] === 'wizard').map((k) => fieldName(draft, k));
      if (!fields.some((f) => asked.some((a) => f.field === a || f.field.startsWith(`${a} `)))) throw err;
      io.warn('These answers do not fit together:');
      for (const f of fields) io.warn(`  ${f.field}: ${'message' in f ? f.message : f.why}`);
      io.warn('Going through the questions again; your answers are the defaults.');
      continue;
    }
    const state = (u: Email) => (typedHere.has(u) ? 'new password' : bundleUsers.has(u) && !passwords.has(u) ? 'password kept' : 'password from file');
    io.say('');
    for (const line of reviewLines(resolved.config, state)) io.say(line);
    // The schema names flags in its warnings; here the answer is what matters.
    for (const w of resolved.warnings) io.say(`  note: ${w.replace(/^[A-Za-z0-9-]+: /, '')}`);
    const go = await p.confirm({
      message: 'Write the bundle with these settings?',
      why: 'Nothing has been written yet. Say no to go through the questions again with these answers as defaults.',
      default: true,
    });
    if (go) return { input: draft, passwords };
    io.say('Going through the questions again; your answers are the defaults.');
  }
}

/** NS entries are separated by spaces only (NAME=ADDR,ADDR holds commas). */
function spaced(answer: string): string[] {
  const list = answer.split(/\s+/).filter(Boolean);
  return list.length === 1 && list[0]!.toLowerCase() === 'none' ? [] : list;
}

/** A problem with a new password, or true. Only hashes are stored; the rule exists for the login ports. */
export function passwordProblem(pw: string): true | string {
  if (pw.length < MIN_PASSWORD_LENGTH) {
    return `is ${pw.length} characters long; use at least ${MIN_PASSWORD_LENGTH}: the login ports face the internet, where bots guess passwords all day`;
  }
  if (/[\x00-\x1f\x7f]/.test(pw)) return 'contains a control character, which a mail client cannot send reliably';
  return true;
}

/** A hidden password typed twice; a mismatch asks again. */
async function newPassword(p: Prompter, user: string, io: Io): Promise<string> {
  for (;;) {
    const pw = await p.password({
      message: `Password for ${user}`,
      why: `Hidden as you type. Only its hash is stored, and never in selfmail.yaml. At least ${MIN_PASSWORD_LENGTH} characters.`,
      validate: (a) => {
        const problem = passwordProblem(a);
        return problem === true ? true : `The password ${problem}`;
      },
    });
    const again = await p.password({ message: `The same password again for ${user}`, why: 'To catch a typing mistake you could not see.' });
    if (pw === again) return pw;
    io.warn('The two passwords differ; type them again.');
  }
}

/** The review shown before anything is written: every setting, in plain words. */
export function reviewLines(config: Config, passwordState: (u: Email) => string): string[] {
  const rows: Array<[string, string]> = [
    ['Mail domains', config.domains.join(', ')],
    ['Mail host', config.hostname],
    [
      'Mail arrives',
      config.ingress === 'port-forward'
        ? `through a port forward you set on your router${config.listenIpv4 ? `, to ${config.listenIpv4}` : ''}`
        : 'directly, on this host\'s public address',
    ],
    ['Public IPv4', config.ipv4 ?? 'none'],
    ['Public IPv6', config.ipv6 ?? 'none'],
    [
      'Name servers',
      config.nameServers.map((n) => (n.self ? `${n.name} (this host)` : `${n.name} (${[...n.ipv4, ...n.ipv6].join(', ')})`)).join(', '),
    ],
    ['DNSSEC', config.dnssec ? 'yes, zones signed here' : 'no (no DS at the registrar, no DANE)'],
    ['Mailboxes', config.users.map((u) => `${u} (${passwordState(u)})`).join(', ')],
    ['Admin address', config.admin],
    ['SSH reachable from', config.adminSshFrom.length > 0 ? config.adminSshFrom.join(', ') : 'nowhere: closed to the network'],
    ['CA in CAA records', config.acmeCa],
  ];
  const width = Math.max(...rows.map(([k]) => k.length));
  return ['Review:', ...rows.map(([k, v]) => `  ${k.padEnd(width)}  ${v}`)];
}
