/** Ports for the servers a test starts on loopback. */
import { createServer } from 'node:net';
import { createSocket } from 'node:dgram';

/** A port above 1024 free on 127.0.0.1 for both TCP and UDP (a name server takes both). */
export async function freePort(): Promise<number> {
  for (;;) {
    const p = await new Promise<number>((resolve, reject) => {
      const s = createServer();
      s.once('error', reject);
      s.listen(0, '127.0.0.1', () => {
        const a = s.address();
        s.close(() => resolve(typeof a === 'object' && a ? a.port : 0));
      });
    });
    const udpFree = await new Promise<boolean>((resolve) => {
      const u = createSocket('udp4');
      u.once('error', () => resolve(false));
      u.bind(p, '127.0.0.1', () => u.close(() => resolve(true)));
    });
    if (udpFree && p > 1024) return p;
  }
}
