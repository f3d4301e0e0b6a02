/**
 * `selfmail doctor`: what is true on the live host, beside what `verify` compares on disk. Each
 * check asks only the host itself: systemd, the ports its services serve (TLS handshakes to its
 * own address, STARTTLS on 25 and 587), and its own name server (NSD, for the TLSA records it
 * publishes). Nothing here talks to anyone outside the host.
 */
import { X509Certificate } from 'node:crypto';
import { Socket, connect as tcpConnect } from 'node:net';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import type { Config } from '../config/types.js';
import { TLSA_PORTS } from '../dns/records.js';
import { run } from '../tools/run.js';
import { type CheckResult, type ServedCert, type TlsaFacts, type UnitState, judgeCertificates, judgeResignTimer, judgeServices, judgeTlsa, parseTlsaAnswers, spkiSha256 } from './checks.js';

export interface DoctorInput {
  config: Config;
  /** The bundle's files (systemd units, the TLS certificate). */
  files: Map<string, { data: Buffer }>;
  now?: Date;
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
    Promise.resolve(
      address
        ? judgeCertificates(served, bundleSpki, now, `this host's own services at ${where} (ports ${CERT_PORTS.join(', ')})`)
        : ({ id: 'cert-expiry', status: 'unknown', summary: 'the bundle names no address of the host', asked: 'nobody', fix: 'give --ipv4 or --ipv6 to init' } as CheckResult),
    ),
    tlsa(config, address, byPort),
  ]);
  return results;
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

async function resignTimer(now: Date): Promise<CheckResult> {
  const timerEnabled = (await run('systemctl', ['is-enabled', 'selfmail-resign.timer'], { okCodes: [0, 1, 4] })).stdout.trim();
  const show = (await run('systemctl', ['show', 'selfmail-resign.service', '--timestamp=unix', '-p', 'ExecMainExitTimestamp', '-p', 'Result'], { okCodes: [0, 1] })).stdout;
  const exited = /^ExecMainExitTimestamp=@(\d+)/m.exec(show)?.[1];
  const result = /^Result=(\S+)/m.exec(show)?.[1];
  return judgeResignTimer({ timerEnabled, ...(exited ? { lastRun: new Date(Number(exited) * 1000), result } : {}), now });
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
