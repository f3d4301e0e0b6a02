/**
 * `selfmail keys list|rotate|retire`: inspect keys (public parts only), rotate DKIM selectors and
 * the TLS key (the next key, pinned by TLSA ahead of its turn, serves; a new next key is made) and
 * the DNSSEC keys (a ZSK rollover started now; a KSK rollover with CDS/CDNSKEY, then its end once the
 * parent serves the new DS).
 * Rotation and retirement re-run the whole generation, so DNS, rspamd's signer and the manifest follow.
 */
import { InputError } from '../../errors.js';
import { sourced } from '../../config/raw.js';
import type { DomainName } from '../../config/types.js';
import { parseDomainName } from '../../config/values.js';
import type { Io } from '../io.js';
import { parseCommandArgs } from '../usage.js';
import { readBundleConfig } from '../bundle-config.js';
import { DS_WAIT_DAYS, ZSK_PREPUBLISH_DAYS, ZSK_RETIRE_DAYS } from '../../keys/dnssec-plan.js';

const USAGE =
  'usage: selfmail keys list --bundle DIR | keys rotate dkim --bundle DIR [--domain D] | keys rotate tls --bundle DIR [--immediately] | keys rotate dnssec --bundle DIR --zsk|--ksk|--ksk --parent-confirmed [--domain D] | keys retire dkim --bundle DIR --selector S';

const OPTIONS = {
  bundle: { type: 'string' },
  domain: { type: 'string', multiple: true },
  selector: { type: 'string', multiple: true },
  immediately: { type: 'boolean' },
  zsk: { type: 'boolean' },
  ksk: { type: 'boolean' },
  'parent-confirmed': { type: 'boolean' },
  json: { type: 'boolean' },
} as const;

