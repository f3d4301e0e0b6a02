/**
 * Serve the bundle's zones with the real NSD on loopback and a high port, and validate the
 * answers with delv, trusting only the bundle's KSK.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Profile } from '../../src/bundle/layout.js';
import { STANDARD_PORTS, installedPath } from '../../src/bundle/layout.js';
import { stageTree } from '../../src/bundle/stage.js';
import type { Config } from '../../src/config/types.js';
import { nsdRuntimeDirs } from '../../src/dns/nsd.js';
import { buildDns } from '../../src/dns/service.js';
import type { KeySet } from '../../src/keys/types.js';
import { makeConfig, makeContext, makeKeySet } from '../helpers/dns-keyset.js';
import { freePort } from '../helpers/ports.js';

const exec = promisify(execFile);

let root: string;
let config: Config;
let keys: KeySet;
let port: number;
let nsd: ChildProcess | undefined;
let nsdLog = '';
let anchorFile: string;
let resignScript: string;


async function dig(name: string, type: string): Promise<string[]> {
  const { stdout } = await exec('dig', [`@127.0.0.1`, '-p', String(port), '+short', '+norecurse', '+tries=1', '+time=2', name, type]);
  return stdout.trim().split('\n').filter((l) => l !== '');
}

async function delv(name: string, type: string, anchor = anchorFile): Promise<string> {
  const { stdout, stderr } = await exec('delv', ['@127.0.0.1', '-p', String(port), '-a', anchor, `+root=${config.domains[0]}`, '+nomultiline', name, type], { timeout: 20_000 });
  return stdout + stderr;
}

/** The value of a TXT answer line from dig +short: its character-strings joined. */
function txtValue(line: string): string {
  return [...line.matchAll(/"((?:[^"\\]|\\.)*)"/g)].map((m) => m[1]!.replace(/\\(.)/g, '$1')).join('');
}

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'selfmail-dns-nsd-'));
  config = makeConfig();
  // Keys and zones made 25 days ago: the zones still valid, but due for re-signing (the last test runs the job).
  const made = new Date(Date.now() - 25 * 86_400_000);
  keys = await makeKeySet(config, made);
  port = await freePort();
  const profile: Profile = { kind: 'rehearsal', root, listen: { ipv4: '127.0.0.1' }, ports: { ...STANDARD_PORTS, dns: port }, mailUser: { name: 'root', group: 'root' } };
  const files = await buildDns(makeContext(config, keys, { now: made, profile }));
  resignScript = installedPath(profile, 'bin/selfmail-resign');
  await stageTree([...files, ...keys.files], root);
  for (const d of nsdRuntimeDirs(profile)) await mkdir(d, { recursive: true });

  const zone = config.domains[0]!;
  const ksk = keys.dnssec.find((k) => k.zone === zone && k.role === 'ksk')!;
  const [flags, proto, alg, ...b64] = ksk.dnskey.split(/\s+/);
  anchorFile = join(root, 'anchor.conf');
  await writeFile(anchorFile, `trust-anchors {\n  ${zone}. static-key ${flags} ${proto} ${alg} "${b64.join('')}";\n};\n`);

  nsd = spawn('nsd', ['-d', '-c', installedPath(profile, 'nsd/nsd.conf')], { stdio: ['ignore', 'pipe', 'pipe'] });
  nsd.stdout!.on('data', (b: Buffer) => (nsdLog += b.toString()));
  nsd.stderr!.on('data', (b: Buffer) => (nsdLog += b.toString()));
  // Wait until NSD answers.
  for (let i = 0; ; i++) {
    if (nsd.exitCode !== null) throw new Error(`nsd exited (${nsd.exitCode}):\n${nsdLog}`);
    try {
      if ((await dig(zone, 'SOA')).length > 0) break;
    } catch {
      // not listening yet
    }
    if (i > 50) throw new Error(`nsd did not answer:\n${nsdLog}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}, 60_000);

afterAll(async () => {
  if (nsd && nsd.exitCode === null) {
    const exited = new Promise((r) => nsd!.once('exit', r));
    nsd.kill('SIGTERM');
    await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
    if (nsd.exitCode === null) nsd.kill('SIGKILL');
  }
  if (root) await rm(root, { recursive: true, force: true });
});

describe('NSD serves the signed zone and delv validates it', () => {
  const secure = (out: string) => expect(out, out).toMatch(/; fully validated/);

  it('MX', async () => {
    const out = await delv('example.org', 'MX');
    secure(out);
    expect(out).toMatch(/MX\s+10 mail\.example\.org\./);
  });

  it('DKIM TXT, reassembled, equals the key store value', async () => {
    for (const k of keys.dkim.filter((x) => x.domain === 'example.org')) {
      const name = `${k.selector}._domainkey.example.org`;
      secure(await delv(name, 'TXT'));
      const answers = await dig(name, 'TXT');
      expect(answers).toHaveLength(1);
      expect(txtValue(answers[0]!)).toBe(k.txt);
    }
  });

  it('TLSA equals the SPKI digest', async () => {
    for (const p of [25, 465, 587, 993]) {
      const name = `_${p}._tcp.mail.example.org`;
      secure(await delv(name, 'TLSA'));
      // The current key's pin and the next one's (a rotation never meets an unpinned key).
      const lines = await dig(name, 'TLSA');
      for (const line of lines) expect(line.split(/\s+/).slice(0, 3)).toEqual(['3', '1', '1']);
      expect(lines.map((l) => l.split(/\s+/).slice(3).join('').toLowerCase()).sort()).toEqual([keys.tls.spkiSha256, keys.tls.next.spkiSha256].sort());
    }
  });

  it('DMARC, MTA-STS, TLS-RPT', async () => {
    for (const [name, prefix] of [
      ['_dmarc.example.org', 'v=DMARC1; p=reject; adkim=s; aspf=s; rua=mailto:alice@example.org'],
      ['_mta-sts.example.org', 'v=STSv1; id='],
      ['_smtp._tls.example.org', 'v=TLSRPTv1; rua=mailto:alice@example.org'],
      ['example.net._report._dmarc.example.org', 'v=DMARC1'],
    ] as const) {
      secure(await delv(name, 'TXT'));
      const [line] = await dig(name, 'TXT');
      expect(txtValue(line!).startsWith(prefix), `${name}: ${line}`).toBe(true);
    }
  });

  it('CAA', async () => {
    const out = await delv('example.org', 'CAA');
    secure(out);
    expect(out).toContain('issue "letsencrypt.org"');
    expect(out).toContain('iodef "mailto:alice@example.org"');
  });

  it('SRV', async () => {
    const sub = await delv('_submissions._tcp.example.org', 'SRV');
    secure(sub);
    expect(sub).toMatch(/SRV\s+0 1 465 mail\.example\.org\./);
    const imap = await delv('_imap._tcp.example.org', 'SRV');
    secure(imap);
    expect(imap).toMatch(/SRV\s+0 0 0 \./);
  });

  it('a name that does not exist is proven absent (NSEC)', async () => {
    const out = await delv('nothere.example.org', 'A');
    expect(out).toMatch(/resolution failed: ncache nxdomain|fully validated/);
    expect(out).not.toMatch(/insecure|bogus/i);
  });

  it('does not validate against a foreign key (the check can fail)', async () => {
    const other = keys.dnssec.find((k) => k.zone === 'example.net' && k.role === 'ksk')!;
    const [flags, proto, alg, ...b64] = other.dnskey.split(/\s+/);
    const wrong = join(root, 'wrong-anchor.conf');
    await writeFile(wrong, `trust-anchors {\n  example.org. static-key ${flags} ${proto} ${alg} "${b64.join('')}";\n};\n`);
    const out = await delv('example.org', 'MX', wrong).catch((e: { stdout?: string; stderr?: string }) => `${e.stdout ?? ''}${e.stderr ?? ''}`);
    expect(out).not.toMatch(/; fully validated/);
  });

  it('hides the version', async () => {
    const { stdout } = await exec('dig', ['@127.0.0.1', '-p', String(port), '+short', 'version.bind', 'TXT', 'CH']);
    expect(stdout).not.toMatch(/NSD|4\.\d/);
    const id = await exec('dig', ['@127.0.0.1', '-p', String(port), 'id.server', 'TXT', 'CH']);
    expect(id.stdout).toMatch(/status: (REFUSED|NOERROR)/);
    expect(id.stdout).not.toMatch(/^id\.server\.\s.*TXT\s+"\S/m);
  });

  it('the daily job re-signs a zone near expiry with a higher serial, and NSD serves it', async () => {
    const soaBefore = (await dig('example.org', 'SOA'))[0]!.split(/\s+/)[2]!;
    const sigBefore = (await dig('example.org', 'RRSIG')).find((l) => l.startsWith('SOA '))!.split(/\s+/)[4]!;
    const { stdout } = await exec(resignScript, [], { timeout: 60_000 });
    expect(stdout).toContain('example.org signed again');
    let soaAfter = soaBefore;
    for (let i = 0; i < 25 && soaAfter === soaBefore; i++) {
      await new Promise((r) => setTimeout(r, 200));
      soaAfter = (await dig('example.org', 'SOA'))[0]!.split(/\s+/)[2]!;
    }
    expect(Number(soaAfter)).toBeGreaterThan(Number(soaBefore));
    const sigAfter = (await dig('example.org', 'RRSIG')).find((l) => l.startsWith('SOA '))!.split(/\s+/)[4]!;
    expect(Number(sigAfter.slice(0, 8))).toBeGreaterThan(Number(sigBefore.slice(0, 8)));
    secure(await delv('example.org', 'MX'));
    // A second run finds nothing to do.
    const again = await exec(resignScript, [], { timeout: 60_000 });
    expect(again.stdout).not.toContain('signed again');
  });
});
