/**
 * doctor's judgements, one rule at a time, on facts made here: unit states, re-sign runs,
 * certificates made with openssl (the bundle's key self-signed, CA-issued, another key), TLSA
 * answers as dig prints them. That the facts are gathered right on a live host is shown by the
 * pristine tier.
 */
import { X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { anyFailed, judgeBackup, judgeCertificates, judgeDnssec, judgeMtaSts, judgeResignTimer, judgeServices, judgeTlsa, parseTlsaAnswers, rrsigExpiries, spkiSha256 } from '../../src/doctor/checks.js';
import { mtaStsId, mtaStsPolicy } from '../../src/web/mtasts.js';
import type { DomainName } from '../../src/config/types.js';
import { run } from '../../src/tools/run.js';

const DAY = 86_400_000;
let dir: string;
let selfSigned: Buffer;
let caIssued: Buffer;
let otherKey: Buffer;
let bundleSpki: string;

const der = (pem: Buffer) => new X509Certificate(pem).raw;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'selfmail-doctor-'));
  const p = (f: string) => join(dir, f);
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  await run('openssl', ['req', '-x509', ...ec, '-keyout', p('key.pem'), '-out', p('self.pem'), '-days', '365', '-subj', '/CN=mail.example.org']);
  await run('openssl', ['req', '-x509', ...ec, '-keyout', p('ca.key'), '-out', p('ca.pem'), '-days', '30', '-subj', '/CN=test CA']);
  await run('openssl', ['req', '-new', '-key', p('key.pem'), '-out', p('csr.pem'), '-subj', '/CN=mail.example.org']);
  await run('openssl', ['x509', '-req', '-in', p('csr.pem'), '-CA', p('ca.pem'), '-CAkey', p('ca.key'), '-CAcreateserial', '-days', '60', '-out', p('issued.pem')]);
  await run('openssl', ['req', '-x509', ...ec, '-keyout', p('other.key'), '-out', p('other.pem'), '-days', '365', '-subj', '/CN=mail.example.org']);
  selfSigned = await readFile(p('self.pem'));
  caIssued = await readFile(p('issued.pem'));
  otherKey = await readFile(p('other.pem'));
  bundleSpki = spkiSha256(new X509Certificate(selfSigned));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('services', () => {
  it('passes when every unit is active and enabled, and names each one that is not', () => {
    expect(judgeServices([{ unit: 'postfix.service', active: 'active', enabled: 'enabled' }]).status).toBe('pass');
    const r = judgeServices([
      { unit: 'postfix.service', active: 'active', enabled: 'enabled' },
      { unit: 'nginx.service', active: 'inactive', enabled: 'enabled' },
      { unit: 'nsd.service', active: 'active', enabled: 'disabled' },
    ]);
    expect(r).toMatchObject({ status: 'fail', summary: 'nginx.service inactive, enabled; nsd.service active, disabled', fix: expect.stringMatching(/journalctl -u nginx\.service/) });
  });
});

describe('resign-timer', () => {
  const now = new Date('2026-12-01T12:00:00Z');
  it('fails when the timer is not enabled, whatever ran before', () => {
    expect(judgeResignTimer({ timerEnabled: 'disabled', lastRun: now, result: 'success', now })).toMatchObject({ status: 'fail', fix: expect.stringMatching(/systemctl enable --now selfmail-resign\.timer/) });
  });
  it('warns while it has not run yet', () => {
    expect(judgeResignTimer({ timerEnabled: 'enabled', now }).status).toBe('warn');
  });
  it('fails when the last run failed, or is more than two days old', () => {
    expect(judgeResignTimer({ timerEnabled: 'enabled', lastRun: new Date(now.getTime() - DAY), result: 'exit-code', now })).toMatchObject({ status: 'fail', summary: expect.stringMatching(/failed: exit-code/) });
    expect(judgeResignTimer({ timerEnabled: 'enabled', lastRun: new Date(now.getTime() - 3 * DAY), result: 'success', now })).toMatchObject({ status: 'fail', summary: expect.stringMatching(/3 days ago/) });
  });
  it('passes after a successful run within two days', () => {
    expect(judgeResignTimer({ timerEnabled: 'enabled', lastRun: new Date(now.getTime() - 1.5 * DAY), result: 'success', now }).status).toBe('pass');
  });
});

