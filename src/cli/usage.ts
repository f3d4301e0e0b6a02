/**
 * Each command's own help: what it does, its flags, an example. `selfmail <command> --help`
 * prints it; the global help lists the commands. Plain text, loaded without anything heavy.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { InputError } from '../errors.js';

/** init's flags, shown by `selfmail init --help` and by the global help. */
export const INIT_FLAGS = `  --domain NAME              mail domain; repeatable; the first is the primary (required)
  --hostname FQDN            the mail host's name (default mail.<primary>)
  --ipv4 ADDR, --ipv6 ADDR   public addresses of the mail host (at least one)
  --ns FQDN[=ADDR,...]       a name server you run; repeatable (default ns1.<primary>, this host)
  --admin EMAIL              postmaster and report address (default: the first --user)
  --user EMAIL               a mailbox; repeatable (at least one)
  --password-file FILE       lines "email:password" ("-" reads stdin); never passwords in argv
  --admin-ssh-from CIDR      networks allowed to reach SSH; repeatable; none: SSH closed
  --ingress MODE             direct | port-forward | own-vps (default direct)
  --vps-ipv4 ADDR, --vps-ipv6 ADDR
                             with own-vps: the public addresses of your VPS (published in DNS)
  --vps-wg-key KEY           with own-vps: the VPS's WireGuard public key (vps/setup.sh prints it)
  --listen-ipv4 ADDR         with port-forward: this host's LAN address
  --listen-ipv6 ADDR         with port-forward: the IPv6 address services bind to
  --acme-ca NAME             the CA named in CAA records (default letsencrypt.org)
  --no-dnssec                do not sign the zones (for registrars that take no DS)
  --target RELEASE           debian-13 | debian-12: the mail host's release (default: this machine's)
  --spam-lookups LIST        outside blocklists the spam filter may ask: spamhaus, surbl (default: none;
                             each learns about every message: REPORT.md says what)
  --alias SRC=DEST[,DEST]    an alias (repeatable); SRC @domain for a catch-all, which never takes
                             mail for a mailbox or another alias (selfmail alias add does the same)
  --quota EMAIL=SIZE         a mailbox's storage limit, like alice@example.org=2G (repeatable; at
                             least 1M; none by default), enforced by Dovecot
  --backup-to TARGET         the daily encrypted backup (selfmail-backup.timer): a folder of the
                             host (an attached disk), sftp://USER@HOST/PATH (a machine of yours), or none
  --backup-recipient KEY     an age public key (age1…) of a device of yours; repeatable; the only
                             keys that read the backups (make one there: age-keygen -o key.txt)
  --backup-host-key KEY      with sftp://: the backup machine's SSH host public key, the only one
                             accepted (there: cat /etc/ssh/ssh_host_ed25519_key.pub)
  --openpgp-key EMAIL=FILE   publish a mailbox's OpenPGP public key (gpg --export --armor EMAIL >
                             FILE): OPENPGPKEY record (with DNSSEC) and Web Key Directory; repeatable;
                             added to the keys the bundle already publishes; EMAIL=none drops one.
                             A private key is refused
  --out DIR                  bundle directory (default ./selfmail-bundle)
  --config FILE              YAML or JSON with the same settings; flags override it
  --non-interactive          never prompt; report every missing or invalid value at once
  --json                     a JSON summary on stdout and nothing else on stdout
  --demo                     a complete bundle for example.org on documentation addresses
`;

