/**
 * Publishing users' OpenPGP public keys, through the real built bin, with a key made by GnuPG the
 * way a user makes one on their own device, and GnuPG's own view of where it belongs: the
 * OPENPGPKEY record `gpg --export-options export-dane` prints, the WKD name `gpg-wks-client`
 * prints, the bytes `gpg --export` writes. A private key is refused (exit 3) without a byte of it
 * shown; a bad file, a wrong address or a non-mailbox is exit 2; neither touches the disk. A
 * re-run keeps the key; `EMAIL=none` takes every trace of it away.
 */
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseZone } from '../../src/verify/dns.js';
import { runCli, treeState } from '../helpers/cli.js';

const WKS_CLIENT = '/usr/lib/gnupg/gpg-wks-client';

let work: string;
let gnupgHome: string;
let pw: string;
/** GnuPG's exports of Alice's key: armored, binary, her private key (armored and binary), and Bob's public key. */
const files = { armored: '', binary: '', secretArmored: '', secretBinary: '', bob: '', truncated: '', badCrc: '' };
let exported: Buffer;
let secretText: string;
let dane: { label: string; data: Buffer };
let wkdHash: string;

const gpg = (args: string[], input?: string): Buffer =>
  execFileSync('gpg', ['--batch', '--no-tty', '--quiet', ...args], { env: { ...process.env, GNUPGHOME: gnupgHome }, stdio: ['pipe', 'pipe', 'pipe'], ...(input !== undefined ? { input } : {}) });

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'selfmail-pgp-'));
  gnupgHome = join(work, 'gnupg');
  await mkdir(gnupgHome, { mode: 0o700 });
  for (const uid of ['Alice <alice@example.org>', 'Bob <bob@example.org>']) {
    gpg(['--pinentry-mode', 'loopback', '--passphrase', '', '--quick-gen-key', uid, 'ed25519', 'default', 'never']);
  }
  const put = async (name: keyof typeof files, data: Buffer | string) => {
    files[name] = join(work, name);
    await writeFile(files[name], data);
  };
  exported = gpg(['--export', 'alice@example.org']);
  const armored = gpg(['--export', '--armor', 'alice@example.org']).toString();
  secretText = gpg(['--export-secret-keys', '--armor', 'alice@example.org']).toString();
  await put('armored', armored);
  await put('binary', exported);
  await put('secretArmored', secretText);
  await put('secretBinary', gpg(['--export-secret-keys', 'alice@example.org']));
  await put('bob', gpg(['--export', '--armor', 'bob@example.org']));
  await put('truncated', exported.subarray(0, exported.length - 20));
  await put('badCrc', armored.replace(/^=(.)/m, (_m, c: string) => `=${c === 'A' ? 'B' : 'A'}`));
  // GnuPG's DANE record: `<label> TYPE61 \# <length> ( <hex> )`.
  const m = /^([0-9a-f]{56}) TYPE61 \\# (\d+) \(([^)]*)\)/m.exec(gpg(['--export', '--export-options', 'export-dane', 'alice@example.org']).toString());
  if (!m) throw new Error('gpg printed no OPENPGPKEY record');
  dane = { label: m[1]!, data: Buffer.from(m[3]!.replace(/\s/g, ''), 'hex') };
  expect(dane.data.length).toBe(Number(m[2]));
  wkdHash = execFileSync(WKS_CLIENT, ['--print-wkd-hash', 'alice@example.org']).toString().trim().split(/\s+/)[0]!;
  pw = join(work, 'pw');
  await writeFile(pw, 'alice@example.org:correct horse battery staple\n', { mode: 0o600 });
});

afterAll(async () => {
  try {
    execFileSync('gpgconf', ['--kill', 'gpg-agent'], { env: { ...process.env, GNUPGHOME: gnupgHome }, stdio: 'ignore' });
  } catch {
    // No agent was started.
  }
  await rm(work, { recursive: true, force: true });
});

