import { describe, expect, it } from 'vitest';
import { holdsKey, inCidr, lockoutProblems, sshClientOfEnviron } from '../../src/apply/session.js';

const admins = { adminSshFrom: ['198.51.100.0/24', '2001:db8:1::/48'] };
const withKey = [{ user: 'root', hasKey: true }];

describe('apply never cuts the session it runs in', () => {
  it('stops when the SSH client is outside every admin network', () => {
    const p = lockoutProblems(admins, { sshClient: '203.0.113.9', logins: withKey });
    expect(p).toHaveLength(1);
    expect(p[0]).toMatch(/runs over SSH from 203\.0\.113\.9.*only 198\.51\.100\.0\/24, 2001:db8:1::\/48.*--admin-ssh-from 203\.0\.113\.9\/32/);
  });

  it('goes on for a client inside an admin network, IPv4, IPv6 and IPv4-mapped', () => {
    for (const sshClient of ['198.51.100.7', '2001:db8:1:ff::2', '::ffff:198.51.100.7']) {
      expect(lockoutProblems(admins, { sshClient, logins: withKey }), sshClient).toEqual([]);
    }
  });

  it('stops a session over SSH when the new firewall lets no network in', () => {
    const p = lockoutProblems({ adminSshFrom: [] }, { sshClient: '198.51.100.7', logins: withKey });
    expect(p).toHaveLength(1);
    expect(p[0]).toMatch(/no network at all/);
  });

  it('stops when SSH stays reachable but no login user has an authorized key', () => {
    const p = lockoutProblems(admins, { logins: [{ user: 'root', hasKey: false }, { user: 'alice', hasKey: false }] });
    expect(p).toEqual([expect.stringMatching(/keys only, and no login user \(root, alice\) has an authorized key/)]);
    expect(lockoutProblems(admins, { logins: [{ user: 'root', hasKey: false }, { user: 'alice', hasKey: true }] })).toEqual([]);
  });

  it('leaves a console-only host alone: SSH closed to the network and no SSH session', () => {
    expect(lockoutProblems({ adminSshFrom: [] }, { logins: [{ user: 'root', hasKey: false }] })).toEqual([]);
  });

  it('finds the SSH client in an environment block, and nothing in a malformed one', () => {
    expect(sshClientOfEnviron('HOME=/root\0SSH_CONNECTION=198.51.100.7 51234 203.0.113.25 22\0')).toBe('198.51.100.7');
    expect(sshClientOfEnviron('SSH_CONNECTION=not-an-address 1 2 3\0')).toBeUndefined();
    expect(sshClientOfEnviron('HOME=/root\0')).toBeUndefined();
  });

  it('matches addresses to networks by family and prefix', () => {
    expect(inCidr('198.51.100.255', '198.51.100.0/24')).toBe(true);
    expect(inCidr('198.51.101.0', '198.51.100.0/24')).toBe(false);
    expect(inCidr('2001:db8:1::1', '198.51.100.0/24')).toBe(false);
    expect(inCidr('garbage', '198.51.100.0/24')).toBe(false);
  });

  it('counts a key only in a file with a line that is neither blank nor a comment', () => {
    expect(holdsKey('ssh-ed25519 AAAA admin\n')).toBe(true);
    expect(holdsKey('# no keys yet\n\n')).toBe(false);
    expect(holdsKey('')).toBe(false);
  });
});