describe('backup', () => {
  const now = new Date('2026-12-01T12:00:00Z');
  const target = 'sftp://selfmail-backup@nas.home.arpa/backup';
  it('warns when no daily backup is set up, saying how to set one up', () => {
    expect(judgeBackup({})).toMatchObject({ status: 'warn', summary: expect.stringMatching(/no daily backup is set up/), fix: expect.stringMatching(/--backup-to TARGET --backup-recipient age1/) });
  });
  it('fails when its timer is not enabled', () => {
    expect(judgeBackup({ target, timerEnabled: 'disabled', now })).toMatchObject({ status: 'fail', fix: expect.stringMatching(/systemctl enable --now selfmail-backup\.timer/) });
  });
  it('fails when the last run failed, naming the target and where to see why', () => {
    expect(judgeBackup({ target, timerEnabled: 'enabled', lastRun: new Date(now.getTime() - DAY), result: 'exit-code', now })).toMatchObject({
      status: 'fail',
      summary: expect.stringMatching(new RegExp(`^to ${target.replace(/[./]/g, '\\$&')}: the last run .* failed: exit-code$`)),
      fix: expect.stringMatching(/journalctl -u selfmail-backup\.service/),
    });
  });
  it('fails when the last run is more than two days old, and passes after a successful one within', () => {
    expect(judgeBackup({ target, timerEnabled: 'enabled', lastRun: new Date(now.getTime() - 3 * DAY), result: 'success', now }).status).toBe('fail');
    expect(judgeBackup({ target, timerEnabled: 'enabled', lastRun: new Date(now.getTime() - DAY), result: 'success', now }).status).toBe('pass');
  });
});

describe('cert-expiry', () => {
  const asked = 'test';
  it('passes for a CA-issued certificate of the bundle key with weeks left', () => {
    const r = judgeCertificates([{ port: 993, der: der(caIssued) }], bundleSpki, new Date(), asked);
    expect(r.status).toBe('pass');
    expect(r.fix).toBeUndefined();
  });
  it('warns for the self-signed bootstrap certificate, and within 14 days of expiry', () => {
    expect(judgeCertificates([{ port: 993, der: der(selfSigned) }], bundleSpki, new Date(), asked)).toMatchObject({ status: 'warn', summary: expect.stringMatching(/self-signed/) });
    const soon = new Date(new Date(new X509Certificate(caIssued).validTo).getTime() - 5 * DAY);
    expect(judgeCertificates([{ port: 993, der: der(caIssued) }], bundleSpki, soon, asked)).toMatchObject({ status: 'warn', summary: expect.stringMatching(/expires in [45] days/) });
  });
  it('fails for an expired one, another key, or a port without TLS', () => {
    const after = new Date(new Date(new X509Certificate(caIssued).validTo).getTime() + DAY);
    expect(judgeCertificates([{ port: 465, der: der(caIssued) }], bundleSpki, after, asked)).toMatchObject({ status: 'fail', summary: expect.stringMatching(/port 465: expired/) });
    expect(judgeCertificates([{ port: 25, der: der(otherKey) }], bundleSpki, new Date(), asked)).toMatchObject({ status: 'fail', summary: expect.stringMatching(/another key/) });
    expect(judgeCertificates([{ port: 443, error: 'connect ECONNREFUSED' }], bundleSpki, new Date(), asked)).toMatchObject({ status: 'fail', summary: 'port 443: no TLS (connect ECONNREFUSED)' });
  });
});

describe('tlsa-matches', () => {
  const owner = '_25._tcp.mail.example.org';
  it('reads dig\'s answers, long data split by spaces', () => {
    expect(parseTlsaAnswers('3 1 1 ABCDEF0123 456789\n3 1 1 00ff\n2 0 1 1234\n')).toEqual(['abcdef0123456789', '00ff']);
  });
  it('passes when the served key is among the pins (current or next)', () => {
    expect(judgeTlsa([{ port: 25, owner, pins: ['00', bundleSpki], servedSpki: bundleSpki }], 'test').status).toBe('pass');
  });
  it('fails when no pin matches or none is answered; unknown when the port or the name server said nothing', () => {
    expect(judgeTlsa([{ port: 25, owner, pins: ['00'], servedSpki: bundleSpki }], 'test')).toMatchObject({ status: 'fail', summary: expect.stringMatching(/does not pin/) });
    expect(judgeTlsa([{ port: 25, owner, pins: [], servedSpki: bundleSpki }], 'test')).toMatchObject({ status: 'fail', summary: expect.stringMatching(/no TLSA 3 1 1 answered/) });
    expect(judgeTlsa([{ port: 25, owner, pins: [bundleSpki] }], 'test').status).toBe('unknown');
    expect(judgeTlsa([{ port: 25, owner, pins: [], error: 'timeout' }], 'test').status).toBe('unknown');
  });
});

