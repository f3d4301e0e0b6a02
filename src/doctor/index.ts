/**
 * `selfmail doctor`: what is true on the live host, beside what `verify` compares on disk. These
 * checks ask only the host itself: systemd, the ports its services serve (TLS handshakes to its
 * own address, STARTTLS on 25 and 587), and its own name server (NSD, for the TLSA records it
 * publishes). The network checks (./network.ts) ask the host's own resolver, the parent zones'
 * servers and the router on the LAN, and, only when the user opts in, one MX and named blocklists.
 */
import { X509Certificate } from 'node:crypto';
import { Socket, connect as tcpConnect } from 'node:net';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import type { Config } from '../config/types.js';
import { TLSA_PORTS } from '../dns/records.js';
import { run } from '../tools/run.js';
import { mtaStsId } from '../web/mtasts.js';
import type { NetworkOptions } from './network.js';
import {
  type CheckResult,
  type DailyJobFacts,
  type MtaStsFacts,
  type ServedCert,
  type TlsaFacts,
  type UnitState,
  type ZoneValidation,
  judgeBackup,
  judgeCertificates,
  judgeDnssec,
  judgeMtaSts,
  judgeResignTimer,
  judgeServices,
  judgeTlsa,
  parseTlsaAnswers,
  rrsigExpiries,
  spkiSha256,
} from './checks.js';

export interface DoctorInput {
  config: Config;
  /** The bundle's files (systemd units, the TLS certificate). */
  files: Map<string, { data: Buffer }>;
  now?: Date;
  /** The opt-in network checks (`--port25-via`, `--ask-blocklists`). */
  network?: NetworkOptions;
}

/** Ports that speak TLS from the first byte, and those that start plain and switch (STARTTLS). */
const IMPLICIT_TLS = new Set([443, 465, 993]);
const CERT_PORTS = [25, 465, 587, 993, 443];
const TIMEOUT_MS = 10_000;

export async function runDoctor(input: DoctorInput): Promise<CheckResult[]> {
  const now = input.now ?? new Date();
  const { config } = input;
  const address = config.listenIpv4 ?? config.ipv4 ?? config.listenIpv6 ?? config.ipv6;
  const cert = input.files.get('keys/tls/cert.pem');
  const bundleSpki = cert ? spkiSha256(new X509Certificate(cert.data)) : '';
  const served = address ? await Promise.all(CERT_PORTS.map((port) => servedCertificate(address, port, config.hostname))) : [];
  const byPort = new Map(served.map((s) => [s.port, s]));
  const where = address?.includes(':') ? `[${address}]` : address;
  const results = await Promise.all([
    services(input.files),
    resignTimer(now),
    backupJob(config, now),
    Promise.resolve(
      address
        ? judgeCertificates(served, bundleSpki, now, `this host's own services at ${where} (ports ${CERT_PORTS.join(', ')})`)
        : ({ id: 'cert-expiry', status: 'unknown', summary: 'the bundle names no address of the host', asked: 'nobody', fix: 'give --ipv4 or --ipv6 to init' } as CheckResult),
    ),
    tlsa(config, address, byPort),
    dnssec(config, address, input.files, now),
    mtaSts(config, address),
  ]);
  const { networkChecks } = await import('./network.js');
  return [...results, ...(await networkChecks(config, input.files, input.network ?? { blocklists: [] }))];
}

const SYSTEM_CAS = '/etc/ssl/certs/ca-certificates.crt';

