/**
 * The rehearsal's resolver on 127.0.0.1:53 inside the rehearsal's network namespace: the one
 * /etc/resolv.conf names there (Postfix, Dovecot) and the one rspamd asks. It logs every
 * question; a name in one of the rehearsal's zones goes to the rehearsal's NSD, any other is
 * answered REFUSED here and goes nowhere. The log is what the `privacy` step reads.
 */
import { type Socket as UdpSocket, createSocket } from 'node:dgram';
import { type Server, type Socket, createServer } from 'node:net';

export interface Question {
  name: string;
  type: number;
  /** `nsd`: one of the rehearsal's zones, asked of its NSD; `refused`: answered here, sent nowhere. */
  answer: 'nsd' | 'refused';
}

/** The question of a DNS message: its name (lower case, no final dot) and type; undefined when malformed. Pure. */
export function parseQuestion(msg: Buffer): { name: string; type: number; end: number } | undefined {
  if (msg.length < 12 || msg.readUInt16BE(4) < 1) return undefined;
  const labels: string[] = [];
  let i = 12;
  for (;;) {
    const len = msg[i];
    if (len === undefined || len > 63) return undefined;
    i += 1;
    if (len === 0) break;
    if (i + len > msg.length) return undefined;
    labels.push(msg.subarray(i, i + len).toString('latin1').toLowerCase());
    i += len;
  }
  if (i + 4 > msg.length) return undefined;
  return { name: labels.join('.'), type: msg.readUInt16BE(i), end: i + 4 };
}

/** A REFUSED answer to `query`: its header and question, no records. Pure. */
export function refusedAnswer(query: Buffer, questionEnd: number): Buffer {
  const out = Buffer.from(query.subarray(0, questionEnd));
  // QR=1, opcode and RD kept; RA=0, RCODE=5 (REFUSED); one question, nothing else.
  out[2] = ((out[2] ?? 0) & 0x79) | 0x80;
  out[3] = 0x05;
  out.writeUInt16BE(1, 4);
  out.writeUInt16BE(0, 6);
  out.writeUInt16BE(0, 8);
  out.writeUInt16BE(0, 10);
  return out;
}

/** True when `name` is `zone` or below it. Pure. */
export function inZones(name: string, zones: readonly string[]): boolean {
  return zones.some((z) => name === z || name.endsWith(`.${z}`));
}

export interface RehearsalResolver {
  questions: Question[];
  close: () => Promise<void>;
}

/** Start the resolver on 127.0.0.1:53 (UDP and TCP), forwarding the zones' names to NSD on `nsdPort`. */
export async function startResolver(zones: readonly string[], nsdPort: number): Promise<RehearsalResolver> {
  const questions: Question[] = [];
  const ask = (query: Buffer): Promise<Buffer | undefined> => {
    const q = parseQuestion(query);
    if (!q) return Promise.resolve(undefined);
    const local = inZones(q.name, zones);
    questions.push({ name: q.name, type: q.type, answer: local ? 'nsd' : 'refused' });
    if (!local) return Promise.resolve(refusedAnswer(query, q.end));
    return new Promise((resolve) => {
      const s = createSocket('udp4');
      const timer = setTimeout(() => {
        s.close();
        resolve(undefined);
      }, 3_000);
      s.once('message', (reply) => {
        clearTimeout(timer);
        s.close();
        resolve(reply);
      });
      s.once('error', () => {
        clearTimeout(timer);
        s.close();
        resolve(undefined);
      });
      s.send(query, nsdPort, '127.0.0.1');
    });
  };

  const udp: UdpSocket = createSocket('udp4');
  udp.on('message', (msg, rinfo) => {
    void ask(msg).then((reply) => {
      if (reply) udp.send(reply, rinfo.port, rinfo.address);
    });
  });
  await new Promise<void>((resolve, reject) => {
    udp.once('error', reject);
    udp.bind(53, '127.0.0.1', () => resolve());
  });

  const open = new Set<Socket>();
  const tcp: Server = createServer((conn: Socket) => {
    open.add(conn);
    conn.on('close', () => open.delete(conn));
    let buf = Buffer.alloc(0);
    conn.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        const len = buf.readUInt16BE(0);
        const query = buf.subarray(2, 2 + len);
        buf = buf.subarray(2 + len);
        void ask(Buffer.from(query)).then((reply) => {
          if (!reply || conn.destroyed) return;
          const head = Buffer.alloc(2);
          head.writeUInt16BE(reply.length);
          conn.write(Buffer.concat([head, reply]));
        });
      }
    });
    conn.on('error', () => undefined);
  });
  await new Promise<void>((resolve, reject) => {
    tcp.once('error', reject);
    tcp.listen(53, '127.0.0.1', () => resolve());
  });

  return {
    questions,
    close: async () => {
      await new Promise<void>((resolve) => udp.close(() => resolve()));
      for (const c of open) c.destroy();
      await new Promise<void>((resolve) => tcp.close(() => resolve()));
    },
  };
}
