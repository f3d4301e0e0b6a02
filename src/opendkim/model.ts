/**
 * What OpenDKIM is told, as prepared values: pure, no I/O.
 *
 * Debian 12 ships OpenDKIM 2.11.0~beta2, whose `SignatureAlgorithm` is one setting for the whole
 * filter (a per-key algorithm in the KeyTable came only in later upstream versions). Two
 * signatures per message (rsa-sha256 and ed25519-sha256) therefore take two filter instances:
 * the RSA one (`/etc/opendkim.conf`, Mode sv: it also verifies inbound mail on port 25) and
 * the Ed25519 one (`/etc/opendkim/opendkim-ed25519.conf`, Mode s). Postfix passes submitted mail
 * through both, inbound mail through the RSA one only.
 *
 * Only mail submitted with authentication is signed: the submission services call the milters
 * with the daemon name ORIGINATING (listed in `MTA`), and no client counts as internal by
 * address (`InternalHosts` is an empty list), so nothing arriving on port 25 is ever signed,
 * loopback included.
 */
import type { Profile } from '../bundle/layout.js';
import type { Config, DomainName } from '../config/types.js';
import type { DkimKey } from '../keys/types.js';
import { BUNDLE, installed, mailPaths } from '../mail/paths.js';

/** The daemon name Postfix's submission services give the milters (milter_macro_daemon_name). */
export const ORIGINATING = 'ORIGINATING';

export interface KeyEntry {
  /** KeyTable key: `<selector>._domainkey.<domain>`. */
  name: string;
  domain: DomainName;
  selector: string;
  /** The private key file as installed. */
  path: string;
}

export interface SigningEntry {
  domain: DomainName;
  key: string;
}

export interface OpendkimInstance {
  mode: 'sv' | 's';
  algorithm: 'rsa-sha256' | 'ed25519-sha256';
  socket: string;
  pidFile: string;
  signingTable: string;
  signing: SigningEntry[];
}

export interface OpendkimModel {
  hostname: DomainName;
  keyTable: string;
  trustedHosts: string;
  originating: string;
  keys: KeyEntry[];
  rsa: OpendkimInstance;
  ed25519: OpendkimInstance;
  /** The Ed25519 instance's config file, for its systemd unit. */
  ed25519Conf: string;
  /**
   * `RequireSafeKeys`: yes in production. A rehearsal root lies under the world-writable /tmp,
   * which OpenDKIM's check of every parent folder of a key file refuses; there it is no.
   */
  requireSafeKeys: 'yes' | 'no';
}

function entriesFor(config: Config, keys: readonly DkimKey[], algorithm: DkimKey['algorithm'], profile: Profile): KeyEntry[] {
  return [...config.domains].sort().map((domain) => {
    const active = keys.filter((k) => k.domain === domain && k.algorithm === algorithm && k.state === 'active');
    if (active.length !== 1) throw new Error(`expected one active ${algorithm} DKIM key for ${domain}, found ${active.length}`);
    const k = active[0]!;
    return { name: `${k.selector}._domainkey.${domain}`, domain, selector: k.selector, path: installed(profile, k.privateKeyPath) };
  });
}

/** Build the OpenDKIM model: one active RSA and one active Ed25519 key per domain. */
export function opendkimModel(config: Config, dkim: readonly DkimKey[], profile: Profile): OpendkimModel {
  const p = mailPaths(profile);
  const rsaKeys = entriesFor(config, dkim, 'rsa', profile);
  const edKeys = entriesFor(config, dkim, 'ed25519', profile);
  const sign = (keys: KeyEntry[]) => keys.map((k) => ({ domain: k.domain, key: k.name }));
  // OpenDKIM wants a literal address in brackets.
  const socket = (m: { host: string; port: number }) => `inet:${m.port}@[${m.host}]`;
  return {
    hostname: config.hostname,
    keyTable: installed(profile, BUNDLE.keyTable),
    trustedHosts: installed(profile, BUNDLE.trustedHosts),
    originating: ORIGINATING,
    keys: [...rsaKeys, ...edKeys].sort((a, b) => (a.name < b.name ? -1 : 1)),
    rsa: {
      mode: 'sv',
      algorithm: 'rsa-sha256',
      socket: socket(p.milterRsa),
      pidFile: `${p.opendkimRunDir}/opendkim.pid`,
      signingTable: installed(profile, BUNDLE.signingTable),
      signing: sign(rsaKeys),
    },
    ed25519: {
      mode: 's',
      algorithm: 'ed25519-sha256',
      socket: socket(p.milterEd25519),
      pidFile: `${p.opendkimRunDir}/opendkim-ed25519.pid`,
      signingTable: installed(profile, BUNDLE.signingTableEd25519),
      signing: sign(edKeys),
    },
    ed25519Conf: installed(profile, BUNDLE.opendkimEd25519Conf),
    requireSafeKeys: profile.kind === 'production' ? 'yes' : 'no',
  };
}