async function dnssec(config: Config, address: string | undefined, files: DoctorInput['files'], now: Date): Promise<CheckResult> {
  const asked = `this host's own name server (NSD) at ${address ?? 'no address'}, validated with delv against the DS records in the bundle; and this host's own resolver (unbound), for the chain from the root`;
  if (!config.dnssec) return { id: 'dnssec-valid', status: 'warn', summary: 'DNSSEC is off: resolvers cannot tell forged answers from yours', fix: 'leave --no-dnssec off (selfmail init)', asked };
  if (!address) return { id: 'dnssec-valid', status: 'unknown', summary: 'the bundle names no address of the host', asked };
  const { mkdtemp, rm, writeFile } = await import('node:fs/promises');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const dir = await mkdtemp(join(tmpdir(), 'selfmail-doctor-'));
  try {
    const zones: ZoneValidation[] = [];
    for (const zone of config.domains) {
      const { dsOfFile } = await import('./network-checks.js');
      const anchors = dsOfFile(files.get(`dns/${zone}.ds`)?.data.toString('utf8') ?? '').map((ds) => {
        const [tag, alg, type, digest] = ds.split(' ');
        return `  ${zone}. static-ds ${tag} ${alg} ${type} "${digest}";`;
      });
      if (anchors.length === 0) {
        zones.push({ zone, validated: false, detail: `the bundle has no DS for ${zone}` });
        continue;
      }
      const file = join(dir, `${zone}.anchors`);
      await writeFile(file, `trust-anchors {\n${anchors.join('\n')}\n};\n`);
      const delv = await run('delv', [`@${address}`, '-a', file, `+root=${zone}`, zone, 'SOA'], { okCodes: [0, 1], timeout: 30_000 }).catch((err: Error) => ({ stdout: '', stderr: err.message, exitCode: -1 }));
      const said = `${delv.stdout}\n${delv.stderr}`;
      const validated = /; fully validated/.test(said);
      const expiries: Date[] = [];
      for (const type of ['SOA', 'DNSKEY', 'MX']) {
        const dig = await run('dig', ['+dnssec', '+norecurse', '+time=3', '+tries=2', `@${address}`, zone, type], { okCodes: [0, 9, 10] }).catch(() => ({ stdout: '' }));
        expiries.push(...rrsigExpiries(dig.stdout));
      }
      const earliest = expiries.sort((a, b) => a.getTime() - b.getTime())[0];
      const detail = said.split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith(';;') && !/fully validated/.test(l)).slice(-2).join(' ');
      const resolver = await resolverVerdict(zone);
      zones.push({ zone, validated, resolver, ...(validated ? {} : { detail: detail || 'no answer' }), ...(earliest ? { earliestExpiry: earliest } : {}) });
    }
    return judgeDnssec(zones, now, asked);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** What the host's validating resolver says of the zone's SOA: AD, no AD, SERVFAIL that checking-disabled answers (bogus), nothing. */
async function resolverVerdict(zone: string): Promise<NonNullable<ZoneValidation['resolver']>> {
  const { query, RESOLVER } = await import('./network.js');
  const r = await query(RESOLVER, zone, 'SOA', true);
  if (r.status === 'NOERROR' && r.answer.some((x) => x.type === 'SOA')) return r.flags.includes('ad') ? 'secure' : 'insecure';
  if (r.status !== 'SERVFAIL') return 'unreachable';
  const cd = await query(RESOLVER, zone, 'SOA', true, true);
  return cd.status === 'NOERROR' && cd.answer.some((x) => x.type === 'SOA') ? 'bogus' : 'unreachable';
}

async function mtaSts(config: Config, address: string | undefined): Promise<CheckResult> {
  const asked = `this host's own name server and web server at ${address ?? 'no address'} (TLS checked against ${SYSTEM_CAS})`;
  if (!address) return { id: 'mta-sts', status: 'unknown', summary: 'the bundle names no address of the host', asked };
  const { readFile } = await import('node:fs/promises');
  const ca = await readFile(SYSTEM_CAS).catch(() => undefined);
  const facts: MtaStsFacts[] = [];
  for (const domain of config.domains) {
    const dig = await run('dig', ['+short', '+norecurse', '+time=3', '+tries=2', `@${address}`, `_mta-sts.${domain}`, 'TXT'], { okCodes: [0, 9, 10] }).catch(() => ({ stdout: '' }));
    const txtId = /v=STSv1;\s*id=([A-Za-z0-9]+)/.exec(dig.stdout.replace(/"\s*"/g, ''))?.[1];
    const strict = await fetchPolicy(address, domain, ca, true);
    const got = strict.body !== undefined ? strict : await fetchPolicy(address, domain, ca, false);
    facts.push({
      domain,
      ...(txtId ? { txtId } : {}),
      ...(got.body !== undefined ? { policy: got.body, policyId: mtaStsId(got.body) } : {}),
      trusted: strict.body !== undefined,
      ...(strict.error ? { error: strict.error } : {}),
    });
  }
  return judgeMtaSts(facts, config.hostname, asked);
}

/** GET the policy from the host's own address, as a sender would ask mta-sts.<domain>. */
async function fetchPolicy(address: string, domain: string, ca: Buffer | undefined, verify: boolean): Promise<{ body?: string; error?: string }> {
  const { request } = await import('node:https');
  const servername = `mta-sts.${domain}`;
  return new Promise((resolveFetch) => {
    const req = request(
      { host: address, port: 443, path: '/.well-known/mta-sts.txt', method: 'GET', servername, headers: { host: servername }, rejectUnauthorized: verify, ...(ca ? { ca } : {}), timeout: TIMEOUT_MS, agent: false },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (body += d));
        res.on('end', () => resolveFetch(res.statusCode === 200 ? { body } : { error: `HTTP ${res.statusCode}` }));
      },
    );
    req.on('timeout', () => req.destroy(new Error('no answer within 10 s')));
    req.on('error', (err) => resolveFetch({ error: err.message }));
    req.end();
  });
}

