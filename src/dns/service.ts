/**
 * The DNS service module: for every mail domain the unsigned zone (source of truth), the signed
 * zone and the DS for the registrar; NSD's configuration; the daily re-signing job.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { installedPath, sysPath } from '../bundle/layout.js';
import type { BuildContext, BundleFile, ServiceModule } from '../bundle/types.js';
import { textFile } from '../bundle/types.js';
import type { DomainName } from '../config/types.js';
import { render } from '../render/index.js';
import { mapPool } from '../tools/pool.js';
import { run } from '../tools/run.js';
import { TSIG_CONF, nsdModel, nsdTsigKeys } from './nsd.js';
import { zoneRecords } from './records.js';
import { dsFileText } from './registrar.js';
import { INCEPTION_SKEW_SECONDS, RESIGN_MARGIN_DAYS, SIGNATURE_DAYS, canReuseSigned, dnssecTime, signZone, signingKeys, signingZskTag, zoneDnskeys } from './sign.js';
import { nextSerial, withSerial, writeZone } from './zone.js';
import { soaSerial } from '../verify/dns.js';
import { publishedKeys } from '../openpgp/service.js';
import { DNSKEY_TTL_MS, dnskeyText } from '../keys/dnssec-plan.js';

export const RESIGN_SCRIPT = 'bin/selfmail-resign';
export const RESIGN_SERVICE = 'systemd/selfmail-resign.service';
export const RESIGN_TIMER = 'systemd/selfmail-resign.timer';


export interface ZoneFiles {
  unsigned: string;
  signed?: string;
  serial: number;
}

/**
 * The unsigned and signed text of one zone. The serial and the signed bytes are kept from the
 * previous bundle when nothing changed; otherwise the serial grows. Re-signing also raises the
 * serial even when the records are the same: the served zone changed (new signatures), and
 * secondaries only transfer a zone whose serial grew.
 */
export async function buildZone(ctx: BuildContext, zone: DomainName): Promise<ZoneFiles> {
  const { config, keys, previous, now, mtaSts } = ctx;
  const draft = writeZone(zone, zoneRecords(config, keys, zone, 0, mtaSts, ctx.sshfp ?? [], publishedKeys(ctx)));
  const prevUnsigned = previous.read(`dns/${zone}.zone`)?.toString('utf8');
  const prevSigned = previous.read(`dns/${zone}.zone.signed`)?.toString('utf8');
  const prevSerial = soaSerial(prevUnsigned, zone);
  const same = prevUnsigned !== undefined && prevSerial !== undefined && withSerial(prevUnsigned, 0) === draft;
  const bump = () => {
    const olds = [prevSerial, soaSerial(prevSigned, zone)].filter((s): s is number => s !== undefined);
    return nextSerial(olds.length > 0 ? Math.max(...olds) : undefined, now);
  };

  if (!config.dnssec) {
    // Turning DNSSEC off changes what is served (no more signatures): a new serial tells secondaries.
    const serial = same && prevSigned === undefined ? prevSerial! : bump();
    return { unsigned: withSerial(draft, serial), serial };
  }
  if (same) {
    const kept = withSerial(draft, prevSerial!);
    const reuse = canReuseSigned({
      previousSigned: prevSigned,
      previousUnsigned: prevUnsigned,
      unsigned: kept,
      dnskeys: zoneDnskeys(keys, zone, now, prevSigned),
      zskTag: signingZskTag(keys, zone, now, prevSigned),
      now,
    });
    if (reuse) return { unsigned: kept, signed: prevSigned!, serial: prevSerial! };
  }
  const serial = bump();
  const unsigned = withSerial(draft, serial);
  const { signers, publishOnly } = signingKeys(keys, zone, now, prevSigned);
  const signed = await signZone(zone, unsigned, signers, now, publishOnly);
  return { unsigned, signed, serial };
}

async function resignFiles(ctx: BuildContext): Promise<BundleFile[]> {
  const { config, keys, profile } = ctx;
  if (!config.dnssec) return [];
  const zones = config.domains.map((zone) => {
    // KSKs first, then the ZSKs in the order they take over (the script lets the last due one sign).
    const mine = keys.dnssec
      .filter((k) => k.zone === zone)
      .sort((a, b) => (a.role === b.role ? Date.parse(a.activate) - Date.parse(b.activate) || a.tag - b.tag : a.role === 'ksk' ? -1 : 1));
    const first = mine[0];
    if (!first) throw new Error(`the key store has no DNSSEC keys for ${zone}`);
    const epoch = (iso: string | undefined): number => (iso === undefined ? 0 : Date.parse(iso) / 1000);
    return {
      name: zone,
      unsigned: installedPath(profile, `dns/${zone}.zone`),
      signed: installedPath(profile, `dns/${zone}.zone.signed`),
      keyDir: dirname(installedPath(profile, `${first.basePath}.key`)),
      keys: mine.map((k) => ({
        role: k.role,
        tag: k.tag,
        base: k.basePath.slice(k.basePath.lastIndexOf('/') + 1),
        publish: epoch(k.publish),
        activate: epoch(k.activate),
        remove: epoch(k.remove),
        publicKey: dnskeyText(k).split(' ')[3],
      })),
    };
  });
  const script = await render('dns', 'selfmail-resign.sh', {
    marginDays: RESIGN_MARGIN_DAYS,
    dnskeyTtl: DNSKEY_TTL_MS / 1000,
    skewSeconds: INCEPTION_SKEW_SECONDS,
    validDays: SIGNATURE_DAYS,
    nsdConf: installedPath(profile, 'nsd/nsd.conf'),
    zones,
  });
  const service = await render('systemd', 'selfmail-resign.service', {
    script: installedPath(profile, RESIGN_SCRIPT),
    zonesDir: sysPath(profile, '/etc/nsd/zones'),
    runDir: sysPath(profile, '/run/nsd'),
  });
  const timer = await render('systemd', 'selfmail-resign.timer', {});
  return [
    textFile(RESIGN_SCRIPT, script, 'daily DNSSEC re-signing script', 0o755),
    textFile(RESIGN_SERVICE, service, 'DNSSEC re-signing service'),
    textFile(RESIGN_TIMER, timer, 'daily DNSSEC re-signing timer'),
  ];
}

