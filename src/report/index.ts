/**
 * REPORT.md, at the bundle's root: what this setup protects and what it does not, in plain
 * words and per principle (principle 8: no false sense of security), and the steps left to do
 * by hand at the registrar, the ISP and the router. Also a few lines for the wizard's end screen.
 *
 * Everything is computed from the config and the key descriptors; nothing is promised that the
 * setup does not do.
 */
import type { BuildContext, BundleFile, ServiceModule } from '../bundle/types.js';
import { textFile } from '../bundle/types.js';
import { STANDARD_PORTS } from '../bundle/layout.js';
import { targetText } from '../backup/format.js';
import { lookupsOf } from '../rspamd/lookups.js';
import type { Config, DomainName } from '../config/types.js';
import { domainOf, isInZone } from '../config/types.js';
import type { KeySet } from '../keys/types.js';
import { render } from '../render/index.js';
import { webNames } from '../web/index.js';

export const REPORT_PATH = 'REPORT.md';

export interface PortForward {
  proto: 'TCP' | 'UDP' | 'TCP and UDP';
  port: number;
  what: string;
}

export interface ReportModel {
  hostname: DomainName;
  domains: DomainName[];
  dnssec: boolean;
  zones: {
    zone: DomainName;
    ns: DomainName[];
    /** Glue for in-zone name servers: `name → address`. */
    glue: { name: DomainName; address: string }[];
    /** `<zone>. IN DS …` lines (empty without DNSSEC). */
    ds: string[];
  }[];
  ptr: { address: string; name: DomainName }[];
  /** With port-forward ingress: where to forward ('' for a family that is not forwarded). */
  portForward?: { lanIpv4: string; ipv6: string; ports: PortForward[] };
  /** With own-vps: the VPS's public addresses, and whether its WireGuard key is known yet. */
  ownVps?: { addresses: string[]; keyGiven: boolean };
  sshFrom: string[];
  /** DMARC report authorization records the admin's domain must publish (RFC 7489 §7.1). */
  dmarcAuthorization: string[];
  adminDomain: DomainName;
  webNames: DomainName[];
  /** The mailboxes that publish an OpenPGP public key (OPENPGPKEY with DNSSEC, the Web Key Directory). */
  openpgpKeys: string[];
  /** The outside blocklists opted in to, with who learns what. */
  spamLookups: Array<{ name: string; operator: string; learns: string }>;
  /** The daily encrypted backup (selfmail-backup.timer), when `--backup-to` set one. */
  backup?: {
    /** Where it goes, as selfmail.yaml keeps it (a folder, or sftp://USER@HOST/PATH). */
    target: string;
    /** The age public keys it is encrypted to. */
    recipients: string[];
    /** With an sftp:// target: the backup machine. */
    sftpHost?: string;
  };
  warnings: string[];
}

/** Ports a router must forward to the host (TCP unless said), the same port outside and in. */
export const FORWARDED_PORTS: PortForward[] = [
  { proto: 'TCP', port: STANDARD_PORTS.smtp, what: 'SMTP: mail from other servers' },
  { proto: 'TCP and UDP', port: STANDARD_PORTS.dns, what: 'DNS: your zones, served by NSD' },
  { proto: 'TCP', port: STANDARD_PORTS.http, what: 'HTTP: certificate challenges (ACME), redirect to HTTPS' },
  { proto: 'TCP', port: STANDARD_PORTS.https, what: 'HTTPS: MTA-STS policy, mail client autoconfiguration' },
  { proto: 'TCP', port: STANDARD_PORTS.submissions, what: 'submission with TLS: your mail clients sending' },
  { proto: 'TCP', port: STANDARD_PORTS.submission, what: 'submission with STARTTLS: older mail clients sending' },
  { proto: 'TCP', port: STANDARD_PORTS.imaps, what: 'IMAP with TLS: your mail clients reading' },
  { proto: 'TCP', port: STANDARD_PORTS.managesieve, what: 'ManageSieve with STARTTLS: your mail clients editing your mail rules' },
];

