/**
 * Free loopback ports for the checks and the rehearsal. A port is asked of the kernel (bind to 0),
 * checked free for UDP as well (NSD serves both), and never handed out twice in one run.
 */
import { createSocket } from 'node:dgram';
import { createServer } from 'node:net';
import { networkInterfaces } from 'node:os';
import type { Ports } from './layout.js';

function tcpPort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, host, () => {
      const a = s.address();
      s.close(() => resolve(typeof a === 'object' && a ? a.port : 0));
    });
  });
}

function udpFree(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const u = createSocket('udp4');
    u.once('error', () => resolve(false));
    u.bind(port, host, () => u.close(() => resolve(true)));
  });
}

function tcpFree(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen(port, host, () => s.close(() => resolve(true)));
  });
}

/**
 * `count` distinct ports above 1024, free on `host` for TCP and UDP.
 */
export async function freePorts(host: string, count: number, taken: Set<number> = new Set()): Promise<number[]> {
  const out: number[] = [];
  for (let tries = 0; out.length < count; tries++) {
    if (tries > 200) throw new Error(`could not find ${count} free ports on ${host}`);
    const p = await tcpPort(host);
    if (p <= 1024 || taken.has(p) || !(await udpFree(host, p))) continue;
    taken.add(p);
    out.push(p);
  }
  return out;
}

/** A free port p with p+1 … p+length-1 free too (TCP), all recorded in `taken`. */
export async function freePortRun(host: string, length: number, taken: Set<number>): Promise<number> {
  for (let tries = 0; tries < 200; tries++) {
    const [p] = await freePorts(host, 1, taken);
    if (p === undefined) continue;
    const next = Array.from({ length: length - 1 }, (_, i) => p + 1 + i);
    let free = true;
    for (const q of next) if (taken.has(q) || !(await tcpFree(host, q))) free = false;
    if (free) {
      for (const q of next) taken.add(q);
      return p;
    }
  }
  throw new Error(`could not find ${length} consecutive free ports on ${host}`);
}

/** A full set of free loopback ports for the services (rspamd's three workers take consecutive ones). */
export async function freeServicePorts(host = '127.0.0.1'): Promise<Ports> {
  const taken = new Set<number>();
  const [smtp, submission, submissions, imaps, dns, http, https] = (await freePorts(host, 7, taken)) as [number, number, number, number, number, number, number];
  const spam = await freePortRun(host, 3, taken);
  const [redis, managesieve, localSubmission] = (await freePorts(host, 3, taken)) as [number, number, number];
  return { smtp, submission, submissions, imaps, dns, http, https, spam, redis, managesieve, localSubmission };
}

/** True when this machine has the IPv6 loopback address (containers sometimes lack it). */
export function hasIpv6Loopback(): boolean {
  return Object.values(networkInterfaces()).some((list) => list?.some((a) => a.family === 'IPv6' && a.address === '::1'));
}
