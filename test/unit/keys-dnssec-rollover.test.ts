/**
 * The DNSSEC key schedule the key store keeps (keys.json) and the plan the signer and the daily job
 * follow: a next ZSK made ahead, a ZSK rollover by pre-publication, a KSK rollover with CDS that
 * waits for the parent, refusals in the middle of one, keys leaving the bundle after their time.
 * Real key generation, fixed clocks; the zones themselves are checked by the integration tests.
 */
import { describe, expect, it } from 'vitest';
import { InputError } from '../../src/errors.js';
import { DEFAULT_TTL } from '../../src/dns/records.js';
import { DAY_MS, DNSKEY_TTL_MS, ZSK_PERIOD_DAYS, ZSK_PREPUBLISH_DAYS, ZSK_RETIRE_DAYS, dnskeyText, keyStage, zonePlan } from '../../src/keys/dnssec-plan.js';
import { describeKeys, ensureKeys, KEYS_META_PATH } from '../../src/keys/store.js';
import type { DnssecKey, KeySet } from '../../src/keys/types.js';
import { fixtureKeys, KEYS_NOW, keysTestConfig, previousFromFiles } from '../helpers/keys.js';

const at = (ms: number): Date => new Date(ms);
const iso = (ms: number): string => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
const T0 = KEYS_NOW.getTime();
const zsks = (k: KeySet): DnssecKey[] => k.dnssec.filter((x) => x.role === 'zsk');
const ksks = (k: KeySet): DnssecKey[] => k.dnssec.filter((x) => x.role === 'ksk');
const next = (k: KeySet, when: number, opts: Parameters<typeof ensureKeys>[3] = {}): Promise<KeySet> =>
  ensureKeys(keysTestConfig(), previousFromFiles(k.files), at(when), { warn: () => undefined, ...opts });
const refusal = async (p: Promise<unknown>): Promise<string> => {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(InputError);
  return (e as InputError).issues.map((i) => `${i.field}: ${i.message}`).join('\n');
};

describe('zonePlan', () => {
  const key = (role: 'ksk' | 'zsk', tag: number, publish: number, activate: number, remove?: number): DnssecKey => ({
    zone: 'example.org' as DnssecKey['zone'],
    role,
    tag,
    algorithm: 13,
    dnskey: `${role === 'ksk' ? 257 : 256} 3 13 KEY${tag}`,
    basePath: `keys/dnssec/example.org/K${tag}`,
    created: '2026-03-15',
    publish: iso(publish),
    activate: iso(activate),
    ...(remove !== undefined ? { remove: iso(remove) } : {}),
  });
  const k = key('ksk', 1, T0, T0);
  const a = key('zsk', 2, T0, T0, T0 + 40 * DAY_MS);
  const b = key('zsk', 3, T0 + 7 * DAY_MS, T0 + 10 * DAY_MS);
  const all = [b, a, k];
  const tags = (ks: DnssecKey[]) => ks.map((x) => x.tag);

  it('publishes a key from its publish time until its remove time', () => {
    expect(tags(zonePlan(all, at(T0)).published)).toEqual([1, 2]);
    expect(tags(zonePlan(all, at(T0 + 7 * DAY_MS)).published)).toEqual([1, 2, 3]);
    expect(tags(zonePlan(all, at(T0 + 40 * DAY_MS - 1)).published)).toEqual([1, 2, 3]);
    expect(tags(zonePlan(all, at(T0 + 40 * DAY_MS)).published)).toEqual([1, 3]);
  });

  it('signs with every published KSK and the latest due ZSK the replaced zone already published', () => {
    const withB = { dnskeys: [dnskeyText(k), dnskeyText(a), dnskeyText(b)], zskTags: [2] };
    const withoutB = { dnskeys: [dnskeyText(k), dnskeyText(a)], zskTags: [2] };
    expect(tags(zonePlan(all, at(T0 + 8 * DAY_MS), withB).signers)).toEqual([1, 2]);
    expect(tags(zonePlan(all, at(T0 + 10 * DAY_MS), withB).signers)).toEqual([1, 3]);
    // The host missed the publication: B is due but the served zone never showed it, so A signs once more.
    expect(tags(zonePlan(all, at(T0 + 10 * DAY_MS), withoutB).signers)).toEqual([1, 2]);
    // A first signing has nothing to wait for.
    expect(tags(zonePlan(all, at(T0 + 10 * DAY_MS)).signers)).toEqual([1, 3]);
    // A left the zone: B signs even if it was never seen, since no other key can.
    expect(tags(zonePlan(all, at(T0 + 41 * DAY_MS), withoutB).signers)).toEqual([1, 3]);
  });

  it('lets a due ZSK sign only once the zone that published it was served a DNSKEY TTL, unless it signed that zone already', () => {
    const t = T0 + 10 * DAY_MS;
    const published = (signedAt: number, zskTags = [2]) => ({ dnskeys: [dnskeyText(k), dnskeyText(a), dnskeyText(b)], zskTags, signedAt: at(signedAt) });
    expect(tags(zonePlan(all, at(t), published(t - DNSKEY_TTL_MS + 1000)).signers)).toEqual([1, 2]);
    expect(tags(zonePlan(all, at(t), published(t - DNSKEY_TTL_MS)).signers)).toEqual([1, 3]);
    expect(tags(zonePlan(all, at(t), published(t - 60_000, [3])).signers)).toEqual([1, 3]);
    // The TTL the rule waits for is the zone's.
    expect(DNSKEY_TTL_MS).toBe(DEFAULT_TTL * 1000);
  });

  it('refuses a schedule with no KSK or no ZSK at that time', () => {
    expect(() => zonePlan([a, b], at(T0))).toThrow(/no KSK/);
    expect(() => zonePlan([k, b], at(T0))).toThrow(/no ZSK/);
  });

  it('names each stage and its next step', () => {
    expect(keyStage(b, all, at(T0))).toEqual({ state: 'next', nextStep: `published from ${b.publish}, signs from ${b.activate}` });
    expect(keyStage(b, all, at(T0 + 8 * DAY_MS))).toEqual({ state: 'next', nextStep: `signs from ${b.activate}` });
    expect(keyStage(a, all, at(T0))).toEqual({ state: 'active', nextStep: `replaced by ZSK 3 at ${b.activate}` });
    expect(keyStage(a, all, at(T0 + 10 * DAY_MS))).toEqual({ state: 'retiring', nextStep: `leaves the zone at ${a.remove}` });
    expect(keyStage(b, all, at(T0 + 10 * DAY_MS))).toEqual({ state: 'active' });
  });
});

