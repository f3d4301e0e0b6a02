/**
 * The world outside an own-VPS rehearsal: this file runs as its own program inside the
 * rehearsal's "internet" namespace (./tunnel.ts starts it with nsenter), as `node outside.js send`
 * or `node outside.js sink`, a JSON request on stdin and JSON lines on stdout.
 *
 * - `send`: a client on an address of its own delivers one message to the VPS's port 25, taking
 *   STARTTLS, and reports the key of the certificate it was shown (the caller judges it against
 *   the zone's TLSA record, as a DANE client does: no CA is asked).
 * - `sink`: a remote MX on an address of its own prints `{"listening":true}`, then a line for
 *   each message it takes: who delivered it (the address the connection came from) and what.
 */
import { createHash } from 'node:crypto';
import { type Socket, connect, createServer } from 'node:net';
import { type TLSSocket, connect as tlsConnect } from 'node:tls';

export interface SendRequest {
  localAddress: string;
  host: string;
  port: number;
  helo: string;
  mailFrom: string;
  rcptTo: string;
  /** The message, CRLF line ends, no final dot. */
  data: string;
  servername: string;
}

export interface SendResult {
  ok: boolean;
  /** SHA-256 of the SubjectPublicKeyInfo of the certificate shown after STARTTLS (lower-case hex). */
  spkiSha256?: string;
  tlsProtocol?: string;
  /** The server's last reply (to DATA's end), or what went wrong. */
  reply?: string;
  error?: string;
}

export interface SinkRequest {
  address: string;
  port: number;
  timeoutMs: number;
}

export interface SinkResult {
  ok: boolean;
  peer?: string;
  helo?: string;
  mailFrom?: string;
  rcptTo?: string[];
  data?: string;
  error?: string;
}

/** Reads complete SMTP replies (multi-line aware) from a socket that can change (STARTTLS). */
class Replies {
  private buf = '';
  private waiting: ((r: string) => void) | undefined;
  private failed: ((e: Error) => void) | undefined;

  attach(s: Socket | TLSSocket): void {
    s.on('data', (d: Buffer) => {
      this.buf += d.toString('latin1');
      this.flush();
    });
    s.on('error', (e) => this.failed?.(e));
    s.on('close', () => this.failed?.(new Error(`connection closed (after: ${JSON.stringify(this.buf.slice(-200))})`)));
  }

  detach(s: Socket): void {
    s.removeAllListeners('data');
    s.removeAllListeners('error');
    s.removeAllListeners('close');
  }

  private flush(): void {
    const m = /(^|\r\n)\d{3} [^\r\n]*\r\n/.exec(this.buf);
    if (!m || !this.waiting) return;
    const end = m.index + m[0].length;
    const reply = this.buf.slice(0, end).trimEnd();
    this.buf = this.buf.slice(end);
    const w = this.waiting;
    this.waiting = undefined;
    this.failed = undefined;
    w(reply);
  }