async function services(files: DoctorInput['files']): Promise<CheckResult> {
  const { shippedUnits, unitPlan } = await import('../apply/units.js');
  const entries = [...files].map(([path, f]) => ({ path, data: f.data }));
  const wanted = unitPlan(shippedUnits(entries), [], []).wanted;
  const states: UnitState[] = [];
  for (const unit of wanted) {
    const active = (await run('systemctl', ['is-active', unit], { okCodes: [0, 1, 3, 4] })).stdout.trim();
    const enabled = (await run('systemctl', ['is-enabled', unit], { okCodes: [0, 1, 4] })).stdout.trim();
    states.push({ unit, active: active || 'unknown', enabled: enabled || 'not-found' });
  }
  return judgeServices(states);
}

/** A daily job's facts from systemd: its timer's enablement, its service's last exit and result. */
async function dailyJob(unit: string, now: Date): Promise<DailyJobFacts> {
  const timerEnabled = (await run('systemctl', ['is-enabled', `${unit}.timer`], { okCodes: [0, 1, 4] })).stdout.trim();
  const show = (await run('systemctl', ['show', `${unit}.service`, '--timestamp=unix', '-p', 'ExecMainExitTimestamp', '-p', 'Result'], { okCodes: [0, 1] })).stdout;
  const exited = /^ExecMainExitTimestamp=@(\d+)/m.exec(show)?.[1];
  const result = /^Result=(\S+)/m.exec(show)?.[1];
  return { timerEnabled, ...(exited ? { lastRun: new Date(Number(exited) * 1000), ...(result ? { result } : {}) } : {}), now };
}

async function resignTimer(now: Date): Promise<CheckResult> {
  return judgeResignTimer(await dailyJob('selfmail-resign', now));
}

async function backupJob(config: Config, now: Date): Promise<CheckResult> {
  if (!config.backup) return judgeBackup({});
  const { targetText } = await import('../backup/format.js');
  return judgeBackup({ target: targetText(config.backup.to), ...(await dailyJob('selfmail-backup', now)) });
}

