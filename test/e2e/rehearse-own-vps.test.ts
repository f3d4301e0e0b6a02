/**
 * `selfmail rehearse` of an own-VPS bundle (issue 16), through the built bin with the real
 * daemons, WireGuard (wireguard-go where the kernel has none) and nftables: the rehearsal makes an
 * internet and a VPS of its own, sets the VPS up from the bundle's vps/ files with a key made
 * there (the bundle names no VPS key yet), and its `tunnel` step shows inbound mail at home with
 * the client's own address and TLS ending at home, outbound mail from the VPS's address with
 * DKIM, SPF and DMARC valid, and a VPS holding nothing but its WireGuard key. A VPS whose rules
 * rewrite the source address fails exactly that claim. Nothing is left, after a run or a Ctrl-C:
 * no process, no root, no /run/wireguard made for it, the bundle unchanged.
 */
import { cp, mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { BIN, runCli, treeState } from '../helpers/cli.js';
import { type Report, ensureBuilt, rehearsalProcesses, rehearsalRoots } from '../helpers/rehearse-cli.js';

const VPS4 = '203.0.113.5';
const VPS6 = '2001:db8:5::5';
let work: string;
let bundle: string;
let rootsBefore: string[];
let runWireguardBefore: boolean;

const exists = (p: string) => stat(p).then(() => true, () => false);

beforeAll(async () => {
  ensureBuilt();
  work = await mkdtemp(join(tmpdir(), 'selfmail-e2e-rehearse-vps-'));
  bundle = join(work, 'bundle');
  const pw = join(work, 'pw');
  await writeFile(pw, 'alice@example.org:alice-own-vps-rehearsal\n', { mode: 0o600 });
  const r = await runCli(['init', '--non-interactive', '--out', bundle, '--domain', 'example.org', '--user', 'alice@example.org', '--password-file', pw, '--ingress', 'own-vps', '--vps-ipv4', VPS4, '--vps-ipv6', VPS6]);
  if (r.code !== 0) throw new Error(`selfmail init failed:\n${r.stderr}`);
  rootsBefore = await rehearsalRoots();
  runWireguardBefore = await exists('/run/wireguard');
}, 120_000);

afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

async function rehearse(dir: string): Promise<{ code: number | null; report: Report }> {
  const r = await runCli(['rehearse', '--bundle', dir, '--json']);
  try {
    return { code: r.code, report: JSON.parse(r.stdout) as Report };
  } catch {
    throw new Error(`not one JSON document on stdout (exit ${r.code}):\n${r.stdout}\n${r.stderr}`);
  }
}

const summary = (report: Report) => report.steps.map((s) => `${s.ok ? 'ok' : 'FAIL'} ${s.id}: ${s.reason}`).join('\n');

/** The processes that held the rehearsal's internet and VPS namespaces (src/rehearse/tunnel.ts). */
async function holders(): Promise<string[]> {
  const out: string[] = [];
  for (const pid of await readdir('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    const cmd = (await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')).split('\0').join(' ').trim();
    if (cmd === 'sleep 2147483647') out.push(pid);
  }
  return out;
}

async function expectNothingLeft(): Promise<void> {
  expect(await rehearsalProcesses()).toEqual([]);
  // The namespaces have no bind mount: they end with their last process. The holders are gone,
  // and the rehearsal's own count of what is left in them (report.cleanup) is empty.
  expect(await holders()).toEqual([]);
  expect(await rehearsalRoots()).toEqual(rootsBefore);
  // wireguard-go's socket folder is made only for the rehearsal's own mount, and removed.
  expect(await exists('/run/wireguard')).toBe(runWireguardBefore);
}

/** wireguard-go processes running now (the rehearsal's home and VPS ends run it where the kernel has no WireGuard). */
async function wireguardGo(): Promise<number> {
  let n = 0;
  for (const pid of await readdir('/proc')) {
    if (/^\d+$/.test(pid) && (await readFile(`/proc/${pid}/comm`, 'utf8').catch(() => '')).trim() === 'wireguard-go') n++;
  }
  return n;
}

