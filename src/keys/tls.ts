/**
 * The mail host's TLS key: a CSR for any ACME client and a self-signed bootstrap certificate,
 * both built with node-forge around a key generated here. Output is deterministic: the serial
 * is derived from a hash, the validity from a date the store keeps, and RSA PKCS#1 v1.5
 * signatures have no randomness, so the same key, names and date give the same bytes.
 */
import { createHash, createPrivateKey, createPublicKey, sign } from 'node:crypto';
import type { DomainName } from '../config/types.js';

/** How long the bootstrap certificate is valid; it is replaced by an ACME one in operation. */
export const BOOTSTRAP_DAYS = 365;
/** Rebuild the bootstrap certificate when fewer days than this remain. */
export const RENEW_BEFORE_DAYS = 30;

/**
 * The names the certificate covers: the host first, then `mta-sts.` and `autoconfig.` of each
 * domain, and `openpgpkey.` (the Web Key Directory) of each domain in `wkdDomains`, those with a
 * published OpenPGP key. Any new name makes a new CSR, so a domain gets that one only with a key.
 */
export function tlsNames(hostname: DomainName, domains: readonly DomainName[], wkdDomains: readonly DomainName[] = []): DomainName[] {
  const names: DomainName[] = [hostname];
  for (const d of domains) {
    const own = [`mta-sts.${d}`, `autoconfig.${d}`, ...(wkdDomains.includes(d) ? [`openpgpkey.${d}`] : [])] as DomainName[];
    for (const n of own) if (!names.includes(n)) names.push(n);
  }
  return names;
}

/** SHA-256 of the SubjectPublicKeyInfo DER, lower-case hex (TLSA 3 1 1). */
export function spkiSha256(keyPem: Buffer | string): string {
  const der = createPublicKey(createPrivateKey(keyPem)).export({ type: 'spki', format: 'der' });
  return createHash('sha256').update(der).digest('hex');
}

/** Check a stored TLS key is an RSA-2048 key with e = 65537 (node-forge signs only RSA). */
export function checkTlsKey(keyPem: Buffer): void {
  const key = createPrivateKey(keyPem);
  const d = key.asymmetricKeyDetails;
  if (key.asymmetricKeyType !== 'rsa' || d?.modulusLength !== 2048 || d.publicExponent !== 65537n) {
    throw new Error('not an RSA-2048 key');
  }
}

/** The certificate's notAfter for a given issue date. */
export function bootstrapNotAfter(issued: Date): Date {
  return new Date(issued.getTime() + BOOTSTRAP_DAYS * 86_400_000);
}

/** A CSR and a self-signed certificate (PEM) for `names` (the first is the subject CN). */
export async function buildTlsPair(
  keyPem: Buffer,
  names: readonly DomainName[],
  issued: Date,
): Promise<{ csr: string; cert: string }> {
  const forge = (await import('node-forge')).default;
  // node-forge builds the X.509 structures; OpenSSL (node:crypto) makes the signatures, which is
  // both the proven engine and forty times faster than forge's JavaScript RSA. forge hands the
  // bytes to sign to `md.update()` and asks `key.sign(md)` for the signature.
  const keyObject = createPrivateKey(keyPem);
  const pub = forge.pki.publicKeyFromPem(createPublicKey(keyObject).export({ type: 'spki', format: 'pem' }).toString());
  const opensslSigner = () => {
    const md = {
      algorithm: 'sha256',
      bytes: [] as string[],
      update(b: string) {
        md.bytes.push(b);
        return md;
      },
    };
    const key = { sign: (m: typeof md) => sign('sha256', Buffer.from(m.bytes.join(''), 'binary'), keyObject).toString('binary') };
    return { md: md as unknown as import('node-forge').md.MessageDigest, key: key as unknown as import('node-forge').pki.rsa.PrivateKey };
  };
  const subject = [{ name: 'commonName', value: names[0] }];
  const altNames = names.map((value) => ({ type: 2, value }));

  const csr = forge.pki.createCertificationRequest();
  csr.publicKey = pub;
  csr.setSubject(subject);
  csr.setAttributes([{ name: 'extensionRequest', extensions: [{ name: 'subjectAltName', altNames }] }]);
  const c = opensslSigner();
  csr.sign(c.key, c.md);

  const cert = forge.pki.createCertificate();
  cert.publicKey = pub;
  cert.serialNumber = serialFor(keyPem, names, issued);
  cert.validity.notBefore = issued;
  cert.validity.notAfter = bootstrapNotAfter(issued);
  cert.setSubject(subject);
  cert.setIssuer(subject);
  cert.setExtensions([
    { name: 'basicConstraints', cA: false, critical: true },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    { name: 'extKeyUsage', serverAuth: true },
    { name: 'subjectAltName', altNames },
    { name: 'subjectKeyIdentifier' },
  ]);
  const t = opensslSigner();
  cert.sign(t.key, t.md);
  return { csr: forge.pki.certificationRequestToPem(csr), cert: forge.pki.certificateToPem(cert) };
}

/** A positive 16-byte serial from the public key, the names and the date: deterministic, and new for new inputs. */
function serialFor(keyPem: Buffer, names: readonly DomainName[], issued: Date): string {
  const h = createHash('sha256')
    .update(spkiSha256(keyPem))
    .update('\0' + names.join(',') + '\0' + issued.toISOString())
    .digest()
    .subarray(0, 16);
  // High bit clear keeps it positive; 0x40 set keeps the DER integer minimal and 16 bytes long.
  h[0] = (h[0]! & 0x7f) | 0x40;
  return h.toString('hex');
}
