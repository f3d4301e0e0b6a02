/**
 * The SFTP target's pure parts, one rule at a time, with no sftp run: how a batch's output is
 * read back (split by the commands sftp echoes, `ls -ln` sizes, `df` free space), what a failed
 * connection tells the user (the fix differs on the mail host and on the user's device), and
 * what the backup machine is told to set up (one user, locked into one folder, SFTP only).
 */
import { describe, expect, it } from 'vitest';
import { REMOTE_CHROOT, batchSections, explainSftpFailure, parseDfAvailable, parseLongListing, remoteSetup } from '../../src/backup/sftp.js';

type SftpSpec = Parameters<typeof remoteSetup>[0];
const SPEC: SftpSpec = { kind: 'sftp', user: 'selfmail-backup', host: 'nas.home.arpa', port: 22, path: '/backup' };
const PUBLIC_KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl selfmail-backup@mail';

describe('a batch\'s output', () => {
  it('is filed under the command sftp echoed before it', () => {
    const out = 'sftp> cd "/backup"\nsftp> ls -1a\n.\n..\nFORMAT\nobjects\nsftp> df .\n        Size\n';
    expect(batchSections(out)).toEqual(
      new Map([
        ['cd "/backup"', []],
        ['ls -1a', ['.', '..', 'FORMAT', 'objects']],
        ['df .', ['        Size']],
      ]),
    );
  });
  it('drops blank lines, carriage returns, and whatever came before the first command', () => {
    expect(batchSections('Connected to nas.\r\nsftp> ls -1a\r\nFORMAT\r\n\r\n')).toEqual(new Map([['ls -1a', ['FORMAT']]]));
  });
});

describe('an ls -ln listing', () => {
  it('gives each file\'s name, without its folder, and its size', () => {
    const lines = [
      '-rw-r--r--    ? 64990    64990         111 Dec  7 14:38 snapshots/20261207T144403Z.age',
      '-rw-------    ? 64990    64990     1048576 Jan 12  2027 snapshots/20270112T030001Z.age',
    ];
    expect(parseLongListing(lines)).toEqual([
      { name: '20261207T144403Z.age', size: 111 },
      { name: '20270112T030001Z.age', size: 1048576 },
    ]);
  });
  it('skips folders, links and lines it cannot read', () => {
    const lines = [
      'drwx------    ? 64990    64990        4096 Dec  7 14:38 snapshots/old',
      'lrwxrwxrwx    ? 0        0              4 Dec  7 14:38 snapshots/x.age',
      'Can\'t ls: "/backup/snapshots" not found',
      '-rw-r--r--    ? 64990    64990        big Dec  7 14:38 snapshots/20261207T144403Z.age',
    ];
    expect(parseLongListing(lines)).toEqual([]);
  });
});

describe('df in sftp', () => {
  it('gives the available KiB: the third number of the line under the header', () => {
    const lines = ['        Size         Used        Avail       (root)    %Capacity', '    12341884            8     12341876     12341876           0%'];
    expect(parseDfAvailable(lines)).toBe(12341876);
  });
  it('gives nothing when it printed no numbers (a server without the statvfs extension)', () => {
    expect(parseDfAvailable(['Server does not support statvfs@openssh.com extension'])).toBeUndefined();
    expect(parseDfAvailable([])).toBeUndefined();
  });
});

