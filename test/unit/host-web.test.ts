import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { describe, expect, it } from 'vitest';
import type { BundleFile } from '../../src/bundle/types.js';
import type { DomainName } from '../../src/config/types.js';
import { MTA_STS_MAX_AGE, mtaStsId, mtaStsPolicy } from '../../src/web/mtasts.js';
import { webNames, webPaths, webService } from '../../src/web/index.js';
import { hostContext } from '../helpers/host-context.js';
import type { BuildContext } from '../../src/bundle/types.js';
import type { Email } from '../../src/config/types.js';
import { ALICE_BINARY, ALICE_WKD_HASH } from '../helpers/openpgp.js';
import { stubKeySet } from '../helpers/host-keyset.js';

interface StsPolicy {
  version: string;
  mode: 'enforce' | 'testing' | 'none';
  mx: string[];
  maxAge: number;
}

/**
 * A strict RFC 8461 §3.2 policy parser: `key: value` lines ended by CRLF (LF tolerated by the
 * RFC, refused here because we write CRLF), version first, exactly one mode and max_age, at
 * least one mx, max_age at most 31557600, unknown keys ignored.
 */
function parseStsPolicy(text: string): StsPolicy {
  if (!text.endsWith('\r\n')) throw new Error('policy does not end with CRLF');
  const lines = text.slice(0, -2).split('\r\n');
  const seen = new Map<string, string[]>();
  for (const line of lines) {
    const m = /^([A-Za-z0-9_]+):[ \t]*([\x21-\x7e]*)[ \t]*$/.exec(line);
    if (!m) throw new Error(`bad policy line ${JSON.stringify(line)}`);
    const list = seen.get(m[1]!) ?? [];
    list.push(m[2]!);
    seen.set(m[1]!, list);
  }
  if (!lines[0]?.startsWith('version:')) throw new Error('version must come first');
  const one = (k: string): string => {
    const v = seen.get(k);
    if (!v || v.length !== 1) throw new Error(`need exactly one ${k}`);
    return v[0]!;
  };
  if (one('version') !== 'STSv1') throw new Error('version is not STSv1');
  const mode = one('mode');
  if (mode !== 'enforce' && mode !== 'testing' && mode !== 'none') throw new Error(`bad mode ${mode}`);
  const maxAgeText = one('max_age');
  if (!/^[0-9]{1,10}$/.test(maxAgeText)) throw new Error('bad max_age');
  const maxAge = Number(maxAgeText);
  if (maxAge > 31557600) throw new Error('max_age too large');
  const mx = seen.get('mx') ?? [];
  if (mode !== 'none' && mx.length === 0) throw new Error('no mx');
  for (const m of mx) if (!/^(\*\.)?([a-z0-9-]+\.)+[a-z0-9-]+$/i.test(m)) throw new Error(`bad mx ${m}`);
  return { version: 'STSv1', mode, mx, maxAge };
}

function file(files: BundleFile[], path: string): string {
  const f = files.find((x) => x.path === path);
  if (!f) throw new Error(`missing ${path}`);
  return f.data.toString('utf8');
}

describe('MTA-STS', () => {
  it.each(['testing', 'enforce'] as const)('serves a policy that parses per RFC 8461: mode %s as the host\'s certificate allows, the MX host, at least a week', async (mode) => {
    const ctx = { ...hostContext(), mtaSts: mode };
    const files = await webService.build(ctx);
    for (const d of ctx.config.domains) {
      const p = parseStsPolicy(file(files, webPaths(d).policy));
      expect(p.mode).toBe(mode);
      expect(p.mx).toEqual(['mail.example.org']);
      expect(p.maxAge).toBeGreaterThanOrEqual(7 * 24 * 3600);
      expect(p.maxAge).toBe(MTA_STS_MAX_AGE);
    }
  });

  it('the parser refuses a broken policy', () => {
    expect(() => parseStsPolicy('mode: enforce\r\nversion: STSv1\r\nmx: a.b\r\nmax_age: 1\r\n')).toThrow(/first/);
    expect(() => parseStsPolicy('version: STSv1\r\nmode: enforce\r\nmax_age: 604800\r\n')).toThrow(/no mx/);
  });

  it('its id changes when the policy changes, and only then', () => {
    const a = mtaStsPolicy({ hostname: 'mail.example.org' as DomainName }, 'enforce');
    const b = mtaStsPolicy({ hostname: 'mx.example.org' as DomainName }, 'enforce');
    expect(mtaStsId(a)).not.toBe(mtaStsId(b));
    expect(mtaStsId(a)).not.toBe(mtaStsId(mtaStsPolicy({ hostname: 'mail.example.org' as DomainName }, 'testing')));
    expect(mtaStsId(a)).toBe(mtaStsId(mtaStsPolicy({ hostname: 'mail.example.org' as DomainName }, 'enforce')));
    expect(mtaStsId(a)).toMatch(/^[A-Za-z0-9]{1,32}$/);
  });
});

