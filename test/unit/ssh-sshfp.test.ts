/**
 * SSHFP, one rule at a time: the record of each host key type (RFC 4255 RSA 1, RFC 6594 ECDSA 3,
 * RFC 7479 Ed25519 4, SHA-256 only), the addresses a bundle names for its host, whether this
 * machine is that host, and that the zone carries the records only with DNSSEC.
 */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { hostAddressesOfYaml, isThisHost, sshfpRecords } from '../../src/ssh/sshfp.js';
import { zoneRecords } from '../../src/dns/records.js';
import type { DomainName } from '../../src/config/types.js';
import { hostContext } from '../helpers/host-context.js';

const blob = (type: string, extra: Buffer) => {
  const t = Buffer.from(type);
  const len = (b: Buffer) => Buffer.from([0, 0, 0, b.length]);
  return Buffer.concat([len(t), t, len(extra), extra]);
};
const ED = blob('ssh-ed25519', Buffer.alloc(32, 1));
const hex = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('sshfpRecords', () => {
  it('gives each key type its algorithm number and the SHA-256 of the key blob', () => {
    const rsa = blob('ssh-rsa', Buffer.alloc(257, 2));
    const ec = blob('ecdsa-sha2-nistp256', Buffer.alloc(65, 4));
    expect(sshfpRecords([`ssh-ed25519 ${ED.toString('base64')} root@mail`, `ssh-rsa ${rsa.toString('base64')}`, `ecdsa-sha2-nistp256 ${ec.toString('base64')}`])).toEqual(
      [`4 2 ${hex(ED)}`, `1 2 ${hex(rsa)}`, `3 2 ${hex(ec)}`].sort(),
    );
  });
  it('skips what is not a host public key, and a key given twice', () => {
    expect(sshfpRecords(['', 'ssh-dss AAAAB3Nza', 'not a key', `ssh-ed25519 ${ED.toString('base64')}`, `ssh-ed25519 ${ED.toString('base64')} again`])).toEqual([`4 2 ${hex(ED)}`]);
  });
});

describe('the mail host', () => {
  it('reads the addresses selfmail.yaml names for the host, public and LAN', () => {
    expect(hostAddressesOfYaml('domains:\n  - example.org\nipv4: 203.0.113.25\nipv6: 2001:db8::25\ningress: port-forward\nlistenIpv4: 192.168.1.20\nadmin: a@example.org\n')).toEqual(['203.0.113.25', '2001:db8::25', '192.168.1.20']);
  });
  it('is this machine when one of them is on an interface here', () => {
    const ifs = { lo: [{ address: '127.0.0.1' }], eth0: [{ address: '192.168.1.20' }, { address: 'fe80::1' }] } as unknown as NodeJS.Dict<import('node:os').NetworkInterfaceInfo[]>;
    expect(isThisHost(['203.0.113.25', '192.168.1.20'], ifs)).toBe(true);
    expect(isThisHost(['203.0.113.25'], ifs)).toBe(false);
  });
});

describe('the zone', () => {
  it('carries SSHFP at the host name with DNSSEC, and none without', () => {
    const records = (dnssec: boolean) => {
      const ctx = hostContext(dnssec ? {} : { dnssec: false });
      return zoneRecords(ctx.config, ctx.keys, 'example.org' as DomainName, 1, 'testing', [`4 2 ${hex(ED)}`]).flatMap((g) => g.records).filter((r) => r.type === 'SSHFP');
    };
    expect(records(true)).toEqual([{ name: 'mail.example.org', type: 'SSHFP', rdata: `4 2 ${hex(ED)}` }]);
    expect(records(false)).toEqual([]);
  });
});
