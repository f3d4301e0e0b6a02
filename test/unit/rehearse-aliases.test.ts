/** Where the rehearsal expects a message sent to an alias to end: pure over the config. */
import { describe, expect, it } from 'vitest';
import type { DomainName, Email } from '../../src/config/types.js';
import { deliveredTo } from '../../src/rehearse/steps.js';

const config = {
  domains: ['example.org', 'example.net'] as DomainName[],
  users: ['alice@example.org', 'bob@example.net'] as Email[],
  aliases: [
    { from: '@example.net', to: ['alice@example.org'] as Email[] },
    { from: 'team@example.org', to: ['sales@example.org', 'bob@example.net', 'friend@elsewhere.example'] as Email[] },
    { from: 'sales@example.org', to: ['alice@example.org'] as Email[] },
  ],
};

describe('deliveredTo', () => {
  it('follows aliases to the mailboxes of this host, leaving addresses elsewhere out', () => {
    expect(deliveredTo(config, 'team@example.org')).toEqual(['alice@example.org', 'bob@example.net']);
    expect(deliveredTo(config, 'sales+tag@example.org')).toEqual(['alice@example.org']);
  });

  it('gives a mailbox its own mail and a catch-all only what nothing names', () => {
    expect(deliveredTo(config, 'bob@example.net')).toEqual(['bob@example.net']);
    expect(deliveredTo(config, 'nobody@example.net')).toEqual(['alice@example.org']);
    expect(deliveredTo(config, 'nobody@example.org')).toEqual([]);
  });
});
