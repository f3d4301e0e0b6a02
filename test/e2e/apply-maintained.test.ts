/**
 * The files the host maintains after apply, on a bundle from the real `selfmail init --demo`:
 * the signed zone re-signed by ldns-signzone with the bundle's keys and a higher serial (as
 * selfmail-resign does), and a certificate for the bundle's TLS key issued by a throwaway CA (as
 * selfmail-acme installs one). verify accepts them with a note and apply keeps them; any other
 * difference is a failure that names what differs, and apply replaces it.
 */
import { chmod, chown, copyFile, lstat, mkdtemp, readFile, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyBundle } from '../../src/apply/index.js';
import { run } from '../../src/tools/run.js';
import { verifyBundle } from '../../src/verify/index.js';
import type { Finding } from '../../src/verify/index.js';
import { copyBundle, dnsTime, seedSystemRoot, treeDigest } from '../helpers/apply-bundle.js';
import { runCli } from '../helpers/cli.js';
import { ensureBuilt } from '../helpers/rehearse-cli.js';

let work: string;
let bundle: string;
const ZONE = 'example.org';
const SIGNED = `etc/nsd/zones/${ZONE}.zone.signed`;
const CERT = 'etc/selfmail/tls/cert.pem';
const DAY = 86_400_000;

const fresh = (name: string) => mkdtemp(join(work, `${name}-`));
const freshRoot = async () => {
  const d = await fresh('root');
  await chmod(d, 0o755);
  return seedSystemRoot(d);
};

beforeAll(async () => {
  ensureBuilt();
  work = await mkdtemp(join(tmpdir(), 'selfmail-e2e-maintained-'));
  bundle = join(work, 'demo');
  const r = await runCli(['init', '--demo', '--out', bundle]);
  if (r.code !== 0) throw new Error(`selfmail init failed:\n${r.stderr}`);
}, 120_000);

afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

function serialOf(zoneText: string): number {
  const m = /\sSOA\s+\S+\s+\S+\s+(\d+)\s/.exec(zoneText);
  if (!m?.[1]) throw new Error('no SOA serial');
  return Number(m[1]);
}

/**
 * Re-sign the bundle's unsigned zone as selfmail-resign does on the host (serial raised, the
 * bundle's keys, ldns-signzone) and install the result the way the script does (a new 0644 file
 * renamed over the old one). `edit` alters the records first; `keyDir` signs with other keys.
 */
async function resignOnHost(root: string, opts: { serial: number; edit?: (t: string) => string; keyDir?: string; expiry?: Date; allKeys?: boolean }): Promise<string> {
  const dir = await fresh('resign');
  const unsigned = await readFile(join(bundle, `dns/${ZONE}.zone`), 'utf8');
  let text = unsigned.replace(/(\sSOA\s+\S+\s+\S+\s+)\d+/, `$1${opts.serial}`);
  if (opts.edit) text = opts.edit(text);
  await writeFile(join(dir, 'zone'), text);
  const keyDir = opts.keyDir ?? join(bundle, `keys/dnssec/${ZONE}`);
  let bases = [...new Set((await readdir(keyDir)).filter((f) => f.endsWith('.key')).map((f) => f.slice(0, -4)))];
  if (!opts.keyDir && !opts.allKeys) {
    // As the host's job does on the day the bundle was made: the keys the bundle's zone publishes
    // sign (the next ZSK, made ahead, waits for its date).
    const served = await readFile(join(bundle, `dns/${ZONE}.zone.signed`), 'utf8');
    const pub = async (b: string) => /DNSKEY\s+\d+ 3 13 (\S+)/.exec(await readFile(join(keyDir, `${b}.key`), 'utf8'))?.[1] ?? '?';
    const published = await Promise.all(bases.map(async (b) => served.includes(await pub(b))));
    bases = bases.filter((_, i) => published[i]);
  }
  for (const b of bases) {
    await copyFile(join(keyDir, `${b}.key`), join(dir, `${b}.key`));
    await copyFile(join(keyDir, `${b}.private`), join(dir, `${b}.private`));
  }
  const now = Date.now();
  const expiry = opts.expiry ?? new Date(now + 30 * DAY);
  await run('ldns-signzone', ['-f', 'signed', '-o', `${ZONE}.`, '-i', dnsTime(new Date(now - 3_600_000)), '-e', dnsTime(expiry), 'zone', ...bases], { cwd: dir });
  const target = join(root, SIGNED);
  await copyFile(join(dir, 'signed'), `${target}.new`);
  await chmod(`${target}.new`, 0o644);
  await rename(`${target}.new`, target);
  return readFile(target, 'utf8');
}

