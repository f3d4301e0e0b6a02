/**
 * The mail configs, rendered for a temporary root, judged by the real tools: postfix check,
 * postconf -n, doveconf -n; and the submission header checks run by postmap.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { installedPath } from '../../src/bundle/layout.js';
import type { BuildContext, BundleFile, ServiceModule } from '../../src/bundle/types.js';
import type { Email } from '../../src/config/types.js';
import { dovecotService } from '../../src/dovecot/index.js';
import { ToolError } from '../../src/errors.js';
import { hashPassword } from '../../src/mail/passwords.js';
import { postfixService } from '../../src/postfix/index.js';
import { rspamdService } from '../../src/rspamd/index.js';
import { services } from '../../src/services.js';
import { run } from '../../src/tools/run.js';
import { mailTestContext } from '../helpers/mail-keyset.js';

let ctx: BuildContext;
let root: string;
let cleanup: () => Promise<void>;

beforeAll(async () => {
  const hash = await hashPassword('throwaway-test-password');
  ({ ctx, root, cleanup } = await mailTestContext(new Map([['alice@example.org' as Email, hash], ['bob@example.net' as Email, hash]])));
});
afterAll(async () => cleanup?.());

/** The files of `service` with `path` changed by `edit`. */
async function edited(service: ServiceModule, path: string, edit: (text: string) => string): Promise<BundleFile[]> {
  const files = await service.build(ctx);
  return files.map((f) => (f.path === path ? { ...f, data: Buffer.from(edit(f.data.toString('utf8'))) } : f));
}

describe('mail services', () => {
  it('are registered', async () => {
    const names = (await services()).map((s) => s.name);
    expect(names).toEqual(expect.arrayContaining(['postfix', 'dovecot', 'rspamd']));
    // rspamd signs: OpenDKIM is gone.
    expect(names).not.toContain('opendkim');
  });

  it('build byte-identical files from the same inputs', async () => {
    for (const s of [postfixService, dovecotService, rspamdService]) {
      const a = await s.build(ctx);
      const b = await s.build(ctx);
      expect(a.map((f) => [f.path, f.data.toString('base64'), f.mode])).toEqual(b.map((f) => [f.path, f.data.toString('base64'), f.mode]));
    }
  });
});

describe('postfix', () => {
  it('passes postfix check and postconf -n without a warning', async () => {
    await expect(postfixService.check!(ctx, await postfixService.build(ctx))).resolves.toBeUndefined();
    const out = await run('postconf', ['-c', `${root}/etc/postfix`, '-h', 'smtpd_tls_auth_only', 'disable_vrfy_command', 'smtpd_forbid_bare_newline']);
    expect(out.stdout.split('\n').slice(0, 3)).toEqual(['yes', 'yes', 'normalize']);
  });

  it('fails on a misspelt parameter', async () => {
    const files = await edited(postfixService, 'postfix/main.cf', (t) => `${t}smtpd_tls_auth_onyl = yes\n`);
    await expect(postfixService.check!(ctx, files)).rejects.toThrow(/smtpd_tls_auth_onyl/);
  });

  it('fails when postfix check refuses a setting postconf accepts', async () => {
    const files = await edited(postfixService, 'postfix/main.cf', (t) => `${t}mail_owner = root\n`);
    await expect(postfixService.check!(ctx, files)).rejects.toThrow(/postfix check failed/);
  });

  it('strips the client from Received and drops revealing headers on submission only', async () => {
    await postfixService.check!(ctx, await postfixService.build(ctx));
    const dir = await mkdtemp(join(tmpdir(), 'selfmail-mail-postmap-'));
    try {
      await writeFile(join(dir, 'main.cf'), '');
      const headers = [
        'Received: from laptop.home (unknown [198.51.100.7])',
        '\t(using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits))',
        '\tby mail.example.org (Postfix) with ESMTPSA id 4Xy7Zk1abc',
        '\tfor <bob@example.net>; Thu, 15 Jan 2026 12:00:00 +0000 (UTC)',
        'User-Agent: Thunderbird/128.0',
        'X-Mailer: Some Mailer 1.0',
        'X-Originating-IP: [198.51.100.7]',
        'Subject: hello',
        'Received: from mx.example.com (mx.example.com [192.0.2.9]) by mail.example.org (Postfix) with ESMTPS id 5ABC for <alice@example.org>; Thu, 15 Jan 2026 12:00:00 +0000',
        '',
        'body',
        '',
      ].join('\n');
      const table = `regexp:${installedPath(ctx.profile, 'postfix/submission_header_checks')}`;
      const out = await run('postmap', ['-c', dir, '-h', '-q', '-', table], { input: headers });
      const results = out.stdout.split(/\n(?=[^\t])/).filter((l) => l !== '');
      expect(results).toHaveLength(4);
      expect(results[0]).toMatch(/\tREPLACE Received: by mail\.example\.org \(Postfix\) with ESMTPSA id 4Xy7Zk1abc\n\tfor <bob@example\.net>; Thu, 15 Jan 2026/);
      expect(results[0]!.split('\tREPLACE ')[1]).not.toMatch(/198\.51\.100\.7|laptop/);
      expect(results.slice(1).map((r) => r.trim().replace(/:.*\t/, ' '))).toEqual(['User-Agent IGNORE', 'X-Mailer IGNORE', 'X-Originating-IP IGNORE']);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('dovecot', () => {
  it('passes doveconf -n', async () => {
    const files = await dovecotService.build(ctx);
    await expect(dovecotService.check!(ctx, files)).resolves.toBeUndefined();
    const out = await run('doveconf', ['-c', installedPath(ctx.profile, 'dovecot/dovecot.conf'), '-h', 'ssl_min_protocol']);
    expect(out.stdout.trim()).toBe('TLSv1.2');
    expect(files.find((f) => f.path === 'dovecot/users')?.mode).toBe(0o600);
  });

  it('fails on an unknown setting', async () => {
    const files = await edited(dovecotService, 'dovecot/dovecot.conf', (t) => `${t}ssl_min_protocoll = TLSv1.2\n`);
    await expect(dovecotService.check!(ctx, files)).rejects.toThrow(/ssl_min_protocoll/);
  });
});

describe('password hashes', () => {
  it('doveadm pw -t accepts every stored hash with its password and rejects a wrong one', async () => {
    const users = (await dovecotService.build(ctx)).find((f) => f.path === 'dovecot/users')!.data.toString('utf8');
    const hashes = users.split('\n').filter((l) => l !== '').map((l) => l.split(':')[1]!);
    expect(hashes).toHaveLength(2);
    await mkdir(root, { recursive: true });
    for (const hash of hashes) {
      // The password goes on stdin, never in argv.
      const ok = await run('doveadm', ['pw', '-t', hash], { input: 'throwaway-test-password\n' });
      expect(ok.stdout).toContain('(verified)');
      await expect(run('doveadm', ['pw', '-t', hash], { input: 'wrong-password\n' })).rejects.toBeInstanceOf(ToolError);
    }
  });
});
