import { mkdtemp, rm, stat, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Profile } from '../../src/bundle/layout.js';
import { STANDARD_PORTS } from '../../src/bundle/layout.js';
import { stageTree } from '../../src/bundle/stage.js';
import type { BundleFile } from '../../src/bundle/types.js';
import type { Config } from '../../src/config/types.js';
import { buildDns, checkDns } from '../../src/dns/service.js';
import { earliestExpiry } from '../../src/dns/sign.js';
import { serialOf } from '../../src/dns/zone.js';
import type { KeySet } from '../../src/keys/types.js';
import { makeConfig, makeContext, makeKeySet } from '../helpers/dns-keyset.js';

let root: string;
let config: Config;
let keys: KeySet;
let profile: Profile;
let files: BundleFile[];
const now = new Date();

const file = (fs: BundleFile[], p: string) => {
  const f = fs.find((x) => x.path === p);
  if (!f) throw new Error(`no ${p}`);
  return f;
};

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'selfmail-dns-build-'));
  config = makeConfig();
  keys = await makeKeySet(config, now);
  profile = { kind: 'rehearsal', root, listen: { ipv4: '127.0.0.1' }, ports: { ...STANDARD_PORTS, dns: 15353 }, mailUser: { name: 'root', group: 'root' } };
  files = await buildDns(makeContext(config, keys, { now, profile }));
  await stageTree(files, root);
}, 60_000);

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('dns build', () => {
  it('writes every file with the right modes', () => {
    const paths = files.map((f) => f.path);
    for (const z of ['example.org', 'example.net']) {
      expect(paths).toContain(`dns/${z}.zone`);
      expect(paths).toContain(`dns/${z}.zone.signed`);
      expect(paths).toContain(`dns/${z}.ds`);
    }
    expect(file(files, 'nsd/tsig.conf').mode).toBe(0o600);
    expect(file(files, 'nsd/nsd.conf').mode).toBe(0o644);
    expect(file(files, 'bin/selfmail-resign').mode).toBe(0o755);
    // No TSIG secret outside the 0600 file.
    const secret = keys.read(keys.tsig[0]!.secretPath).toString().trim();
    for (const f of files.filter((x) => x.mode !== 0o600)) expect(f.data.toString()).not.toContain(secret);
    expect(file(files, 'nsd/tsig.conf').data.toString()).toContain(secret);
  });

  it('passes named-checkzone, nsd-checkzone, ldns-verify-zone, dnssec-verify and nsd-checkconf', async () => {
    await expect(checkDns(makeContext(config, keys, { now, profile }), files)).resolves.toBeUndefined();
  }, 60_000);

  it('signs for about 30 days', () => {
    const exp = earliestExpiry(file(files, 'dns/example.org.zone.signed').data.toString())!;
    const days = (exp.getTime() - now.getTime()) / 86_400_000;
    expect(days).toBeGreaterThan(29);
    expect(days).toBeLessThan(31);
  });

  it('keeps serial and bytes on an unchanged re-run, raises the serial on a change', async () => {
    const again = await buildDns(makeContext(config, keys, { now: new Date(now.getTime() + 86_400_000), profile, previous: files }));
    for (const f of files) expect(file(again, f.path).data.equals(f.data), f.path).toBe(true);

    const changed = makeConfig({ acmeCa: 'sectigo.com' });
    const third = await buildDns(makeContext(changed, keys, { now, profile, previous: files }));
    const before = serialOf(file(files, 'dns/example.org.zone').data.toString())!;
    const after = serialOf(file(third, 'dns/example.org.zone').data.toString())!;
    expect(after).toBeGreaterThan(before);
    expect(file(third, 'dns/example.org.zone.signed').data.toString()).toContain(` ${after} `);
    expect(file(third, 'dns/example.org.zone.signed').data.equals(file(files, 'dns/example.org.zone.signed').data)).toBe(false);
  }, 60_000);

  it('re-signs when the signatures expire within a week, with a higher serial', async () => {
    const later = new Date(now.getTime() + 24 * 86_400_000);
    const again = await buildDns(makeContext(config, keys, { now: later, profile, previous: files }));
    const oldSigned = file(files, 'dns/example.org.zone.signed').data.toString();
    const newSigned = file(again, 'dns/example.org.zone.signed').data.toString();
    expect(newSigned).not.toBe(oldSigned);
    expect(earliestExpiry(newSigned)!.getTime()).toBeGreaterThan(earliestExpiry(oldSigned)!.getTime());
    expect(serialOf(file(again, 'dns/example.org.zone').data.toString())!).toBeGreaterThan(serialOf(file(files, 'dns/example.org.zone').data.toString())!);
  }, 60_000);

  it('stages nsd.conf under the root', async () => {
    const st = await stat(join(root, 'etc/nsd/nsd.conf'));
    expect(st.isFile()).toBe(true);
    expect(await readFile(join(root, 'etc/nsd/nsd.conf'), 'utf8')).toContain(`zonefile: "${root}/etc/nsd/zones/example.org.zone.signed"`);
  });

  it('check rejects a signed zone whose data was changed after signing', async () => {
    const bad = files.map((f) =>
      f.path === 'dns/example.org.zone.signed'
        ? { ...f, data: Buffer.from(f.data.toString().replace('"v=spf1 mx -all"', '"v=spf1 +all"')) }
        : f,
    );
    expect(bad.find((f) => f.path === 'dns/example.org.zone.signed')!.data.toString()).toContain('v=spf1 +all');
    const badRoot = await mkdtemp(join(tmpdir(), 'selfmail-dns-bad-'));
    try {
      const badProfile = { ...profile, root: badRoot };
      await stageTree(bad, badRoot);
      await expect(checkDns(makeContext(config, keys, { now, profile: badProfile }), bad)).rejects.toThrow(/ldns-verify-zone|dnssec-verify/);
    } finally {
      await rm(badRoot, { recursive: true, force: true });
    }
  }, 60_000);

  it('without DNSSEC: unsigned zones only, NSD serves them, and the checks pass', async () => {
    const plain = makeConfig({ dnssec: false });
    const plainRoot = await mkdtemp(join(tmpdir(), 'selfmail-dns-plain-'));
    try {
      const plainProfile = { ...profile, root: plainRoot };
      const out = await buildDns(makeContext(plain, keys, { now, profile: plainProfile }));
      const paths = out.map((f) => f.path);
      expect(paths).toContain('dns/example.org.zone');
      expect(paths.some((p) => p.endsWith('.signed') || p.endsWith('.ds') || p.includes('resign'))).toBe(false);
      expect(file(out, 'nsd/nsd.conf').data.toString()).toContain(`zonefile: "${plainRoot}/etc/nsd/zones/example.org.zone"`);
      await stageTree(out, plainRoot);
      await expect(checkDns(makeContext(plain, keys, { now, profile: plainProfile }), out)).resolves.toBeUndefined();
    } finally {
      await rm(plainRoot, { recursive: true, force: true });
    }
  }, 60_000);
});
