/**
 * Free loopback ports, for the checks and the rehearsal: they run the bundle's services (or their
 * config testers, which bind like the service would) on loopback, never on the host's real ports.
 */
import { createServer } from 'node:net';
import { networkInterfaces } from 'node:os';
import type { Ports } from './layout.js';

/** Ask the kernel for `n` distinct free TCP ports on 127.0.0.1. */
export async function freePorts(n: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from(
      { length: n },
      () =>
        new Promise<import('node:net').Server>((resolve, reject) => {
          const s = createServer();
          s.once('error', reject);
          s.listen(0, '127.0.0.1', () => resolve(s));
        }),
    ),
  );
  const ports = servers.map((s) => (s.address() as import('node:net').AddressInfo).port);
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  return ports;
}

/** A full set of free high ports; the milter takes two consecutive ones (RSA and Ed25519 signers). */
export async function freeServicePorts(): Promise<Ports> {
  for (;;) {
    const [smtp, submission, submissions, imaps, dns, http, https, milter] = (await freePorts(8)) as [number, number, number, number, number, number, number, number];
    const [next] = await freePorts(1);
    // The second OpenDKIM instance listens on milter + 1; make sure that one is free too.
    if (milter < 65535 && next !== undefined && (await isFree(milter + 1))) {
      return { smtp, submission, submissions, imaps, dns, http, https, milter };
    }
  }
}

async function isFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

/** True when this machine has the IPv6 loopback address (containers sometimes lack it). */
export function hasIpv6Loopback(): boolean {
  return Object.values(networkInterfaces()).some((list) => list?.some((a) => a.family === 'IPv6' && a.address === '::1'));
}