describe('a failed sftp, explained', () => {
  const mismatch = '@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@\n@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @\n@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@\nHost key verification failed.\nConnection closed\n';

  it('on the mail host, a host key that is not the one given: nothing sent, and how to give the new one', () => {
    const m = explainSftpFailure(mismatch, SPEC, true);
    expect(m).toMatch(/^nas\.home\.arpa did not show the host key given for it \(--backup-host-key, or --host-key\): nothing was sent/);
    expect(m).toMatch(/cat \/etc\/ssh\/ssh_host_ed25519_key\.pub/);
  });
  it('on the user\'s device, a host key unknown or changed: their known_hosts, and how to compare fingerprints', () => {
    const m = explainSftpFailure('No ED25519 host key is known for nas.home.arpa and you have requested strict checking.\nHost key verification failed.\n', SPEC, false);
    expect(m).toMatch(/^nas\.home\.arpa is not in your known_hosts, or its host key changed: nothing was read/);
    expect(m).toMatch(/sftp selfmail-backup@nas\.home\.arpa/);
    expect(m).toMatch(/ssh-keygen -lf/);
  });
  it('on the mail host, its key refused: set the backup machine up, with the command that prints how', () => {
    const m = explainSftpFailure('selfmail-backup@nas.home.arpa: Permission denied (publickey).\nConnection closed\n', { ...SPEC, port: 2222 }, true);
    expect(m).toBe('nas.home.arpa port 2222 refuses this host\'s backup key for selfmail-backup: set that machine up for it (selfmail backup --remote-setup --to sftp://selfmail-backup@nas.home.arpa:2222/backup prints the key and the lines to run there)');
  });
  it('on the user\'s device, their key refused: only the keys of that user\'s authorized keys file get in', () => {
    const m = explainSftpFailure('selfmail-backup@nas.home.arpa: Permission denied (publickey).\n', SPEC, false);
    expect(m).toMatch(/^nas\.home\.arpa refuses your SSH key for selfmail-backup/);
  });
  it('a file the backup user may not write is not taken for a refused key', () => {
    const m = explainSftpFailure('dest open "/backup/FORMAT.tmp-0a1b2c3d": Permission denied\n', SPEC, true);
    expect(m).not.toMatch(/refuses/);
    expect(m).toBe('sftp to nas.home.arpa failed: dest open "/backup/FORMAT.tmp-0a1b2c3d": Permission denied');
  });
  it('a machine that cannot be reached, with ssh\'s reason', () => {
    const m = explainSftpFailure('ssh: connect to host 127.0.0.1 port 23: Connection refused\nConnection closed\n', { ...SPEC, host: '127.0.0.1', port: 23 }, true);
    expect(m).toBe('cannot reach the backup machine 127.0.0.1 port 23: Connection refused');
  });
  it('a folder that is not there, as the SFTP server shows it', () => {
    const m = explainSftpFailure('stat remote: No such file or directory\n', SPEC, true);
    expect(m).toBe('the folder /backup does not exist on nas.home.arpa (as its SFTP server shows it: inside the chroot)');
  });
  it('anything else, with the last three lines sftp printed', () => {
    expect(explainSftpFailure('one\ntwo\n\nthree\nfour\n', SPEC, true)).toBe('sftp to nas.home.arpa failed: two; three; four');
    expect(explainSftpFailure('', SPEC, true)).toBe('sftp to nas.home.arpa failed');
  });
});

describe('what the backup machine is told to set up', () => {
  const setup = remoteSetup(SPEC, PUBLIC_KEY);

  it('locks the user into the chroot, SFTP only, in its folder, with a umask that keeps files private', () => {
    const block = setup.sshdConfig.split('\n').slice(setup.sshdConfig.split('\n').indexOf('Match User selfmail-backup'));
    expect(block.slice(0, 4)).toEqual([
      'Match User selfmail-backup',
      `    ChrootDirectory ${REMOTE_CHROOT}`,
      '    ForceCommand internal-sftp -d /backup -u 0077',
      `    AuthorizedKeysFile ${setup.keysFile}`,
    ]);
    expect(REMOTE_CHROOT).toBe('/srv/selfmail-backup');
  });
  it('turns off passwords, forwarding and terminals for that user', () => {
    for (const line of ['PasswordAuthentication no', 'AllowTcpForwarding no', 'AllowAgentForwarding no', 'PermitTunnel no', 'X11Forwarding no', 'PermitTTY no']) {
      expect(setup.sshdConfig).toContain(`\n    ${line}\n`);
    }
  });
  it('lets the host\'s key in with restrict, and only through a keys file of its own', () => {
    expect(setup.keysLine).toBe(`restrict ${PUBLIC_KEY}`);
    expect(setup.keysFile).toBe('/etc/ssh/authorized_keys.selfmail-backup');
    expect(setup.script).toContain(`echo 'restrict ${PUBLIC_KEY}' > /etc/ssh/authorized_keys.selfmail-backup\n`);
  });
  it('makes the chroot root\'s and 0755 (as sshd requires), then the folder the user\'s and 0700', () => {
    const lines = setup.script.split('\n');
    const chroot = lines.indexOf('install -d -m 0755 -o root -g root /srv/selfmail-backup');
    const folder = lines.indexOf('install -d -m 0700 -o selfmail-backup -g selfmail-backup /srv/selfmail-backup/backup');
    expect(chroot).toBeGreaterThanOrEqual(0);
    expect(folder).toBeGreaterThan(chroot);
  });
  it('writes the sshd block into a file of sshd_config.d named after the user, checked before sshd reloads', () => {
    expect(setup.confFile).toBe('/etc/ssh/sshd_config.d/selfmail-backup.conf');
    expect(remoteSetup({ ...SPEC, user: 'mailhost1' }, PUBLIC_KEY).confFile).toBe('/etc/ssh/sshd_config.d/selfmail-backup-mailhost1.conf');
    expect(setup.script).toContain(`cat > ${setup.confFile} <<'EOF'\n${setup.sshdConfig.trimEnd()}\nEOF\nsshd -t && systemctl reload ssh\n`);
  });
});