const init = (out: string, ...extra: string[]) =>
  runCli(['init', '--non-interactive', '--target', 'debian-12', '--domain', 'example.org', '--ipv4', '192.0.2.25', '--ipv6', '2001:db8::25', '--user', 'alice@example.org', '--password-file', pw, '--out', out, ...extra]);

/** The OPENPGPKEY records of a zone file: owner and binary data. */
async function openpgpkeys(path: string): Promise<Array<{ owner: string; data: Buffer }>> {
  return parseZone(await readFile(path, 'utf8'), 'example.org.')
    .filter((r) => r.type === 'OPENPGPKEY')
    .map((r) => ({ owner: r.owner, data: Buffer.from(r.rdata.join(''), 'base64') }));
}

const certNames = async (out: string) => new X509Certificate(await readFile(join(out, 'keys/tls/cert.pem'))).subjectAltName ?? '';
const hu = (out: string) => join(out, 'www/example.org/.well-known/openpgpkey/example.org/hu', wkdHash);

describe('selfmail init --openpgp-key', () => {
  let out: string;
  beforeAll(() => {
    out = join(work, 'bundle');
  });

  it('publishes the key where GnuPG looks for it: the OPENPGPKEY record export-dane prints, signed and checked by the real tools', async () => {
    const r = await init(out, '--openpgp-key', `alice@example.org=${files.armored}`);
    expect(r.stderr).not.toMatch(/internal error/);
    expect(r.code).toBe(0);
    // The run passed named-checkzone, nsd-checkzone, ldns-verify-zone and dnssec-verify on both zones.
    const want = [{ owner: `${dane.label}._openpgpkey.example.org.`, data: dane.data }];
    expect(await openpgpkeys(join(out, 'dns/example.org.zone'))).toEqual(want);
    expect(await openpgpkeys(join(out, 'dns/example.org.zone.signed'))).toEqual(want);
    expect(dane.data.equals(exported)).toBe(true);
    const signed = parseZone(await readFile(join(out, 'dns/example.org.zone.signed'), 'utf8'), 'example.org.');
    expect(signed.some((s) => s.type === 'RRSIG' && s.owner === want[0]!.owner && s.rdata[0] === 'OPENPGPKEY')).toBe(true);
  });

  it('serves it in the Web Key Directory under the name gpg-wks-client prints, the bytes gpg --export writes', async () => {
    expect((await readFile(hu(out))).equals(exported)).toBe(true);
    expect((await stat(hu(out))).mode & 0o777).toBe(0o644);
    expect((await readFile(join(out, 'www/example.org/.well-known/openpgpkey/example.org/policy'))).length).toBe(0);
    const nginx = await readFile(join(out, 'nginx/selfmail.conf'), 'utf8');
    expect(nginx).toContain('server_name openpgpkey.example.org;');
    const zone = parseZone(await readFile(join(out, 'dns/example.org.zone'), 'utf8'), 'example.org.');
    expect(zone.filter((x) => x.owner === 'openpgpkey.example.org.').map((x) => `${x.type} ${x.rdata.join(' ')}`)).toEqual(['A 192.0.2.25', 'AAAA 2001:db8::25']);
    expect(await certNames(out)).toContain('DNS:openpgpkey.example.org');
  });

  it('records only the mailbox in selfmail.yaml, and keeps the binary key in the bundle', async () => {
    const yaml = await readFile(join(out, 'selfmail.yaml'), 'utf8');
    expect(yaml).toMatch(/^openpgpKeys:\n {2}- alice@example\.org$/m);
    expect(yaml).not.toContain(work);
    expect((await readFile(join(out, 'openpgp/alice@example.org.pgp'))).equals(exported)).toBe(true);
    expect((await stat(join(out, 'openpgp/alice@example.org.pgp'))).mode & 0o777).toBe(0o644);
    expect(await readFile(join(out, 'REPORT.md'), 'utf8')).toMatch(/OpenPGP public keys, published here\*\* \(alice@example\.org\)/);
  });

  it('keeps the key on a re-run without the flag, with nothing asked and with other changes', async () => {
    const before = await treeState(out);
    const same = await runCli(['init', '--out', out]);
    expect(same.code).toBe(0);
    expect(await treeState(out)).toEqual(before);
    const other = await runCli(['init', '--out', out, '--admin-ssh-from', '198.51.100.0/24']);
    expect(other.code).toBe(0);
    expect((await readFile(hu(out))).equals(exported)).toBe(true);
    expect(await openpgpkeys(join(out, 'dns/example.org.zone'))).toHaveLength(1);
    // The same key given again (binary this time) changes nothing.
    const after = await treeState(out);
    const again = await runCli(['init', '--out', out, '--openpgp-key', `alice@example.org=${files.binary}`]);
    expect(again.code).toBe(0);
    expect(await treeState(out)).toEqual(after);
  });

  it.each([
    ['armored', () => files.secretArmored],
    ['binary', () => files.secretBinary],
  ])('refuses a private key (%s) on principle 8, shows none of it, and writes nothing', async (_kind, file) => {
    const before = await treeState(out);
    const r = await runCli(['init', '--out', out, '--openpgp-key', `alice@example.org=${file()}`]);
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/Principle 8 \(OpenPGP private keys stay on the users' own devices\)/);
    expect(r.stderr).toContain('gpg --export --armor alice@example.org');
    const shown = r.stdout + r.stderr;
    for (const line of secretText.split('\n').filter((l) => l.length >= 16 && !l.startsWith('-----'))) expect(shown).not.toContain(line);
    expect(shown).not.toContain(exported.subarray(0, 24).toString('base64'));
    expect(await treeState(out)).toEqual(before);
    // Refused on a first run too, with nothing made.
    const fresh = join(work, 'fresh-secret');
    const f = await init(fresh, '--openpgp-key', `alice@example.org=${file()}`);
    expect(f.code).toBe(3);
    await expect(stat(fresh)).rejects.toThrow();
  });

  it.each([
    ['a key cut short', () => `alice@example.org=${files.truncated}`, /--openpgp-key: .*truncated \(for alice@example\.org\) is cut short/],
    ['a damaged armor', () => `alice@example.org=${files.badCrc}`, /--openpgp-key: .*badCrc \(for alice@example\.org\) has an armor checksum \(CRC-24\) that does not match/],
    ['a file that is no key', () => `alice@example.org=${pw}`, /--openpgp-key: .*pw \(for alice@example\.org\) is not an OpenPGP key/],
    ['a missing file', () => `alice@example.org=${join(work, 'nothing.asc')}`, /--openpgp-key: cannot read .*nothing\.asc \(for alice@example\.org\): ENOENT/],
    ['another address\'s key', () => `alice@example.org=${files.bob}`, /--openpgp-key: .*bob \(for alice@example\.org\) has the User ID "Bob <bob@example\.org>", not alice@example\.org/],
    ['an address that is no mailbox', () => `carol@example.org=${files.armored}`, /--openpgp-key: carol@example\.org is not one of the mailboxes/],
  ])('rejects %s with exit 2, naming --openpgp-key, and writes nothing', async (_name, entry, message) => {
    const before = await treeState(out);
    const r = await runCli(['init', '--out', out, '--openpgp-key', entry()]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(message);
    expect(r.stdout + r.stderr).not.toMatch(/Generating keys/);
    expect(await treeState(out)).toEqual(before);
  });

  it('drops the key with EMAIL=none: the record, the WKD file and the openpgpkey name go', async () => {
    const r = await runCli(['init', '--out', out, '--openpgp-key', 'alice@example.org=none']);
    expect(r.code).toBe(0);
    expect(await openpgpkeys(join(out, 'dns/example.org.zone'))).toEqual([]);
    expect(await openpgpkeys(join(out, 'dns/example.org.zone.signed'))).toEqual([]);
    await expect(stat(hu(out))).rejects.toThrow();
    await expect(stat(join(out, 'www/example.org/.well-known/openpgpkey'))).rejects.toThrow();
    await expect(stat(join(out, 'openpgp'))).rejects.toThrow();
    for (const f of ['dns/example.org.zone', 'nginx/selfmail.conf', 'selfmail.yaml', 'REPORT.md']) expect(await readFile(join(out, f), 'utf8')).not.toMatch(/openpgpkey/i);
    expect(await certNames(out)).not.toContain('openpgpkey');
  });
});

describe('openpgpKeys in a config file', () => {
  it('reads EMAIL=FILE with FILE relative to the config file, and publishes it', async () => {
    const dir = join(work, 'cfg');
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'alice.asc'), await readFile(files.armored));
    const cfg = join(dir, 'setup.yaml');
    await writeFile(cfg, 'domains: [example.org]\nipv4: 192.0.2.25\nusers: [alice@example.org]\ntarget: debian-12\nopenpgpKeys: [alice@example.org=alice.asc]\n');
    const out = join(work, 'from-config');
    const r = await runCli(['init', '--non-interactive', '--config', cfg, '--password-file', pw, '--out', out]);
    expect(r.code).toBe(0);
    expect((await readFile(hu(out))).equals(exported)).toBe(true);
    expect(await readFile(join(out, 'selfmail.yaml'), 'utf8')).toMatch(/^openpgpKeys:\n {2}- alice@example\.org$/m);
  });

  it('names the config file\'s key for a bad file', async () => {
    const cfg = join(work, 'bad.yaml');
    await writeFile(cfg, `domains: [example.org]\nipv4: 192.0.2.25\nusers: [alice@example.org]\ntarget: debian-12\nopenpgpKeys: [alice@example.org=${files.bob}]\n`);
    const out = join(work, 'from-bad-config');
    const r = await runCli(['init', '--non-interactive', '--config', cfg, '--password-file', pw, '--out', out]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`${cfg}: openpgpKeys: ${files.bob} (for alice@example.org) has the User ID "Bob <bob@example.org>"`);
    await expect(stat(out)).rejects.toThrow();
  });
});

