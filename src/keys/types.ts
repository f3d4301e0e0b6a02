/**
 * What the key store hands to the rest of the pipeline: public parts and the bundle paths of the
 * private files. Private key bytes only travel inside `files` (mode 0600) and never through these
 * descriptions.
 */
import type { BundleFile } from '../bundle/types.js';
import type { DomainName } from '../config/types.js';

export interface DkimKey {
  domain: DomainName;
  /** DNS selector label, e.g. `202611r`. */
  selector: string;
  algorithm: 'rsa' | 'ed25519';
  /** The TXT value to publish at `<selector>._domainkey.<domain>`: `v=DKIM1; k=…; p=…`. */
  txt: string;
  /** Bundle-relative path of the private key (PEM, PKCS#8). */
  privateKeyPath: string;
  /**
   * The file rspamd signs with: the PEM for RSA, the same key in rspamd's own form for Ed25519
   * (`<selector>.rspamd`, see rspamdEd25519Key).
   */
  signingKeyPath: string;
  /** `active`: signs outgoing mail and is published. `published`: kept in DNS after a rotation. */
  state: 'active' | 'published';
  /** ISO date the key was generated. */
  created: string;
}

export interface DnssecKey {
  zone: DomainName;
  role: 'ksk' | 'zsk';
  /** RFC 4034 appendix B key tag. */
  tag: number;
  algorithm: 13;
  /** DNSKEY RDATA in presentation form: `257 3 13 <base64>`. */
  dnskey: string;
  /** DS RDATA (digest type 2) for a KSK: `<tag> 13 2 <HEX>`; undefined for a ZSK. */
  ds?: string;
  /** Bundle-relative path without extension: `keys/dnssec/example.org/Kexample.org.+013+12345`. */
  basePath: string;
  created: string;
  /**
   * The schedule (ISO times, src/keys/dnssec-plan.ts): when the key enters the DNSKEY set, when it
   * may sign, and when it leaves the zone (undefined: not scheduled yet).
   */
  publish: string;
  activate: string;
  remove?: string;
  /** A new KSK whose CDS and CDNSKEY the zone publishes: its rollover waits for the parent's DS. */
  cds?: boolean;
}

export interface TlsKey {
  /** Bundle-relative paths. */
  keyPath: string;
  certPath: string;
  csrPath: string;
  /** SHA-256 of the SubjectPublicKeyInfo, lower-case hex: the TLSA 3 1 1 data. */
  spkiSha256: string;
  /** Names the CSR and the bootstrap certificate cover. */
  names: DomainName[];
  created: string;
  /** The next key, pinned already: `ready` is when a rotation may make it serve (two TTLs after `published`). */
  next: { keyPath: string; spkiSha256: string; created: string; published: string; ready: string };
  /** A key rotated out, still pinned until `until`. */
  retiring?: { spkiSha256: string; until: string };
  /** Every SPKI the TLSA records pin: the current key, the next, and a retiring one. */
  pins: string[];
}

export interface TsigKey {
  /** Key name used in nsd.conf and by the secondary, e.g. `selfmail-ns2.example.net`. */
  name: string;
  algorithm: 'hmac-sha256';
  /** The secondary this key is for. */
  server: DomainName;
  /** Bundle-relative path of the file holding the base64 secret (0600). */
  secretPath: string;
  created: string;
}

/** The home host's WireGuard key (own-vps): its private file in the bundle and its public key. */
export interface WireguardKey {
  keyPath: string;
  publicKey: string;
  created: string;
}

export interface KeySet {
  dkim: DkimKey[];
  /** Every DNSSEC key the bundle holds: published, signing, made ahead or leaving (see `publish`, `activate`, `remove`). */
  dnssec: DnssecKey[];
  /** DNSSEC keys that left their zone and the bundle, for `keys list`. */
  dnssecRetired?: { zone: DomainName; tag: number; role: 'ksk' | 'zsk'; removed: string }[];
  tls: TlsKey;
  tsig: TsigKey[];
  /** With own-vps: this host's end of the tunnel to the VPS. */
  wireguard?: WireguardKey;
  /** Every key file (private 0600, public 0644) to place in the bundle under `keys/`. */
  files: BundleFile[];
  /** Read a key file's bytes (private files included) for modules that must embed one (TSIG in nsd). */
  read(path: string): Buffer;
}

/** One line of `selfmail keys list`: public facts only, never private material. */
export interface KeyRow {
  type: 'dkim' | 'dnssec-ksk' | 'dnssec-zsk' | 'tls' | 'tsig' | 'wireguard';
  /** The domain (DKIM), zone (DNSSEC), host name (TLS) or secondary server (TSIG). */
  name: string;
  /** DKIM selector, DNSSEC key tag, TSIG key name; empty for TLS. */
  id: string;
  algorithm: string;
  /**
   * `active` (signs, or serves), `published` (a DKIM selector kept in DNS after a rotation),
   * `next` (a TLS key pinned ahead of its turn; a DNSSEC key made or published ahead of signing),
   * `retiring` (a TLS key rotated out, still pinned; a DNSSEC key replaced, still published),
   * `retired` (a DNSSEC key removed from the zone and the bundle),
   * or `missing`: the bundle should hold this key and does not (keys list names it; init would make it).
   */
  state: 'active' | 'published' | 'next' | 'retiring' | 'retired' | 'missing';
  /** When the key's next step may or will happen, and what it is (`rotate from …`, `TLSA withdrawn after …`). */
  nextStep?: string;
  created: string;
  /** SHA-256 of the public key's SubjectPublicKeyInfo, lower-case hex; empty for TSIG (a shared secret has no public part). */
  fingerprint: string;
  /** The key's private file in the bundle. */
  file: string;
}
