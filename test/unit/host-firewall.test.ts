import { describe, expect, it } from 'vitest';
import { hostContext } from '../helpers/host-context.js';
import { firewallModel, nftablesService, NFT_PATH } from '../../src/nftables/index.js';

/** The rule lines of a ruleset: comments and blank lines removed. */
function ruleLines(text: string): string[] {
  return text
    .split('\n')
    .map((l) => l.replace(/#.*$/, '').trim())
    .filter((l) => l.length > 0);
}

async function ruleset(input: Parameters<typeof hostContext>[0]): Promise<string> {
  const ctx = hostContext(input);
  const files = await nftablesService.build(ctx);
  const f = files.find((x) => x.path === NFT_PATH);
  if (!f) throw new Error('no ruleset');
  return f.data.toString('utf8');
}

describe('firewall model', () => {
  it('opens the mail ports and limits the login ports', () => {
    const ctx = hostContext();
    const m = firewallModel(ctx.config, ctx.profile);
    expect(m.tcpOpen).toEqual([25, 53, 80, 443]);
    expect(m.tcpLimited).toEqual([465, 587, 993, 4190]);
    expect(m.udpOpen).toEqual([53]);
  });

  it('keeps SSH closed to the network when no admin network is given', async () => {
    const lines = ruleLines(await ruleset({}));
    expect(lines.some((l) => /\bdport\s+22\b/.test(l))).toBe(false);
    expect(lines.some((l) => /\bdport\s*\{[^}]*\b22\b/.test(l))).toBe(false);
    expect(lines.join('\n')).toContain('policy drop');
    // LAN ranges get no implicit allowance.
    expect(lines.join('\n')).not.toMatch(/192\.168\.|10\.0\.0\.0|172\.16\./);
  });

  it('opens SSH only to the given networks', async () => {
    const text = await ruleset({ adminSshFrom: ['198.51.100.0/24', '2001:db8:1::/48'] });
    const lines = ruleLines(text);
    const ssh = lines.filter((l) => /\bdport\s+22\b/.test(l));
    expect(ssh).toEqual(['tcp dport 22 ip saddr @admin_ssh_v4 accept', 'tcp dport 22 ip6 saddr @admin_ssh_v6 accept']);
    expect(text).toMatch(/set admin_ssh_v4 \{[^}]*elements = \{ 198\.51\.100\.0\/24 \}/);
    expect(text).toMatch(/set admin_ssh_v6 \{[^}]*elements = \{ 2001:db8:1::\/48 \}/);
    const v4only = ruleLines(await ruleset({ adminSshFrom: ['198.51.100.7/32'] }));
    expect(v4only.filter((l) => /\bdport\s+22\b/.test(l))).toEqual(['tcp dport 22 ip saddr @admin_ssh_v4 accept']);
  });

  it('is byte-identical for the same input', async () => {
    expect(await ruleset({ adminSshFrom: ['198.51.100.0/24'] })).toBe(await ruleset({ adminSshFrom: ['198.51.100.0/24'] }));
  });
});