/** The report's content as data (pure). */
export function reportModel(config: Config, keys: Pick<KeySet, 'dnssec'>, warnings: readonly string[]): ReportModel {
  const domains = [...config.domains];
  const zones = domains.map((zone) => {
    const ns = config.nameServers.map((n) => n.name);
    const glue = config.nameServers
      .filter((n) => isInZone(n.name, zone))
      .flatMap((n) => [...n.ipv4, ...n.ipv6].map((address) => ({ name: n.name, address })));
    // The DS the parent should serve: a KSK leaving after a rollover has none.
    const ds = config.dnssec
      ? keys.dnssec
          .filter((k) => k.zone === zone && k.role === 'ksk' && k.ds && k.remove === undefined)
          .sort((a, b) => a.tag - b.tag)
          .map((k) => `${zone}. IN DS ${k.ds}`)
      : [];
    return { zone, ns, glue, ds };
  });
  const ptr: ReportModel['ptr'] = [];
  if (config.ipv4) ptr.push({ address: config.ipv4, name: config.hostname });
  if (config.ipv6) ptr.push({ address: config.ipv6, name: config.hostname });
  const adminDomain = domainOf(config.admin);
  const dmarcAuthorization = domains.includes(adminDomain)
    ? []
    : domains.map((d) => `${d}._report._dmarc.${adminDomain}. IN TXT "v=DMARC1"`);
  const model: ReportModel = {
    hostname: config.hostname,
    domains,
    dnssec: config.dnssec,
    zones,
    ptr,
    sshFrom: [...config.adminSshFrom],
    dmarcAuthorization,
    adminDomain,
    webNames: webNames(config),
    openpgpKeys: [...config.openpgpKeys],
    spamLookups: lookupsOf(config.spamLookups).map((l) => ({ name: l.name, operator: l.operator, learns: l.learns })),
    warnings: [...warnings],
  };
  if (config.backup) {
    const { to, recipients } = config.backup;
    model.backup = { target: targetText(to), recipients: [...recipients], ...(to.kind === 'sftp' ? { sftpHost: to.host } : {}) };
  }
  if (config.ingress === 'own-vps') {
    model.ownVps = { addresses: [config.ipv4, config.ipv6].filter((a): a is NonNullable<typeof a> => a !== undefined), keyGiven: config.vpsWgKey !== undefined };
  }
  if (config.ingress === 'port-forward') {
    model.portForward = {
      lanIpv4: config.listenIpv4 ?? '',
      ipv6: config.ipv6 ? (config.listenIpv6 ?? config.ipv6) : '',
      ports: FORWARDED_PORTS,
    };
  }
  return model;
}

/** Render REPORT.md. */
export async function renderReport(model: ReportModel): Promise<string> {
  return render('report', 'REPORT.md', {
    ...model,
    domainList: model.domains.join(', '),
    sshOpen: model.sshFrom.length > 0,
    sshList: model.sshFrom.join(', '),
    portForward: model.portForward ?? false,
    ownVps: model.ownVps ?? false,
    backup: model.backup ?? false,
    missingDs: model.dnssec && model.zones.some((z) => z.ds.length === 0),
  });
}

/**
 * A few lines for the wizard's end screen: what is left to do by hand, and where to read more.
 * No secrets; the same for the same inputs.
 */
export function reportSummary(model: ReportModel): string[] {
  const lines: string[] = [];
  const zones = model.zones.map((z) => z.zone).join(', ');
  if (model.dnssec) lines.push(`At your registrar: set the name servers, glue and DS records for ${zones} (see REPORT.md).`);
  else lines.push(`At your registrar: set the name servers and glue for ${zones}; no DNSSEC, so no DS records and no DANE.`);
  if (model.ptr.length > 0) {
    lines.push(`At your ISP or hosting provider: reverse DNS (PTR) ${model.ptr.map((p) => p.address).join(' and ')} → ${model.hostname}.`);
  }
  if (model.portForward) {
    const ports = model.portForward.ports.map((p) => p.port).join(', ');
    lines.push(`On your router: forward ports ${ports} by hand to ${model.portForward.lanIpv4 || 'this host'}, and switch UPnP off.`);
  }
  if (model.dmarcAuthorization.length > 0) {
    lines.push(`At ${model.adminDomain}: publish the DMARC report authorization records listed in REPORT.md.`);
  }
  lines.push(
    model.sshFrom.length > 0
      ? `SSH is reachable only from ${model.sshFrom.join(', ')}, with keys only.`
      : 'SSH is closed to the network (no --admin-ssh-from): administer this host from its console.',
  );
  lines.push(backupSummary(model));
  lines.push('REPORT.md says what this setup protects and what it does not; read it before you rely on it.');
  return lines;
}

/** One line about backups: on, to where (and what the backup machine needs); or off, and how to turn them on. */
export function backupSummary(model: Pick<ReportModel, 'backup'>, bundle = 'BUNDLE'): string {
  const b = model.backup;
  if (!b) {
    return `Backups are off: for a daily one, make a key on your own device (age-keygen -o key.txt there), then selfmail init --out ${bundle} --backup-to /mnt/disk (or sftp://USER@HOST/PATH) --backup-recipient age1… (its public key); selfmail backup by hand works too.`;
  }
  const n = b.recipients.length;
  const keys = `${n === 1 ? 'the age key' : `${n} age keys`} from your device${n === 1 ? '' : 's'}`;
  const setup = b.sftpHost ? `; after apply, selfmail backup --remote-setup --to ${b.target} (as root here) prints what to run on ${b.sftpHost}` : '';
  return `Backups: daily to ${b.target} once applied (selfmail-backup.timer), readable only with ${keys}: keep a copy of ${n === 1 ? 'it' : 'each'} somewhere safe${setup}.`;
}

/** `reportSummary` straight from a build context: what the wizard's end screen prints. */
export function summaryLines(ctx: Pick<BuildContext, 'config' | 'keys' | 'warnings'>): string[] {
  return reportSummary(reportModel(ctx.config, ctx.keys, ctx.warnings));
}

export const reportService: ServiceModule = {
  name: 'report',
  async build(ctx: BuildContext): Promise<BundleFile[]> {
    const model = reportModel(ctx.config, ctx.keys, ctx.warnings);
    return [textFile(REPORT_PATH, await renderReport(model), 'what this setup protects and what it does not; next steps')];
  },
};