describe('client autoconfiguration', () => {
  const parser = new XMLParser({ ignoreAttributes: false, attributeNamePrefix: '@' });

  it('Thunderbird config-v1.1.xml is well-formed and names the host, 993 and 465 with SSL, the full address', async () => {
    const ctx = hostContext();
    const files = await webService.build(ctx);
    for (const d of ctx.config.domains) {
      const text = file(files, webPaths(d).thunderbird);
      expect(XMLValidator.validate(text)).toBe(true);
      const provider = parser.parse(text).clientConfig.emailProvider;
      expect(provider['@id']).toBe(d);
      expect(provider.domain).toBe(d);
      expect(provider.incomingServer['@type']).toBe('imap');
      expect(provider.incomingServer.hostname).toBe('mail.example.org');
      expect(provider.incomingServer.port).toBe(993);
      expect(provider.incomingServer.socketType).toBe('SSL');
      expect(provider.incomingServer.username).toBe('%EMAILADDRESS%');
      expect(provider.outgoingServer['@type']).toBe('smtp');
      expect(provider.outgoingServer.hostname).toBe('mail.example.org');
      expect(provider.outgoingServer.port).toBe(465);
      expect(provider.outgoingServer.socketType).toBe('SSL');
      expect(provider.outgoingServer.username).toBe('%EMAILADDRESS%');
    }
  });

  it('Outlook autodiscover is well-formed and names IMAP 993 and SMTP 465 over SSL', async () => {
    const ctx = hostContext();
    const files = await webService.build(ctx);
    const text = file(files, webPaths(ctx.config.domains[0]!).outlook);
    expect(XMLValidator.validate(text)).toBe(true);
    const protocols = parser.parse(text).Autodiscover.Response.Account.Protocol as Record<string, unknown>[];
    expect(protocols.map((p) => [p.Type, p.Server, p.Port, p.SSL])).toEqual([
      ['IMAP', 'mail.example.org', 993, 'on'],
      ['SMTP', 'mail.example.org', 465, 'on'],
    ]);
    // No LoginName: Outlook then logs in with the full address.
    for (const p of protocols) expect(p).not.toHaveProperty('LoginName');
  });

  it('the validator catches a broken document (the check can fail)', () => {
    expect(XMLValidator.validate('<clientConfig><emailProvider></clientConfig>')).not.toBe(true);
  });
});

describe('nginx and certificate names', () => {
  it('has server blocks for mta-sts and autoconfig of every domain, with the installed key and cert', async () => {
    const ctx = hostContext();
    const conf = file(await webService.build(ctx), 'nginx/selfmail.conf');
    for (const d of ctx.config.domains) {
      expect(conf).toContain(`server_name mta-sts.${d};`);
      expect(conf).toContain(`server_name autoconfig.${d};`);
    }
    expect(conf).toContain('ssl_certificate /etc/selfmail/tls/cert.pem;');
    expect(conf).toContain('ssl_certificate_key /etc/selfmail/tls/key.pem;');
    expect(conf).toContain('listen 203.0.113.10:443 ssl;');
    expect(conf).toContain('listen [2001:db8::10]:443 ssl;');
    // Port 80 only redirects and answers ACME challenges.
    const http = conf.slice(0, conf.indexOf('# MTA-STS policies'));
    expect(http).toContain('return 301 https://');
    expect(http).toContain('/.well-known/acme-challenge/');
    expect(http).not.toContain('ssl_certificate');
    // Two TLS server blocks, whatever the number of domains: each costs nginx a TLS context.
    expect(conf.match(/ssl_certificate /g)).toHaveLength(2);
    // Every name maps to its own domain's folder, and nothing else does.
    for (const d of ctx.config.domains) {
      expect(conf).toContain(`    mta-sts.${d} ${d};`);
      expect(conf).toContain(`    autoconfig.${d} ${d};`);
    }
    expect(conf).toContain('default "";');
    expect(conf).toContain('root /var/www/selfmail/$selfmail_site;');
  });

  it('warns when the certificate does not cover the web names', async () => {
    const base = hostContext();
    const keys = stubKeySet(base.config);
    keys.tls.names = [base.config.hostname];
    const ctx = hostContext({}, { keys });
    await webService.build(ctx);
    expect(ctx.warnings.join('\n')).toContain('does not cover autoconfig.example.net');
    expect(webNames(ctx.config)).toContain('mta-sts.example.org');
  });
});