export async function run(args: string[], io: Io): Promise<number> {
  const parsed = parseCommandArgs('selfmail keys', args, OPTIONS, true);
  const [action, kind, ...stray] = parsed.positionals;
  const v = parsed.values;
  const issues: { field: string; message: string }[] = [];
  if (action !== 'list' && action !== 'rotate' && action !== 'retire') issues.push({ field: 'selfmail keys', message: USAGE });
  else if (action === 'list' ? kind !== undefined : action === 'rotate' ? kind !== 'dkim' && kind !== 'tls' && kind !== 'dnssec' : kind !== 'dkim') {
    issues.push({
      field: `selfmail keys ${action}`,
      message:
        action === 'list'
          ? `takes no "${kind}"; ${USAGE}`
          : action === 'rotate'
            ? `rotates dkim, tls or dnssec ("keys rotate dkim", "keys rotate tls", "keys rotate dnssec --zsk"); ${USAGE}`
            : `retires DKIM selectors ("keys retire dkim"); a TLS key rotated out is withdrawn by itself; ${USAGE}`,
    });
  }
  if (stray.length > 0) issues.push({ field: `selfmail keys ${action ?? ''}`.trim(), message: `does not take ${stray.map((w) => JSON.stringify(w)).join(', ')}; ${USAGE}` });
  if (v.selector && action !== 'retire') issues.push({ field: '--selector', message: 'only goes with keys retire dkim' });
  if (v.domain && (action !== 'rotate' || (kind !== 'dkim' && kind !== 'dnssec'))) issues.push({ field: '--domain', message: 'only goes with keys rotate dkim or keys rotate dnssec' });
  for (const flag of ['zsk', 'ksk', 'parent-confirmed'] as const) {
    if (v[flag] && (action !== 'rotate' || kind !== 'dnssec')) issues.push({ field: `--${flag}`, message: 'only goes with keys rotate dnssec' });
  }
  if (action === 'rotate' && kind === 'dnssec') {
    if (v.zsk === v.ksk) issues.push({ field: 'selfmail keys rotate dnssec', message: `takes --zsk or --ksk (one of them); ${USAGE}` });
    else if (v['parent-confirmed'] && !v.ksk) issues.push({ field: '--parent-confirmed', message: 'goes with --ksk: it says the parent serves the new KSK\'s DS' });
  }
  if (v.immediately && (action !== 'rotate' || kind !== 'tls')) issues.push({ field: '--immediately', message: 'only goes with keys rotate tls' });
  if (!v.bundle) issues.push({ field: '--bundle', message: `is required; ${USAGE}` });
  if (issues.length > 0) throw new InputError(issues);
  const { out, disk, config } = await readBundleConfig(v.bundle!);
  const { generate } = await import('../../generate.js');
  const base = { out, layers: { flags: sourced({}, 'flag') }, passwords: new Map<string, string>(), passwordIssues: [], interactive: false, demo: false };

  if (action === 'list') {
    const { ensureKeys } = await import('../../keys/store.js');
    const { describeKeys } = await import('../../keys/store.js');
    // Only reads: the key set is worked out in memory, and a key the bundle should hold but does
    // not is named as missing, never shown as if it existed.
    const now = new Date();
    const keys = await ensureKeys(config, { dir: out, read: (p) => disk.files.get(p)?.data }, now, { warn: () => undefined });
    const rows = describeKeys(keys, (p) => disk.files.has(p), now);
    const missing = rows.filter((r) => r.state === 'missing');
    if (io.jsonMode) io.json({ ok: missing.length === 0, keys: rows, missing: missing.map((r) => r.file) });
    else {
      const table = [
        ['TYPE', 'NAME', 'ID', 'ALGORITHM', 'STATE', 'CREATED', 'FINGERPRINT (SHA-256 of the public key)', 'NEXT STEP'],
        ...rows.map((r) => [r.type, r.name, r.id || '-', r.algorithm, r.state, r.state === 'missing' || !r.created ? '-' : r.created, r.fingerprint || '-', r.nextStep ?? '-']),
      ];
      const widths = table[0]!.map((_, i) => Math.max(...table.map((row) => row[i]!.length)));
      for (const row of table) io.say(row.map((c, i) => (i === row.length - 1 ? c : c.padEnd(widths[i]!))).join('  '));
    }
    if (missing.length === 0) return 0;
    for (const r of missing) io.warn(`missing: ${r.type} key for ${r.name}: ${r.file} is not in the bundle`);
    io.warn(`the bundle lacks ${missing.length} key(s): selfmail init --out ${out} makes them (new keys mean new DNS records, and for DNSSEC a new DS at the registrar)`);
    return 2;
  }
  if (action === 'rotate' && kind === 'tls') {
    const code = await generate({ ...base, rotateTls: { immediately: !!v.immediately } }, io);
    if (code === 0 && !io.jsonMode) {
      io.say('The next TLS key serves once applied (selfmail apply); the old one stays pinned for two hours, and the first init after that withdraws its TLSA.');
      io.say('The certificate is the self-signed bootstrap one until the ACME client gets one for the new key: run systemctl start selfmail-acme right after apply (MTA-STS senders that enforce refuse the bootstrap certificate).');
    }
    return code;
  }
  if (action === 'rotate') {
    const domains: DomainName[] = [];
    for (const d of v.domain ?? []) {
      const p = parseDomainName(d);
      if (!p.ok) throw new InputError([{ field: '--domain', message: `${JSON.stringify(d)} ${p.error}` }]);
      domains.push(p.value);
    }
    for (const d of domains) {
      if (!config.domains.includes(d)) throw new InputError([{ field: '--domain', message: `${d} is not one of the bundle's domains (${config.domains.join(', ')})` }]);
    }
    if (kind === 'dnssec') {
      const step = v.zsk ? 'zsk' : v['parent-confirmed'] ? 'parent-confirmed' : 'ksk';
      const code = await generate({ ...base, rotateDnssec: { step, zones: domains } }, io);
      if (code === 0 && !io.jsonMode) {
        io.say(
          step === 'zsk'
            ? `The next ZSK is published once applied (selfmail apply) and signs ${ZSK_PREPUBLISH_DAYS} days later; the host's daily selfmail-resign makes that step, and takes the old ZSK out ${ZSK_RETIRE_DAYS} days after. Nothing to do at the registrar.`
            : step === 'ksk'
              ? 'The new KSK signs beside the old one once applied, with CDS and CDNSKEY naming it. Add its DS (dns/<zone>.ds, above) at the registrar unless the registry reads CDS; once the parent serves it (selfmail doctor: ds-at-parent), run selfmail keys rotate dnssec --ksk --parent-confirmed.'
              : `The old KSK leaves the zone ${DS_WAIT_DAYS} days after this is applied (the host's daily selfmail-resign takes it out); remove its DS at the registrar if it is still there.`,
        );
      }
      return code;
    }
    return generate({ ...base, rotateDkim: domains.length > 0 ? domains : config.domains }, io);
  }
  if (action === 'retire') {
    if (!v.selector || v.selector.length === 0) throw new InputError([{ field: '--selector', message: `is required; ${USAGE}` }]);
    return generate({ ...base, retireDkimSelectors: v.selector }, io);
  }
  throw new InputError([{ field: 'selfmail keys', message: USAGE }]);
}
