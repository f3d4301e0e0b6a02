/**
 * Real signing: both OpenDKIM instances run from the rendered configs (Debian's OpenDKIM 2.11
 * with the key store's PKCS#8 PEM keys, Ed25519 included), a message passes through them the way Postfix's
 * submission service passes it, and mailauth verifies both signatures against the TXT records.
 * The same message arriving like inbound mail on port 25 is not signed.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { chmod, stat } from 'node:fs/promises';
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { installedPath } from '../../src/bundle/layout.js';
import type { BuildContext } from '../../src/bundle/types.js';
import { mailPaths } from '../../src/mail/paths.js';
import { applyOwners, systemIds } from '../../src/mail/system.js';
import { ORIGINATING } from '../../src/opendkim/model.js';
import { opendkimService } from '../../src/opendkim/index.js';
import { mailTestContext } from '../helpers/mail-keyset.js';
import { type MilterMessage, milterSend } from '../helpers/mail-milter.js';

let ctx: BuildContext;
let cleanup: () => Promise<void>;
const daemons: ChildProcess[] = [];

async function waitForPort(port: number): Promise<void> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect({ host: '127.0.0.1', port });
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`nothing listens on 127.0.0.1:${port}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

beforeAll(async () => {
  let root: string;
  ({ ctx, root, cleanup } = await mailTestContext());
  // Ports of their own, so this file can run beside the other mail tests.
  ctx.profile = { ...ctx.profile, ports: { ...ctx.profile.ports, milter: 21891 } };
  const files = await opendkimService.build(ctx);
  await opendkimService.check!(ctx, files);
  // What the rehearsal must do too: OpenDKIM drops to the opendkim user before it reads keys.
  await chmod(root, 0o755);
  await applyOwners(ctx.profile, ctx.keys.files);
  const od = await systemIds('opendkim', 'opendkim');
  for (const k of ctx.keys.dkim) expect((await stat(installedPath(ctx.profile, k.privateKeyPath))).uid).toBe(od.uid);
  for (const conf of ['opendkim/opendkim.conf', 'opendkim/opendkim-ed25519.conf']) {
    const p = spawn('/usr/sbin/opendkim', ['-f', '-x', installedPath(ctx.profile, conf)], { stdio: 'ignore' });
    daemons.push(p);
  }
  const paths = mailPaths(ctx.profile);
  await waitForPort(paths.milterRsa.port);
  await waitForPort(paths.milterEd25519.port);
});

afterAll(async () => {
  for (const p of daemons) if (p.exitCode === null) p.kill('SIGTERM');
  await Promise.all(daemons.map((p) => (p.exitCode === null ? new Promise((r) => p.once('exit', r)) : undefined)));
  await cleanup?.();
});

const headers: [string, string][] = [
  ['From', ' Alice <alice@example.org>'],
  ['To', ' bob@example.com'],
  ['Subject', ' dual signature'],
  ['Date', ' Thu, 15 Jan 2026 12:00:00 +0000'],
  ['Message-ID', ' <dual-1@example.org>'],
];
const body = 'Two signatures, one message.\r\n';

const submitted: MilterMessage = {
  connectMacros: { '{daemon_name}': ORIGINATING, j: 'mail.example.org' },
  mailMacros: { i: 'TESTQ1', '{auth_type}': 'PLAIN', '{auth_authen}': 'alice@example.org' },
  clientAddress: '127.0.0.5',
  from: 'alice@example.org',
  to: 'bob@example.com',
  headers,
  body,
};

describe('opendkim', () => {
  it('signs submitted mail with rsa-sha256 and ed25519-sha256, and both verify', async () => {
    const paths = mailPaths(ctx.profile);
    // Postfix runs the milters in turn; each sees the headers the one before it added.
    const rsa = await milterSend(paths.milterRsa.port, submitted);
    const ed = await milterSend(paths.milterEd25519.port, { ...submitted, headers: [...rsa.added, ...headers] });
    expect(rsa.added.map(([n]) => n)).toEqual(['DKIM-Signature']);
    expect(ed.added.map(([n]) => n)).toEqual(['DKIM-Signature']);
    const selector = (alg: string) => ctx.keys.dkim.find((k) => k.domain === 'example.org' && k.algorithm === alg && k.state === 'active')!.selector;
    const [rsaSel, edSel] = [selector('rsa'), selector('ed25519')];
    expect(rsa.added[0]![1]).toMatch(new RegExp(`a=rsa-sha256;.*d=example\\.org;\\s+s=${rsaSel};`, 's'));
    expect(ed.added[0]![1]).toMatch(new RegExp(`a=ed25519-sha256;.*d=example\\.org;\\s+s=${edSel};`, 's'));
    const all = [...ed.added, ...rsa.added, ...headers];
    const message = `${all.map(([n, v]) => `${n}:${v.replace(/\n/g, '\r\n')}`).join('\r\n')}\r\n\r\n${body}`;
    const txt = new Map(ctx.keys.dkim.map((k) => [`${k.selector}._domainkey.${k.domain}`, k.txt]));
    const { dkimVerify } = await import('mailauth/lib/dkim/verify.js');
    const result = await dkimVerify(Buffer.from(message), {
      resolver: async (name: string, type: string) => {
        const value = txt.get(name);
        if (type !== 'TXT' || !value) throw Object.assign(new Error('ENOTFOUND'), { code: 'ENOTFOUND' });
        return [[value]];
      },
    });
    const outcome = result.results.map((r) => `${r.signingDomain} ${r.selector} ${r.status.result}`).sort();
    expect(outcome).toEqual([`example.org ${edSel} pass`, `example.org ${rsaSel} pass`].sort());
  });

  it('does not sign mail arriving unauthenticated on port 25, even from loopback', async () => {
    const inbound: MilterMessage = {
      ...submitted,
      connectMacros: { '{daemon_name}': 'mail.example.org', j: 'mail.example.org' },
      mailMacros: { i: 'TESTQ2' },
      clientAddress: '127.0.0.1',
    };
    const r = await milterSend(mailPaths(ctx.profile).milterRsa.port, inbound);
    expect(r.added.map(([n]) => n)).not.toContain('DKIM-Signature');
    expect(r.verdict).not.toBe('r');
  });
});
