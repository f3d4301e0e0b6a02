/**
 * `selfmail doctor --bundle DIR [--port25-via DOMAIN] [--ask-blocklists LIST] [--json]`: what is
 * true on the live host and the network around it. Each check has a stable id and a status (pass,
 * warn, fail, unknown); anything not passing says what to do. Exit 0 when nothing fails, 5 when a
 * check does. It asks the host itself, its own resolver, the parent zones' servers and the router;
 * a remote MX and blocklists only when asked for; never a web service.
 */
import { parseDomainName } from '../../config/values.js';
import { EXIT, InputError, ToolError } from '../../errors.js';
import type { Io } from '../io.js';
import { parseCommandArgs } from '../usage.js';
import { readBundleConfig } from '../bundle-config.js';

const OPTIONS = {
  bundle: { type: 'string' },
  'port25-via': { type: 'string' },
  'ask-blocklists': { type: 'string', multiple: true },
  json: { type: 'boolean' },
} as const;

const USAGE = 'selfmail doctor --bundle DIR [--port25-via DOMAIN] [--ask-blocklists LIST[,LIST]] [--json]';

export async function run(args: string[], io: Io): Promise<number> {
  const parsed = parseCommandArgs('selfmail doctor', args, OPTIONS, false);
  const v = parsed.values;
  const problems: { field: string; message: string }[] = [];
  if (!v.bundle) problems.push({ field: '--bundle', message: `is required; usage: ${USAGE}` });
  let port25Via: string | undefined;
  if (v['port25-via'] !== undefined) {
    const d = parseDomainName(v['port25-via']);
    if (d.ok) port25Via = d.value;
    else problems.push({ field: '--port25-via', message: `${d.error} (a domain whose MX port 25 is tried, like one of yours elsewhere)` });
  }
  const blocklists: string[] = [];
  for (const name of (v['ask-blocklists'] ?? []).flatMap((s) => s.split(',')).map((s) => s.trim())) {
    const d = parseDomainName(name);
    if (d.ok) blocklists.includes(d.value) || blocklists.push(d.value);
    else problems.push({ field: '--ask-blocklists', message: `${JSON.stringify(name)}: ${d.error} (a DNS blocklist zone, like zen.spamhaus.org)` });
  }
  if (problems.length > 0) throw new InputError(problems);
  const { config, disk } = await readBundleConfig(v.bundle!);
  if (typeof process.getuid === 'function' && process.getuid() !== 0) {
    throw new ToolError('doctor reads the state of every unit and connects to the host\'s own services: run it as root, on the mail host', 'selfmail');
  }
  const { runDoctor } = await import('../../doctor/index.js');
  const { anyFailed } = await import('../../doctor/checks.js');
  const results = await runDoctor({ config, files: disk.files, network: { blocklists, ...(port25Via ? { port25Via } : {}) } });
  const failed = anyFailed(results);
  if (io.jsonMode) {
    io.json({ ok: !failed, checks: results });
  } else {
    const extra = [port25Via ? `the MX of ${port25Via} on port 25` : '', blocklists.length ? `the blocklists ${blocklists.join(', ')}` : ''].filter(Boolean);
    io.say(`selfmail doctor asks this host (systemd, its services, its name server and resolver), the parent zones' name servers and the router on the LAN${extra.length ? `, and, as you asked, ${extra.join(' and ')}` : ''}. No web service is asked about this host.`);
    for (const r of results) {
      io.say(`${r.status.toUpperCase().padEnd(7)} ${r.id.padEnd(13)} ${r.summary}`);
      if (r.fix) io.say(`${' '.repeat(22)}→ ${r.fix}`);
    }
  }
  return failed ? EXIT.checkFailed : 0;
}
