/**
 * A minimal milter client (the MTA side of the Sendmail milter protocol, version 6), enough to
 * pass one message through a running OpenDKIM the way Postfix does and collect the headers it
 * adds. Test-only: it speaks to 127.0.0.1 and a port the test chose.
 */
import { Socket, connect } from 'node:net';

export interface MilterMessage {
  /** Macros sent at connect time, e.g. `{daemon_name}`, `j`. */
  connectMacros: Record<string, string>;
  /** Macros sent with MAIL FROM, e.g. `{auth_type}`, `{auth_authen}`. */
  mailMacros: Record<string, string>;
  clientAddress: string;
  from: string;
  to: string;
  headers: [string, string][];
  body: string;
}

export interface MilterResult {
  /** Headers the filter added or inserted, in the order received. */
  added: [string, string][];
  /** The final reply: `a` accept, `c` continue, `r` reject, `t` tempfail, `d` discard. */
  verdict: string;
}

function packet(cmd: string, data: Buffer = Buffer.alloc(0)): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length + 1);
  return Buffer.concat([len, Buffer.from(cmd, 'latin1'), data]);
}

const z = (...parts: string[]) => Buffer.from(parts.map((p) => `${p}\0`).join(''), 'utf8');

function macros(stage: string, m: Record<string, string>): Buffer {
  return packet('D', Buffer.concat([Buffer.from(stage), z(...Object.entries(m).flat())]));
}

class Reader {
  private buf = Buffer.alloc(0);
  private waiters: (() => void)[] = [];
  constructor(sock: Socket) {
    sock.on('data', (d: Buffer) => {
      this.buf = Buffer.concat([this.buf, d]);
      for (const w of this.waiters.splice(0)) w();
    });
  }
  async next(): Promise<{ cmd: string; data: Buffer }> {
    for (;;) {
      if (this.buf.length >= 4) {
        const len = this.buf.readUInt32BE(0);
        if (this.buf.length >= 4 + len) {
          const cmd = String.fromCharCode(this.buf[4]!);
          const data = this.buf.subarray(5, 4 + len);
          this.buf = this.buf.subarray(4 + len);
          return { cmd, data };
        }
      }
      await new Promise<void>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error('milter did not answer within 10 s')), 10_000);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }
}

/** Pass one message through the milter at `port` on 127.0.0.1. */
export async function milterSend(port: number, msg: MilterMessage): Promise<MilterResult> {
  const sock = connect({ host: '127.0.0.1', port });
  await new Promise<void>((resolve, reject) => {
    sock.once('connect', resolve);
    sock.once('error', reject);
  });
  const r = new Reader(sock);
  const added: [string, string][] = [];
  const send = (b: Buffer) => sock.write(b);
  /** Send a command and read replies until one that ends the step. */
  const step = async (b: Buffer): Promise<string> => {
    send(b);
    for (;;) {
      const { cmd, data } = await r.next();
      if (cmd === 'h' || cmd === 'i') {
        const body = cmd === 'i' ? data.subarray(4) : data;
        const [name = '', value = ''] = body.toString('utf8').split('\0');
        added.push([name, value]);
        continue;
      }
      if ('mcebsqlp'.includes(cmd) && cmd !== 'c') continue; // other modifications: ignored here
      return cmd;
    }
  };
  try {
    const neg = Buffer.alloc(12);
    neg.writeUInt32BE(6, 0);
    neg.writeUInt32BE(0x1ff, 4);
    neg.writeUInt32BE(0, 8);
    send(packet('O', neg));
    await r.next();
    send(macros('C', msg.connectMacros));
    const family = Buffer.from('4');
    const portBuf = Buffer.alloc(2);
    portBuf.writeUInt16BE(12345);
    let v = await step(packet('C', Buffer.concat([z('client.example'), family, portBuf, z(msg.clientAddress)])));
    if (v !== 'c') return { added, verdict: v };
    v = await step(packet('H', z('client.example')));
    if (v !== 'c') return { added, verdict: v };
    send(macros('M', msg.mailMacros));
    v = await step(packet('M', z(`<${msg.from}>`)));
    if (v !== 'c') return { added, verdict: v };
    v = await step(packet('R', z(`<${msg.to}>`)));
    if (v !== 'c') return { added, verdict: v };
    for (const [name, value] of msg.headers) {
      v = await step(packet('L', z(name, value)));
      if (v !== 'c') return { added, verdict: v };
    }
    v = await step(packet('N'));
    if (v !== 'c') return { added, verdict: v };
    v = await step(packet('B', Buffer.from(msg.body, 'utf8')));
    if (v !== 'c') return { added, verdict: v };
    v = await step(packet('E'));
    return { added, verdict: v };
  } finally {
    send(packet('Q'));
    sock.end();
    sock.destroy();
  }
}
