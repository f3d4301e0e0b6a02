/**
 * The web side with the real key store (ensureKeys): the certificate it makes covers every name
 * nginx serves, and nginx -t loads its key and certificate.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stageTree } from '../../src/bundle/stage.js';
import type { BuildContext } from '../../src/bundle/types.js';
import { ensureKeys } from '../../src/keys/store.js';
import { webNames, webService } from '../../src/web/index.js';
import { reportService } from '../../src/report/index.js';
import { hostContext, scratchDir } from '../helpers/host-context.js';

let cleanup: () => Promise<void>;
let ctx: BuildContext;

beforeAll(async () => {
  const s = await scratchDir();
  cleanup = s.cleanup;
  const base = hostContext({}, { root: s.dir });
  const keys = await ensureKeys(base.config, base.previous, base.now);
  ctx = hostContext({}, { root: s.dir, keys });
});
afterAll(async () => {
  await cleanup?.();
});

describe('host web side with ensureKeys', () => {
  it('the certificate covers every web name, so no warning', async () => {
    expect([...ctx.keys.tls.names].sort()).toEqual(expect.arrayContaining(webNames(ctx.config)));
    const before = ctx.warnings.length;
    const files = await webService.build(ctx);
    expect(ctx.warnings.slice(before)).toEqual([]);
    await stageTree([...ctx.keys.files, ...files], ctx.profile.root);
    await webService.check!(ctx, files);
  });

  it('REPORT.md carries the DS record of every zone from the key store', async () => {
    const text = (await reportService.build(ctx))[0]!.data.toString('utf8');
    for (const k of ctx.keys.dnssec.filter((x) => x.role === 'ksk')) {
      expect(text).toContain(`${k.zone}. IN DS ${k.ds}`);
    }
    expect(ctx.keys.dnssec.filter((x) => x.role === 'ksk').length).toBe(ctx.config.domains.length);
  });
});
