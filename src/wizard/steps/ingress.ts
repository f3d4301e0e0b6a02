/**
 * How mail reaches this machine (refused ways shown greyed out with their principle), then the
 * public addresses, and behind a port forward the LAN address the router forwards to.
 */
import { sourced } from '../../config/raw.js';
import { refusals } from '../../policy/refusals.js';
import { validatorFor, withAnswer } from '../check.js';
import type { Choice } from '../prompter.js';
import { type WizardContext, acceptable, answer, isGiven, optional, prior, settled } from './context.js';

/** The ingress choices the select shows, including the refused and unbuilt ones (disabled). */
export type IngressChoice = 'direct' | 'port-forward' | 'own-vps' | 'upnp' | 'tunnel';

/** The choices of "how does mail reach this machine"; the refused ones are disabled, naming the principle they break. */
export function ingressChoices(): Array<Choice<IngressChoice>> {
  // The principle comes from the policy itself; the one-line reason is the short form of its text.
  const principle = (ingress: string) => refusals(sourced({ ingress }, 'wizard'))[0]?.principle ?? 'policy';
  const upnp = `refused, ${principle('upnp')}: any infected machine could open router ports the same way`;
  const tunnel = `refused, ${principle('tunnel')}: its operator sees every sender, recipient and time`;
  return [
    { value: 'direct', name: 'A public address on this machine', description: 'Mail servers connect straight to this host.' },
    {
      value: 'port-forward',
      name: 'A port forward I set by hand on my router',
      description: 'This host sits on your LAN; you forward the mail ports to it in the router, yourself.',
    },
    {
      value: 'own-vps',
      name: 'A VPS of my own that only forwards packets (WireGuard)',
      description:
        'For a home connection without a fixed address, with port 25 blocked or behind carrier-grade NAT. The VPS holds no key and no mail: TLS and DKIM stay here. Two steps: the VPS makes its own key (vps/setup.sh), you paste its public key here.',
    },
    { value: 'upnp', name: 'Let this machine open router ports (UPnP, NAT-PMP)', disabled: upnp },
    { value: 'tunnel', name: 'A tunnel or relay service run by someone else', disabled: tunnel },
  ];
}

export async function askIngress(c: WizardContext): Promise<void> {
  if (!settled(c, 'ingress')) {
    const before = prior(c, 'ingress');
    const ingress = await c.p.select<IngressChoice>({
      message: 'How does mail reach this machine?',
      why: 'Mail must arrive without anyone else\'s tunnel or relay in the way; refused ways are shown greyed out with the reason.',
      choices: ingressChoices(),
      default: before === 'direct' || before === 'port-forward' || before === 'own-vps' ? before : c.draft.values.listenIpv4 !== undefined ? 'port-forward' : 'direct',
    });
    answer(c, 'ingress', ingress);
  }
  if (c.draft.values.ingress === 'own-vps') {
    await askVps(c);
    return;
  }
  // The VPS's settings only mean something with own-vps (an earlier run's are dropped).
  for (const key of ['vpsIpv4', 'vpsIpv6', 'vpsWgKey'] as const) if (!isGiven(c, key)) c.draft = withAnswer(c.draft, key, undefined);
  const portForward = c.draft.values.ingress === 'port-forward';
  if (!portForward) {
    // LAN addresses only mean something behind a port forward (an earlier run's are dropped).
    if (!isGiven(c, 'listenIpv4')) c.draft = withAnswer(c.draft, 'listenIpv4', undefined);
    if (!isGiven(c, 'listenIpv6')) c.draft = withAnswer(c.draft, 'listenIpv6', undefined);
  }
  await askAddresses(c, portForward);
}