/** A throwaway CA and a certificate from it for `csr` (the bundle's, or another key's). */
async function caIssued(csr: string, days = 90): Promise<string> {
  const dir = await fresh('ca');
  await run('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', join(dir, 'ca.key'), '-out', join(dir, 'ca.pem'), '-days', '365', '-subj', '/CN=Throwaway Test CA']);
  await run('openssl', ['x509', '-req', '-in', csr, '-CA', join(dir, 'ca.pem'), '-CAkey', join(dir, 'ca.key'), '-CAcreateserial', '-days', String(days), '-out', join(dir, 'leaf.pem')]);
  // selfmail-acme installs the full chain, the leaf first.
  return (await readFile(join(dir, 'leaf.pem'), 'utf8')) + (await readFile(join(dir, 'ca.pem'), 'utf8'));
}

/** Install `pem` as the host's certificate the way selfmail-acme does (install -m 0644, mv). */
async function installCert(root: string, pem: string): Promise<void> {
  const target = join(root, CERT);
  await writeFile(`${target}.new`, pem, { mode: 0o644 });
  await chown(`${target}.new`, 0, 0);
  await rename(`${target}.new`, target);
}

const failures = (f: Finding[]) => f.filter((x) => x.level === 'failure');

let installed: string;
beforeAll(async () => {
  installed = await freshRoot();
  await applyBundle({ bundleDir: bundle, root: installed, noReload: true });
}, 60_000);

/** A root with the demo bundle installed (a copy of one installed once, to save the validators' time). */
async function installedRoot(): Promise<string> {
  const root = await freshRoot();
  await run('cp', ['-a', `${installed}/.`, root]);
  return root;
}

