/**
 * The rehearsal's own network, for real: inside new namespaces (unshare), a connection to an
 * address outside loopback and a DNS question for a name outside the zones are both seen (the
 * nftables set and the resolver's log), and the machine's /etc/resolv.conf is untouched; an own-VPS
 * rehearsal's internet names are answered by the resolver itself, readable by a real resolver library.
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
    const dns = await startResolver(['example.org'], '127.0.0.1', 9);
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

it("answers an own-VPS rehearsal's internet names itself, as a resolver library reads them; NXDOMAIN and NODATA where it must", async () => {
  const script = `
    import { prepareNetwork } from ${JSON.stringify(join(REPO, 'dist/rehearse/isolate.js'))};
    import { startResolver } from ${JSON.stringify(join(REPO, 'dist/rehearse/resolver.js'))};
    import { internetZone } from ${JSON.stringify(join(REPO, 'dist/rehearse/tunnel.js'))};
    import { Resolver } from 'node:dns/promises';
    await prepareNetwork(${JSON.stringify(dir)});
    const zone = internetZone({ vps4: '203.0.113.5', client4: '192.0.2.10', client6: '2001:db8:77::10', mx4: '192.0.2.20' });
    const dns = await startResolver(['example.org'], '127.0.0.1', 9, zone);
    const r = new Resolver({ tries: 1 });
    const q = (p) => p.then((x) => x, (e) => e.code);
    const out = {
      mx: await q(r.resolveMx('internet.invalid')),
      txt: await q(r.resolveTxt('internet.invalid')),
      a: await q(r.resolve4('client.internet.invalid')),
      aaaa: await q(r.resolve6('client.internet.invalid')),
      mxA: await q(r.resolve4('mx.internet.invalid')),
      mxAAAA: await q(r.resolve6('mx.internet.invalid')),
      ptr4: await q(r.reverse('192.0.2.10')),
      ptr6: await q(r.reverse('2001:db8:77::10')),
      none: await q(r.resolve4('nobody.internet.invalid')),
      outside: await q(r.resolve4('example.com')),
      questions: dns.questions.map((x) => x.answer),
    };
    console.log(JSON.stringify(out));
    await dns.close();
  `;
  const out = execFileSync('unshare', ['--net', '--mount', '--propagation', 'private', process.execPath, '--input-type=module', '-e', script], {
    encoding: 'utf8',
    env: { ...process.env, SELFMAIL_REHEARSAL_ISOLATED: '1' },
    timeout: 30_000,
  });
  const r = JSON.parse(out.trim().split('\n').pop()!) as Record<string, unknown>;
  expect(r).toEqual({
    mx: [{ exchange: 'mx.internet.invalid', priority: 10 }],
    txt: [['v=spf1 ip4:192.0.2.10 ip6:2001:db8:77::10 -all']],
    a: ['192.0.2.10'],
    aaaa: ['2001:db8:77::10'],
    mxA: ['192.0.2.20'],
    mxAAAA: 'ENODATA',
    ptr4: ['client.internet.invalid'],
    ptr6: ['client.internet.invalid'],
    none: 'ENOTFOUND',
    outside: 'EREFUSED',
    questions: ['internet', 'internet', 'internet', 'internet', 'internet', 'internet', 'internet', 'internet', 'internet', 'refused'],
  });
});
