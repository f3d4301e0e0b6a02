/**
 * The mail host's TLS key: a CSR for any ACME client and a self-signed bootstrap certificate,
 * both built with node-forge around a key generated here. Output is deterministic: the serial
 * is derived from a hash, the validity from a date the store keeps, and RSA PKCS#1 v1.5
 * signatures have no randomness, so the same key, names and date give the same bytes.
 */
import { createHash, createPrivateKey, createPublicKey } from 'node:crypto';
import type { DomainName } from '../config/types.js';

/** How long the bootstrap certificate is valid; it is replaced by an ACME one in operation. */
export const BOOTSTRAP_DAYS = 365;
/** Rebuild the bootstrap certificate when fewer days than this remain. */
export const RENEW_BEFORE_DAYS = 30;

/** The names the certificate covers: the host first, then `mta-sts.` and `autoconfig.` of each domain. */
export function tlsNames(hostname: DomainName, domains: readonly DomainName[]): DomainName[] {
  const names: DomainName[] = [hostname];
  for (const d of domains) {
    for (const n of [`mta-sts.${d}`, `autoconfig.${d}`] as DomainName[]) if (!names.includes(n)) names.push(n);
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
  // forge reads PKCS#1; the key stays PKCS#8 on disk.
  const pkcs1 = createPrivateKey(keyPem).export({ type: 'pkcs1', format: 'pem' }).toString();
  const priv = forge.pki.privateKeyFromPem(pkcs1) as import('node-forge').pki.rsa.PrivateKey;
  const pub = forge.pki.setRsaPublicKey(priv.n, priv.e);
  const subject = [{ name: 'commonName', value: names[0] }];
  const altNames = names.map((value) => ({ type: 2, value }));

  const csr = forge.pki.createCertificationRequest();
  csr.publicKey = pub;
  csr.setSubject(subject);
  csr.setAttributes([{ name: 'extensionRequest', extensions: [{ name: 'subjectAltName', altNames }] }]);
  csr.sign(priv, forge.md.sha256.create());

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
  cert.sign(priv, forge.md.sha256.create());
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
