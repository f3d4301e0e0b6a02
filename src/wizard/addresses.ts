/**
 * Addresses to suggest, found on this machine's own interfaces. selfmail never asks a web
 * service "what is my IP": that would tell a third party that this machine is setting up mail,
 * and the answer could be forged. What the interfaces hold is classified by the schema's parsers.
 */
import type { NetworkInterfaceInfo } from 'node:os';
import { parseLanIPv4, parsePublicIPv4, parsePublicIPv6 } from '../config/values.js';

export type Interfaces = NodeJS.Dict<NetworkInterfaceInfo[]>;

export interface LocalAddresses {
  /** Public unicast IPv4 (documentation ranges excluded: they are never a real host's). */
  publicV4: string[];
  publicV6: string[];
  /** Private (RFC 1918) IPv4: candidates for the LAN address behind a port forward. */
  lanV4: string[];
}

/** Classify the addresses of `interfaces` (os.networkInterfaces()); pure, in interface order. */
export function localAddresses(interfaces: Interfaces): LocalAddresses {
  const out: LocalAddresses = { publicV4: [], publicV6: [], lanV4: [] };
  const add = (list: string[], a: string) => {
    if (!list.includes(a)) list.push(a);
  };
  for (const name of Object.keys(interfaces).sort()) {
    for (const info of interfaces[name] ?? []) {
      if (info.internal) continue;
      if (info.family === 'IPv4') {
        const pub = parsePublicIPv4(info.address);
        if (pub.ok && !pub.warning) add(out.publicV4, pub.value);
        const lan = parseLanIPv4(info.address);
        if (lan.ok) add(out.lanV4, lan.value);
      } else {
        // Temporary (privacy) addresses change daily; only a stable one belongs in DNS, but the
        // interface list cannot tell them apart, so every public one is offered and the user picks.
        const pub = parsePublicIPv6(info.address);
        if (pub.ok && !pub.warning) add(out.publicV6, pub.value);
      }
    }
  }
  return out;
}
