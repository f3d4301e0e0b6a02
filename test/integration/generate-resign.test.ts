/**
 * `selfmail dns resign` is a re-run from the bundle: it re-signs exactly the zones whose earliest
 * signature expires within a week. Shown here by running the generation at two dates.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Io } from '../../src/cli/io.js';
import { sourced } from '../../src/config/raw.js';
import { generate } from '../../src/generate.js';

const quiet: Io = { say: () => {}, warn: () => {}, json: () => {}, jsonMode: false, interactive: false };
const DAY = 86_400_000;
// The checks validate signatures against the real clock, so the story starts in the past:
// signed 24 days ago, the zone's signatures now expire within a week.
const now = new Date();
const t0 = new Date(now.getTime() - 24 * DAY);

let work: string;
let out: string;
beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'selfmail-resign-'));
  out = join(work, 'bundle');
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

const signed = () => readFile(join(out, 'dns/example.org.zone.signed'), 'utf8');
const serialOf = (zone: string) => Number(/\tSOA\t\S+ \S+ (\d+)/.exec(zone)?.[1]);
const rerun = (now: Date) =>
  generate({ out, layers: { flags: sourced({}, 'flag') }, passwords: new Map(), passwordIssues: [], interactive: false, demo: false, now }, quiet);

describe('re-signing by re-running', () => {
  it('keeps the signed zone while signatures are fresh, and re-signs with a higher serial a week before they expire', async () => {
    const first = await generate(
      {
        out,
        layers: { flags: sourced({ domains: ['example.org'], ipv4: '192.0.2.25', users: ['alice@example.org'] }, 'flag') },
        passwords: new Map([['alice@example.org', 'correct horse battery staple']]),
        passwordIssues: [],
        interactive: false,
        demo: false,
        now: t0,
      },
      quiet,
    );
    expect(first).toBe(0);
    const z0 = await signed();

    expect(await rerun(new Date(t0.getTime() + 10 * DAY))).toBe(0);
    expect(await signed()).toBe(z0);

    expect(await rerun(now)).toBe(0);
    const z1 = await signed();
    expect(z1).not.toBe(z0);
    expect(serialOf(z1)).toBeGreaterThan(serialOf(z0));
    const expiries = [...z1.matchAll(/\tRRSIG\t\S+ 13 \d+ \d+ (\d{14}) /g)].map((m) => m[1]!);
    expect(expiries.length).toBeGreaterThan(5);
    // Signed for about 30 days from the new date.
    const in29days = new Date(now.getTime() + 29 * DAY).toISOString().replace(/[-:T]/g, '').slice(0, 14);
    expect(expiries.every((e) => e >= in29days)).toBe(true);
  });
});
