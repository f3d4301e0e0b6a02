/**
 * The spam filter tells no one: Debian's rspamd (this machine's release) loads the bundle's
 * files, and rspamd itself is asked what it would run. No module that asks or tells an outside
 * service is enabled; no enabled module names a URL or a lookup service; every worker is on
 * loopback; DNS goes to this host's resolver only. And the check that guards it at init fails
 * when one of the switches is missing.
 */
import { execFileSync } from 'node:child_process';
import { cp, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stageTree } from '../../src/bundle/stage.js';
import type { BundleFile } from '../../src/bundle/types.js';
import { OUTSIDE_MODULES, enabledModules, outsideReferences, rblZones, rspamdService } from '../../src/rspamd/index.js';
import { hostContext, scratchDir } from '../helpers/host-context.js';

let dir: string;
let cleanup: () => Promise<void>;
let files: BundleFile[];
let conf: string;
const rspamadm = (...args: string[]) =>
  execFileSync('rspamadm', [`--var=CONFDIR=${conf}`, `--var=LOCAL_CONFDIR=${conf}`, ...args, '-c', join(conf, 'rspamd.conf')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });

beforeAll(async () => {
  ({ dir, cleanup } = await scratchDir());
  // The production files (unbound's port 53, Redis's 6379), laid out under a scratch root.
  files = await rspamdService.build(hostContext({}));
  // Debian's stock configuration under the root, ours over it (as the check and the host do).
  conf = join(dir, 'etc/rspamd');
  for (const e of await readdir('/etc/rspamd')) if (e !== 'local.d' && e !== 'override.d') await cp(join('/etc/rspamd', e), join(conf, e), { recursive: true });
  await stageTree(files, dir);
});
afterAll(() => cleanup());

