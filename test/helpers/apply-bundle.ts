/**
 * A small but realistic bundle for the apply/verify tests, written by hand in a temp dir in the
 * layout `selfmail init` writes (DESIGN.md): Postfix, Dovecot, a DKIM key for rspamd, NSD with a zone signed by
 * ldns, the DS for the registrar, a TLS key and self-signed certificate pinned by TLSA, and
 * MANIFEST.sha256. Keys come from the real tools (openssl, ldns-keygen), never from argv.
 */
import { createHash, generateKeyPairSync, X509Certificate } from 'node:crypto';
import { chmod, lstat, mkdir, mkdtemp, readdir, readFile, readlink, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { run } from '../../src/tools/run.js';

export async function tempDir(prefix: string): Promise<string> {
  return mkdtemp(join(tmpdir(), `selfmail-${prefix}-`));
}

/**
 * Make `dir` a system root as apply wants one: the accounts of this machine (the Debian packages'
 * _rspamd, dovecot, nsd… and whatever else), and its os-release, as a root built from the same
 * packages would have them. apply adds the mail account there, never on this machine.
 */
export async function seedSystemRoot(dir: string): Promise<string> {
  await mkdir(join(dir, 'etc'), { recursive: true, mode: 0o755 });
  for (const f of ['passwd', 'group', 'shadow', 'gshadow', 'os-release']) {
    await run('cp', ['-pL', `/etc/${f}`, join(dir, 'etc', f)]);
  }
  return dir;
}

/** Temp dirs for one test file: `fresh(prefix)` makes one, `cleanup()` (in afterAll) removes them all. */
export function tempDirs(): { fresh: (prefix: string) => Promise<string>; freshRoot: () => Promise<string>; cleanup: () => Promise<void> } {
  const dirs: string[] = [];
  return {
    fresh: async (prefix) => {
      const d = await tempDir(prefix);
      dirs.push(d);
      return d;
    },
    freshRoot: async () => {
      const d = await tempDir('root');
      dirs.push(d);
      await chmod(d, 0o755);
      return seedSystemRoot(d);
    },
    cleanup: async () => {
      for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
    },
  };
}

export const MAIN_CF = `compatibility_level = 3.6
myhostname = mail.example.org
mydomain = example.org
myorigin = $mydomain
inet_interfaces = loopback-only
inet_protocols = ipv4
mydestination = localhost
smtpd_tls_chain_files = /etc/selfmail/tls/key.pem, /etc/selfmail/tls/cert.pem
smtpd_tls_security_level = may
smtpd_milters = inet:127.0.0.1:11332
non_smtpd_milters = $smtpd_milters
`;

export const MASTER_CF = `smtp      inet  n       -       y       -       -       smtpd
pickup    unix  n       -       y       60      1       pickup
cleanup   unix  n       -       y       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       y       1000?   1       tlsmgr
rewrite   unix  -       -       y       -       -       trivial-rewrite
bounce    unix  -       -       y       -       0       bounce
defer     unix  -       -       y       -       0       bounce
trace     unix  -       -       y       -       0       bounce
verify    unix  -       -       y       -       1       verify
flush     unix  n       -       y       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
smtp      unix  -       -       y       -       -       smtp
relay     unix  -       -       y       -       -       smtp
showq     unix  n       -       y       -       -       showq
error     unix  -       -       y       -       -       error
retry     unix  -       -       y       -       -       error
discard   unix  -       -       y       -       -       discard
local     unix  -       n       n       -       -       local
lmtp      unix  -       -       y       -       -       lmtp
anvil     unix  -       -       y       -       1       anvil
scache    unix  -       -       y       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
`;

const DOVECOT_CONF = `protocols = imap
listen = 127.0.0.1
ssl = required
ssl_cert = </etc/selfmail/tls/cert.pem
ssl_key = </etc/selfmail/tls/key.pem
mail_location = maildir:/var/mail/vhosts/%d/%n
passdb {
  driver = passwd-file
  args = scheme=ARGON2ID /etc/dovecot/users
}
userdb {
  driver = static
  args = uid=vmail gid=vmail home=/var/mail/vhosts/%d/%n
}
`;

const NSD_CONF = `server:
  ip-address: 127.0.0.1@53535
  zonesdir: "/etc/nsd/zones"
  hide-version: yes

zone:
  name: "example.org"
  zonefile: "example.org.zone.signed"
`;

const NFT = `table inet selfmail {
  chain input {
    type filter hook input priority 0; policy drop;
    iif lo accept
    ct state established,related accept
    tcp dport { 25, 53, 465, 993 } accept
    udp dport 53 accept
  }
}
`;

export interface FixtureOptions {
  /** RRSIG expiration of the signed zone; default 30 days after now. */
  rrsigExpiry?: Date;
  now?: Date;
}

/** YYYYMMDDhhmmss in UTC, the RRSIG time format. */
export function dnsTime(d: Date): string {
  return d.toISOString().replace(/[-:T]/g, '').slice(0, 14);
}

/** SHA-256 of the certificate's SubjectPublicKeyInfo, lower-case hex (the TLSA 3 1 1 data). */
export function spkiSha256(certPem: string): string {
  const der = new X509Certificate(certPem).publicKey.export({ type: 'spki', format: 'der' });
  return createHash('sha256').update(der).digest('hex');
}

async function put(dir: string, path: string, data: string | Buffer, mode = 0o644): Promise<void> {
  const full = join(dir, path);
  await mkdir(dirname(full), { recursive: true, mode: 0o755 });
  await writeFile(full, data, { mode });
  await chmod(full, mode);
}

/** Write MANIFEST.sha256 for every file of the bundle except itself (sorted, `sha256sum -c` format). */
export async function writeManifest(dir: string): Promise<void> {
  const lines: string[] = [];
  const walk = async (rel: string): Promise<void> => {
    for (const e of await readdir(join(dir, rel), { withFileTypes: true })) {
      const p = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) await walk(p);
      else if (p !== 'MANIFEST.sha256') {
        lines.push(`${createHash('sha256').update(await readFile(join(dir, p))).digest('hex')}  ${p}`);
      }
    }
  };
  await walk('');
  lines.sort((a, b) => (a.slice(66) < b.slice(66) ? -1 : 1));
  await writeFile(join(dir, 'MANIFEST.sha256'), `${lines.join('\n')}\n`, { mode: 0o644 });
}

