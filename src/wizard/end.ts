/**
 * The end screen of an interactive run: what was written, what the user must now do by hand
 * (registrar, ISP, router), and the short version of REPORT.md. Pure: builds lines from the
 * Config, the KeySet and the summary; `showEndScreen` only prints them.
 *
 * The steps come from src/report/'s model (the same data REPORT.md is rendered from). The short
 * "protects / does not" lists are written here: src/report/ offers no short form of them yet.
 */
import type { Io } from '../cli/io.js';
import type { Config } from '../config/types.js';
import { backupSummary, reportModel } from '../report/index.js';
import type { KeySet } from '../keys/types.js';
import type { Summary } from '../generate.js';

export interface Done {
  config: Config;
  keys: KeySet;
  summary: Summary;
}

/** The files of the bundle, one line per top-level file or folder, with what changed. */
function fileLines(summary: Summary): string[] {
  const groups = new Map<string, { total: number; changed: number; secret: boolean }>();
  for (const f of summary.files) {
    const slash = f.path.indexOf('/');
    const top = slash < 0 ? f.path : `${f.path.slice(0, slash)}/`;
    const g = groups.get(top) ?? { total: 0, changed: 0, secret: false };
    g.total++;
    if (f.changed) g.changed++;
    if (f.mode === '0600') g.secret = true;
    groups.set(top, g);
  }
  const lines: string[] = [];
  for (const [top, g] of [...groups].sort(([a], [b]) => (a < b ? -1 : 1))) {
    const count = top.endsWith('/') ? ` ${g.total} file${g.total === 1 ? '' : 's'}` : '';
    const changed = g.changed === 0 ? 'unchanged' : top.endsWith('/') ? `${g.changed} written` : 'written';
    const secret = g.secret ? ', secrets inside (0600): never copy them elsewhere' : '';
    lines.push(`  ${top}${count} (${changed}${secret})`);
  }
  return lines;
}

/** Every line of the end screen. */
export function endScreenLines(done: Done): string[] {
  const { config, keys, summary } = done;
  // The steps come from REPORT.md's own model, so the screen and the report never disagree.
  const model = reportModel(config, keys, []);
  const out: string[] = [];
  out.push('', `Files in ${summary.bundle}:`, ...fileLines(summary));
  for (const r of summary.removed) out.push(`  ${r} (removed)`);

  out.push('', 'Next steps, by hand:');
  let step = 1;
  for (const zone of model.zones) {
    out.push(`  ${step++}. At the registrar of ${zone.zone}:`);
    out.push(`       name servers (NS): ${zone.ns.join(', ')}`);
    for (const g of zone.glue) out.push(`       glue: ${g.name} ${g.address.includes(':') ? 'AAAA' : 'A'} ${g.address}`);
    if (!model.dnssec) out.push('       no DS record: DNSSEC is off for this setup');
    for (const ds of zone.ds) out.push(`       DS: ${ds}`);
  }
  if (model.ptr.length > 0) {
    const ptr = model.ptr.map((p) => p.address).join(' and ');
    out.push(`  ${step++}. At your ISP or hosting provider: set the reverse DNS (PTR) of ${ptr} to ${model.hostname}; many mail servers refuse mail from an address without one.`);
  }
  if (model.portForward) {
    const pf = model.portForward;
    out.push(`  ${step++}. On your router, forward these ports by hand to ${pf.lanIpv4 || 'this host'}, then switch UPnP off on the router:`);
    for (const p of pf.ports) out.push(`       ${p.proto} ${p.port}  ${p.what}`);
    if (pf.ipv6) out.push(`       and allow the same ports to ${pf.ipv6} in the router's IPv6 firewall`);
  }
  if (model.dmarcAuthorization.length > 0) {
    out.push(`  ${step++}. In the zone of ${model.adminDomain} (it receives your DMARC reports):`);
    for (const r of model.dmarcAuthorization) out.push(`       ${r}`);
  }
  out.push(`  ${step++}. Get a trusted certificate with any ACME client from ${keys.tls.csrPath} (the key stays here; CAA names ${config.acmeCa}).`);
  out.push(`  ${step++}. Try it: selfmail rehearse --bundle ${summary.bundle}; then, as root on this host: selfmail apply --bundle ${summary.bundle}`);
  out.push(`  ${step++}. After the registrar steps, check what is live: selfmail doctor --bundle ${summary.bundle} (as root; it asks this host, its resolver, the parent zone's servers and the LAN gateway; never a web service).`);
  out.push(`  ${step++}. ${backupSummary(model, summary.bundle)}`);

  out.push('', 'What this setup protects:');
  out.push('  - Every key was made on this machine; no one else holds a copy.');
  out.push(`  - Your zones are written${config.dnssec ? ', signed' : ''} and served by you; other servers find your mail host without a DNS provider in between.`);
  out.push('  - Mail to other servers is encrypted where they support it and authenticated where they publish DANE or MTA-STS; your mail is DKIM-signed and covered by SPF and DMARC.');
  out.push(`  - SSH is ${config.adminSshFrom.length > 0 ? `reachable only from ${config.adminSshFrom.join(', ')}` : 'closed to the network'}; password guessing is throttled.`);
  out.push('What it does not protect:');
  out.push('  - The recipients\' servers see the envelope, headers and content of the mail you send them; a server without TLS gets it in clear.');
  out.push('  - Mail at rest on this host can be read by whoever controls the host: use OpenPGP end to end, with private keys on your own devices.');
  out.push('  - Your registrar and the registry can change the delegation of your domains; your ISP sees whom your server talks to, and when.');
  out.push('', 'REPORT.md in the bundle says all of this at length.');
  return out;
}

/** Print the end screen (interactive runs only). */
export function printEndScreen(done: Done, io: Io): void {
  for (const line of endScreenLines(done)) io.say(line);
}