/** Through the user's own VPS: its public addresses, then its WireGuard public key (later is fine). */
async function askVps(c: WizardContext): Promise<void> {
  // This host needs no public address of its own: the VPS's are the ones published.
  for (const key of ['ipv4', 'ipv6', 'listenIpv4', 'listenIpv6'] as const) if (!isGiven(c, key)) c.draft = withAnswer(c.draft, key, undefined);
  if (!settled(c, 'vpsIpv4')) {
    const ans = await c.p.input({
      message: 'Public IPv4 address of your VPS (none if it has none)',
      why: 'Mail servers connect to it; it goes into the A, MX and SPF records. Ask the VPS provider for its reverse name (PTR) too.',
      default: prior(c, 'vpsIpv4'),
      validate: (a) => (optional(a) === undefined ? true : validatorFor(c.draft, 'vpsIpv4', optional)(a)),
    });
    answer(c, 'vpsIpv4', optional(ans));
  }
  if (!settled(c, 'vpsIpv6')) {
    const ans = await c.p.input({
      message: 'Public IPv6 address of your VPS (none if it has none)',
      why: 'Many mail servers prefer IPv6.',
      default: prior(c, 'vpsIpv6'),
      validate: validatorFor(c.draft, 'vpsIpv6', optional, ['vpsIpv4']),
    });
    answer(c, 'vpsIpv6', optional(ans));
  }
  if (!settled(c, 'vpsWgKey')) {
    const ans = await c.p.input({
      message: 'The VPS\'s WireGuard public key (none if the VPS is not set up yet)',
      why: 'Step 1: the bundle\'s vps/ folder goes to the VPS, and vps/setup.sh there makes the VPS\'s own key and prints its public key. Step 2: paste that line here (or run init again with --vps-wg-key). Never the private key: it stays on the VPS.',
      default: prior(c, 'vpsWgKey'),
      validate: (a) => (optional(a) === undefined ? true : validatorFor(c.draft, 'vpsWgKey', optional)(a)),
    });
    answer(c, 'vpsWgKey', optional(ans));
  }
}

async function askAddresses(c: WizardContext, portForward: boolean): Promise<void> {
  const { found } = c;
  const where = portForward ? 'your router' : 'this host';
  if (!settled(c, 'ipv4')) {
    const suggestion = portForward ? undefined : found.publicV4[0];
    const seen = !portForward && found.publicV4.length > 0 ? ` Found on this machine: ${found.publicV4.join(', ')}.` : '';
    const ans = await c.p.input({
      message: `Public IPv4 address of ${where} (none if it has none)`,
      why: portForward
        ? 'The address your ISP gave your router (see its status page; selfmail asks no web service). Mail servers connect to it.'
        : `Mail servers connect to it; it goes into the A, MX and SPF records.${seen}`,
      default: prior(c, 'ipv4') ?? suggestion,
      validate: (a) => (optional(a) === undefined ? true : validatorFor(c.draft, 'ipv4', optional)(a)),
    });
    answer(c, 'ipv4', optional(ans));
  }
  if (!settled(c, 'ipv6')) {
    const seen = found.publicV6.length > 0 ? ` Found on this machine: ${found.publicV6.join(', ')}.` : '';
    const ans = await c.p.input({
      message: `Public IPv6 address of ${where} (none if it has none)`,
      why: `Many mail servers prefer IPv6; give a stable address, not a temporary one.${seen}`,
      default: prior(c, 'ipv6') ?? found.publicV6[0],
      // A blank answer is fine when there is an IPv4 address; the schema says so otherwise.
      validate: validatorFor(c.draft, 'ipv6', optional, ['ipv4']),
    });
    answer(c, 'ipv6', optional(ans));
  }
  if (portForward && c.draft.values.ipv4 !== undefined && !settled(c, 'listenIpv4')) {
    const before = prior(c, 'listenIpv4');
    const ans = await c.p.input({
      message: 'LAN address of this host (the router forwards the mail ports to it)',
      why: 'The services listen on this private address; you forward the ports to it by hand. selfmail never opens router ports itself.',
      default: acceptable(c, 'listenIpv4', before) ? before : found.lanV4[0],
      validate: validatorFor(c.draft, 'listenIpv4', optional),
    });
    answer(c, 'listenIpv4', optional(ans));
  } else if (c.draft.values.ipv4 === undefined && !isGiven(c, 'listenIpv4')) {
    c.draft = withAnswer(c.draft, 'listenIpv4', undefined);
  }
}