describe('selfmail user remove', () => {
  it('drops the removed mailbox\'s key with it, and keeps the others\'', async () => {
    const out = join(work, 'two-mailboxes');
    const pw2 = join(work, 'pw2');
    await writeFile(pw2, 'alice@example.org:correct horse battery staple\nbob@example.org:another horse battery staple\n', { mode: 0o600 });
    const r = await init(out, '--user', 'bob@example.org', '--password-file', pw2, '--openpgp-key', `alice@example.org=${files.armored}`, '--openpgp-key', `bob@example.org=${files.bob}`);
    expect(r.code).toBe(0);
    expect(await openpgpkeys(join(out, 'dns/example.org.zone'))).toHaveLength(2);
    const u = await runCli(['user', 'remove', 'bob@example.org', '--bundle', out]);
    expect(u.code).toBe(0);
    expect(await readFile(join(out, 'selfmail.yaml'), 'utf8')).toMatch(/^openpgpKeys:\n {2}- alice@example\.org\n(?! {2}-)/m);
    await expect(stat(join(out, 'openpgp/bob@example.org.pgp'))).rejects.toThrow();
    expect((await openpgpkeys(join(out, 'dns/example.org.zone'))).map((k) => k.owner)).toEqual([`${dane.label}._openpgpkey.example.org.`]);
    expect((await readFile(hu(out))).equals(exported)).toBe(true);
  });
});

describe('without DNSSEC', () => {
  it('publishes the Web Key Directory only, and warns once', async () => {
    const out = join(work, 'no-dnssec');
    const r = await init(out, '--no-dnssec', '--openpgp-key', `alice@example.org=${files.armored}`);
    expect(r.code).toBe(0);
    expect(await openpgpkeys(join(out, 'dns/example.org.zone'))).toEqual([]);
    expect((await readFile(hu(out))).equals(exported)).toBe(true);
    expect(r.stderr.match(/^warning: openpgpKeys: DNSSEC is off/gm)).toHaveLength(1);
  });
});
