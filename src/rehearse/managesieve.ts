/**
 * A small ManageSieve client (RFC 5804) for the rehearsal: STARTTLS with the bundle's certificate
 * verified, AUTHENTICATE PLAIN, PUTSCRIPT and SETACTIVE. Only what the `sieve` step needs.
 */
import { type Socket, connect } from 'node:net';
import { type TLSSocket, connect as tlsConnect } from 'node:tls';

export interface SieveTarget {
  host: string;
  port: number;
  localAddress: string;
  /** The certificate to trust and the name it must carry. */
  ca: Buffer;
  servername: string;
}

/** A server response: the lines before it and the final OK / NO / BYE line. */
export interface SieveResponse {
  lines: string[];
  status: 'OK' | 'NO' | 'BYE';
  text: string;
}

/** The response ends at a line starting with OK, NO or BYE (string literals aside, which we never get here). */
const FINAL = /^(OK|NO|BYE)\b ?(.*)$/;

class Reader {
  private buf = '';
  private waiting: Array<() => void> = [];
  private ended: Error | undefined;

  attach(s: Socket | TLSSocket): void {
    s.on('data', (d: Buffer) => {
      this.buf += d.toString('utf8');
      this.wake();
    });
    s.on('error', (e) => {
      this.ended = e;
      this.wake();
    });
    s.on('end', () => {
      this.ended ??= new Error('the server closed the connection');
      this.wake();
    });
  }

  private wake(): void {
    for (const w of this.waiting.splice(0)) w();
  }

  async response(timeoutMs: number): Promise<SieveResponse> {
    const deadline = Date.now() + timeoutMs;
    const lines: string[] = [];
    for (;;) {
      const nl = this.buf.indexOf('\r\n');
      if (nl >= 0) {
        const line = this.buf.slice(0, nl);
        this.buf = this.buf.slice(nl + 2);
        const m = FINAL.exec(line);
        if (m) return { lines, status: m[1] as SieveResponse['status'], text: (m[2] ?? '').trim() };
        lines.push(line);
        continue;
      }
      if (this.ended) throw this.ended;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no complete ManageSieve response within ${timeoutMs / 1000} s (got ${JSON.stringify(lines)})`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiting.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }
}

/** A ManageSieve session; every method throws when the server answers NO or BYE, unless asked not to. */
export class ManageSieve {
  private socket: Socket | TLSSocket;
  private reader = new Reader();
  /** The capabilities last announced (before STARTTLS, then after it). */
  capabilities: string[] = [];

  private constructor(socket: Socket) {
    this.socket = socket;
    this.reader.attach(socket);
  }

  static async open(t: SieveTarget, timeoutMs = 10_000): Promise<ManageSieve> {
    const plain = connect({ host: t.host, port: t.port, localAddress: t.localAddress });
    await new Promise<void>((resolve, reject) => {
      plain.once('connect', resolve);
      plain.once('error', reject);
    });
    const s = new ManageSieve(plain);
    const greeting = await s.reader.response(timeoutMs);
    if (greeting.status !== 'OK') throw new Error(`ManageSieve greeting: ${greeting.status} ${greeting.text}`);
    s.capabilities = greeting.lines;
    return s;
  }

  /** Send a command (already quoted) and read its response. */
  async command(line: string, timeoutMs = 10_000): Promise<SieveResponse> {
    this.socket.write(`${line}\r\n`);
    return this.reader.response(timeoutMs);
  }

  private async must(line: string, what: string): Promise<SieveResponse> {
    const r = await this.command(line);
    if (r.status !== 'OK') throw new Error(`${what}: ${r.status} ${r.text}`);
    return r;
  }

  /** STARTTLS, verifying the server's certificate; the capabilities are read again inside TLS. */
  async startTls(t: SieveTarget, timeoutMs = 10_000): Promise<void> {
    await this.must('STARTTLS', 'STARTTLS');
    const plain = this.socket as Socket;
    plain.removeAllListeners('data');
    plain.removeAllListeners('end');
    plain.removeAllListeners('error');
    const secure = tlsConnect({ socket: plain, ca: [t.ca], servername: t.servername });
    await new Promise<void>((resolve, reject) => {
      secure.once('secureConnect', resolve);
      secure.once('error', reject);
    });
    this.socket = secure;
    this.reader = new Reader();
    this.reader.attach(secure);
    // RFC 5804 2.2: after TLS the server sends its capabilities again, unasked.
    const caps = await this.reader.response(timeoutMs);
    if (caps.status !== 'OK') throw new Error(`capabilities after STARTTLS: ${caps.status} ${caps.text}`);
    this.capabilities = caps.lines;
  }

  /** AUTHENTICATE "PLAIN" with an initial response; the response, never thrown on NO. */
  authenticate(user: string, pass: string): Promise<SieveResponse> {
    const token = Buffer.from(`\0${user}\0${pass}`, 'utf8').toString('base64');
    return this.command(`AUTHENTICATE "PLAIN" "${token}"`);
  }

  async putScript(name: string, script: string): Promise<void> {
    const bytes = Buffer.byteLength(script, 'utf8');
    await this.must(`PUTSCRIPT "${name}" {${bytes}+}\r\n${script}`, `PUTSCRIPT ${name}`);
  }

  async setActive(name: string): Promise<void> {
    await this.must(`SETACTIVE "${name}"`, `SETACTIVE ${name}`);
  }

  async logout(): Promise<void> {
    try {
      await this.command('LOGOUT', 5_000);
    } catch {
      // the server may close before answering
    } finally {
      this.socket.destroy();
    }
  }

  close(): void {
    this.socket.destroy();
  }
}
