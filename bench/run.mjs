#!/usr/bin/env node
/**
 * selfmail benchmarks (not a test): medians over several runs, each compared in the same run with
 * a baseline measured on the same machine. Writes bench/results.json and prints a table.
 *
 *   npm run bench            start, one domain, re-run, growth at 10 and 100 domains
 *   npm run bench -- --large also 1000 domains
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpus, tmpdir, totalmem } from 'node:os';
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const BIN = join(ROOT, 'bin/selfmail.js');
const LARGE = process.argv.includes('--large');
const work = mkdtempSync(join(tmpdir(), 'selfmail-bench-'));
process.on('exit', () => rmSync(work, { recursive: true, force: true }));

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

/** Run a command under GNU time; returns wall ms, CPU ms (user+sys) and peak RSS in MB. */
function timed(cmd, args, opts = {}) {
  const r = spawnSync('/usr/bin/time', ['-f', '%e %U %S %M', cmd, ...args], { encoding: 'utf8', ...opts, env: { ...process.env, SELFMAIL_DEBUG: '1' } });
  if (r.status !== 0) {
    throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}):\n${r.stderr}`);
  }
  const last = r.stderr.trim().split('\n').pop();
  const [e, u, s, m] = last.split(' ').map(Number);
  // Where the time went, from the CLI's own SELFMAIL_DEBUG phase marks.
  const phases = {};
  let prev = 0;
  for (const mark of r.stderr.matchAll(/^\[(\d+) ms\] (.+)$/gm)) {
    phases[mark[2]] = Number(mark[1]) - prev;
    prev = Number(mark[1]);
  }
  return { wallMs: e * 1000, cpuMs: (u + s) * 1000, peakMb: m / 1024, phases };
}

function wall(fn) {
  const t = process.hrtime.bigint();
  fn();
  return Number(process.hrtime.bigint() - t) / 1e6;
}

function tree(dir) {
  const out = {};
  for (const e of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (!e.isFile()) continue;
    const p = join(e.parentPath, e.name);
    const st = statSync(p);
    out[p] = `${st.mtimeMs} ${createHash('sha256').update(readFileSync(p)).digest('hex')}`;
  }
  return out;
}

function passwords(domains, usersPer) {
  const file = join(work, `pw-${domains.length}-${usersPer}`);
  const lines = [];
  const users = [];
  for (const d of domains) for (let i = 0; i < usersPer; i++) {
    users.push(`user${i}@${d}`);
    lines.push(`user${i}@${d}:bench-password-${i}-${d}`);
  }
  writeFileSync(file, `${lines.join('\n')}\n`, { mode: 0o600 });
  return { file, users };
}

function initArgs(domains, usersPer, out) {
  const { file, users } = passwords(domains, usersPer);
  const args = ['init', '--non-interactive', '--ipv4', '192.0.2.25', '--ipv6', '2001:db8::25', '--password-file', file, '--out', out];
  for (const d of domains) args.push('--domain', d);
  for (const u of users) args.push('--user', u);
  return args;
}

const results = { machine: { cpus: cpus().length, model: cpus()[0]?.model, memGb: Math.round(totalmem() / 2 ** 30), node: process.version }, date: new Date().toISOString() };
const rows = [];

// 1. Start: selfmail --help against a bare Node start.
{
  const N = 15;
  const bare = [], help = [];
  for (let i = 0; i < N; i++) {
    bare.push(wall(() => execFileSync(process.execPath, ['-e', '0'])));
    help.push(wall(() => execFileSync(process.execPath, [BIN, '--help'])));
  }
  const b = median(bare), h = median(help);
  results.start = { nodeMs: b, helpMs: h, ratio: h / b, target: 3 };
  rows.push(['start: selfmail --help', `${h.toFixed(0)} ms`, `node -e 0: ${b.toFixed(0)} ms`, `${(h / b).toFixed(2)}×`, '≤ 3×']);
}

// 2. One domain, fresh keys, two users, against the raw tools doing the same cryptography.
{
  const N = 3;
  const ours = [], raw = [];
  for (let i = 0; i < N; i++) {
    const out = join(work, `one-${i}`);
    ours.push(timed(process.execPath, [BIN, ...initArgs(['example.org'], 2, out)]));
    const dir = mkdtempSync(join(work, 'raw-'));
    raw.push(
      wall(() => {
        for (const name of ['dkim.pem', 'tls.pem']) execFileSync('openssl', ['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-out', join(dir, name)], { stdio: 'ignore' });
        execFileSync('openssl', ['genpkey', '-algorithm', 'ED25519', '-out', join(dir, 'ed.pem')], { stdio: 'ignore' });
        const ksk = execFileSync('ldns-keygen', ['-a', 'ECDSAP256SHA256', '-k', 'example.org'], { cwd: dir, encoding: 'utf8' }).trim();
        const zsk = execFileSync('ldns-keygen', ['-a', 'ECDSAP256SHA256', 'example.org'], { cwd: dir, encoding: 'utf8' }).trim();
        execFileSync('cp', [join(out, 'dns/example.org.zone'), join(dir, 'z')]);
        execFileSync('ldns-signzone', ['-o', 'example.org', join(dir, 'z'), join(dir, ksk), join(dir, zsk)], { cwd: dir });
        // The TLS certificate request and bootstrap certificate, and the two mailboxes' Argon2id hashes.
        execFileSync('openssl', ['req', '-new', '-x509', '-key', join(dir, 'tls.pem'), '-subj', '/CN=mail.example.org', '-days', '365', '-out', join(dir, 'cert.pem')], { stdio: 'ignore' });
        execFileSync('openssl', ['req', '-new', '-key', join(dir, 'tls.pem'), '-subj', '/CN=mail.example.org', '-out', join(dir, 'csr.pem')], { stdio: 'ignore' });
        for (const pw of ['bench-password-0', 'bench-password-1']) execFileSync('doveadm', ['pw', '-s', 'ARGON2ID', '-p', pw], { stdio: 'ignore' });
      }),
    );
  }
  const o = median(ours.map((x) => x.wallMs)), r = median(raw);
  const phases = ours[ours.length - 1].phases;
  results.oneDomain = { selfmailMs: o, rawToolsMs: r, ratio: o / r, target: 1.2, phases };
  rows.push(['init: 1 domain, 2 users, fresh keys', `${o.toFixed(0)} ms`, `raw tools: ${r.toFixed(0)} ms`, `${(o / r).toFixed(2)}×`, '≤ 1.2×']);
  rows.push(['  of which', Object.entries(phases).map(([k, v]) => `${k} ${v} ms`).join(', '), '', '', '']);

  // 3. Re-run with nothing changed.
  const out = join(work, 'one-0');
  const before = tree(out);
  const reruns = [];
  for (let i = 0; i < 7; i++) reruns.push(timed(process.execPath, [BIN, 'init', '--non-interactive', '--out', out]).wallMs);
  const after = tree(out);
  const rewritten = Object.keys(before).filter((p) => before[p] !== after[p]).length + Object.keys(after).filter((p) => !(p in before)).length;
  const m = median(reruns);
  // Node's own start is part of every run; what selfmail adds to it is the part it can change.
  const own = m - results.start.nodeMs;
  results.rerun = { ms: m, ownMs: own, filesRewritten: rewritten, targetMs: 100 };
  rows.push(['re-run, nothing changed', `${m.toFixed(0)} ms`, `${own.toFixed(0)} ms above node -e 0`, `${rewritten} files rewritten`, '≤ 100 ms, 0 files']);
}

// 4. Growth: time per domain, peak memory, CPU use (cpu time / wall time > 1 means several cores).
{
  const sizes = LARGE ? [10, 100, 1000] : [10, 100];
  results.growth = [];
  for (const n of sizes) {
    const domains = Array.from({ length: n }, (_, i) => `d${i}.example`);
    const out = join(work, `grow-${n}`);
    const t = timed(process.execPath, [BIN, ...initArgs(domains, 3, out)]);
    const perDomain = t.wallMs / n;
    results.growth.push({ domains: n, wallMs: t.wallMs, perDomainMs: perDomain, peakMb: t.peakMb, cpuUse: t.cpuMs / t.wallMs, phases: t.phases });
    rows.push([`growth: ${n} domains × 3 users`, `${(t.wallMs / 1000).toFixed(1)} s`, `${perDomain.toFixed(0)} ms/domain`, `peak ${t.peakMb.toFixed(0)} MB`, `CPU ${(t.cpuMs / t.wallMs).toFixed(2)} cores`]);
    rows.push(['  of which', Object.entries(t.phases).map(([k, v]) => `${k} ${(v / 1000).toFixed(1)} s`).join(', '), '', '', '']);
    if (n === 100) {
      // 5. Work in proportion to the change: one more mailbox in the 100-domain bundle.
      const pw = join(work, 'pw-one-more');
      writeFileSync(pw, 'newcomer@d0.example:bench-newcomer-password\n', { mode: 0o600 });
      const users = [...domains.flatMap((d) => [0, 1, 2].map((i) => `user${i}@${d}`)), 'newcomer@d0.example'];
      const add = timed(process.execPath, [BIN, 'init', '--non-interactive', '--out', out, '--password-file', pw, ...users.flatMap((u) => ['--user', u])]);
      results.addMailbox = { ms: add.wallMs, freshMs: t.wallMs, share: add.wallMs / t.wallMs, target: 0.06, phases: add.phases };
      rows.push(['add 1 mailbox to 100 domains', `${(add.wallMs / 1000).toFixed(2)} s`, `fresh build ${(t.wallMs / 1000).toFixed(1)} s`, `${((100 * add.wallMs) / t.wallMs).toFixed(1)} %`, '≤ 6 %']);
      rows.push(['  of which', Object.entries(add.phases).map(([k, v]) => `${k} ${(v / 1000).toFixed(2)} s`).join(', '), '', '', '']);
      // And a re-run with nothing new, at 100 domains.
      const again = [];
      for (let i = 0; i < 5; i++) again.push(timed(process.execPath, [BIN, 'init', '--non-interactive', '--out', out]).wallMs);
      results.rerun100 = { ms: median(again), ownMs: median(again) - results.start.nodeMs, targetMs: 150 };
      rows.push(['re-run, nothing changed, 100 domains', `${median(again).toFixed(0)} ms`, `${(median(again) - results.start.nodeMs).toFixed(0)} ms above node -e 0`, '', '≤ 150 ms']);
    }
    rmSync(out, { recursive: true, force: true });
  }
  const g10 = results.growth.find((g) => g.domains === 10), g100 = results.growth.find((g) => g.domains === 100);
  results.growthRatio = g100.perDomainMs / g10.perDomainMs;
  rows.push(['growth: per-domain time 100 vs 10', `${results.growthRatio.toFixed(2)}×`, '', '', '≤ 1.2×']);
}

writeFileSync(join(ROOT, 'bench/results.json'), `${JSON.stringify(results, null, 2)}\n`);
const widths = [0, 1, 2, 3, 4].map((i) => Math.max(...rows.map((r) => String(r[i]).length)));
console.log(`machine: ${results.machine.cpus} × ${results.machine.model}, ${results.machine.memGb} GiB, Node ${results.machine.node}`);
for (const r of rows) console.log(r.map((c, i) => String(c).padEnd(widths[i])).join('  '));
