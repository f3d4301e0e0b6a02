/**
 * The rehearsal's own network, for real: inside new namespaces (unshare), a connection to an
 * address outside loopback and a DNS question for a name outside the zones are both seen (the
 * nftables set and the resolver's log), and the machine's /etc/resolv.conf is untouched.
 */
import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { REPO } from '../host/machine.js';
import { ensureBuilt } from '../helpers/rehearse-cli.js';

let dir: string;
beforeAll(async () => {
  ensureBuilt();
  dir = await mkdtemp(join(tmpdir(), 'selfmail-netns-'));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

it('records an attempt to reach an outside address and refuses an outside name, on the only link there is', async () => {
  const before = await readFile('/etc/resolv.conf', 'utf8');
  const script = `
    import { prepareNetwork, triedAddresses } from ${JSON.stringify(join(REPO, 'dist/rehearse/isolate.js'))};
    import { startResolver } from ${JSON.stringify(join(REPO, 'dist/rehearse/resolver.js'))};
    import { connect } from 'node:net';
    import { Resolver } from 'node:dns/promises';
    await prepareNetwork(${JSON.stringify(dir)});
    const dns = await startResolver(['example.org'], 9);
    const attempt = await new Promise((r) => { const s = connect({ host: '192.0.2.77', port: 25 }); s.on('error', (e) => r(e.code)); s.on('connect', () => r('connected')); });
    const answer = await new Resolver().resolveMx('leak.example.com').then(() => 'answered', (e) => e.code);
    console.log(JSON.stringify({ attempt, answer, tried: await triedAddresses(), questions: dns.questions }));
    await dns.close();
  `;
  const out = execFileSync('unshare', ['--net', '--mount', '--propagation', 'private', process.execPath, '--input-type=module', '-e', script], {
    encoding: 'utf8',
    env: { ...process.env, SELFMAIL_REHEARSAL_ISOLATED: '1' },
    timeout: 30_000,
  });
  const r = JSON.parse(out.trim().split('\n').pop()!) as { attempt: string; answer: string; tried: string[]; questions: Array<{ name: string; answer: string }> };
  expect(r.attempt).not.toBe('connected');
  expect(r.tried).toEqual(['192.0.2.77']);
  expect(r.answer).toBe('EREFUSED');
  expect(r.questions).toEqual([{ name: 'leak.example.com', type: 15, answer: 'refused' }]);
  expect(await readFile('/etc/resolv.conf', 'utf8')).toBe(before);
});