describe('the Web Key Directory', () => {
  const alice = 'alice@example.org' as Email;
  const withKey = (): BuildContext => ({ ...hostContext({ openpgpKeys: ['alice@example.org=alice.asc'] }), openpgpKeys: new Map([[alice, ALICE_BINARY]]) });

  it('holds each key, binary, under the z-base-32 name of its local part, with the policy file, in its domain\'s folder', async () => {
    const files = await webService.build(withKey());
    const wkd = files.filter((f) => f.path.includes('openpgpkey'));
    expect(wkd.map((f) => [f.path, f.mode])).toEqual([
      [`www/example.org/.well-known/openpgpkey/example.org/hu/${ALICE_WKD_HASH}`, 0o644],
      ['www/example.org/.well-known/openpgpkey/example.org/policy', 0o644],
    ]);
    expect(wkd[0]!.data.equals(ALICE_BINARY)).toBe(true);
    expect(wkd[1]!.data.length).toBe(0);
  });

  it('takes the bundle\'s copy when no key was given this run (the rehearsal renders from the bundle)', async () => {
    const ctx = hostContext({ openpgpKeys: ['alice@example.org'] });
    ctx.previous = { dir: '/b', read: (p) => (p === 'openpgp/alice@example.org.pgp' ? ALICE_BINARY : undefined) };
    const files = await webService.build(ctx);
    expect(files.find((f) => f.path.endsWith(`/hu/${ALICE_WKD_HASH}`))?.data.equals(ALICE_BINARY)).toBe(true);
  });

  it('serves openpgpkey.<domain> for a domain with a key: the hu files as octet-stream for any origin, the policy, nothing else', async () => {
    const ctx = withKey();
    const conf = file(await webService.build(ctx), 'nginx/selfmail.conf');
    const wkd = conf.slice(conf.indexOf('# And the Web Key Directory'));
    expect(wkd).toContain('server_name openpgpkey.example.org;');
    expect(wkd).not.toContain('openpgpkey.example.net');
    expect(conf).toContain('    openpgpkey.example.org example.org;');
    const hu = 'location ~ "^/\\.well-known/openpgpkey/[a-z0-9.-]+/hu/[ybndrfg8ejkmcpqxot1uwisza345h769]{32}$" {';
    expect(wkd).toContain(`${hu}\n        types { }\n        default_type application/octet-stream;\n        add_header Access-Control-Allow-Origin * always;\n`);
    expect(wkd).toContain('location ~ "^/\\.well-known/openpgpkey/[a-z0-9.-]+/policy$" {');
    expect(wkd).toMatch(/location \/ \{\n {8}return 404;/);
    // The location's add_header replaces the server's: HSTS and nosniff are said again there.
    expect(wkd.match(/Strict-Transport-Security/g)).toHaveLength(3);
    expect(webNames(ctx.config)).toContain('openpgpkey.example.org');
    expect(webNames(ctx.config)).not.toContain('openpgpkey.example.net');
    expect(ctx.warnings.join('\n')).not.toContain('does not cover');
  });

  it('changes nothing for a setup without keys: no WKD file, server or name', async () => {
    const ctx = hostContext();
    const files = await webService.build(ctx);
    expect(files.some((f) => f.path.includes('openpgpkey'))).toBe(false);
    expect(file(files, 'nginx/selfmail.conf')).not.toContain('openpgpkey');
    expect(webNames(ctx.config).some((n) => n.startsWith('openpgpkey.'))).toBe(false);
  });
});
