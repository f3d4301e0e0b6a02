/**
 * An old mail provider for `selfmail import` to copy from: a Dovecot of this machine's (2.3 on
 * the Debian 12 machine the suite runs on) started in the outside namespace on port 993, with a
 * certificate from a CA of the test's own, one mailbox with folders (nested, non-ASCII), a few
 * hundred messages and flags. Its password has every character Dovecot's configuration syntax
 * treats specially, so the import's quoting is what makes the login work.
 */
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type PristineHost, type RunResult, must, sh } from './machine.js';

export const OLD = {
  name: 'imap.old.example',
  login: 'someone@old.example',
  password: 'old "provider" %{user} $ENV:HOME \\ # %% pass',
  /** Folder (separator /) → how many messages it holds. */
  folders: { INBOX: 120, Archive: 80, 'Archive/2019': 60, Sent: 30, 'Caf&AOk-': 10 } as Record<string, number>,
} as const;

export interface OldProvider {
  caPem: string;
  /** doveadm against the old provider's configuration, on this machine. */
  doveadm(args: readonly string[]): Promise<RunResult>;
  /** One more message into a folder of the old mailbox. */
  save(folder: string, message: string): Promise<void>;
  /** "folder flags" of every message it holds, sorted (\Recent dropped: a session flag). */
  inventory(): Promise<string[]>;
  stop(): Promise<void>;
}

export async function startOldProvider(host: PristineHost, address: string): Promise<OldProvider> {
  const dir = await mkdtemp(join(tmpdir(), 'selfmail-tier-old-'));
  await chmod(dir, 0o755);
  const p = (f: string) => join(dir, f);
  await must('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', p('ca.key'), '-out', p('ca.pem'), '-days', '3', '-subj', '/CN=old provider test CA']);
  await must('openssl', ['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', p('server.key'), '-out', p('server.csr'), '-subj', `/CN=${OLD.name}`, '-addext', `subjectAltName=DNS:${OLD.name}`]);
  await must('openssl', ['x509', '-req', '-in', p('server.csr'), '-CA', p('ca.pem'), '-CAkey', p('ca.key'), '-CAcreateserial', '-days', '2', '-copy_extensions', 'copy', '-out', p('server.pem')]);
  const hash = (await must('openssl', ['passwd', '-6', '-stdin'], { input: `${OLD.password}\n` })).stdout.trim();
  await writeFile(p('passwd'), `${OLD.login}:{SHA512-CRYPT}${hash}\n`, { mode: 0o644 });
  const uid = (await must('id', ['-u', 'nobody'])).stdout.trim();
  const gid = (await must('id', ['-g', 'nobody'])).stdout.trim();
  await must('install', ['-d', '-o', uid, '-g', gid, '-m', '0700', p('mail')]);
  const conf = p('dovecot.conf');
  await writeFile(
    conf,
    [
      `base_dir = ${p('run')}`,
      `state_dir = ${p('state')}`,
      'instance_name = selfmail-tier-old-provider',
      'protocols = imap',
      `listen = ${address}`,
      'ssl = required',
      `ssl_cert = <${p('server.pem')}`,
      `ssl_key = <${p('server.key')}`,
      'auth_mechanisms = plain',
      'passdb {',
      '  driver = passwd-file',
      `  args = ${p('passwd')}`,
      '}',
      'userdb {',
      '  driver = static',
      `  args = uid=${uid} gid=${gid} home=${p('mail')}/%u`,
      '}',
      'mail_location = maildir:~/Maildir',
      'namespace inbox {',
      '  inbox = yes',
      '  separator = /',
      '}',
      'service imap-login {',
      '  inet_listener imap {',
      '    port = 0',
      '  }',
      '  inet_listener imaps {',
      '    port = 993',
      '  }',
      '}',
      `log_path = ${p('log')}`,
      '',
    ].join('\n'),
  );
  const doveadm = (args: readonly string[]) => must('doveadm', ['-c', conf, ...args], { timeout: 120_000 });
  const save = async (folder: string, message: string) => void (await must('doveadm', ['-c', conf, 'save', '-u', OLD.login, '-m', folder], { input: message }));
  // Dovecot goes to the background: nothing of it may hold the test's pipes open.
  const started = await host.fromOutside(['sh', '-c', `exec dovecot -c ${conf} </dev/null >${p('start.log')} 2>&1`]);
  if (started.code !== 0) throw new Error(`the old provider's Dovecot did not start: ${await readFile(p('start.log'), 'utf8').catch(() => '')}`);

  // The mailbox: every message a Message-ID of the old provider's, so the copy can be told apart.
  const folders = Object.keys(OLD.folders).filter((f) => f !== 'INBOX');
  await doveadm(['mailbox', 'create', '-u', OLD.login, ...folders]);
  let n = 0;
  for (const [folder, count] of Object.entries(OLD.folders)) {
    for (let i = 0; i < count; i++, n++) {
      const message = `From: Old Sender <sender${n}@old.example>\r\nTo: ${OLD.login}\r\nSubject: old message ${n} in ${folder}\r\nMessage-ID: <old-${n}@old.example>\r\nDate: Mon, 1 Jan 2024 10:00:00 +0000\r\n\r\nThe body of old message ${n}.\r\n`;
      await save(folder, message);
    }
  }
  await doveadm(['flags', 'add', '-u', OLD.login, '\\Seen', 'mailbox', 'Archive', 'all']);
  await doveadm(['flags', 'add', '-u', OLD.login, '\\Seen', 'mailbox', 'Archive/2019', 'all']);
  await doveadm(['flags', 'add', '-u', OLD.login, '\\Flagged', 'mailbox', 'INBOX', 'uid', '1:10']);
  await doveadm(['flags', 'add', '-u', OLD.login, '\\Answered', 'mailbox', 'INBOX', 'uid', '5:15']);
  await doveadm(['flags', 'add', '-u', OLD.login, '$Forwarded', 'mailbox', 'Sent', 'uid', '1:5']);

  return {
    caPem: p('ca.pem'),
    doveadm,
    save,
    inventory: async () => inventoryOf((await doveadm(['fetch', '-u', OLD.login, 'mailbox flags hdr.message-id', 'all'])).stdout),
    stop: async () => {
      await sh('doveadm', ['-c', conf, 'stop']).catch(() => undefined);
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/**
 * `doveadm fetch 'mailbox flags hdr.message-id'` output → sorted "Message-ID folder flags" lines
 * for the old provider's messages only; \Recent dropped (a session flag).
 */
export function inventoryOf(stdout: string): string[] {
  const out: string[] = [];
  for (const record of stdout.split(/\f\n?/)) {
    const mailbox = /^mailbox: (.*)$/m.exec(record)?.[1]?.trim();
    const flags = /^flags: ?(.*)$/m.exec(record)?.[1] ?? '';
    const id = /^hdr\.message-id: (.*)$/m.exec(record)?.[1]?.trim();
    if (!mailbox || !id || !id.endsWith('@old.example>')) continue;
    const kept = flags.split(/\s+/).filter((f) => f && f !== '\\Recent').sort();
    out.push(`${id} ${mailbox} ${kept.join(' ')}`.trim());
  }
  return out.sort();
}
