import { describe, expect, it } from 'vitest';
import { RELEASES, SUPPORTED_TEXT, parseOsRelease, parseRelease, releaseInfo, releaseOfOsRelease } from '../../src/config/release.js';

const TRIXIE = `PRETTY_NAME="Debian GNU/Linux 13 (trixie)"
NAME="Debian GNU/Linux"
VERSION_ID="13"
VERSION="13 (trixie)"
VERSION_CODENAME=trixie
ID=debian
`;
const BOOKWORM = TRIXIE.replace(/13/g, '12').replace(/trixie/g, 'bookworm');

describe('target releases', () => {
  it('knows Debian 13 and 12, newest first, and their Dovecot', () => {
    expect(RELEASES.map((r) => r.id)).toEqual(['debian-13', 'debian-12']);
    expect(releaseInfo('debian-13').dovecot).toBe('2.4');
    expect(releaseInfo('debian-12').dovecot).toBe('2.3');
    expect(SUPPORTED_TEXT).toBe('debian-13 (Debian 13 "trixie") and debian-12 (Debian 12 "bookworm")');
  });

  it('takes a --target value it knows, and names the supported ones for any other', () => {
    expect(parseRelease('debian-13')).toEqual({ ok: true, value: 'debian-13' });
    expect(parseRelease(' Debian-12 ')).toEqual({ ok: true, value: 'debian-12' });
    for (const bad of ['debian-11', 'trixie', 'ubuntu-24.04', '13', '']) {
      const r = parseRelease(bad);
      expect(r.ok, bad).toBe(false);
      if (!r.ok) expect(r.error).toBe(`is not a supported release: selfmail writes for ${SUPPORTED_TEXT}`);
    }
  });

  it('reads the release from os-release: Debian 13, Debian 12, and nothing else', () => {
    expect(releaseOfOsRelease(TRIXIE)).toEqual({ release: 'debian-13', description: 'Debian GNU/Linux 13 (trixie)' });
    expect(releaseOfOsRelease(BOOKWORM)).toEqual({ release: 'debian-12', description: 'Debian GNU/Linux 12 (bookworm)' });
    // Testing and unstable have no VERSION_ID; derivatives are not Debian itself.
    expect(releaseOfOsRelease('PRETTY_NAME="Debian GNU/Linux forky/sid"\nID=debian\n').release).toBeUndefined();
    expect(releaseOfOsRelease('PRETTY_NAME="Debian GNU/Linux 11 (bullseye)"\nID=debian\nVERSION_ID="11"\n').release).toBeUndefined();
    const ubuntu = releaseOfOsRelease('PRETTY_NAME="Ubuntu 24.04.1 LTS"\nID=ubuntu\nID_LIKE=debian\nVERSION_ID="13"\n');
    expect(ubuntu).toEqual({ description: 'Ubuntu 24.04.1 LTS' });
  });

  it('parses os-release quoting as the format defines it', () => {
    const f = parseOsRelease(`A="two words"\nB='single'\nC=plain\nD="with \\"quote\\""\n# comment\nnot a line\n`);
    expect(Object.fromEntries(f)).toEqual({ A: 'two words', B: 'single', C: 'plain', D: 'with "quote"' });
  });
});