describe('the key store schedule', () => {
  it('makes a next ZSK with every new zone: published 87 days on, signing at 90, the current one leaving 30 days later', async () => {
    const k = await fixtureKeys();
    const [cur, nxt] = zsks(k);
    expect(cur!.publish).toBe(iso(T0));
    expect(nxt!.publish).toBe(iso(T0 + (ZSK_PERIOD_DAYS - ZSK_PREPUBLISH_DAYS) * DAY_MS));
    expect(nxt!.activate).toBe(iso(T0 + ZSK_PERIOD_DAYS * DAY_MS));
    expect(cur!.remove).toBe(iso(T0 + (ZSK_PERIOD_DAYS + ZSK_RETIRE_DAYS) * DAY_MS));
    expect(nxt!.remove).toBeUndefined();
  });

  it('re-run before any step: the same keys and the same keys.json', async () => {
    const k = await fixtureKeys();
    const k2 = await next(k, T0 + 30 * DAY_MS);
    expect(k2.read(KEYS_META_PATH).toString()).toBe(k.read(KEYS_META_PATH).toString());
    expect(k2.dnssec).toEqual(k.dnssec);
  });

  it('after the old ZSK left the zone: its files leave the bundle, it is listed retired, and the new ZSK gets its own successor', async () => {
    const k = await fixtureKeys();
    const [old, cur] = zsks(k);
    const later = Date.parse(old!.remove!) + 1000;
    const k2 = await next(k, later);
    expect(zsks(k2).map((x) => x.tag)).toEqual([cur!.tag, expect.any(Number)]);
    expect(k2.files.some((f) => f.path.startsWith(old!.basePath))).toBe(false);
    const successor = zsks(k2)[1]!;
    expect(successor.activate).toBe(iso(Date.parse(cur!.activate) + ZSK_PERIOD_DAYS * DAY_MS));
    expect(zsks(k2)[0]!.remove).toBe(iso(Date.parse(successor.activate) + ZSK_RETIRE_DAYS * DAY_MS));
    const rows = describeKeys(k2, () => true, at(later));
    expect(rows.filter((r) => r.type === 'dnssec-zsk').map((r) => `${r.id} ${r.state}`)).toEqual([`${cur!.tag} active`, `${successor.tag} next`, `${old!.tag} retired`]);
  });

  it('keys rotate dnssec --zsk: the next ZSK is published now and signs 3 days later; the old one leaves 30 days after that', async () => {
    const k = await fixtureKeys();
    const when = T0 + 10 * DAY_MS;
    const k2 = await next(k, when, { rotateDnssec: { step: 'zsk', zones: [] } });
    const [old, nxt] = zsks(k2);
    expect(nxt!.tag).toBe(zsks(k)[1]!.tag); // the key made ahead, not another
    expect(nxt!.publish).toBe(iso(when));
    expect(nxt!.activate).toBe(iso(when + ZSK_PREPUBLISH_DAYS * DAY_MS));
    expect(old!.remove).toBe(iso(when + (ZSK_PREPUBLISH_DAYS + ZSK_RETIRE_DAYS) * DAY_MS));
  });

  it('refuses a ZSK rollover in the middle of another, naming when the running one ends, and changes nothing', async () => {
    const k = await fixtureKeys();
    const when = T0 + 10 * DAY_MS;
    const k2 = await next(k, when, { rotateDnssec: { step: 'zsk', zones: [] } });
    expect(await refusal(next(k2, when + DAY_MS, { rotateDnssec: { step: 'zsk', zones: [] } }))).toMatch(/--zsk: a ZSK rollover of example\.org is under way: ZSK \d+ is published and signs from /);
    expect(await refusal(next(k2, when + 5 * DAY_MS, { rotateDnssec: { step: 'zsk', zones: [] } }))).toMatch(/the old ZSK \d+ stays published until /);
    // Once the old key left, a new rollover may start.
    const done = Date.parse(zsks(k2)[0]!.remove!) + 1000;
    await expect(next(k2, done, { rotateDnssec: { step: 'zsk', zones: [] } })).resolves.toBeDefined();
  });

  it('keys rotate dnssec --ksk: a new KSK with CDS, both in the DS file; a second --ksk refused until the parent is confirmed', async () => {
    const k = await fixtureKeys();
    const when = T0 + DAY_MS;
    const k2 = await next(k, when, { rotateDnssec: { step: 'ksk', zones: [] } });
    const [old, fresh] = ksks(k2);
    expect(old!.tag).toBe(ksks(k)[0]!.tag);
    expect(fresh).toMatchObject({ publish: iso(when), activate: iso(when), cds: true });
    expect(old!.cds).toBeUndefined();
    expect(zonePlan(k2.dnssec, at(when)).signers.filter((x) => x.role === 'ksk').map((x) => x.tag)).toEqual([old!.tag, fresh!.tag].sort((x, y) => x - y));
    expect(await refusal(next(k2, when + DAY_MS, { rotateDnssec: { step: 'ksk', zones: [] } }))).toMatch(/waits for the parent to serve the DS of KSK \d+/);
    expect(describeKeys(k2, () => true, at(when)).filter((r) => r.type === 'dnssec-ksk').map((r) => r.state).sort()).toEqual(['active', 'next']);
  });

  it('--parent-confirmed: the old KSK leaves 2 days later, CDS stops; it is refused without a KSK rollover waiting', async () => {
    const k = await fixtureKeys();
    expect(await refusal(next(k, T0 + DAY_MS, { rotateDnssec: { step: 'parent-confirmed', zones: [] } }))).toMatch(/--parent-confirmed: no KSK rollover of example\.org waits/);
    const k2 = await next(k, T0 + DAY_MS, { rotateDnssec: { step: 'ksk', zones: [] } });
    const when = T0 + 3 * DAY_MS;
    const k3 = await next(k2, when, { rotateDnssec: { step: 'parent-confirmed', zones: [] } });
    const [old, fresh] = ksks(k3);
    expect(old!.remove).toBe(iso(when + 2 * DAY_MS));
    expect(fresh!.cds).toBeUndefined();
    expect(await refusal(next(k3, when + DAY_MS, { rotateDnssec: { step: 'ksk', zones: [] } }))).toMatch(/the old KSK \d+ leaves the zone at /);
    const k4 = await next(k3, when + 2 * DAY_MS + 1000);
    expect(ksks(k4).map((x) => x.tag)).toEqual([fresh!.tag]);
    expect(k4.files.some((f) => f.path.startsWith(old!.basePath))).toBe(false);
  });

  it('refuses a rollover when DNSSEC is off, or for a domain the bundle does not serve', async () => {
    const k = await fixtureKeys();
    const off = ensureKeys(keysTestConfig({ dnssec: false }), previousFromFiles(k.files), at(T0), { rotateDnssec: { step: 'zsk', zones: [] } });
    expect(await refusal(off)).toMatch(/DNSSEC is off/);
    expect(await refusal(next(k, T0, { rotateDnssec: { step: 'zsk', zones: ['example.com' as DnssecKey['zone']] } }))).toMatch(/--domain: example\.com is not one of the bundle's domains/);
  });

  it('reads the keys.json of earlier releases (one KSK, one ZSK) and gives the ZSK its successor', async () => {
    const k = await fixtureKeys();
    const meta = JSON.parse(k.read(KEYS_META_PATH).toString()) as { dnssec: Record<string, { keys: { tag: number; role: string }[] }> };
    const [ksk, zsk] = meta.dnssec['example.org']!.keys;
    const legacy = { ...meta, dnssec: { 'example.org': { ksk: { tag: ksk!.tag, created: '2026-03-15' }, zsk: { tag: zsk!.tag, created: '2026-03-15' } } } };
    const files = k.files
      .filter((f) => !f.path.startsWith(zsks(k)[1]!.basePath))
      .map((f) => (f.path === KEYS_META_PATH ? { ...f, data: Buffer.from(JSON.stringify(legacy)) } : f));
    const k2 = await ensureKeys(keysTestConfig(), previousFromFiles(files), at(T0 + DAY_MS), { warn: () => undefined });
    expect(ksks(k2).map((x) => [x.tag, x.publish])).toEqual([[ksk!.tag, '2026-03-15T00:00:00Z']]);
    expect(zsks(k2).map((x) => x.tag)[0]).toBe(zsk!.tag);
    expect(zsks(k2)[1]!.activate).toBe('2026-06-13T00:00:00Z');
  });
});
