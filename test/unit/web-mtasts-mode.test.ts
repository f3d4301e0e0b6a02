/**
 * MTA-STS follows the certificate installed on the host: `enforce` only for a CA-issued
 * certificate for the bundle's own key that is valid now. The certificates come from openssl.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { mtaStsModeFor } from '../../src/web/mtasts.js';

let dir: string;
const pem = (name: string) => readFileSync(join(dir, name));
const ssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'selfmail-mtasts-'));
  const key = (name: string) => ssl('genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', name);
  key('host.key');
  key('other.key');
  key('ca.key');
  ssl('req', '-x509', '-key', 'ca.key', '-out', 'ca.pem', '-days', '30', '-subj', '/CN=test CA');
  ssl('req', '-x509', '-key', 'host.key', '-out', 'self.pem', '-days', '30', '-subj', '/CN=mail.example.org');
  ssl('req', '-new', '-key', 'host.key', '-out', 'host.csr', '-subj', '/CN=mail.example.org');
  ssl('x509', '-req', '-in', 'host.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '20', '-out', 'issued.pem');
  ssl('req', '-new', '-key', 'other.key', '-out', 'other.csr', '-subj', '/CN=mail.example.org');
  ssl('x509', '-req', '-in', 'other.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '20', '-out', 'other.pem');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('the MTA-STS mode', () => {
  // Taken when a test runs, after the certificates were made (their validity starts then).
  let now: Date;
  beforeEach(() => {
    now = new Date(Date.now() + 1000);
  });
  // The bundle's own certificate: the self-signed bootstrap one, for the host key.
  const ours = () => pem('self.pem');

  it('is enforce for a CA-issued certificate of the bundle key, with its chain', () => {
    expect(mtaStsModeFor(Buffer.concat([pem('issued.pem'), pem('ca.pem')]), ours(), now)).toBe('enforce');
  });

  it('is testing with no certificate, the self-signed one, another key, or one not valid now', () => {
    expect(mtaStsModeFor(undefined, ours(), now)).toBe('testing');
    expect(mtaStsModeFor(pem('self.pem'), ours(), now)).toBe('testing');
    expect(mtaStsModeFor(pem('other.pem'), ours(), now)).toBe('testing');
    expect(mtaStsModeFor(pem('issued.pem'), ours(), new Date(now.getTime() + 40 * 86_400_000))).toBe('testing');
    expect(mtaStsModeFor(Buffer.from('not a certificate'), ours(), now)).toBe('testing');
  });
});
