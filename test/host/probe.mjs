#!/usr/bin/env node
// The pristine-host tier's client: run inside the "outside" network namespace, where it is a
// machine of the internet that talks to the booted host over the test's own veth link. It reads
// one JSON request on stdin (passwords travel there, never in argv) and prints one JSON answer.
// Real clients only: nodemailer (SMTP), imapflow (IMAP), mailauth (DKIM), node's TLS and DNS.
import { Resolver } from 'node:dns/promises';
import { connect as tlsConnect } from 'node:tls';
import { connect as netConnect } from 'node:net';

const input = JSON.parse(await new Promise((res) => {
  let s = '';
  process.stdin.setEncoding('utf8');
  process.stdin.on('data', (d) => (s += d));
  process.stdin.on('end', () => res(s));
}));

const ops = {
  /** One message over SMTP; `expect` 'reject' turns a refusal into success. */
  async send(q) {
    const { createTransport } = await import('nodemailer');
    const t = createTransport({
      host: q.host,
      port: q.port,
      secure: q.port === 465,
      requireTLS: q.port === 587,
      ignoreTLS: q.port === 25 && q.plain === true,
      auth: q.user ? { user: q.user, pass: q.pass } : undefined,
      name: q.helo ?? 'client.example.net',
      localAddress: q.from_address,
      tls: { rejectUnauthorized: false, servername: q.servername },
      connectionTimeout: 15_000,
      greetingTimeout: 15_000,
      socketTimeout: 30_000,
    });
    try {
      const info = await t.sendMail({ from: q.from, to: q.to, subject: q.subject, text: q.body ?? 'pristine-host tier\n', headers: q.headers });
      return { ok: true, response: info.response };
    } catch (e) {
      return { ok: false, error: String(e.message ?? e), code: e.responseCode };
    } finally {
      t.close();
    }
  },

  /** Wait until a message with `subject` is in the INBOX of `user`; return it whole. */
  async fetch(q) {
    const { ImapFlow } = await import('imapflow');
    const deadline = Date.now() + (q.wait ?? 30) * 1000;
    let lastError = '';
    while (Date.now() < deadline) {
      const c = new ImapFlow({ host: q.host, port: 993, secure: true, auth: { user: q.user, pass: q.pass }, logger: false, tls: { rejectUnauthorized: false, servername: q.servername } });
      try {
        await c.connect();
        const lock = await c.getMailboxLock('INBOX');
        let found;
        try {
          const uids = await c.search({ subject: q.subject }, { uid: true });
          if (uids && uids.length > 0) found = (await c.fetchOne(String(uids[uids.length - 1]), { source: true }, { uid: true })).source.toString('utf8');
        } finally {
          lock.release();
        }
        await c.logout();
        if (found !== undefined) return { ok: true, source: found };
      } catch (e) {
        lastError = String(e.message ?? e);
        try { c.close(); } catch { /* already closed */ }
      }
      await new Promise((r) => setTimeout(r, 1000));
    }
    return { ok: false, error: `no message "${q.subject}" for ${q.user} within ${q.wait ?? 30} s${lastError ? ` (last error: ${lastError})` : ''}` };
  },

  /** DKIM verdicts of a message, with DNS asked of the host's own NSD only. */
  async dkim(q) {
    const { authenticate } = await import('mailauth');
    const resolver = new Resolver({ timeout: 3000, tries: 2 });
    resolver.setServers([q.dns]);
    const res = await authenticate(Buffer.from(q.source), {
      ip: q.ip,
      sender: q.sender,
      helo: q.helo,
      mta: 'pristine-tier',
      resolver: (name, type) => resolver.resolve(name, type),
      disableArc: true,
      disableBimi: true,
    });
    return {
      ok: true,
      dkim: (res.dkim.results ?? []).map((r) => ({ algo: r.algo, selector: r.selector, domain: r.signingDomain, result: r.status.result, comment: r.status.comment })),
      spf: res.spf ? res.spf.status.result : 'none',
      dmarc: res.dmarc ? res.dmarc.status.result : 'none',
    };
  },

  /** An HTTPS GET with SNI `servername`; the certificate's key is returned for pinning. */
  async https(q) {
    return new Promise((resolve) => {
      const s = tlsConnect({ host: q.host, port: q.port ?? 443, servername: q.servername, rejectUnauthorized: false, localAddress: q.from_address }, () => {
        s.write(`GET ${q.path} HTTP/1.1\r\nHost: ${q.servername}\r\nConnection: close\r\n\r\n`);
      });
      let data = '';
      s.setEncoding('utf8');
      s.on('data', (d) => (data += d));
      s.on('end', () => {
        const [head = '', ...rest] = data.split('\r\n\r\n');
        resolve({ ok: true, status: Number(head.split(' ')[1]), body: rest.join('\r\n\r\n') });
      });
      s.on('error', (e) => resolve({ ok: false, error: String(e.message) }));
      s.setTimeout(15_000, () => { s.destroy(); resolve({ ok: false, error: 'timeout' }); });
    });
  },

  /**
   * One IMAPS login by hand from `from_address`: 'ok', 'no' (refused), or how the connection
   * failed ('timeout' when a firewall drops it).
   */
  async imapLogin(q) {
    return new Promise((resolve) => {
      let buf = '';
      let sent = false;
      const s = tlsConnect({ host: q.host, port: 993, rejectUnauthorized: false, localAddress: q.from_address, servername: q.servername });
      const done = (r) => { s.destroy(); resolve({ ok: true, result: r }); };
      s.setEncoding('utf8');
      s.setTimeout((q.timeout ?? 8) * 1000, () => done('timeout'));
      s.on('error', (e) => done(`error: ${e.code ?? e.message}`));
      s.on('data', (d) => {
        buf += d;
        if (!sent && /^\* OK/m.test(buf)) {
          sent = true;
          s.write(`a LOGIN "${q.user}" "${q.pass}"\r\n`);
        } else if (/^a OK/m.test(buf)) done('ok');
        else if (/^a NO/m.test(buf)) done('no');
      });
    });
  },

  /**
   * A client that speaks before its turn: EHLO at once on connecting to port 25 (before the
   * greeting), then, once the server has had `wait` seconds, MAIL and RCPT. The transcript.
   */
  async pregreet(q) {
    return new Promise((resolve) => {
      let got = '';
      const s = netConnect({ host: q.host, port: 25, localAddress: q.from_address });
      const done = () => { s.destroy(); resolve({ ok: true, transcript: got }); };
      s.setEncoding('utf8');
      s.on('data', (d) => (got += d));
      s.on('error', (e) => { got += `\n[error ${e.code ?? e.message}]`; done(); });
      s.on('close', done);
      s.on('connect', () => {
        s.write('EHLO pregreet.example.net\r\n');
        setTimeout(() => s.write(`MAIL FROM:<${q.from}>\r\nRCPT TO:<${q.to}>\r\nQUIT\r\n`), (q.wait ?? 8) * 1000);
      });
      setTimeout(done, ((q.wait ?? 8) + 10) * 1000);
    });
  },

  /**
   * ManageSieve (4190) before STARTTLS: the greeting's capabilities, then a login with a made-up
   * password (never a real one over a connection without TLS). The transcript.
   */
  async sieveEarly(q) {
    return new Promise((resolve) => {
      let got = '';
      let sent = false;
      const s = netConnect({ host: q.host, port: 4190, localAddress: q.from_address });
      const done = () => { s.destroy(); resolve({ ok: true, transcript: got }); };
      s.setEncoding('utf8');
      s.setTimeout(15_000, done);
      s.on('error', (e) => { got += `[error ${e.code ?? e.message}]`; done(); });
      s.on('data', (d) => {
        got += d;
        if (!sent && /^OK\b/m.test(got)) {
          sent = true;
          s.write(`AUTHENTICATE "PLAIN" "${Buffer.from(`\0${q.user}\0not-the-password`).toString('base64')}"\r\n`);
        } else if (sent && /\n(NO|BYE)\b/.test(got)) done();
      });
    });
  },

  /** Can a TCP connection to host:port be opened from `from_address`? */
  /** `count` new connections one after another, each closed at once: what became of each. */
  /**
   * A remote MX for one message: listens on `host`:`port`, speaks just enough SMTP, and returns the
   * sender's address as seen here and the message as it arrived.
   */
  async sink(q) {
    const { createServer } = await import('node:net');
    return new Promise((resolve) => {
      const server = createServer((c) => {
        let buf = '';
        let data = false;
        const say = (l) => c.write(`${l}\r\n`);
        say('220 sink.example.net ESMTP');
        c.on('data', (d) => {
          buf += d.toString('latin1');
          for (;;) {
            if (data) {
              const end = buf.indexOf('\r\n.\r\n');
              if (end < 0) return;
              const source = buf.slice(0, end + 2).replace(/^\.\./gm, '.');
              buf = buf.slice(end + 5);
              data = false;
              say('250 2.0.0 taken');
              // With q.subject, only that message ends the wait (the host's queue may hold older
              // mail for this MX, a bounce from an earlier test, which it delivers when it can).
              if (!q.subject || source.includes(`Subject: ${q.subject}`)) {
                server.close();
                resolve({ ok: true, peer: c.remoteAddress, source });
              }
              continue;
            }
            const nl = buf.indexOf('\r\n');
            if (nl < 0) return;
            const line = buf.slice(0, nl);
            buf = buf.slice(nl + 2);
            const verb = line.slice(0, 4).toUpperCase();
            if (verb === 'EHLO' || verb === 'HELO') say('250 sink.example.net');
            else if (verb === 'DATA') {
              data = true;
              say('354 go on');
            } else if (verb === 'QUIT') {
              say('221 bye');
              c.end();
            } else say('250 2.0.0 ok');
          }
        });
        c.on('error', () => undefined);
      });
      server.listen(q.port, q.host);
      setTimeout(() => {
        server.close();
        resolve({ ok: false, error: `no message within ${q.wait} s` });
      }, q.wait * 1000);
    });
  },

  async tcpBurst(q) {
    const results = [];
    for (let i = 0; i < q.count; i++) results.push((await ops.tcp(q)).result);
    return { ok: true, results };
  },

  async tcp(q) {
    return new Promise((resolve) => {
      const s = netConnect({ host: q.host, port: q.port, localAddress: q.from_address });
      const done = (r) => { s.destroy(); resolve({ ok: true, result: r }); };
      s.setTimeout((q.timeout ?? 5) * 1000, () => done('timeout'));
      s.on('connect', () => done('open'));
      s.on('error', (e) => done(`error: ${e.code ?? e.message}`));
    });
  },
};

const op = ops[input.op];
if (!op) {
  process.stdout.write(JSON.stringify({ ok: false, error: `unknown op ${input.op}` }));
} else {
  try {
    process.stdout.write(JSON.stringify(await op(input)));
  } catch (e) {
    process.stdout.write(JSON.stringify({ ok: false, error: String(e?.stack ?? e) }));
  }
}
// A client library may keep a socket open: the answer is out, so the probe is done.
process.stdout.write('', () => process.exit(0));
