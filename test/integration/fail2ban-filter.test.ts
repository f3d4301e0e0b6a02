/**
 * The dovecot jail's filter, run by the real fail2ban-regex over what Dovecot logs on each
 * release: 2.3 (Debian 12) and 2.4 (Debian 13, whose wording Debian's own filter misses). The
 * lines are Dovecot's own, taken from the pristine-host tier's journals.
 */
import { cp, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DOVECOT_FILTER_PATH, fail2banService } from '../../src/fail2ban/index.js';
import { run } from '../../src/tools/run.js';
import { hostContext } from '../helpers/host-context.js';

const DOVECOT_24 = [
  'Dec 01 10:48:57 mail dovecot[905]: auth(alice@example.org,203.0.113.66,sasl:plain)<2vH2RZBhlaHLAHFC>: passwd-file: Password mismatch',
  'Dec 01 10:48:59 mail dovecot[905]: imap-login: Login aborted: Connection closed (auth failed, 1 attempts in 2 secs) (auth_failed): user=<alice@example.org>, method=PLAIN, rip=203.0.113.66, lip=203.0.113.25, TLS: Connection closed, session=<2vH2RZBhlaHLAHFC>',
];
const DOVECOT_23 = [
  'Dec 01 10:48:26 mail dovecot[697]: auth: passwd-file(alice@example.org,203.0.113.66,<dHkfRJBhLa3LAHFC>): Password mismatch',
  'Dec 01 10:48:28 mail dovecot[697]: imap-login: Disconnected: Connection closed (auth failed, 1 attempts in 2 secs): user=<alice@example.org>, method=PLAIN, rip=203.0.113.66, lip=203.0.113.25, TLS: Connection closed, session=<dHkfRJBhLa3LAHFC>',
];
const GOOD_LOGIN = 'Dec 01 10:49:00 mail dovecot[905]: imap-login: Login: user=<alice@example.org>, method=PLAIN, rip=203.0.113.1, lip=203.0.113.25, mpid=763, TLS, session=<kKl9BJBhBpHLAHEB>';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'selfmail-f2b-'));
  // fail2ban's own filters beside ours, as on the host: ours includes Debian's dovecot.conf.
  await cp('/etc/fail2ban/filter.d', join(dir, 'filter.d'), { recursive: true });
  const files = await fail2banService.build(hostContext());
  const filter = files.find((f) => f.path === DOVECOT_FILTER_PATH);
  if (!filter) throw new Error('no dovecot filter in the bundle');
  await writeFile(join(dir, 'filter.d/selfmail-dovecot.conf'), filter.data);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function matched(lines: string[], filter: string): Promise<number> {
  const log = join(dir, `log-${Math.random().toString(36).slice(2)}`);
  await writeFile(log, `${lines.join('\n')}\n`);
  const r = await run('fail2ban-regex', [log, join(dir, 'filter.d', filter)]);
  const m = /^Lines: \d+ lines, \d+ ignored, (\d+) matched/m.exec(r.stdout);
  if (!m) throw new Error(`no summary from fail2ban-regex:\n${r.stdout}`);
  return Number(m[1]);
}

describe('the dovecot jail filter', () => {
  it('matches the failed logins of Dovecot 2.4, which Debian\'s filter misses', async () => {
    expect(await matched(DOVECOT_24, 'selfmail-dovecot.conf')).toBe(2);
    expect(await matched(DOVECOT_24, 'dovecot.conf')).toBe(0);
  });

  it('still matches those of Dovecot 2.3, and no successful login', async () => {
    expect(await matched(DOVECOT_23, 'selfmail-dovecot.conf')).toBe(2);
    expect(await matched([GOOD_LOGIN], 'selfmail-dovecot.conf')).toBe(0);
  });

  it('is what the jail uses', async () => {
    const jail = (await fail2banService.build(hostContext())).find((f) => f.path.endsWith('selfmail.local'))!.data.toString();
    expect(jail).toMatch(/^\[dovecot\]\nenabled = true\nfilter = selfmail-dovecot$/m);
  });
});
