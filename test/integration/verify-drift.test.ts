import { chmod, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyBundle } from '../../src/apply/index.js';
import { run as applyCommand } from '../../src/cli/commands/apply.js';
import { run as verifyCommand } from '../../src/cli/commands/verify.js';
import { InputError } from '../../src/errors.js';
import { run } from '../../src/tools/run.js';
import { parseZone, earliestRrsigExpiry } from '../../src/verify/dns.js';
import { verifyBundle } from '../../src/verify/index.js';
import type { Finding } from '../../src/verify/index.js';
import { copyBundle, editBundle, makeBundle, tempDirs, treeDigest } from '../helpers/apply-bundle.js';
import { recordingIo } from '../helpers/apply-io.js';

const { fresh, freshRoot, cleanup } = tempDirs();
let bundle: string;
let root: string;
let expiry: Date;

beforeAll(async () => {
  bundle = await fresh('bundle');
  await makeBundle(bundle);
  root = await freshRoot();
  await applyBundle({ bundleDir: bundle, root });
  const signed = await readFile(join(bundle, 'dns/example.org.zone.signed'), 'utf8');
  expiry = earliestRrsigExpiry(parseZone(signed, 'example.org')) ?? new Date(0);
});
afterAll(async () => {
  await cleanup();
});

const summary = (fs: Finding[]) => fs.map((f) => `${f.level} ${f.check} ${f.path}`);

describe('verify', () => {
  it('is clean right after apply, through the command too (exit 0)', async () => {
    expect(await verifyBundle({ bundleDir: bundle, root })).toEqual([]);
    const io = recordingIo();
    expect(await verifyCommand(['--bundle', bundle, '--root', root], io)).toBe(0);
    expect(io.lines.join('\n')).toMatch(/every installed file matches/);
  });

  it('names a tampered file and a loosened key, and the command exits 4', async () => {
    const r = await freshRoot();
    await applyBundle({ bundleDir: bundle, root: r });
    await writeFile(join(r, 'etc/postfix/main.cf'), 'myhostname = mail.example.org\nsmtpd_tls_security_level = none\n');
    await chmod(join(r, 'var/lib/rspamd/dkim/example.org/s1.private'), 0o644);
    await rm(join(r, 'etc/dovecot/dovecot.conf'));
    const findings = await verifyBundle({ bundleDir: bundle, root: r });
    expect(summary(findings)).toEqual([
      'failure missing /etc/dovecot/dovecot.conf',
      'failure mode /var/lib/rspamd/dkim/example.org/s1.private',
      'failure changed /etc/postfix/main.cf',
    ]);
    const io = recordingIo();
    expect(await verifyCommand(['--bundle', bundle, '--root', r], io)).toBe(4);
    expect(io.lines).toContain(
      `FAIL changed /etc/postfix/main.cf: differs from postfix/main.cf in MANIFEST.sha256 (sha256 ${(await run('sha256sum', [join(r, 'etc/postfix/main.cf')])).stdout.slice(0, 64)})`,
    );
    const jio = recordingIo(true);
    expect(await verifyCommand(['--bundle', bundle, '--root', r, '--json'], jio)).toBe(4);
    const doc = jio.docs[0] as { clean: boolean; findings: Finding[] };
    expect(doc.clean).toBe(false);
    expect(doc.findings.map((f) => f.path)).toContain('/etc/postfix/main.cf');

    // apply repairs every drift, after which verify is clean again.
    await applyBundle({ bundleDir: bundle, root: r });
    expect(await verifyBundle({ bundleDir: bundle, root: r })).toEqual([]);
  });

  it('warns a week before the RRSIGs expire and fails a day before', async () => {
    expect(expiry.getTime()).toBeGreaterThan(Date.now());
    const in3days = await verifyBundle({ bundleDir: bundle, root, now: new Date(expiry.getTime() - 3 * 86_400_000) });
    expect(summary(in3days)).toEqual(['warning rrsig /etc/nsd/zones/example.org.zone.signed']);
    expect(in3days[0]?.message).toMatch(/in 3 days.*dns resign/);
    const in8days = await verifyBundle({ bundleDir: bundle, root, now: new Date(expiry.getTime() - 8 * 86_400_000) });
    expect(in8days).toEqual([]);
    const in12h = await verifyBundle({ bundleDir: bundle, root, now: new Date(expiry.getTime() - 12 * 3_600_000) });
    expect(summary(in12h)).toEqual(['failure rrsig /etc/nsd/zones/example.org.zone.signed']);
  });

  it('fails a DS that does not match the served KSK', async () => {
    const b = await fresh('bundle');
    await copyBundle(bundle, b);
    await editBundle(b, 'dns/example.org.ds', (t) => t.replace(/([0-9A-Fa-f])(\s*)$/, (_m, c: string, ws: string) => `${c === '0' ? '1' : '0'}${ws}`));
    const findings = await verifyBundle({ bundleDir: b, root });
    const ds = findings.filter((f) => f.check === 'ds');
    expect(summary(ds)).toEqual(['failure ds dns/example.org.ds']);
    expect(ds[0]?.message).toMatch(/digest does not match/);
    // The untouched bundle's DS does match, so the check can pass as well as fail.
    expect((await verifyBundle({ bundleDir: bundle, root })).filter((f) => f.check === 'ds')).toEqual([]);
  });

  it('fails a certificate whose key TLSA does not pin', async () => {
    const r = await freshRoot();
    await applyBundle({ bundleDir: bundle, root: r });
    const w = await fresh('work');
    await run('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', join(w, 'k.pem'), '-out', join(w, 'c.pem'), '-days', '5', '-subj', '/CN=mail.example.org']);
    await writeFile(join(r, 'etc/selfmail/tls/cert.pem'), await readFile(join(w, 'c.pem')));
    const findings = await verifyBundle({ bundleDir: bundle, root: r });
    expect(summary(findings)).toEqual([
      'failure changed /etc/selfmail/tls/cert.pem',
      'failure tlsa /etc/selfmail/tls/cert.pem',
      'warning certificate /etc/selfmail/tls/cert.pem',
    ]);
  });
});

describe('the apply and verify commands', () => {
  it('refuse a missing --bundle with InputError (exit 2)', async () => {
    for (const cmd of [applyCommand, verifyCommand]) {
      const err = await cmd([], recordingIo()).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(InputError);
      expect((err as InputError).exitCode).toBe(2);
      expect((err as InputError).message).toMatch(/--bundle: missing/);
    }
  });

  it('apply --dry-run prints the diff and changes nothing; --json gives the result', async () => {
    const r = await freshRoot();
    const io = recordingIo();
    expect(await applyCommand(['--bundle', bundle, '--root', r, '--dry-run'], io)).toBe(0);
    const out = io.lines.join('\n');
    expect(out).toMatch(/\+\+\+ b\/etc\/postfix\/main\.cf/);
    expect(out).toMatch(/nothing was changed/);
    expect(out).not.toMatch(/PRIVATE KEY/);
    expect(await treeDigest(r)).toBe(await treeDigest(await freshRoot()));
    const jio = recordingIo(true);
    expect(await applyCommand(['--bundle', bundle, '--root', r, '--json', '--no-reload'], jio)).toBe(0);
    const doc = jio.docs[0] as { changes: unknown[]; validated: string[] };
    expect(doc.changes.length).toBeGreaterThan(10);
    expect(doc.validated).toContain('postfix check');
  });
});
