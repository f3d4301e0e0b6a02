import { describe, expect, it } from 'vitest';
import { servicesToCheck } from '../../src/pipeline.js';

const NAMES = ['dns', 'postfix', 'dovecot', 'rspamd', 'nftables', 'web'];
const file = (path: string, data = 'v1') => ({ path, data: Buffer.from(data), mode: 0o644, role: '' });
const FILES = [
  file('keys/tls/key.pem'),
  file('keys/dkim/example.org/202612r.private'),
  file('dns/example.org.zone'),
  file('postfix/vmailbox'),
  file('dovecot/users'),
  file('rspamd/override.d/dkim_signing.conf'),
  file('nftables/selfmail.nft'),
  file('nginx/selfmail.conf'),
];
const OWNER = new Map([
  ['dns/example.org.zone', 'dns'],
  ['postfix/vmailbox', 'postfix'],
  ['dovecot/users', 'dovecot'],
  ['rspamd/override.d/dkim_signing.conf', 'rspamd'],
  ['nftables/selfmail.nft', 'nftables'],
  ['nginx/selfmail.conf', 'web'],
]);

/** The previous bundle: the same files, except those given with other bytes. */
const previous = (changed: string[] = []) => ({ read: (p: string) => Buffer.from(changed.includes(p) ? 'v0' : 'v1') });
const due = (changed: string[], opts = { everything: false, unchecked: [] as string[] }) =>
  servicesToCheck({ files: FILES, owner: OWNER }, previous(changed), NAMES, opts);

describe('the checks a re-run does', () => {
  it('checks nothing when nothing changed, and only the services whose files changed', () => {
    expect(due([])).toEqual([]);
    expect(due(['postfix/vmailbox', 'dovecot/users'])).toEqual(['postfix', 'dovecot']);
  });

  it('checks every service that reads a changed key', () => {
    expect(due(['keys/tls/key.pem'])).toEqual(NAMES);
    expect(due(['keys/dkim/example.org/202612r.private'])).toEqual(['rspamd']);
  });

  it('checks a new file as a changed one', () => {
    const fresh = servicesToCheck({ files: [...FILES, file('nftables/extra.nft')], owner: new Map([...OWNER, ['nftables/extra.nft', 'nftables']]) }, { read: (p) => (p === 'nftables/extra.nft' ? undefined : Buffer.from('v1')) }, NAMES, { everything: false, unchecked: [] });
    expect(fresh).toEqual(['nftables']);
  });

  it('checks what the last run could not check here, and everything for another build or a first run', () => {
    expect(due([], { everything: false, unchecked: ['dovecot'] })).toEqual(['dovecot']);
    expect(due([], { everything: true, unchecked: [] })).toEqual(NAMES);
  });
});