async function tlsa(config: Config, address: string | undefined, served: Map<number, ServedCert>): Promise<CheckResult> {
  const asked = `this host's own name server (NSD) at ${address ?? 'no address'}, and its own services`;
  if (!config.dnssec) return { id: 'tlsa-matches', status: 'warn', summary: 'DNSSEC is off, so no TLSA is published: DANE senders cannot authenticate this host', fix: 'leave --no-dnssec off (selfmail init)', asked };
  if (!address) return { id: 'tlsa-matches', status: 'unknown', summary: 'the bundle names no address of the host', asked };
  const facts: TlsaFacts[] = [];
  for (const port of TLSA_PORTS) {
    const owner = `_${port}._tcp.${config.hostname}`;
    const s = served.get(port);
    const servedSpki = s?.der ? spkiSha256(new X509Certificate(s.der)) : undefined;
    const dig = await run('dig', ['+short', '+norecurse', '+time=3', '+tries=2', `@${address}`, owner, 'TLSA'], { okCodes: [0, 9, 10] }).catch((err: Error) => ({ stdout: '', exitCode: -1, stderr: err.message }));
    if (dig.exitCode !== 0) facts.push({ port, owner, pins: [], error: `the name server did not answer (dig exit ${dig.exitCode})`, servedSpki });
    else facts.push({ port, owner, pins: parseTlsaAnswers(dig.stdout), servedSpki });
  }
  return judgeTlsa(facts, asked);
}

/** The leaf certificate `port` serves at `address`: a TLS handshake (after STARTTLS on 25 and 587), nothing sent after it. */
export async function servedCertificate(address: string, port: number, servername: string): Promise<ServedCert> {
  try {
    const socket = IMPLICIT_TLS.has(port) ? undefined : await smtpStartTls(address, port, servername);
    const tls = await new Promise<TLSSocket>((resolveTls, reject) => {
      const t = tlsConnect({ ...(socket ? { socket } : { host: address, port }), servername, rejectUnauthorized: false, timeout: TIMEOUT_MS });
      t.once('secureConnect', () => resolveTls(t));
      t.once('error', reject);
      t.once('timeout', () => reject(new Error('no TLS handshake within 10 s')));
    });
    const der = tls.getPeerCertificate().raw;
    tls.destroy();
    return der ? { port, der } : { port, error: 'no certificate' };
  } catch (err) {
    return { port, error: (err as Error).message };
  }
}

/** Greeting, EHLO, STARTTLS: the plain socket, ready for the TLS handshake. */
function smtpStartTls(address: string, port: number, hostname: string): Promise<Socket> {
  return new Promise((resolveSocket, reject) => {
    const sock = tcpConnect({ host: address, port });
    sock.setTimeout(TIMEOUT_MS);
    let buf = '';
    let stage: 'greeting' | 'ehlo' | 'starttls' = 'greeting';
    const fail = (why: string) => {
      sock.destroy();
      reject(new Error(why));
    };
    sock.on('timeout', () => fail(`no SMTP answer within ${TIMEOUT_MS / 1000} s (${stage})`));
    sock.on('error', (e) => fail(e.message));
    const onData = (d: Buffer) => {
      buf += d.toString('latin1');
      // A reply ends with a line "NNN text" (no dash).
      const lines = buf.split('\r\n');
      const last = lines.findIndex((l) => /^\d{3} /.test(l));
      if (last < 0) return;
      const code = lines[last]!.slice(0, 3);
      buf = lines.slice(last + 1).join('\r\n');
      if (stage === 'greeting') {
        if (code !== '220') return fail(`greeting ${lines[last]}`);
        stage = 'ehlo';
        sock.write(`EHLO ${hostname}\r\n`);
      } else if (stage === 'ehlo') {
        if (code !== '250') return fail(`EHLO answered ${lines[last]}`);
        if (!lines.slice(0, last + 1).some((l) => /^250[- ]STARTTLS/i.test(l))) return fail('no STARTTLS offered');
        stage = 'starttls';
        sock.write('STARTTLS\r\n');
      } else {
        if (code !== '220') return fail(`STARTTLS answered ${lines[last]}`);
        sock.removeListener('data', onData);
        sock.setTimeout(0);
        resolveSocket(sock);
      }
    };
    sock.on('data', onData);
  });
}