describe('rspamd, as the bundle configures it', () => {
  it('runs none of the modules that ask or tell an outside service', () => {
    const on = enabledModules(rspamadm('configdump', '-m'));
    expect(on.size).toBeGreaterThan(10);
    for (const local of ['spf', 'dkim', 'dmarc', 'arc', 'phishing', 'hfilter', 'mime_types', 'milter_headers']) expect(on, local).toContain(local);
    for (const { module } of OUTSIDE_MODULES) expect(on, module).not.toContain(module);
  });

  it('leaves no URL and no lookup service in any module it runs, and sends DNS only to this host', () => {
    const dump = JSON.parse(rspamadm('configdump', '-j')) as Record<string, unknown>;
    const on = enabledModules(rspamadm('configdump', '-m'));
    const phishing = dump.phishing as { openphish_enabled: boolean; phishtank_enabled: boolean };
    expect([phishing.openphish_enabled, phishing.phishtank_enabled]).toEqual([false, false]);
    expect(outsideReferences(dump, on)).toEqual([]);
    expect((dump.options as { dns: { nameserver: string[] } }).dns.nameserver).toEqual(['127.0.0.1:53']);
    expect((dump.redis as { servers: string }).servers).toBe('127.0.0.1:6379');
  });

  it('finds an outside address in a module it runs: the stock map of mime_types, the phishing feeds once on', () => {
    const dump = JSON.parse(rspamadm('configdump', '-j')) as Record<string, unknown>;
    const on = enabledModules(rspamadm('configdump', '-m'));
    const stock = { ...dump, mime_types: { file: ['https://maps.rspamd.com/rspamd/mime_types.inc.zst'] } };
    expect(outsideReferences(stock, on)).toEqual(['mime_types.file.0 = https://maps.rspamd.com/rspamd/mime_types.inc.zst']);
    const feeds = { ...dump, phishing: { ...(dump.phishing as object), phishtank_enabled: true } };
    expect(outsideReferences(feeds, on)).toEqual(['phishing.phishtank_enabled = true']);
  });

  it('signs only what authenticated senders submit, for the From domain exactly, with the bundle keys only', () => {
    const dump = JSON.parse(rspamadm('configdump', '-j')) as { dkim_signing: Record<string, unknown> };
    expect(dump.dkim_signing).toMatchObject({
      enabled: true,
      sign_authenticated: true,
      sign_local: false,
      sign_inbound: false,
      use_domain: 'header',
      use_esld: false,
      allow_hdrfrom_mismatch: false,
      try_fallback: false,
      use_redis: false,
    });
    // Debian's cgp.inc adds 127.2.4.7 (a list no later file can shorten): loopback only, never a
    // network a remote client could send from.
    const networks = (dump.dkim_signing.sign_networks ?? []) as string[];
    for (const n of networks) expect(n, 'a signing network').toMatch(/^127\.\d+\.\d+\.\d+(\/(8|9|[12]\d|3[0-2]))?$/);
  });

  it('binds every worker it starts to loopback', () => {
    const dump = JSON.parse(rspamadm('configdump', '-j')) as { worker: Array<Record<string, { bind_socket?: string; count?: number; enabled?: boolean }>> };
    const started = dump.worker.flatMap((w) => Object.entries(w)).filter(([, v]) => (v.count === undefined || v.count > 0) && v.enabled !== false);
    // The milter scans itself and the controller learns: no separate scanner runs.
    expect(started.map(([name]) => name).sort()).toEqual(['controller', 'rspamd_proxy']);
    for (const [name, w] of started) expect(w.bind_socket, name).toMatch(/^127\.0\.0\.1:\d+$/);
  });

  it("refuses the bundle at init when one module's switch is missing, or a map is the stock one: the check names it", async () => {
    for (const [missing, named] of [
      ['rspamd/override.d/rbl.conf', /rspamd would run rbl\b/],
      ['rspamd/override.d/mime_types.conf', /name outside services: mime_types\.file\.0 = https:\/\/maps\.rspamd\.com/],
      ['rspamd/override.d/dkim_signing.conf', /rspamd would sign with nothing, not the bundle's active DKIM keys \(example\.net 202601e \S+\/example\.net\/202601e\.rspamd, example\.net 202601r \S+\.private, example\.org 202601e/],
    ] as const) {
      const ctx = hostContext({}, { root: join(dir, `without-${missing.replace(/\W/g, '-')}`) });
      const without = (await rspamdService.build(ctx)).filter((f) => f.path !== missing);
      await stageTree(without, ctx.profile.root);
      await expect(rspamdService.check!(ctx, without)).rejects.toThrow(named);
      await rm(ctx.profile.root, { recursive: true, force: true });
    }
    // A signer that would sign with one key only (the Ed25519 selector gone) is refused too.
    const one = hostContext({}, { root: join(dir, 'one-key') });
    const oneFiles = (await rspamdService.build(one)).map((f) =>
      f.path === 'rspamd/override.d/dkim_signing.conf' ? { ...f, data: Buffer.from(f.data.toString('utf8').replace(/^.*\.rspamd"; }\n/gm, '')) } : f,
    );
    await stageTree(oneFiles, one.profile.root);
    await expect(rspamdService.check!(one, oneFiles)).rejects.toThrow(/rspamd would sign with example\.net 202601r \S+, example\.org 202601r \S+, not the bundle's active DKIM keys/);
    // Blocklists opted in to (--spam-lookups) replace rspamd's stock list: rbl runs and asks
    // exactly their zones; the check refuses a bundle whose rbl would ask any other.
    const opted = hostContext({ spamLookups: ['spamhaus'] }, { root: join(dir, 'opted') });
    const optedFiles = await rspamdService.build(opted);
    await stageTree(optedFiles, opted.profile.root);
    await expect(rspamdService.check!(opted, optedFiles)).resolves.toBeUndefined();
    const optedConf = join(opted.profile.root, 'etc/rspamd');
    const optedDump = JSON.parse(
      execFileSync('rspamadm', [`--var=CONFDIR=${optedConf}`, `--var=LOCAL_CONFDIR=${optedConf}`, 'configdump', '-j', '-c', join(optedConf, 'rspamd.conf')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }),
    ) as Record<string, unknown>;
    expect(rblZones(optedDump.rbl)).toEqual(['dbl.spamhaus.org', 'zen.spamhaus.org']);
    const asked = { ...opted, config: { ...opted.config, spamLookups: ['surbl'] } };
    await expect(rspamdService.check!(asked, optedFiles)).rejects.toThrow(/blocklists would ask dbl\.spamhaus\.org, zen\.spamhaus\.org, not the lookups opted in to \(multi\.surbl\.org\)/);
    const ok = join(dir, 'whole');
    const whole = hostContext({}, { root: ok });
    const all = await rspamdService.build(whole);
    await stageTree(all, ok);
    await expect(rspamdService.check!(whole, all)).resolves.toBeUndefined();
  });
});