export const USAGE: Record<string, string> = {
  init: `selfmail init [flags] — create or update a bundle (a wizard on a terminal)

${INIT_FLAGS}
Example:
  umask 077; printf 'alice@example.org:%s\\n' "$PASSWORD" > pw.txt
  selfmail init --non-interactive --domain example.org --ipv4 203.0.113.25 \\
    --user alice@example.org --password-file pw.txt --admin-ssh-from 198.51.100.0/24 --out ./bundle
`,
  rehearse: `selfmail rehearse --bundle DIR [--password-file FILE] [--json]
  — run the bundle's NSD, rspamd, Dovecot and Postfix on loopback (as root) and exchange real
    mail: DNSSEC, submission 587/465, inbound 25, IMAPS, DKIM, SPF, DMARC, and the refusals;
    with --ingress own-vps, through a VPS it makes from the bundle's vps/ (WireGuard: a Debian
    kernel has it, elsewhere install wireguard-go)

  --bundle DIR               the bundle written by selfmail init (required)
  --password-file FILE       lines "email:password": also log in as these real mailboxes
  --json                     the report as JSON on stdout

Exit 0 when every step passed, 4 when one failed. Example:
  sudo selfmail rehearse --bundle ./bundle
`,
  apply: `selfmail apply --bundle DIR [--root DIR] [--dry-run] [--no-reload] [--allow-ssh-lockout] [--json]
  — check the bundle with the services' own tools, install it, create the mail account, enable
    and start every unit; roll back on failure (run on the mail host, as root)

  --bundle DIR               the bundle written by selfmail init (required)
  --root DIR                 install under DIR (a system root with its own etc/passwd) instead of /
  --dry-run                  show what would change (a diff; secrets named, never shown)
  --no-reload                install and check, leave the units alone
  --allow-ssh-lockout        go on although the new firewall or keys-only SSH would lock you out
  --json                     the result as JSON on stdout

Example:
  sudo selfmail apply --bundle ./bundle --dry-run && sudo selfmail apply --bundle ./bundle
`,
  verify: `selfmail verify --bundle DIR [--root DIR] [--json]
  — compare what is installed with MANIFEST.sha256: files, modes, owners, files that should be
    gone, the mail account, signatures, the certificate and its TLSA pin, the DS

  --bundle DIR               the bundle written by selfmail init (required)
  --root DIR                 look under DIR instead of /
  --json                     the findings as JSON on stdout

Exit 0 when nothing drifted, 4 when something did. Example:
  sudo selfmail verify --bundle ./bundle
`,
  keys: `selfmail keys list --bundle DIR [--json]
selfmail keys rotate dkim --bundle DIR [--domain NAME]...
selfmail keys rotate tls --bundle DIR [--immediately]
selfmail keys rotate dnssec --bundle DIR --zsk|--ksk|--ksk --parent-confirmed [--domain NAME]...
selfmail keys retire dkim --bundle DIR --selector S [--selector S]...
  — inspect keys, their stages and next steps (public fingerprints only; missing ones named),
    rotate the DKIM selectors (a new pair signs, the old one stays published), the TLS key (the
    next one, pinned by TLSA already, serves) or the DNSSEC keys, retire an old DKIM selector
    (its records and key files go; apply removes them from the host)

  --bundle DIR               the bundle (required)
  --domain NAME              rotate only this domain's DKIM or DNSSEC keys; repeatable (default: all)
  --immediately              with rotate tls: now, without waiting two hours for the next key's TLSA
  --zsk                      with rotate dnssec: publish the next ZSK now; it signs 3 days later and
                             the old one leaves 30 days after (this also happens every 90 days by itself)
  --ksk                      with rotate dnssec: a new KSK signs beside the old one, named by CDS and
                             CDNSKEY; give the registrar its DS (dns/<zone>.ds)
  --parent-confirmed         with --ksk: the parent serves the new DS; the old KSK leaves 2 days later
  --selector S               with retire: the selector to drop; repeatable
  --json                     JSON on stdout

Exit 2 (nothing changed) for a rotation in the middle of another, naming when it may start. Example:
  selfmail keys rotate dkim --bundle ./bundle && sudo selfmail apply --bundle ./bundle
`,
  dns: `selfmail dns resign --bundle DIR [--json]
  — re-sign the zones whose DNSSEC signatures expire within a week (the host does this daily
    with selfmail-resign.timer; this is the same on the bundle)

  --bundle DIR               the bundle (required)
  --json                     a JSON summary on stdout

Example:
  selfmail dns resign --bundle ./bundle
`,
  user: `selfmail user add EMAIL --bundle DIR [--password-file FILE] [--quota SIZE] [--apply]
selfmail user passwd EMAIL --bundle DIR [--password-file FILE] [--apply]
selfmail user quota EMAIL SIZE|none --bundle DIR [--apply]
selfmail user remove EMAIL --bundle DIR [--apply [--keep-mail]]
selfmail user list --bundle DIR [--json]
  — add a mailbox, change its password or its storage limit, remove it, list them: each a
    change of selfmail.yaml and the normal generation, so the other files and the other
    mailboxes' hashes stay as they were. The admin's mailbox cannot be removed (postmaster@ and abuse@ reach it).
    remove --apply deletes the mailbox's mail on the host once Dovecot no longer knows it
    (--keep-mail keeps it); without --apply the mail is never touched.

  --bundle DIR               the bundle (required)
  --password-file FILE       a line "EMAIL:PASSWORD" (chmod 600), or - for stdin; without it, a
                             hidden prompt on a terminal. Never on the command line
  --quota SIZE               with add: the mailbox's storage limit (like 2G; at least 1M; none by
                             default), enforced by Dovecot: a delivery over it is refused
  --apply                    then selfmail apply --bundle DIR on this host (as root)
  --keep-mail                with remove --apply: keep the mailbox's messages on the host
  --json                     with list: JSON on stdout

Example:
  selfmail user add bob@example.org --bundle ./bundle && sudo selfmail apply --bundle ./bundle
`,
  doctor: `selfmail doctor --bundle DIR [--port25-via DOMAIN] [--ask-blocklists LIST[,LIST]] [--json]
  — what is true on the live host and the network around it, beside what verify compares on
  disk. Checks, by id, and whom each asks:
    services      every unit the bundle needs is active and enabled (systemd)
    resign-timer  selfmail-resign.timer is enabled, ran within two days and succeeded (systemd)
    backup        with --backup-to, selfmail-backup.timer likewise; without, a warning (systemd)
    cert-expiry   ports 25, 465, 587, 993 and 443 serve a certificate for the bundle's key:
                  issuer, expiry (warn within 14 days), self-signed or CA-issued (its own ports)
    tlsa-matches  what 25, 465, 587 and 993 serve is pinned by the TLSA records the host's own
                  name server answers
    dnssec-valid  each zone validates (delv) against the bundle's DS records, with signatures
                  good for more than 7 days (its own NSD), and is not bogus from the root
                  (its own resolver)
    mta-sts       each policy is served over TLS the system's CAs verify, says enforce, and
                  matches the id of its _mta-sts TXT record (its own NSD and nginx)
    upnp          nothing on the LAN answers UPnP IGD discovery and the gateway answers no
                  NAT-PMP/PCP (the router: one M-SEARCH, one NAT-PMP request; nothing mapped)
    nat           the public address is on this host, or a port forward is configured (its interfaces)
    cgnat         no carrier-grade NAT in front (its interfaces, the router's NAT-PMP answer)
    ptr           each public address has the PTR of the mail host, which resolves back
                  (its own resolver, unbound, which asks the reverse zones' servers)
    port25-out    port 25 of DOMAIN's MX opens from here: only with --port25-via, as that MX
                  learns this host's address
    port25-in     unknown: only a vantage point of your own outside could tell; no vendor is asked
    delegation    the parent zone's servers delegate each zone to the bundle's name servers,
                  with its glue (its resolver to find them, then those servers directly)
    ds-at-parent  the parent serves the DS of the bundle's KSK, and no other (the same servers)
    blocklists    the host's addresses are on none of the DNS blocklists given with
                  --ask-blocklists (their operators learn that this host asks)
    Each is pass, warn, fail or unknown; anything not passing says what to do. No web service
    is asked about this host. Run it as root on the mail host. Exit 0 when nothing fails, 5
    when a check does.

  --bundle DIR               the bundle (required)
  --port25-via DOMAIN        try port 25 of DOMAIN's MX (opt-in: that MX learns this host's address)
  --ask-blocklists LIST      DNS blocklist zones to look the host's addresses up in, comma-separated
                             or repeated (opt-in: each list's operator learns them)
  --json                     the checks as JSON on stdout: { ok, checks: [{ id, status, summary, fix, asked }] }

Example:
  sudo selfmail doctor --bundle ./bundle
  sudo selfmail doctor --bundle ./bundle --port25-via example.net --ask-blocklists zen.spamhaus.org
`,
  backup: `selfmail backup --bundle DIR [--to TARGET --recipient AGE_PUBLIC_KEY [--recipient KEY…] [--host-key KEY]] [--root DIR] [--json]
selfmail backup --list (--to TARGET | --bundle DIR) [--json]
selfmail backup --remote-setup (--to sftp://USER@HOST/PATH | --bundle DIR)
  — the mailboxes (/var/vmail), the bundle (keys, config, state), Dovecot's and rspamd's state and
    selfmail's own, encrypted with age to your recipients into a folder (an attached disk) or onto
    a machine of yours over SFTP. Incremental: a file already in the target is not sent again.
    The key that reads the backups is born on your device (age-keygen -o key.txt there) and never
    reaches this host: give only the public key it prints. The target's owner sees how many files,
    their sizes and the times of the runs, nothing else (object names are keyed hashes).
    Without --to: the bundle's own settings (init --backup-to), as the daily timer runs it.

  --bundle DIR               the bundle (required to back up)
  --to TARGET                a folder: empty, or one backed up to before; or sftp://USER@HOST[:PORT]/PATH
                             (reached with a key made on this host for it, and only the host key given)
  --recipient KEY            an age public key (age1…), repeatable; an identity (AGE-SECRET-KEY-…)
                             is refused: it must stay on your device
  --host-key KEY             with sftp://: the backup machine's SSH host public key (there:
                             cat /etc/ssh/ssh_host_ed25519_key.pub); nothing is learnt on first use
  --root DIR                 prefix of the system paths (tests, a mounted disk of a host)
  --list                     the snapshots in the target: names, times and sizes (no identity needed)
  --remote-setup             make this host's backup key (if it has none) and print what the backup
                             machine needs: a user locked into one folder (chroot, SFTP only, this key)
  --json                     the result as JSON on stdout

Exit 0 done, 2 bad input (nothing written), 4 the target failed (full, unreachable, a wrong host
key): earlier backups are left as they were, and this run wrote no snapshot. Example:
  sudo selfmail backup --bundle ./bundle --to /mnt/backup --recipient age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p
  sudo selfmail backup --remote-setup --to sftp://selfmail-backup@nas.home.arpa/backup
`,
  restore: `selfmail restore --from TARGET --identity FILE [--snapshot NAME] (--drill | --to DIR) [--json]
  — open a backup with the age identity from your device (bring it for the occasion; remove it after).
    --drill restores into a temporary folder and checks it: every file byte-identical to what was
    backed up, the bundle's MANIFEST.sha256, and that the restored keys are the ones the restored
    zones publish (DKIM TXT, the DS given to the registrar, TLSA); the folder is removed after.
    --to DIR restores each file at its original path under DIR (/ on a new host), never over an
    existing one; then selfmail apply --bundle <the restored bundle>.

  --from TARGET              the backup folder, or sftp://USER@HOST[:PORT]/PATH read with your own
                             SSH key and known_hosts (required)
  --identity FILE            the age identity file (required); a file holding only a public key is refused
  --snapshot NAME            a snapshot of selfmail backup --list (default: the newest)
  --drill                    check the backup, restore nothing
  --to DIR                   where to restore (without --drill)
  --json                     the result as JSON on stdout

Exit 0 done (drill: every check passed), 2 bad input or an identity that does not open the backup,
4 the target could not be read, 5 a drill check failed. Example:
  selfmail restore --from /mnt/backup --identity ~/key.txt --drill
`,
  import: `selfmail import --bundle DIR --mailbox EMAIL --from imaps://HOST[:PORT] --login LOGIN [--password-file FILE] [--ca-file FILE]
  — copy every folder and message (with its flags) of a mailbox at an old provider into EMAIL,
    a mailbox of this host, with Dovecot's own engine (doveadm sync, one way, over IMAP). The old
    server is only read; mail already in EMAIL stays. TLS only, the certificate checked; a re-run
    copies only what is not here yet, so an interrupted import goes on where it stopped. Run it as
    root on the mail host, after selfmail apply.

  --bundle DIR               the bundle (required)
  --mailbox EMAIL            the mailbox here that receives the mail (required)
  --from imaps://HOST[:PORT] the old server (port 993 by default); imap:// is refused (exit 2)
  --login LOGIN              the login there (required)
  --password-file FILE       a file holding that password on one line (chmod 600), or - for
                             stdin; without it, a hidden prompt on a terminal. Never on the
                             command line; used for this import only, not kept
  --ca-file FILE             trust this CA certificate for the old server instead of the
                             system's store (a server with a CA of its own)
  --json                     the result (folders, message counts) as JSON on stdout

Example:
  selfmail import --bundle ./bundle --mailbox alice@example.org --from imaps://imap.old.example --login alice@old.example --password-file ./old-password
`,
  alias: `selfmail alias add SOURCE TARGET... --bundle DIR [--apply]
selfmail alias remove SOURCE --bundle DIR [--apply]
selfmail alias list --bundle DIR [--json]
  — aliases of the bundle's domains, each delivering to one or more addresses (mailboxes here,
    other aliases, or addresses elsewhere); SOURCE @domain is a catch-all, which takes only mail
    for addresses that are neither a mailbox nor an alias. Refused (exit 2, nothing changed): a
    SOURCE outside the domains, a mailbox, postmaster@ or abuse@ (they reach the admin), a TARGET
    in the domains that does not exist, a loop.

  --bundle DIR               the bundle (required)
  --apply                    then selfmail apply --bundle DIR on this host (as root)
  --json                     with list: JSON on stdout

Example:
  selfmail alias add info@example.org alice@example.org bob@example.org --bundle ./bundle
  selfmail alias add @example.org alice@example.org --bundle ./bundle
`,
};

