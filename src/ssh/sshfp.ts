/**
 * SSHFP records (RFC 4255, RFC 6594, RFC 7479; SHA-256 only) for the mail host, from the host's own
 * SSH host keys: made by openssh-server on the host, read from /etc/ssh where init runs, and never
 * copied into the bundle (only their fingerprints are published). They are published only when
 * init runs on the mail host itself (one of the bundle's addresses is on an interface here): a
 * bundle made on another machine must not pin that machine's keys.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { networkInterfaces } from 'node:os';

/** The host key files openssh-server makes, in the order their records are listed. */
export const HOST_KEY_FILES = ['/etc/ssh/ssh_host_rsa_key.pub', '/etc/ssh/ssh_host_ecdsa_key.pub', '/etc/ssh/ssh_host_ed25519_key.pub'] as const;

/** RFC 4255 (RSA 1), RFC 6594 (ECDSA 3), RFC 7479 (Ed25519 4). */
const ALGORITHM: Record<string, number> = { 'ssh-rsa': 1, 'ecdsa-sha2-nistp256': 3, 'ecdsa-sha2-nistp384': 3, 'ecdsa-sha2-nistp521': 3, 'ssh-ed25519': 4 };

/** `<algorithm> 2 <sha256 hex>` for each public key line (`TYPE BASE64 [comment]`), sorted; unknown types skipped. Pure. */
export function sshfpRecords(pubLines: readonly string[]): string[] {
  const out = new Set<string>();
  for (const line of pubLines) {
    const [type, blob] = line.trim().split(/\s+/);
    const alg = type ? ALGORITHM[type] : undefined;
    if (!alg || !blob || !/^[A-Za-z0-9+/]+={0,2}$/.test(blob)) continue;
    out.add(`${alg} 2 ${createHash('sha256').update(Buffer.from(blob, 'base64')).digest('hex')}`);
  }
  return [...out].sort();
}

/** The addresses a bundle's selfmail.yaml names for the host (listen and public), as written by selfmail. Pure. */
export function hostAddressesOfYaml(yaml: string): string[] {
  return [...yaml.matchAll(/^(?:ipv4|ipv6|listenIpv4|listenIpv6): (\S+)$/gm)].map((m) => m[1]!.replace(/^['"]|['"]$/g, ''));
}

/** True when one of `addresses` is on an interface of this machine. */
export function isThisHost(addresses: readonly string[], interfaces = networkInterfaces()): boolean {
  const mine = new Set(Object.values(interfaces).flatMap((list) => (list ?? []).map((a) => a.address.toLowerCase())));
  return addresses.some((a) => mine.has(a.toLowerCase()));
}

/**
 * The SSHFP records this machine would publish for a host with `addresses`: its host keys' when
 * it is that host, none otherwise (or when it has no SSH host key yet).
 */
export function localSshfp(addresses: readonly string[]): string[] {
  if (!isThisHost(addresses)) return [];
  const lines: string[] = [];
  for (const f of HOST_KEY_FILES) {
    try {
      lines.push(readFileSync(f, 'utf8'));
    } catch {
      // openssh-server makes what its configuration asks for; a key it did not make has no record
    }
  }
  return sshfpRecords(lines);
}
