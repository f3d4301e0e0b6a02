import { describe, expect, it } from 'vitest';
import type { BundleFile } from '../../src/bundle/types.js';
import { ruleFor } from '../../src/bundle/layout.js';
import { nftablesService } from '../../src/nftables/index.js';
import { sshService } from '../../src/ssh/index.js';
import { fail2banService } from '../../src/fail2ban/index.js';
import { unboundService } from '../../src/unbound/index.js';
import { webService } from '../../src/web/index.js';
import { acmeService } from '../../src/acme/index.js';
import { reportService } from '../../src/report/index.js';
import { hostContext } from '../helpers/host-context.js';

const HOST_MODULES = [nftablesService, sshService, fail2banService, unboundService, webService, acmeService, reportService];

async function buildAll(): Promise<BundleFile[]> {
  const ctx = hostContext({ adminSshFrom: ['198.51.100.0/24'], ingress: 'port-forward', listenIpv4: '192.168.1.20' });
  const out: BundleFile[] = [];
  for (const m of HOST_MODULES) out.push(...(await m.build(ctx)));
  return out;
}

describe('host modules', () => {
  it('give byte-identical files for the same input', async () => {
    const a = await buildAll();
    const b = await buildAll();
    expect(a.map((f) => f.path)).toEqual(b.map((f) => f.path));
    for (let i = 0; i < a.length; i++) expect(a[i]!.data.equals(b[i]!.data), a[i]!.path).toBe(true);
  });

  it('write only installable, non-secret files, with unique paths', async () => {
    const files = await buildAll();
    expect(new Set(files.map((f) => f.path)).size).toBe(files.length);
    for (const f of files) {
      expect(ruleFor(f.path), f.path).toBeDefined();
      expect(f.mode === 0o644 || (f.path.startsWith('bin/') && f.mode === 0o755), f.path).toBe(true);
      expect(f.data.toString('utf8')).not.toMatch(/PRIVATE KEY/);
    }
  });
});