/** Levenshtein distance, for "did you mean". Pure. */
function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const cur = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = cur;
    }
  }
  return row[b.length]!;
}

/** The known name closest to `given`, when it is close enough to be a typo. Pure. */
export function didYouMean(given: string, known: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestD = Number.POSITIVE_INFINITY;
  for (const k of known) {
    const d = distance(given, k);
    if (d < bestD) {
      best = k;
      bestD = d;
    }
  }
  return best !== undefined && bestD <= Math.max(2, Math.floor(given.length / 4)) ? best : undefined;
}

/**
 * parseArgs' complaint, with the typo's likely meaning when it names an unknown option:
 * "Unknown option '--bundel'" → "… (did you mean --bundle?)".
 */
/**
 * argv → parseArgs' values and positionals (strict). An unknown or malformed flag is an
 * InputError naming `command` (exit 2), with "did you mean" for a misspelt flag.
 */
export function parseCommandArgs<O extends NonNullable<ParseArgsConfig['options']>, P extends boolean>(command: string, args: string[], options: O, allowPositionals: P) {
  try {
    return parseArgs({ args, options, allowPositionals, strict: true });
  } catch (err) {
    throw new InputError([{ field: command, message: argsMessage(err, options) }]);
  }
}

export function argsMessage(err: unknown, options: Record<string, unknown>): string {
  const msg = (err as Error).message.replace(/\. To specify an option argument.*$/s, '');
  const m = /Unknown option '(--[^']+)'/.exec(msg);
  if (!m?.[1]) return msg;
  const guess = didYouMean(m[1], Object.keys(options).map((o) => `--${o}`));
  return guess ? `${msg} (did you mean ${guess}?)` : msg;
}