  next(timeoutMs = 20_000): Promise<string> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no SMTP reply within ${timeoutMs / 1000} s`)), timeoutMs);
      this.waiting = (r) => {
        clearTimeout(timer);
        resolve(r);
      };
      this.failed = (e) => {
        clearTimeout(timer);
        reject(e);
      };
      this.flush();
    });
  }
}

async function expect(replies: Replies, code: RegExp, what: string): Promise<string> {
  const r = await replies.next();
  if (!code.test(r)) throw new Error(`${what}: ${r}`);
  return r;
}

export async function send(req: SendRequest): Promise<SendResult> {
  const plain = connect({ host: req.host, port: req.port, localAddress: req.localAddress });
  const replies = new Replies();
  replies.attach(plain);
  let sock: Socket | TLSSocket = plain;
  const say = (line: string) => sock.write(`${line}\r\n`);
  const out: SendResult = { ok: false };
  try {
    await expect(replies, /^220/, 'greeting');
    say(`EHLO ${req.helo}`);
    const ehlo = await expect(replies, /^250/, 'EHLO');
    if (!/^250[ -]STARTTLS/im.test(ehlo)) throw new Error(`no STARTTLS offered: ${ehlo}`);
    say('STARTTLS');
    await expect(replies, /^220/, 'STARTTLS');
    replies.detach(plain);
    // DANE-EE: the key is judged by the caller against the TLSA record, not by a CA.
    const tls = tlsConnect({ socket: plain, servername: req.servername, rejectUnauthorized: false, minVersion: 'TLSv1.2' });
    await new Promise<void>((resolve, reject) => {
      tls.once('secureConnect', () => resolve());
      tls.once('error', reject);
    });
    replies.attach(tls);
    sock = tls;
    const cert = tls.getPeerX509Certificate();
    if (!cert) throw new Error('the server showed no certificate');
    out.spkiSha256 = createHash('sha256').update(cert.publicKey.export({ type: 'spki', format: 'der' })).digest('hex');
    out.tlsProtocol = tls.getProtocol() ?? '';
    say(`EHLO ${req.helo}`);
    await expect(replies, /^250/, 'EHLO after STARTTLS');
    say(`MAIL FROM:<${req.mailFrom}>`);
    await expect(replies, /^250/, 'MAIL FROM');
    say(`RCPT TO:<${req.rcptTo}>`);
    await expect(replies, /^250/, 'RCPT TO');
    say('DATA');
    await expect(replies, /^354/, 'DATA');
    sock.write(`${req.data.replace(/^\./gm, '..')}\r\n.\r\n`);
    out.reply = await expect(replies, /^250/, 'end of data');
    say('QUIT');
    await replies.next(5_000).catch(() => '');
    out.ok = true;
  } catch (e) {
    out.error = e instanceof Error ? e.message : String(e);
  } finally {
    sock.destroy();
    plain.destroy();
  }
  return out;
}

/**
 * Take every message sent to `req.address:req.port` for `req.timeoutMs`: `onListening` once the
 * port is open, `onMessage` for each message, with who delivered it.
 */
export function sink(req: SinkRequest, onListening: () => void, onMessage: (m: SinkResult) => void): Promise<void> {
  return new Promise((resolve) => {
    const server = createServer((c) => {
      const peer = (c.remoteAddress ?? '').replace(/^::ffff:/, '');
      let got: SinkResult = { ok: false, peer, rcptTo: [] };
      let helo = '';
      let buf = '';
      let inData = false;
      const reply = (line: string) => c.write(`${line}\r\n`);
      reply('220 mx.internet.invalid ESMTP rehearsal sink');
      c.on('data', (d: Buffer) => {
        buf += d.toString('latin1');
        for (;;) {
          if (inData) {
            const end = buf.indexOf('\r\n.\r\n');
            if (end < 0) return;
            onMessage({ ...got, ok: true, helo, data: buf.slice(0, end + 2).replace(/^\.\./gm, '.') });
            got = { ok: false, peer, rcptTo: [] };
            buf = buf.slice(end + 5);
            inData = false;
            reply('250 2.0.0 taken');
            continue;
          }
          const eol = buf.indexOf('\r\n');
          if (eol < 0) return;
          const line = buf.slice(0, eol);
          buf = buf.slice(eol + 2);
          const verb = line.slice(0, 4).toUpperCase();
          if (verb === 'EHLO' || verb === 'HELO') {
            helo = line.slice(5).trim();
            reply(verb === 'EHLO' ? '250-mx.internet.invalid\r\n250 8BITMIME' : '250 mx.internet.invalid');
          } else if (verb === 'MAIL') {
            got.mailFrom = /<([^>]*)>/.exec(line)?.[1] ?? '';
            reply('250 2.1.0 ok');
          } else if (verb === 'RCPT') {
            got.rcptTo?.push(/<([^>]*)>/.exec(line)?.[1] ?? '');
            reply('250 2.1.5 ok');
          } else if (verb === 'DATA') {
            inData = true;
            reply('354 end with .');
          } else if (verb === 'QUIT') {
            reply('221 bye');
            c.end();
          } else reply(verb === 'RSET' || verb === 'NOOP' ? '250 ok' : '502 5.5.2 not here');
        }
      });
      c.on('error', () => undefined);
    });
    setTimeout(() => server.close(() => resolve()), req.timeoutMs).unref();
    server.on('error', (e) => {
      onMessage({ ok: false, error: e.message });
      resolve();
    });
    server.listen(req.port, req.address, onListening);
  });
}

async function main(): Promise<void> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  const req = JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
  const print = (x: unknown) => process.stdout.write(`${JSON.stringify(x)}\n`);
  if (process.argv[2] === 'send') print(await send(req as SendRequest));
  else if (process.argv[2] === 'sink') await sink(req as SinkRequest, () => print({ listening: true }), print);
  else print({ ok: false, error: `unknown operation ${process.argv[2] ?? ''}` });
}

if (process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href) {
  main().then(
    () => process.exit(0),
    (e: unknown) => {
      process.stdout.write(`${JSON.stringify({ ok: false, error: e instanceof Error ? e.message : String(e) })}\n`);
      process.exit(1);
    },
  );
}
