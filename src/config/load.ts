/**
 * Reading a config file (YAML or JSON; JSON is YAML too) into a raw request. The file's shape is
 * checked here (known keys, right types); the values themselves are checked by the schema like
 * any flag. Refused keys are accepted here so that the policy can explain why they are refused.
 */
import { readFile } from 'node:fs/promises';
import { parse } from 'yaml';
import { z } from 'zod';
import { InputError, type InputIssue } from '../errors.js';
import type { RawInput } from './raw.js';

const text = z.string();
const list = z.union([z.string().transform((s) => [s]), z.array(z.string())]);
const scalar = z.union([z.string(), z.number().transform(String)]);

/** The shape of a config file: the same settings as the flags, under the RawInput names. */
export const fileSchema = z.strictObject({
  domains: list.optional(),
  domain: list.optional(),
  hostname: text.optional(),
  ipv4: scalar.optional(),
  ipv6: scalar.optional(),
  listenIpv4: scalar.optional(),
  listenIpv6: scalar.optional(),
  ns: list.optional(),
  admin: text.optional(),
  users: list.optional(),
  user: list.optional(),
  adminSshFrom: list.optional(),
  ingress: text.optional(),
  vpsIpv4: scalar.optional(),
  vpsIpv6: scalar.optional(),
  vpsWgKey: text.optional(),
  acmeCa: text.optional(),
  dnssec: z.boolean().optional(),
  target: scalar.optional(),
  spamLookups: list.optional(),
  aliases: list.optional(),
  quotas: list.optional(),
  backupTo: text.optional(),
  backupRecipients: list.optional(),
  backupRecipient: list.optional(),
  backupHostKey: text.optional(),
  openpgpKeys: list.optional(),
  openpgpKey: list.optional(),
  tunnelProvider: scalar.optional(),
  relayHost: scalar.optional(),
  dkimKey: scalar.optional(),
  tlsKey: scalar.optional(),
  dnssecKey: scalar.optional(),
  dnsProvider: scalar.optional(),
  upnp: z.boolean().optional(),
});

/** Parse the text of a config file named `name` (for messages). */
export async function parseConfigText(source: string, name: string): Promise<RawInput> {
  let doc: unknown;
  try {
    doc = parse(source, { prettyErrors: true, uniqueKeys: true });
  } catch (err) {
    throw new InputError([{ field: name, message: `is not valid YAML or JSON: ${(err as Error).message.split('\n')[0]}` }]);
  }
  if (doc === null || doc === undefined) doc = {};
  const result = fileSchema.safeParse(doc);
  if (!result.success) {
    const issues: InputIssue[] = result.error.issues.map((i) => {
      const key = i.path.join('.') || '(top level)';
      const message =
        i.code === 'unrecognized_keys'
          ? `unknown setting${i.keys.length > 1 ? 's' : ''} ${i.keys.map((k) => JSON.stringify(k)).join(', ')}; the settings are the flag names in camelCase (domains, hostname, ipv4, ipv6, ns, admin, users, adminSshFrom, ingress, listenIpv4, listenIpv6, vpsIpv4, vpsIpv6, vpsWgKey, acmeCa, dnssec, target, spamLookups, aliases, quotas, backupTo, backupRecipients, backupHostKey, openpgpKeys)`
          : i.code === 'invalid_type' || i.code === 'invalid_union'
            ? 'has the wrong type (a text, or a list of texts for repeatable settings; dnssec is true or false)'
            : i.message;
      return { field: `${name}: ${key}`, message };
    });
    throw new InputError(issues);
  }
  const f = result.data;
  const raw: RawInput = {};
  const domains = [...(f.domains ?? []), ...(f.domain ?? [])];
  if (f.domains || f.domain) raw.domains = domains;
  const users = [...(f.users ?? []), ...(f.user ?? [])];
  if (f.users || f.user) raw.users = users;
  const recipients = [...(f.backupRecipients ?? []), ...(f.backupRecipient ?? [])];
  if (f.backupRecipients || f.backupRecipient) raw.backupRecipients = recipients;
  if (f.openpgpKeys || f.openpgpKey) raw.openpgpKeys = [...(f.openpgpKeys ?? []), ...(f.openpgpKey ?? [])];
  const copy = [
    'hostname', 'ipv4', 'ipv6', 'listenIpv4', 'listenIpv6', 'ns', 'admin', 'adminSshFrom', 'ingress', 'vpsIpv4', 'vpsIpv6', 'vpsWgKey', 'acmeCa', 'dnssec', 'target', 'spamLookups', 'aliases', 'quotas',
    'backupTo', 'backupHostKey',
    'tunnelProvider', 'relayHost', 'dkimKey', 'tlsKey', 'dnssecKey', 'dnsProvider', 'upnp',
  ] as const;
  for (const key of copy) if (f[key] !== undefined) (raw as Record<string, unknown>)[key] = f[key];
  return raw;
}

/** Read and parse the config file at `path`. */
export async function loadConfigFile(path: string): Promise<RawInput> {
  let source: string;
  try {
    source = await readFile(path, 'utf8');
  } catch (err) {
    throw new InputError([{ field: '--config', message: `cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}` }]);
  }
  return parseConfigText(source, path);
}