/** Every file of the DNS service, in a fixed order. */
export async function buildDns(ctx: BuildContext): Promise<BundleFile[]> {
  const { config, keys, profile } = ctx;
  const files: BundleFile[] = [];
  // Zones are independent; signing each is an ldns-signzone process, so run one per core.
  let signed = 0;
  const zones = await mapPool(config.domains, async (zone) => {
    const z = await buildZone(ctx, zone);
    ctx.progress?.(`Signing zones: ${++signed}/${config.domains.length}`);
    return z;
  });
  config.domains.forEach((zone, i) => {
    const z = zones[i]!;
    files.push(textFile(`dns/${zone}.zone`, z.unsigned, `zone ${zone} (unsigned, source of truth)`));
    if (z.signed !== undefined) {
      files.push(textFile(`dns/${zone}.zone.signed`, z.signed, `zone ${zone} signed with DNSSEC`));
      files.push(textFile(`dns/${zone}.ds`, dsFileText(keys, zone), `DS records of ${zone} for the registrar`));
    }
  });
  const model = nsdModel(config, keys, profile, ctx.warnings);
  files.push(textFile('nsd/nsd.conf', await render('nsd', 'nsd.conf', model), 'NSD configuration'));
  if (model.tsigInclude !== undefined) {
    const tsig = await render('nsd', 'tsig.conf', { keys: nsdTsigKeys(config, keys) });
    files.push(textFile(TSIG_CONF, tsig, 'TSIG keys of the secondaries (secret)', 0o600));
  }
  files.push(...(await resignFiles(ctx)));
  return files;
}

/**
 * Check the staged files with the real tools: both zone checkers on every zone, both DNSSEC
 * verifiers on the signed ones (at the run's clock), nsd-checkconf on the configuration.
 */
export async function checkDns(ctx: BuildContext, files: readonly BundleFile[]): Promise<void> {
  const { profile } = ctx;
  const has = new Set(files.map((f) => f.path));
  await mapPool(ctx.config.domains, async (zone) => {
    for (const p of [`dns/${zone}.zone`, `dns/${zone}.zone.signed`]) {
      if (!has.has(p)) continue;
      const path = installedPath(profile, p);
      await withCdsKeys(zone, path, installedPath(profile, `dns/${zone}.zone.signed`), (checked) =>
        run('named-checkzone', ['-q', '-k', 'fail', '-n', 'fail', '-m', 'fail', '-M', 'fail', '-S', 'fail', '-i', 'local', `${zone}.`, checked]),
      );
      await run('nsd-checkzone', [zone, path]);
      if (p.endsWith('.signed')) {
        await run('ldns-verify-zone', ['-V', '1', '-t', dnssecTime(ctx.now), path]);
        await run('dnssec-verify', ['-q', '-x', '-o', `${zone}.`, path]);
      }
    }
  });
  if (has.has('nsd/nsd.conf')) await run('nsd-checkconf', [installedPath(profile, 'nsd/nsd.conf')]);
}

/**
 * named-checkzone wants every CDS and CDNSKEY to match a DNSKEY of the zone, and the unsigned zone
 * has none (the signer adds them): during a KSK rollover the unsigned zone is checked with the signed
 * zone's DNSKEYs added, in a private copy.
 */
async function withCdsKeys(zone: DomainName, path: string, signedPath: string, check: (path: string) => Promise<unknown>): Promise<void> {
  const text = await readFile(path, 'utf8');
  if (path === signedPath || !/\sIN\s+(CDS|CDNSKEY)\s/.test(text)) {
    await check(path);
    return;
  }
  const dnskeys = (await readFile(signedPath, 'utf8')).split('\n').filter((l) => /^\S+\s+\d+\s+IN\s+DNSKEY\s/.test(l));
  const dir = await mkdtemp(join(tmpdir(), 'selfmail-cds-'));
  try {
    const copy = join(dir, `${zone}.zone`);
    await writeFile(copy, `${text}${dnskeys.join('\n')}\n`);
    await check(copy);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

export const dnsService: ServiceModule = {
  name: 'dns',
  build: buildDns,
  check: checkDns,
};
