/**
 * The outside lookups a user may opt in to (`--spam-lookups`), none by default. Each is a DNS
 * blocklist asked about every message: who runs it and what it learns is said here once, for the
 * check, the report and the messages. The lists' queries go through this host's own resolver
 * (unbound), so the list operator sees this host's address; no account or key is involved.
 */
export interface SpamLookup {
  name: string;
  /** Who answers the queries. */
  operator: string;
  /** What the operator learns from each message, in plain words. */
  learns: string;
  /** The DNS zones asked (what the rspamd configuration names). */
  zones: string[];
}

export const SPAM_LOOKUPS: readonly SpamLookup[] = [
  {
    name: 'spamhaus',
    operator: 'The Spamhaus Project (zen.spamhaus.org, dbl.spamhaus.org)',
    learns: 'the address of every server that sends you mail and of the relays it names, and the domains of the senders, of their HELO and of every link in the message, each time a message arrives',
    zones: ['zen.spamhaus.org', 'dbl.spamhaus.org'],
  },
  {
    name: 'surbl',
    operator: 'SURBL (multi.surbl.org)',
    learns: 'the domains of the senders and of every link in the message, each time a message arrives',
    zones: ['multi.surbl.org'],
  },
];

export const SPAM_LOOKUP_NAMES = SPAM_LOOKUPS.map((l) => l.name);

/** The lookups of `names`, in the table's order. Pure. */
export function lookupsOf(names: readonly string[]): SpamLookup[] {
  return SPAM_LOOKUPS.filter((l) => names.includes(l.name));
}