/** Write the fixture bundle into `dir` (which exists and is empty). */
export async function makeBundle(dir: string, opts: FixtureOptions = {}): Promise<void> {
  const now = opts.now ?? new Date();
  const work = await tempDir('fixture-work');
  try {
    // TLS: key and self-signed certificate straight to files.
    await run('openssl', [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
      '-keyout', join(work, 'key.pem'), '-out', join(work, 'cert.pem'), '-days', '90', '-subj', '/CN=mail.example.org',
    ]);
    const certPem = await readFile(join(work, 'cert.pem'), 'utf8');
    await put(dir, 'keys/tls/key.pem', await readFile(join(work, 'key.pem')), 0o600);
    await put(dir, 'keys/tls/cert.pem', certPem);

    const dkim = generateKeyPairSync('rsa', { modulusLength: 2048 });
    await put(dir, 'keys/dkim/example.org/s1.private', dkim.privateKey.export({ type: 'pkcs8', format: 'pem' }), 0o600);

    // DNSSEC: one KSK, signed with ldns; DS digest type 2 from ldns-key2ds.
    const kg = await run('ldns-keygen', ['-a', 'ECDSAP256SHA256', '-k', 'example.org'], { cwd: work });
    const base = kg.stdout.trim();
    await run('ldns-key2ds', ['-n', '-2', `${base}.key`], { cwd: work }).then((r) => writeFile(join(work, 'ds'), r.stdout));
    const zone = `$ORIGIN example.org.
$TTL 3600
@ IN SOA ns1.example.org. hostmaster.example.org. 2026010101 7200 3600 1209600 3600
@ IN NS ns1.example.org.
@ IN MX 10 mail.example.org.
ns1 IN A 192.0.2.1
mail IN A 192.0.2.1
_25._tcp.mail IN TLSA 3 1 1 ${spkiSha256(certPem)}
`;
    await writeFile(join(work, 'example.org.zone'), zone);
    const expiry = opts.rrsigExpiry ?? new Date(now.getTime() + 30 * 86_400_000);
    const inception = new Date(Math.min(now.getTime(), expiry.getTime()) - 86_400_000);
    await run('ldns-signzone', ['-i', dnsTime(inception), '-e', dnsTime(expiry), '-f', 'signed', 'example.org.zone', base], { cwd: work });
    await put(dir, 'dns/example.org.zone', zone);
    await put(dir, 'dns/example.org.zone.signed', await readFile(join(work, 'signed')));
    await put(dir, 'dns/example.org.ds', await readFile(join(work, 'ds')));
    await put(dir, `keys/dnssec/example.org/${base}.key`, await readFile(join(work, `${base}.key`)));
    await put(dir, `keys/dnssec/example.org/${base}.private`, await readFile(join(work, `${base}.private`)), 0o600);

    await put(dir, 'selfmail.yaml', 'domains:\n  - example.org\nhostname: mail.example.org\ntarget: debian-12\n');
    await put(dir, 'REPORT.md', '# What this setup protects\n\nA test bundle.\n');
    await put(dir, 'postfix/main.cf', MAIN_CF);
    await put(dir, 'postfix/master.cf', MASTER_CF);
    await put(dir, 'dovecot/dovecot.conf', DOVECOT_CONF);
    await put(dir, 'dovecot/users', 'alice@example.org:{ARGON2ID}$argon2id$v=19$m=65536,t=3,p=1$c2FsdHNhbHQ$aGFzaGhhc2g\n', 0o600);
    await put(dir, 'nsd/nsd.conf', NSD_CONF);
    await put(dir, 'nftables/selfmail.nft', NFT);
    await chmod(join(dir, 'keys'), 0o700);
    await writeManifest(dir);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** Copy a bundle folder (modes kept) so a test can alter its copy. */
export async function copyBundle(from: string, to: string): Promise<void> {
  await run('cp', ['-a', `${from}/.`, to]);
}

/** Replace a bundle file's text and rewrite the manifest, as a new `init` would. */
export async function editBundle(dir: string, path: string, edit: (text: string) => string): Promise<void> {
  const full = join(dir, path);
  const st = await lstat(full);
  const tmp = `${full}.tmp`;
  await writeFile(tmp, edit(await readFile(full, 'utf8')), { mode: st.mode & 0o777 });
  await rename(tmp, full);
  await writeManifest(dir);
}

/**
 * A digest of a whole tree: every entry's path, type, mode and owner, every file's bytes and
 * mtime, every symlink's target. Two equal digests mean the tree is byte-identical (folder mtimes
 * aside, which any create-then-delete changes).
 */
export async function treeDigest(root: string): Promise<string> {
  const h = createHash('sha256');
  const walk = async (rel: string): Promise<void> => {
    const names = (await readdir(join(root, rel))).sort();
    for (const name of names) {
      const p = `${rel}/${name}`;
      const st = await lstat(join(root, p));
      h.update(`${p}\0${st.mode}\0${st.uid}\0${st.gid}\0`);
      if (st.isDirectory()) await walk(p);
      else if (st.isSymbolicLink()) h.update(await readlink(join(root, p)));
      else h.update(`${st.mtimeMs}\0`).update(await readFile(join(root, p)));
    }
  };
  await walk('');
  return h.digest('hex');
}
