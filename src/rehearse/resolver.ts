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
  /**
   * `nsd`: one of the rehearsal's zones, asked of its NSD; `internet`: a name of an own-VPS
   * rehearsal's internet, answered here from its records; `refused`: answered here, sent nowhere.
   */
  answer: 'nsd' | 'internet' | 'refused';
}

/** A record of the rehearsal's internet (./tunnel.ts), which the resolver answers itself. */
export interface StaticRecord {
  name: string;
  type: 'A' | 'AAAA' | 'PTR' | 'MX' | 'TXT';
  /** A and AAAA: the address; PTR: a name; MX: "preference name"; TXT: the text (one string of up to 255 bytes). */
  data: string;
}

/** The internet's names: its zone, and records (their names may lie outside it: reverse names). */
export interface StaticZone {
  zone: string;
  records: readonly StaticRecord[];
}

const TYPE_CODE: Record<StaticRecord['type'], number> = { A: 1, AAAA: 28, PTR: 12, MX: 15, TXT: 16 };

function encodeName(name: string): Buffer {
  const parts = name.replace(/\.$/, '').split('.').filter(Boolean);
  return Buffer.concat([...parts.map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l, 'latin1')])), Buffer.from([0])]);
}

function ipv6Bytes(address: string): Buffer {
  const [head = '', tail = ''] = address.split('::');
  const h = head ? head.split(':') : [];
  const t = address.includes('::') ? (tail ? tail.split(':') : []) : [];
  const groups = [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
  return Buffer.from(groups.flatMap((g) => { const n = parseInt(g, 16); return [n >> 8, n & 0xff]; }));
}

function rdata(r: StaticRecord): Buffer {
  switch (r.type) {
    case 'A':
      return Buffer.from(r.data.split('.').map(Number));
    case 'AAAA':
      return ipv6Bytes(r.data);
    case 'PTR':
      return encodeName(r.data);
    case 'MX': {
      const [pref = '10', host = ''] = r.data.split(' ');
      const p = Buffer.alloc(2);
      p.writeUInt16BE(Number(pref));
      return Buffer.concat([p, encodeName(host)]);
    }
    case 'TXT':
      return Buffer.concat([Buffer.from([Buffer.byteLength(r.data)]), Buffer.from(r.data, 'latin1')]);
  }
}

/** The reverse-lookup name of an IPv4 or IPv6 address. Pure. */
export function reverseName(address: string): string {
  if (!address.includes(':')) return `${address.split('.').reverse().join('.')}.in-addr.arpa`;
  return `${[...ipv6Bytes(address).toString('hex')].reverse().join('.')}.ip6.arpa`;
}

/** True when `zone` holds `name`: below its zone, or a record's name. Pure. */
export function inStaticZone(name: string, zone: StaticZone): boolean {
  return inZones(name, [zone.zone]) || zone.records.some((r) => r.name === name);
}

/**
 * The authoritative answer to `query` from `zone`'s records: those of the question's name and
 * type; NOERROR with none when the name has other records, NXDOMAIN when it has none. Pure.
 */
export function staticAnswer(query: Buffer, q: { name: string; type: number; end: number }, zone: StaticZone): Buffer {
  const named = zone.records.filter((r) => r.name === q.name);
  const answers = named.filter((r) => TYPE_CODE[r.type] === q.type);
  const head = Buffer.from(query.subarray(0, q.end));
  // QR=1, AA=1, opcode and RD kept; RA=0; NOERROR or NXDOMAIN; one question, the answers.
  head[2] = ((head[2] ?? 0) & 0x79) | 0x84;
  head[3] = named.length === 0 ? 0x03 : 0x00;
  head.writeUInt16BE(1, 4);
  head.writeUInt16BE(answers.length, 6);
  head.writeUInt16BE(0, 8);
  head.writeUInt16BE(0, 10);
  const rrs = answers.map((r) => {
    const data = rdata(r);
    const fixed = Buffer.alloc(12);
    fixed.writeUInt16BE(0xc00c, 0); // the question's name
    fixed.writeUInt16BE(TYPE_CODE[r.type], 2);
    fixed.writeUInt16BE(1, 4); // IN
    fixed.writeUInt32BE(300, 6);
    fixed.writeUInt16BE(data.length, 10);
    return Buffer.concat([fixed, data]);
  });
  return Buffer.concat([head, ...rrs]);
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

/**
 * Start the resolver on 127.0.0.1:53 (UDP and TCP), forwarding the zones' names to NSD on
 * `nsdHost:nsdPort` (IPv4), and answering the names of `internet` (an own-VPS rehearsal's) itself.
 */
export async function startResolver(zones: readonly string[], nsdHost: string, nsdPort: number, internet?: StaticZone): Promise<RehearsalResolver> {
  const questions: Question[] = [];
  const ask = (query: Buffer): Promise<Buffer | undefined> => {
    const q = parseQuestion(query);
    if (!q) return Promise.resolve(undefined);
    if (internet && inStaticZone(q.name, internet)) {
      questions.push({ name: q.name, type: q.type, answer: 'internet' });
      return Promise.resolve(staticAnswer(query, q, internet));
    }
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
      s.send(query, nsdPort, nsdHost);
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
