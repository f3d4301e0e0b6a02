/**
 * The review before anything is written: the answers resolved by the very schema a flag run uses,
 * every setting in plain words, then a confirmation. A contradiction among the wizard's own
 * answers, or a "no", goes through the questions again with the answers as defaults.
 */
import { targetText } from '../../backup/format.js';
import { fieldName, type RawKey } from '../../config/raw.js';
import { resolveConfig } from '../../config/schema.js';
import type { Config, Email } from '../../config/types.js';
import { InputError, RefusalError } from '../../errors.js';
import type { WizardContext } from './context.js';

/** 'done' when the user confirmed; 'again' to go through the questions once more. */
export async function review(c: WizardContext): Promise<'done' | 'again'> {
  const { draft, io } = c;
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
    return 'again';
  }
  const state = (u: Email) => (c.typedHere.has(u) ? 'new password' : c.bundleUsers.has(u) && !c.passwords.has(u) ? 'password kept' : 'password from file');
  io.say('');
  for (const line of reviewLines(resolved.config, state)) io.say(line);
  // The schema names flags in its warnings; here the answer is what matters.
  for (const w of resolved.warnings) io.say(`  note: ${w.replace(/^[A-Za-z0-9-]+: /, '')}`);
  const go = await c.p.confirm({
    message: 'Write the bundle with these settings?',
    why: 'Nothing has been written yet. Say no to go through the questions again with these answers as defaults.',
    default: true,
  });
  if (go) return 'done';
  io.say('Going through the questions again; your answers are the defaults.');
  return 'again';
}

/** The backup's review line: where it goes and to how many keys, or none. */
function backupLine(config: Config): string {
  const b = config.backup;
  if (!b) return 'none (selfmail backup by hand still works)';
  const n = b.recipients.length;
  return `to ${targetText(b.to)}, encrypted to ${n} age public key${n === 1 ? '' : 's'}${b.to.kind === 'sftp' ? ', only the given host key accepted' : ''}`;
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
        : config.ingress === 'own-vps'
          ? `through your VPS over WireGuard (it forwards packets only)${config.vpsWgKey ? '' : '; its key is not given yet: vps/README.md says how'}`
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
    ['Spam blocklists', config.spamLookups.length > 0 ? `${config.spamLookups.join(', ')} (asked about every message: REPORT.md says who learns what)` : 'none: local checks only, no one is asked'],
    ['Daily backup', backupLine(config)],
  ];
  const width = Math.max(...rows.map(([k]) => k.length));
  return ['Review:', ...rows.map(([k, v]) => `  ${k.padEnd(width)}  ${v}`)];
}