describe('dnssec-valid', () => {
  const now = new Date('2026-12-01T00:00:00Z');
  it('reads the RRSIG expirations dig prints', () => {
    const dig = 'example.org.\t3600\tIN\tRRSIG\tSOA 13 2 3600 20261231000000 20261201000000 4711 example.org. c2ln\nexample.org. 3600 IN SOA ns1.example.org. admin.example.org. 1 2 3 4 5\n';
    expect(rrsigExpiries(dig)).toEqual([new Date('2026-12-31T00:00:00Z')]);
  });
  it('passes a validated zone with signatures weeks ahead; warns inside the re-sign horizon; fails at a day or when it does not validate', () => {
    expect(judgeDnssec([{ zone: 'example.org', validated: true, earliestExpiry: new Date('2026-12-30T00:00:00Z') }], now, 't').status).toBe('pass');
    expect(judgeDnssec([{ zone: 'example.org', validated: true, earliestExpiry: new Date('2026-12-05T00:00:00Z') }], now, 't')).toMatchObject({ status: 'warn', summary: expect.stringMatching(/in 4 days/) });
    expect(judgeDnssec([{ zone: 'example.org', validated: true, earliestExpiry: new Date('2026-12-01T12:00:00Z') }], now, 't').status).toBe('fail');
    // From the root, through the host's resolver: bogus fails even where the bundle's own DS validates.
    expect(judgeDnssec([{ zone: 'example.org', validated: true, resolver: 'bogus', earliestExpiry: new Date('2026-12-30T00:00:00Z') }], now, 't')).toMatchObject({ status: 'fail', summary: expect.stringMatching(/own validating resolver refuses it/) });
    expect(judgeDnssec([{ zone: 'example.org', validated: true, resolver: 'secure', earliestExpiry: new Date('2026-12-30T00:00:00Z') }], now, 't')).toMatchObject({ status: 'pass', summary: expect.stringMatching(/through this host's resolver: example\.org secure/) });
    expect(judgeDnssec([{ zone: 'example.org', validated: true, resolver: 'unreachable', earliestExpiry: new Date('2026-12-30T00:00:00Z') }], now, 't').status).toBe('pass');
    expect(judgeDnssec([{ zone: 'example.org', validated: false, detail: 'no valid RRSIG' }], now, 't')).toMatchObject({ status: 'fail', summary: 'example.org: does not validate against its DS (no valid RRSIG)' });
  });
});

describe('mta-sts', () => {
  const host = 'mail.example.org';
  const enforce = mtaStsPolicy({ hostname: host as DomainName }, 'enforce');
  const testing = mtaStsPolicy({ hostname: host as DomainName }, 'testing');
  it('passes an enforce policy over trusted TLS whose id the TXT record gives', () => {
    expect(judgeMtaSts([{ domain: 'example.org', txtId: mtaStsId(enforce), policy: enforce, policyId: mtaStsId(enforce), trusted: true }], host, 't').status).toBe('pass');
  });
  it('warns while the TLS is not trusted, or the mode is still testing', () => {
    expect(judgeMtaSts([{ domain: 'example.org', txtId: mtaStsId(testing), policy: testing, policyId: mtaStsId(testing), trusted: false, error: 'self-signed certificate' }], host, 't')).toMatchObject({ status: 'warn', summary: expect.stringMatching(/do not trust \(self-signed certificate\)/) });
    expect(judgeMtaSts([{ domain: 'example.org', txtId: mtaStsId(testing), policy: testing, policyId: mtaStsId(testing), trusted: true }], host, 't')).toMatchObject({ status: 'warn', summary: expect.stringMatching(/mode testing/) });
  });
  it('fails without the TXT record, without a policy, for an id that is not the policy\'s, or a policy naming another MX', () => {
    expect(judgeMtaSts([{ domain: 'example.org', policy: enforce, policyId: mtaStsId(enforce), trusted: true }], host, 't').status).toBe('fail');
    expect(judgeMtaSts([{ domain: 'example.org', txtId: 'x', error: 'connect ECONNREFUSED', trusted: false }], host, 't')).toMatchObject({ status: 'fail', summary: expect.stringMatching(/no policy served \(connect ECONNREFUSED\)/) });
    expect(judgeMtaSts([{ domain: 'example.org', txtId: mtaStsId(testing), policy: enforce, policyId: mtaStsId(enforce), trusted: true }], host, 't')).toMatchObject({ status: 'fail', summary: expect.stringMatching(/senders keep an old policy/) });
    const other = mtaStsPolicy({ hostname: 'mx.elsewhere.example' as DomainName }, 'enforce');
    expect(judgeMtaSts([{ domain: 'example.org', txtId: mtaStsId(other), policy: other, policyId: mtaStsId(other), trusted: true }], host, 't')).toMatchObject({ status: 'fail', summary: expect.stringMatching(/does not name mail\.example\.org/) });
  });
});

it('fails the run only for a failed check: warn and unknown do not', () => {
  const r = (status: 'pass' | 'warn' | 'fail' | 'unknown') => ({ id: 'x', status, summary: '', asked: '' });
  expect(anyFailed([r('pass'), r('warn'), r('unknown')])).toBe(false);
  expect(anyFailed([r('pass'), r('fail')])).toBe(true);
});
