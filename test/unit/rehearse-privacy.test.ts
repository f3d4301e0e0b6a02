/**
 * The pieces of the rehearsal's privacy proof that need no network: reading a DNS question,
 * answering REFUSED, telling the rehearsal's zones from the rest, and the verdict over what the
 * resolver was asked and what the network recorded.
 */
import { describe, expect, it } from 'vitest';
import { inZones, parseQuestion, refusedAnswer } from '../../src/rehearse/resolver.js';
import { privacyVerdict } from '../../src/rehearse/steps.js';

/** A query for `name` of `type` with id 0x1234 and RD set. */
function query(name: string, type = 1): Buffer {
  const labels = name.split('.').flatMap((l) => [Buffer.from([l.length]), Buffer.from(l, 'latin1')]);
  const q = Buffer.concat([...labels, Buffer.from([0]), Buffer.from([0, type, 0, 1])]);
  return Buffer.concat([Buffer.from([0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]), q]);
}

describe('the rehearsal resolver', () => {
  it('reads the question of a query, lower-cased, and refuses it keeping id and question', () => {
    const msg = query('Outside.Invalid', 16);
    const q = parseQuestion(msg)!;
    expect(q).toEqual({ name: 'outside.invalid', type: 16, end: msg.length });
    const r = refusedAnswer(msg, q.end);
    expect(r.readUInt16BE(0)).toBe(0x1234);
    expect(r[2]! & 0x80).toBe(0x80); // a response
    expect(r[3]! & 0x0f).toBe(5); // REFUSED
    expect([r.readUInt16BE(4), r.readUInt16BE(6), r.readUInt16BE(8), r.readUInt16BE(10)]).toEqual([1, 0, 0, 0]);
    expect(r.subarray(12)).toEqual(msg.subarray(12));
  });

  it('takes nothing malformed for a question', () => {
    expect(parseQuestion(Buffer.alloc(5))).toBeUndefined();
    const truncated = query('example.org').subarray(0, 16);
    expect(parseQuestion(truncated)).toBeUndefined();
  });

  it('counts a name as the rehearsal\'s only at or below one of its zones', () => {
    expect(inZones('example.org', ['example.org'])).toBe(true);
    expect(inZones('_dmarc.example.org', ['example.org'])).toBe(true);
    expect(inZones('badexample.org', ['example.org'])).toBe(false);
    expect(inZones('example.org.evil.com', ['example.org'])).toBe(false);
  });
});

describe('the privacy verdict', () => {
  const asked = [
    { name: 'example.org', type: 15, answer: 'nsd' as const },
    { name: 'outside.invalid', type: 16, answer: 'refused' as const },
  ];
  it('passes when every outside name was refused locally and nothing was tried beyond loopback', () => {
    const v = privacyVerdict(asked, [], ['example.org']);
    expect(v.ok).toBe(true);
    expect(v.reason).toMatch(/2 DNS questions, 1 for the rehearsal's zones \(example\.org\).*REFUSED.*\(outside\.invalid\)/);
  });
  it('fails, naming them, when anything tried an address outside the rehearsal', () => {
    const v = privacyVerdict(asked, ['10.255.255.53'], ['example.org']);
    expect(v).toEqual({ ok: false, reason: expect.stringMatching(/tried to reach 10\.255\.255\.53/) });
  });
  it('fails when the resolver was asked nothing (the daemons did not use it)', () => {
    expect(privacyVerdict([], [], ['example.org']).ok).toBe(false);
  });
});
