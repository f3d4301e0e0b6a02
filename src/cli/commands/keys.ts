/**
 * `selfmail keys list|rotate|retire`: inspect keys (public parts only) and rotate DKIM selectors.
 * Rotation and retirement re-run the whole generation, so DNS, OpenDKIM and the manifest follow.
 */
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { InputError } from '../../errors.js';
import { sourced } from '../../config/raw.js';
import type { DomainName } from '../../config/types.js';
import { parseDomainName } from '../../config/values.js';
import type { Io } from '../io.js';

const USAGE = 'usage: selfmail keys list --bundle DIR | keys rotate dkim --bundle DIR [--domain D] | keys retire dkim --bundle DIR --selector S';

export async function run(args: string[], io: Io): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      allowPositionals: true,
      options: {
        bundle: { type: 'string' },
        domain: { type: 'string', multiple: true },
        selector: { type: 'string', multiple: true },
        json: { type: 'boolean' },
      },
    });
  } catch (err) {
    throw new InputError([{ field: 'selfmail keys', message: (err as Error).message }]);
  }
  const [action, kind] = parsed.positionals;
  const v = parsed.values;
  if (!v.bundle) throw new InputError([{ field: '--bundle', message: `is required; ${USAGE}` }]);
  const out = resolve(v.bundle);
  const { generate } = await import('../../generate.js');
  const base = { out, layers: { flags: sourced({}, 'flag') }, passwords: new Map<string, string>(), passwordIssues: [], interactive: false, demo: false };

  if (action === 'list') {
    const { readBundle } = await import('../../bundle/write.js');
    const disk = await readBundle(out);
    if (!disk.files.has('selfmail.yaml')) throw new InputError([{ field: '--bundle', message: `${out} is not a selfmail bundle (no selfmail.yaml)` }]);
    const { gatherInput } = await import('../../generate.js');
    const { resolveConfig } = await import('../../config/schema.js');
    const { config } = resolveConfig(await gatherInput(base.layers, disk.files.get('selfmail.yaml')?.data));
    const { ensureKeys } = await import('../../keys/store.js');
    const { describeKeys } = await import('../../keys/store.js');
    const keys = await ensureKeys(config, { dir: out, read: (p) => disk.files.get(p)?.data }, new Date());
    const rows = describeKeys(keys);
    if (io.jsonMode) io.json({ ok: true, keys: rows });
    else {
      const table = [['TYPE', 'NAME', 'ID', 'ALGORITHM', 'STATE', 'CREATED', 'FINGERPRINT (SHA-256 of the public key)'], ...rows.map((r) => [r.type, r.name, r.id || '-', r.algorithm, r.state, r.created, r.fingerprint || '-'])];
      const widths = table[0]!.map((_, i) => Math.max(...table.map((row) => row[i]!.length)));
      for (const row of table) io.say(row.map((c, i) => (i === row.length - 1 ? c : c.padEnd(widths[i]!))).join('  '));
    }
    return 0;
  }
  if ((action === 'rotate' || action === 'retire') && kind !== 'dkim') {
    throw new InputError([{ field: `keys ${action}`, message: `only DKIM keys rotate this way ("keys ${action} dkim"); the TLS key stays so TLSA stays valid, DNSSEC keys are per zone` }]);
  }
  if (action === 'rotate') {
    const domains: DomainName[] = [];
    for (const d of v.domain ?? []) {
      const p = parseDomainName(d);
      if (!p.ok) throw new InputError([{ field: '--domain', message: `${JSON.stringify(d)} ${p.error}` }]);
      domains.push(p.value);
    }
    const { readBundle } = await import('../../bundle/write.js');
    const disk = await readBundle(out);
    const { gatherInput } = await import('../../generate.js');
    const { resolveConfig } = await import('../../config/schema.js');
    const { config } = resolveConfig(await gatherInput(base.layers, disk.files.get('selfmail.yaml')?.data));
    for (const d of domains) {
      if (!config.domains.includes(d)) throw new InputError([{ field: '--domain', message: `${d} is not one of the bundle's domains (${config.domains.join(', ')})` }]);
    }
    return generate({ ...base, rotateDkim: domains.length > 0 ? domains : config.domains }, io);
  }
  if (action === 'retire') {
    if (!v.selector || v.selector.length === 0) throw new InputError([{ field: '--selector', message: `is required; ${USAGE}` }]);
    return generate({ ...base, retireDkimSelectors: v.selector }, io);
  }
  throw new InputError([{ field: 'selfmail keys', message: USAGE }]);
}
