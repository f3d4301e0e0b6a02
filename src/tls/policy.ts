/**
 * The TLS policy of every port a mail client uses (submission 465 and 587, IMAPS 993, HTTPS 443):
 * TLS 1.2 and 1.3, forward-secret (ECDHE) key exchange and AEAD ciphers only. This is Mozilla's
 * "intermediate" profile without its finite-field DHE suites: every client that speaks TLS 1.2
 * has ECDHE. TLS 1.3's suites are all AEAD and forward-secret, so OpenSSL's defaults stay.
 * Port 25 stays opportunistic (RFC 7435): a server that can only do older TLS still gets TLS.
 */

/** TLS 1.2 suites, OpenSSL names, strongest first as Mozilla lists them. */
export const CLIENT_TLS12_CIPHERS = [
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305',
  'ECDHE-RSA-CHACHA20-POLY1305',
] as const;

/** The list as OpenSSL's cipher string (Postfix, Dovecot and nginx all take this form). */
export const CLIENT_CIPHER_STRING = CLIENT_TLS12_CIPHERS.join(':');
