/**
 * `selfmail import`: what is pure in copying a mailbox from an old provider with Dovecot's own
 * engine (doveadm sync over imapc). The source is checked here (imaps only: the old password and
 * every message would otherwise cross the network in clear), and so are the login and the
 * password, which reach a Dovecot configuration file: quoted and escaped for the release's
 * parser, never on a command line.
 */
import { isIPv6 } from 'node:net';
import type { Release } from '../config/types.js';

export interface ImportSource {
  host: string;
  port: number;
}

const HOSTNAME = /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*\.?$/i;
const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/;

/** `imaps://HOST[:PORT]` → host and port (993 by default); the reason otherwise. Pure. */
export function parseImportSource(text: string): { ok: true; value: ImportSource } | { ok: false; error: string } {
  const m = /^([a-z][a-z0-9+.-]*):\/\/(.*)$/i.exec(text.trim());
  if (!m) return { ok: false, error: 'must be imaps://HOST or imaps://HOST:PORT' };
  const scheme = m[1]!.toLowerCase();
  if (scheme === 'imap') {
    return { ok: false, error: 'has no TLS (imap://): the old password and every message would cross the network in clear. Use imaps://HOST (port 993); selfmail imports only over TLS, with the certificate checked' };
  }
  if (scheme !== 'imaps') return { ok: false, error: `must be an IMAP server over TLS, imaps://HOST[:PORT] (not ${scheme}://)` };
  let rest = m[2]!;
  if (rest.endsWith('/')) rest = rest.slice(0, -1);
  if (rest.includes('@')) return { ok: false, error: 'must not hold the login or the password: give the login with --login and the password in --password-file' };
  if (/[/?#]/.test(rest)) return { ok: false, error: 'must be imaps://HOST[:PORT], without a path' };
  let host: string;
  let portText: string | undefined;
  const v6 = /^\[([0-9a-f:.]+)\](?::(\d+))?$/i.exec(rest);
  if (v6) {
    host = v6[1]!;
    portText = v6[2];
    if (!isIPv6(host)) return { ok: false, error: `${JSON.stringify(host)} is not an IPv6 address` };
  } else {
    const hp = /^([^:]*)(?::(\d*))?$/.exec(rest);
    if (!hp) return { ok: false, error: 'must be imaps://HOST[:PORT] (an IPv6 address goes in brackets)' };
    host = hp[1]!.toLowerCase().replace(/\.$/, '');
    portText = hp[2];
    if (!IPV4.test(host) && !(HOSTNAME.test(host) && /[a-z]/i.test(host))) return { ok: false, error: `${JSON.stringify(hp[1])} is not a host name or an IPv4 address` };
  }
  const port = portText === undefined ? 993 : Number(portText);
  if (!Number.isInteger(port) || port < 1 || port > 65535 || portText === '') return { ok: false, error: `the port must be a number from 1 to 65535` };
  return { ok: true, value: { host, port } };
}

/** Why a login or password cannot be used (a control character, empty), or true. Pure. */
export function credentialProblem(value: string): string | true {
  if (value.length === 0) return 'is empty';
  if (CONTROL.test(value)) return 'holds a control character (a line break, a tab): no IMAP server takes one';
  if (value.length > 1024) return 'is longer than 1024 characters';
  return true;
}

/**
 * A value as a Dovecot configuration string that reads back exactly as given: in double quotes,
 * with `\` and `"` escaped; on Dovecot 2.4, whose strings expand `%{…}`, also `%{` as `%%{`
 * (2.3 expands no variable in the imapc settings). Control characters are refused before. Pure.
 */
export function dovecotString(value: string, release: Release): string {
  const expanded = release === 'debian-13' ? value.replace(/%\{/g, '%%{') : value;
  return `"${expanded.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

export interface ImapcConfigInput {
  release: Release;
  /** The installed configuration this one includes. */
  mainConfig: string;
  /** Dovecot 2.4: the installed configuration's dovecot_config_version, which must come first. */
  configVersion?: string;
  source: ImportSource;
  login: string;
  password: string;
  /** A CA file to trust instead of the system's store (/etc/ssl/certs). */
  caFile?: string;
}

/**
 * The configuration doveadm reads for one import: the installed one, plus the old server as an
 * imapc location, TLS verified against the system's trust store (or the given CA) and the host
 * name. guid-forced gives each message a GUID from its headers, so a re-run finds what it
 * already copied and copies only the rest. Pure.
 */
export function imapcConfig(input: ImapcConfigInput): string {
  const { release, source } = input;
  const lines: string[] = [];
  if (release === 'debian-13') lines.push(`dovecot_config_version = ${input.configVersion ?? '2.4.0'}`);
  lines.push(`!include ${input.mainConfig}`);
  lines.push(`imapc_host = ${dovecotString(source.host, release)}`, `imapc_port = ${source.port}`, 'imapc_ssl = imaps');
  if (release === 'debian-12') lines.push('imapc_ssl_verify = yes');
  else lines.push('ssl_client_require_valid_cert = yes');
  if (input.caFile) lines.push(`ssl_client_ca_file = ${input.caFile}`, 'ssl_client_ca_dir =');
  else lines.push('ssl_client_ca_dir = /etc/ssl/certs');
  lines.push(`imapc_user = ${dovecotString(input.login, release)}`, `imapc_password = ${dovecotString(input.password, release)}`);
  // 2.4 turned rfc822.size and fetch-headers on by itself and dropped their names.
  lines.push(`imapc_features = ${release === 'debian-12' ? 'rfc822.size fetch-headers guid-forced' : 'guid-forced'}`);
  return `${lines.join('\n')}\n`;
}

/** `doveadm mailbox status -u … messages '*'` output → folder → message count. Pure. */
export function parseMailboxCounts(stdout: string): Map<string, number> {
  const counts = new Map<string, number>();
  for (const line of stdout.split('\n')) {
    const m = /^(.*) messages=(\d+)$/.exec(line.trim());
    if (m) counts.set(m[1]!, Number(m[2]));
  }
  return counts;
}

/** The lines of doveadm's output worth showing when it failed: its errors, without panics and backtraces. Pure. */
export function doveadmErrors(output: string): string[] {
  const lines = output.split('\n').filter((l) => /\b(Error|Fatal):/.test(l) && !/Raw backtrace|Panic:/.test(l));
  return [...new Set(lines.map((l) => l.replace(/^\S+\([^)]*\)(<[^>]*>)*: /, '').trim()))];
}