describe('a zone re-signed on the host', () => {
  it('with the bundle keys, the same records and a higher serial: verify notes it, apply keeps it', async () => {
    const root = await installedRoot();
    const bundleSerial = serialOf(await readFile(join(bundle, `dns/${ZONE}.zone.signed`), 'utf8'));
    const text = await resignOnHost(root, { serial: bundleSerial + 5 });
    expect(text).not.toBe(await readFile(join(bundle, `dns/${ZONE}.zone.signed`), 'utf8'));

    const findings = await verifyBundle({ bundleDir: bundle, root });
    expect(failures(findings)).toEqual([]);
    expect(findings).toContainEqual(expect.objectContaining({ level: 'note', check: 'resigned', path: `/${SIGNED}` }));
    expect(findings.find((f) => f.check === 'resigned')?.message).toMatch(new RegExp(`serial ${bundleSerial + 5}, bundle ${bundleSerial}`));
    const cli = await runCli(['verify', '--bundle', bundle, '--root', root]);
    expect(cli.code, cli.stdout).toBe(0);
    expect(cli.stdout).toMatch(/^NOTE resigned \/etc\/nsd\/zones\/example\.org\.zone\.signed: example\.org: re-signed on the host/m);

    // The script's new file is root:root; apply fixes the group but keeps the host's bytes.
    const r = await applyBundle({ bundleDir: bundle, root, noReload: true });
    expect(r.kept).toEqual([expect.objectContaining({ bundlePath: `dns/${ZONE}.zone.signed`, systemPath: `/${SIGNED}` })]);
    expect(r.changes.filter((c) => c.action !== 'metadata')).toEqual([]);
    expect(await readFile(join(root, SIGNED), 'utf8')).toBe(text);
    const digest = await treeDigest(root);
    const again = await applyBundle({ bundleDir: bundle, root, noReload: true });
    expect(again.changes).toEqual([]);
    expect(again.kept).toHaveLength(1);
    expect(await treeDigest(root)).toBe(digest);
  });

  it('at a later stage of the bundle\'s key schedule (its next ZSK published and signing): verify notes it, apply keeps it', async () => {
    const root = await installedRoot();
    const bundleSerial = serialOf(await readFile(join(bundle, `dns/${ZONE}.zone.signed`), 'utf8'));
    const text = await resignOnHost(root, { serial: bundleSerial + 1, allKeys: true });
    expect(text.match(/\tDNSKEY\t256 /g)).toHaveLength(2);
    const findings = await verifyBundle({ bundleDir: bundle, root });
    expect(failures(findings)).toEqual([]);
    expect(findings.find((f) => f.check === 'resigned')?.message).toMatch(/a later stage of its key schedule/);
    const r = await applyBundle({ bundleDir: bundle, root, noReload: true });
    expect(r.kept).toHaveLength(1);
  });

  it.each([
    ['a changed record', { serial: 1, edit: (t: string) => t.replace(/^mail(\s+IN\s+A\s+)192\.0\.2\.25$/m, 'mail$1203.0.113.66') }, /records not in the bundle's zone: mail\.example\.org\. 3600 A 203\.0\.113\.66/],
    ['a lower serial', { serial: -1 }, /SOA serial \d+ is lower than the bundle's \d+/],
    ['expiring signatures', { serial: 1, expiry: new Date(Date.now() + 12 * 3_600_000) }, /signatures expire/],
  ])('with %s: verify fails naming it, apply replaces it with the bundle\'s', async (_label, o, why) => {
    const root = await installedRoot();
    const bundleSerial = serialOf(await readFile(join(bundle, `dns/${ZONE}.zone.signed`), 'utf8'));
    await resignOnHost(root, { ...o, serial: bundleSerial + o.serial });
    const f = failures(await verifyBundle({ bundleDir: bundle, root }));
    const changed = f.find((x) => x.check === 'changed');
    expect(changed?.path).toBe(`/${SIGNED}`);
    expect(changed?.message).toMatch(why);

    const r = await applyBundle({ bundleDir: bundle, root, noReload: true });
    expect(r.kept).toEqual([]);
    expect(r.changes).toContainEqual({ bundlePath: `dns/${ZONE}.zone.signed`, systemPath: `/${SIGNED}`, action: 'replace' });
    expect(await readFile(join(root, SIGNED))).toEqual(await readFile(join(bundle, `dns/${ZONE}.zone.signed`)));
    if (o.serial > 0) expect(r.warnings.join('\n')).toMatch(/secondaries compare serials/);
  });

  it('with other keys: verify fails on the DNSKEY set', async () => {
    const root = await installedRoot();
    const keys = await fresh('keys');
    for (const flags of [[], ['-k']]) await run('ldns-keygen', ['-a', 'ECDSAP256SHA256', ...flags, ZONE], { cwd: keys });
    const bundleSerial = serialOf(await readFile(join(bundle, `dns/${ZONE}.zone.signed`), 'utf8'));
    await resignOnHost(root, { serial: bundleSerial + 1, keyDir: keys });
    const f = failures(await verifyBundle({ bundleDir: bundle, root }));
    expect(f.find((x) => x.check === 'changed')?.message).toMatch(/its DNSKEY set holds 2 key\(s\) the bundle does not/);
    // The DS given to the registrar names a key the served zone no longer has.
    expect(f.some((x) => x.check === 'ds')).toBe(true);
  });

  it('with forged signatures: ldns-verify-zone rejects them', async () => {
    const root = await installedRoot();
    const bundleSerial = serialOf(await readFile(join(bundle, `dns/${ZONE}.zone.signed`), 'utf8'));
    const text = await resignOnHost(root, { serial: bundleSerial + 1 });
    // Swap the signature bytes of one RRSIG for another's: same form, wrong signature.
    const lines = text.split('\n');
    const sigs = lines.map((l, i) => ({ l, i })).filter(({ l }) => /\tRRSIG\t/.test(l));
    const a = sigs[0];
    const b = sigs[1];
    if (!a || !b) throw new Error('no RRSIGs');
    const sigOf = (l: string) => l.split(' ').pop() ?? '';
    lines[a.i] = a.l.replace(sigOf(a.l), sigOf(b.l));
    await writeFile(join(root, SIGNED), lines.join('\n'));
    const f = failures(await verifyBundle({ bundleDir: bundle, root }));
    expect(f.find((x) => x.check === 'changed')?.message).toMatch(/ldns-verify-zone rejects its signatures/);
  });

  it('a bundle with new zone content wins over a re-signed zone with a higher serial', async () => {
    const root = await installedRoot();
    const bundleSerial = serialOf(await readFile(join(bundle, `dns/${ZONE}.zone.signed`), 'utf8'));
    await resignOnHost(root, { serial: bundleSerial + 1 });
    const changed = await fresh('changed');
    await copyBundle(bundle, changed);
    const init = await runCli(['init', '--demo', '--acme-ca', 'pki.goog', '--out', changed]);
    expect(init.code, init.stderr).toBe(0);
    const newSigned = await readFile(join(changed, `dns/${ZONE}.zone.signed`));
    expect(newSigned.toString()).toContain('issue "pki.goog"');
    const r = await applyBundle({ bundleDir: changed, root, noReload: true });
    expect(r.kept).toEqual([]);
    expect(await readFile(join(root, SIGNED))).toEqual(newSigned);
    expect(failures(await verifyBundle({ bundleDir: changed, root }))).toEqual([]);
  });
});

describe('a certificate obtained on the host', () => {
  it('CA-issued for the bundle key: verify notes it, apply keeps it', async () => {
    const root = await installedRoot();
    const pem = await caIssued(join(bundle, 'keys/tls/csr.pem'));
    await installCert(root, pem);
    const findings = await verifyBundle({ bundleDir: bundle, root });
    expect(failures(findings)).toEqual([]);
    expect(findings).toContainEqual(expect.objectContaining({ level: 'note', check: 'renewed', path: `/${CERT}` }));
    const digest = await treeDigest(root);
    const r = await applyBundle({ bundleDir: bundle, root, noReload: true });
    expect(r.changes).toEqual([]);
    expect(r.kept).toEqual([expect.objectContaining({ systemPath: `/${CERT}` })]);
    expect(r.kept[0]?.reason).toMatch(/issued by a CA for the bundle's TLS key/);
    expect(await treeDigest(root)).toBe(digest);
    expect(await readFile(join(root, CERT), 'utf8')).toBe(pem);
  });

  it('expired: verify fails, apply puts the bundle\'s back', async () => {
    const root = await installedRoot();
    await installCert(root, await caIssued(join(bundle, 'keys/tls/csr.pem'), 30));
    const later = new Date(Date.now() + 31 * DAY);
    const f = failures(await verifyBundle({ bundleDir: bundle, root, now: later }));
    expect(f.find((x) => x.check === 'changed')?.message).toMatch(/expired on/);
    const r = await applyBundle({ bundleDir: bundle, root, noReload: true, now: later });
    expect(r.kept).toEqual([]);
    expect(await readFile(join(root, CERT))).toEqual(await readFile(join(bundle, 'keys/tls/cert.pem')));
  }, 60_000);

  it('for another key: verify fails (TLSA no longer matches), apply puts the bundle\'s back', async () => {
    const root = await installedRoot();
    const dir = await fresh('other');
    await run('openssl', ['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', join(dir, 'k.pem'), '-out', join(dir, 'csr.pem'), '-subj', '/CN=mail.example.org']);
    await installCert(root, await caIssued(join(dir, 'csr.pem')));
    const f = failures(await verifyBundle({ bundleDir: bundle, root }));
    expect(f.find((x) => x.check === 'changed')?.message).toMatch(/another key than the bundle's TLS key/);
    expect(f.some((x) => x.check === 'tlsa')).toBe(true);
    const r = await applyBundle({ bundleDir: bundle, root, noReload: true });
    expect(r.changes).toContainEqual({ bundlePath: 'keys/tls/cert.pem', systemPath: `/${CERT}`, action: 'replace' });
    expect(await readFile(join(root, CERT))).toEqual(await readFile(join(bundle, 'keys/tls/cert.pem')));
    expect((await lstat(join(root, CERT))).mode & 0o777).toBe(0o644);
  });
});
