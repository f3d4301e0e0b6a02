/** `selfmail keys list|rotate|retire` through the built bin, on a demo bundle. */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';

let work: string;
let out: string;
beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'selfmail-keys-'));
  out = join(work, 'bundle');
  const r = await runCli(['init', '--demo', '--out', out]);
  expect(r.code).toBe(0);
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

interface Row {
  type: string;
  name: string;
  id: string;
  state: string;
  fingerprint: string;
}

async function list(): Promise<Row[]> {
  const r = await runCli(['keys', 'list', '--bundle', out, '--json']);
  expect(r.code).toBe(0);
  expect(r.stdout + r.stderr).not.toMatch(/PRIVATE KEY|PrivateKey:/);
  return (JSON.parse(r.stdout) as { keys: Row[] }).keys;
}

const zone = () => readFile(join(out, 'dns/example.org.zone'), 'utf8');

describe('selfmail keys', () => {
  it('lists every key with its public fingerprint and never a private part', async () => {
    const rows = await list();
    const types = rows.map((r) => r.type).sort();
    expect(types).toEqual(['dkim', 'dkim', 'dnssec-ksk', 'dnssec-zsk', 'dnssec-zsk', 'tls', 'tls']);
    expect(rows.filter((r) => r.type === 'dnssec-zsk').map((r) => r.state)).toEqual(['active', 'next']);
    expect(rows.filter((r) => r.type === 'tls').map((r) => r.state)).toEqual(['active', 'next']);
    for (const r of rows) expect(r.fingerprint).toMatch(/^[0-9a-f]{64}$/);
    const human = await runCli(['keys', 'list', '--bundle', out]);
    expect(human.code).toBe(0);
    expect(human.stdout).toMatch(/^TYPE\s+NAME.*NEXT STEP$/m);
    expect(human.stdout).toMatch(/^tls .* next .* may serve from \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ \(selfmail keys rotate tls\)$/m);
    expect(human.stdout).not.toMatch(/PRIVATE/);
  });

  it('only reads: on a bundle whose DKIM and TLS keys were deleted it names them missing, shows no made-up key, exits 2 and writes nothing', async () => {
    const copy = join(work, 'keyless');
    const { cp, rm: remove } = await import('node:fs/promises');
    await cp(out, copy, { recursive: true });
    const before = (await list()).filter((r) => r.type === 'dkim' || r.type === 'tls');
    await remove(join(copy, 'keys/dkim'), { recursive: true });
    await remove(join(copy, 'keys/tls/key.pem'));
    const { treeState } = await import('../helpers/cli.js');
    const tree = await treeState(copy);
    const r = await runCli(['keys', 'list', '--bundle', copy, '--json']);
    expect(r.code).toBe(2);
    const doc = JSON.parse(r.stdout) as { ok: boolean; keys: Row[]; missing: string[] };
    expect(doc.ok).toBe(false);
    // (The next TLS key's file is still there: it is listed as it is.)
    expect(doc.keys.filter((k) => k.type === 'tls' && k.id === 'next').map((k) => k.state)).toEqual(['next']);
    const gone = doc.keys.filter((k) => k.type === 'dkim' || (k.type === 'tls' && k.id !== 'next'));
    expect(gone.map((k) => k.state)).toEqual(gone.map(() => 'missing'));
    expect(gone.map((k) => k.fingerprint)).toEqual(gone.map(() => ''));
    // The fingerprints of the keys that were there, and no other, never appear as if new ones existed.
    for (const k of gone) expect(before.some((b) => b.fingerprint === k.fingerprint)).toBe(false);
    expect(doc.missing).toEqual(expect.arrayContaining(['keys/tls/key.pem']));
    expect(r.stderr).toMatch(/missing: tls key for mail\.example\.org: keys\/tls\/key\.pem is not in the bundle/);
    expect(await treeState(copy)).toEqual(tree);
  });

  it('rotates DKIM: a new active pair, the old one still published, signing switched', async () => {
    const before = (await list()).filter((r) => r.type === 'dkim');
    const r = await runCli(['keys', 'rotate', 'dkim', '--bundle', out]);
    expect(r.code).toBe(0);
    // Only what changed: the DS did not, so it is not handed out again; the run ends with its summary.
    expect(r.stdout).not.toMatch(/Give these DS records/);
    expect(r.stdout).toMatch(/^The DS records at your registrar stay as they are/m);
    expect(r.stdout.trim().split('\n').pop()).toMatch(/^Bundle written to .*: \d+ file\(s\) changed, 0 removed\.$/);
    const after = (await list()).filter((r) => r.type === 'dkim');
    expect(after).toHaveLength(4);
    const old = after.filter((k) => before.some((b) => b.id === k.id));
    expect(old.map((k) => k.state)).toEqual(['published', 'published']);
    const fresh = after.filter((k) => !before.some((b) => b.id === k.id));
    expect(fresh.map((k) => k.state)).toEqual(['active', 'active']);
    const z = await zone();
    for (const k of after) expect(z).toContain(`${k.id}._domainkey`);
    // rspamd signs with the new pair only.
    const signing = await readFile(join(out, 'rspamd/override.d/dkim_signing.conf'), 'utf8');
    for (const k of fresh) expect(signing).toContain(`selector = "${k.id}"`);
    for (const k of old) expect(signing).not.toContain(`selector = "${k.id}"`);
  });

  it('retires an old selector: gone from the zone and the key store', async () => {
    const published = (await list()).filter((r) => r.type === 'dkim' && r.state === 'published');
    const victim = published[0]!.id;
    const r = await runCli(['keys', 'retire', 'dkim', '--bundle', out, '--selector', victim]);
    expect(r.code).toBe(0);
    expect((await list()).some((k) => k.id === victim)).toBe(false);
    expect(await zone()).not.toContain(`${victim}._domainkey`);
  });

  it('rotates TLS: refused (exit 2, nothing changed) before the next key\'s TLSA has spread; with --immediately the next key serves, the old one stays pinned', async () => {
    const { treeState } = await import('../helpers/cli.js');
    const tls = async () => (await list()).filter((r) => r.type === 'tls');
    const before = await tls();
    const tree = await treeState(out);
    const early = await runCli(['keys', 'rotate', 'tls', '--bundle', out]);
    expect(early.code, early.stderr).toBe(2);
    expect(early.stderr).toMatch(/selfmail keys rotate tls: the next key's TLSA went into the bundle at .*: rotate from .* on .*or now with --immediately/);
    expect(await treeState(out)).toEqual(tree);
    const pins = async () => [...(await zone()).matchAll(/^_25\._tcp\.mail\s+IN TLSA\s+3 1 1 ([0-9a-f]{64})$/gm)].map((m) => m[1]);
    expect(await pins()).toEqual(before.map((r) => r.fingerprint));
    const r = await runCli(['keys', 'rotate', 'tls', '--immediately', '--bundle', out]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/systemctl start selfmail-acme right after apply/);
    const after = await tls();
    expect(after.map((k) => k.state)).toEqual(['active', 'next', 'retiring']);
    expect(after[0]!.fingerprint).toBe(before[1]!.fingerprint);
    expect(after[2]!.fingerprint).toBe(before[0]!.fingerprint);
    expect(await pins()).toEqual(after.map((k) => k.fingerprint));
    for (const bad of [['keys', 'retire', 'tls', '--bundle', out], ['keys', 'rotate', 'dkim', '--immediately', '--bundle', out]]) {
      const b = await runCli(bad);
      expect(b.code, bad.join(' ')).toBe(2);
    }
  });

  it('rotates DNSSEC: --zsk publishes the next ZSK beside the signing one; a second is refused (exit 2, nothing changed); --ksk adds a KSK with CDS/CDNSKEY and its DS; --parent-confirmed withdraws them', async () => {
    const { treeState } = await import('../helpers/cli.js');
    const signed = () => readFile(join(out, 'dns/example.org.zone.signed'), 'utf8');
    const dnskeys = async () => [...(await signed()).matchAll(/\sIN\s+DNSKEY\s+(25[67]) 3 13 (\S+)/g)].map((m) => `${m[1]} ${m[2]}`).sort();
    const soaSigner = async () => /\sIN\s+RRSIG\s+SOA 13 2 \d+ \d+ \d+ (\d+) /.exec(await signed())?.[1];
    const dnssec = async () => (await list()).filter((r) => r.type.startsWith('dnssec'));
    const before = await dnssec();
    const [cur, nxt] = before.filter((r) => r.type === 'dnssec-zsk');
    expect(await dnskeys()).toHaveLength(2);

    const r = await runCli(['keys', 'rotate', 'dnssec', '--zsk', '--bundle', out]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/signs 3 days later/);
    expect(await dnskeys()).toHaveLength(3);
    expect(await soaSigner()).toBe(cur!.id);
    expect((await dnssec()).find((k) => k.id === nxt!.id)!.state).toBe('next');
    const tree = await treeState(out);
    const again = await runCli(['keys', 'rotate', 'dnssec', '--zsk', '--bundle', out]);
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(new RegExp(`a ZSK rollover of example\\.org is under way: ZSK ${nxt!.id} is published and signs from `));
    expect(await treeState(out)).toEqual(tree);

    const ds = () => readFile(join(out, 'dns/example.org.ds'), 'utf8');
    const k = await runCli(['keys', 'rotate', 'dnssec', '--ksk', '--bundle', out]);
    expect(k.code, k.stderr).toBe(0);
    const ksks = (await dnssec()).filter((x) => x.type === 'dnssec-ksk');
    expect(ksks.map((x) => x.state).sort()).toEqual(['active', 'next']);
    const fresh = ksks.find((x) => x.state === 'next')!;
    const z = await readFile(join(out, 'dns/example.org.zone'), 'utf8');
    expect(z).toMatch(new RegExp(`^@\\s+IN CDS\\s+${fresh.id} 13 2 [0-9A-F]{64}$`, 'm'));
    expect(z).toMatch(/^@\s+IN CDNSKEY 257 3 13 \S+$/m);
    expect(k.stdout).toMatch(new RegExp(`example\\.org\\. IN DS ${fresh.id} 13 2 `));
    expect((await ds()).match(/ IN DS /g)).toHaveLength(2);
    expect(await dnskeys()).toHaveLength(4);

    const c = await runCli(['keys', 'rotate', 'dnssec', '--ksk', '--parent-confirmed', '--bundle', out]);
    expect(c.code, c.stderr).toBe(0);
    const after = (await dnssec()).filter((x) => x.type === 'dnssec-ksk');
    expect(after.map((x) => `${x.id} ${x.state}`).sort()).toEqual([`${fresh.id} active`, `${ksks.find((x) => x !== fresh)!.id} retiring`].sort());
    expect(await readFile(join(out, 'dns/example.org.zone'), 'utf8')).not.toMatch(/\bCDS\b|\bCDNSKEY\b/);
    expect((await ds()).match(/ IN DS /g)).toHaveLength(1);
    for (const bad of [
      ['keys', 'rotate', 'dnssec', '--bundle', out],
      ['keys', 'rotate', 'dnssec', '--zsk', '--ksk', '--bundle', out],
      ['keys', 'rotate', 'dnssec', '--zsk', '--parent-confirmed', '--bundle', out],
      ['keys', 'rotate', 'dkim', '--zsk', '--bundle', out],
      ['keys', 'rotate', 'dnssec', '--ksk', '--parent-confirmed', '--bundle', out],
    ]) {
      const b = await runCli(bad);
      expect(b.code, bad.join(' ')).toBe(2);
    }
  });

  it('refuses to retire the active selector, with exit 2', async () => {
    const active = (await list()).find((r) => r.type === 'dkim' && r.state === 'active')!;
    const r = await runCli(['keys', 'retire', 'dkim', '--bundle', out, '--selector', active.id]);
    expect(r.code).toBe(2);
  });

  it('needs --bundle', async () => {
    expect((await runCli(['keys', 'list'])).code).toBe(2);
  });
});