describe('selfmail rehearse, own VPS', () => {
  it('passes every step, the tunnel among them: client address and TLS at home, mail out from the VPS signed, the VPS holding its key only', async () => {
    const before = await treeState(bundle);
    const { code, report } = await rehearse(bundle);
    expect(report.ok, summary(report)).toBe(true);
    expect(code).toBe(0);
    expect(report.steps.map((s) => s.id)).toEqual(['dns', 'submission', 'inbound', 'spam', 'imap', 'authentication', 'learning', 'sieve', 'tunnel', 'refusals', 'privacy']);
    const tunnel = report.steps.find((s) => s.id === 'tunnel')!.reason;
    // In over IPv4 and IPv6: delivered, Postfix's Received: names the client itself, ESMTPS, DANE key.
    expect(tunnel).toMatch(new RegExp(`in from 192\\.0\\.2\\.10 to the VPS's ${VPS4.replace(/\./g, '\\.')}: delivered \\(INBOX\\), home's Received: names \\[192\\.0\\.2\\.10\\], ESMTPS \\(TLSv1\\.[23]\\), the key shown through the VPS is the one TLSA pins`));
    expect(tunnel).toMatch(/in from 2001:db8:77::10 to the VPS's 2001:db8:5::5: delivered \(INBOX\), home's Received: names \[IPv6:2001:db8:77::10\], ESMTPS/);
    // Out from the VPS's address, both signatures valid.
    expect(tunnel).toMatch(new RegExp(`out to a remote MX at 192\\.0\\.2\\.20: from the VPS's ${VPS4.replace(/\./g, '\\.')} \\(HELO mail\\.example\\.org\\), rsa-sha256 s=\\S+ \\+ ed25519-sha256 s=\\S+, SPF and DMARC pass`));
    expect(tunnel).toMatch(/the VPS holds \/etc\/wireguard\/selfmail\.conf and \/etc\/wireguard\/selfmail\.key \(its key 0600, made there\) and nothing else, listens on no TCP port, runs nothing but WireGuard/);
    // The internet's names were answered by the rehearsal itself; nothing else was reached.
    expect(report.steps.find((s) => s.id === 'privacy')!.reason).toMatch(/\d+ for its internet's names answered by its resolver.*no packet to any address outside loopback and the rehearsal's own VPS and internet/);
    expect(report.cleanup.leftover).toEqual([]);
    await expectNothingLeft();
    // The rehearsal made its VPS's key in the VPS: the bundle still names none, and is unchanged.
    expect(await treeState(bundle)).toEqual(before);
    expect(await readFile(join(bundle, 'selfmail.yaml'), 'utf8')).not.toMatch(/vpsWgKey/);
  }, 240_000);

  it('stops everything on Ctrl-C once the tunnel is up (exit 130): no holder, no WireGuard, no root, no /run/wireguard made for it', async () => {
    const wgBefore = await wireguardGo();
    const child = spawn(process.execPath, [BIN, 'rehearse', '--bundle', bundle], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((r) => child.on('close', (code) => r(code)));
    // Wait until the internet and the VPS are held and the daemons listen on the tunnel's address.
    const up = async () => (await holders()).length === 2 && (await rehearsalProcesses()).some((p) => /postfix|dovecot/.test(p));
    for (let i = 0; i < 300 && !(await up()); i++) await new Promise((r) => setTimeout(r, 100));
    expect(await up(), out).toBe(true);
    child.kill('SIGINT');
    expect(await exited, out).toBe(130);
    await expectNothingLeft();
    expect(await wireguardGo()).toBe(wgBefore);
  }, 90_000);

  it('fails the tunnel step, naming the address home saw, when the VPS rewrites the source of what it forwards', async () => {
    const masq = join(work, 'masquerading');
    await cp(bundle, masq, { recursive: true });
    const rules = join(masq, 'vps', 'nftables.conf');
    const text = await readFile(rules, 'utf8');
    // A proxy-like VPS: what goes home leaves with the VPS's tunnel address.
    const broken = text.replace(/(type nat hook postrouting priority srcnat; policy accept;\n)/, '$1\t\toifname "selfmail" masquerade\n');
    expect(broken).not.toBe(text);
    await writeFile(rules, broken);
    const { code, report } = await rehearse(masq);
    expect(code).toBe(4);
    const failed = report.steps.filter((s) => !s.ok);
    expect(failed.map((s) => s.id), summary(report)).toEqual(['tunnel']);
    expect(failed[0]!.reason).toMatch(/home's Received: line \(Postfix's\) does not name the client's own address 192\.0\.2\.10 \(the VPS rewrote it\?\): .*\[10\.77\.77\.1\]/);
    expect(report.cleanup.leftover).toEqual([]);
    await expectNothingLeft();
  }, 240_000);
});
