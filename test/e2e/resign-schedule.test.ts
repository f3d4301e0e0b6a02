/**
 * The host's daily job (`bin/selfmail-resign` from the real `selfmail init --demo`) follows the
 * bundle's DNSSEC key schedule by itself: it pre-publishes the next ZSK, signs with it once it is
 * due (and only once the served zone already publishes it), takes the old ZSK out after its time,
 * re-signs a week before the signatures expire, and takes a replaced KSK out after the parent's DS
 * wait. Each step is the script run with SELFMAIL_RESIGN_NOW at a simulated date against the
 * bundle's zone and keys installed in a temp root, signed by the real ldns-signzone and checked by
 * the real ldns-verify-zone at that date; only nsd-control is a stub that records its arguments.
 */
import { spawn } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemPathOf } from '../../src/bundle/layout.js';
import { dnsTime } from '../helpers/apply-bundle.js';
import { runCli } from '../helpers/cli.js';
import { ensureBuilt } from '../helpers/rehearse-cli.js';

const ZONE = 'example.org';
const DAY = 86_400;
/** The script re-signs when the earliest RRSIG expires within this many days (RESIGN_MARGIN_DAYS). */
const MARGIN_DAYS = 7;

let work: string;

beforeAll(async () => {
  ensureBuilt();
  work = await mkdtemp(join(tmpdir(), 'selfmail-e2e-resign-schedule-'));
});

afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

/** Seconds since the epoch, the script's clock. */
const seconds = (iso: string): number => Date.parse(iso) / 1000;

interface ScheduledKey {
  tag: number;
  role: 'ksk' | 'zsk';
  publish: number;
  activate: number;
  remove?: number;
}

/** The zone's keys as keys.json schedules them, and each public key → its tag (from the .key files). */
async function bundleKeys(bundle: string): Promise<{ keys: ScheduledKey[]; tagOf: Map<string, number> }> {
  const meta = JSON.parse(await readFile(join(bundle, 'keys/keys.json'), 'utf8')) as {
    dnssec: Record<string, { keys: Array<{ tag: number; role: 'ksk' | 'zsk'; publish: string; activate: string; remove?: string }> }>;
  };
  const keys = (meta.dnssec[ZONE]?.keys ?? []).map((k) => ({
    tag: k.tag,
    role: k.role,
    publish: seconds(k.publish),
    activate: seconds(k.activate),
    ...(k.remove !== undefined ? { remove: seconds(k.remove) } : {}),
  }));
  const tagOf = new Map<string, number>();
  const dir = join(bundle, `keys/dnssec/${ZONE}`);
  for (const f of (await readdir(dir)).filter((n) => n.endsWith('.key'))) {
    const tag = Number(/\+(\d+)\.key$/.exec(f)?.[1]);
    const record = (await readFile(join(dir, f), 'utf8')).split('\n').find((l) => /\sDNSKEY\s/.test(l));
    if (!record) throw new Error(`${f} holds no DNSKEY`);
    tagOf.set(record.trim().split(/\s+/).at(-1)!, tag);
  }
  return { keys, tagOf };
}

/** What the served zone says about its keys: read from the ldns-signzone output. */
interface Served {
  text: string;
  serial: number;
  /** The DNSKEY set, as tags, sorted. */
  dnskeys: number[];
  /** Key tags of the RRSIGs over SOA and over the DNSKEY set (field 11), sorted. */
  soaSigners: number[];
  dnskeySigners: number[];
  /** The earliest RRSIG expiration, in seconds since the epoch. */
  earliestExpiry: number;
}

function served(text: string, tagOf: Map<string, number>): Served {
  const records = text
    .split('\n')
    .filter((l) => l !== '' && !l.startsWith(';'))
    .map((l) => l.split(/\s+/));
  const sigs = records.filter((f) => f[3] === 'RRSIG');
  const signersOf = (type: string) => sigs.filter((f) => f[4] === type).map((f) => Number(f[10])).sort((a, b) => a - b);
  const fromDnsTime = (t: string) => Date.UTC(+t.slice(0, 4), +t.slice(4, 6) - 1, +t.slice(6, 8), +t.slice(8, 10), +t.slice(10, 12), +t.slice(12, 14)) / 1000;
  const soa = records.find((f) => f[3] === 'SOA');
  if (!soa) throw new Error('no SOA in the signed zone');
  return {
    text,
    serial: Number(soa[6]),
    // An unknown public key shows as -1, so a key from nowhere fails the comparison.
    dnskeys: records
      .filter((f) => f[3] === 'DNSKEY')
      .map((f) => tagOf.get(f[7]!) ?? -1)
      .sort((a, b) => a - b),
    soaSigners: signersOf('SOA'),
    dnskeySigners: signersOf('DNSKEY'),
    earliestExpiry: Math.min(...sigs.map((f) => fromDnsTime(f[8]!))),
  };
}

const sorted = (...tags: number[]) => [...tags].sort((a, b) => a - b);

interface Host {
  root: string;
  script: string;
  signed: string;
  nsdConf: string;
  /** Where the stub nsd-control writes a line per call. */
  nsdLog: string;
  /** The script's TMPDIR: it must leave nothing there. */
  tmp: string;
}

/**
 * A temp root with the bundle's zone and DNSSEC keys where the layout installs them, the bundle's
 * script with its absolute paths moved under the root, and an nsd-control stub first in PATH.
 * `signedZone: false` leaves the signed zone out (the job signs it for the first time).
 */
async function install(bundle: string, opts: { signedZone?: boolean } = {}): Promise<Host> {
  const root = await mkdtemp(join(work, 'root-'));
  const at = (bundlePath: string) => root + systemPathOf(bundlePath);
  const files = [`dns/${ZONE}.zone`, ...(opts.signedZone === false ? [] : [`dns/${ZONE}.zone.signed`])];
  const keyFiles = (await readdir(join(bundle, `keys/dnssec/${ZONE}`))).map((f) => `keys/dnssec/${ZONE}/${f}`);
  for (const f of [...files, ...keyFiles]) {
    await mkdir(dirname(at(f)), { recursive: true });
    await copyFile(join(bundle, f), at(f));
  }

  const paths = [`dns/${ZONE}.zone`, `dns/${ZONE}.zone.signed`, 'nsd/nsd.conf'].map(systemPathOf);
  paths.push(dirname(systemPathOf(keyFiles[0]!)));
  let script = await readFile(join(bundle, 'bin/selfmail-resign'), 'utf8');
  for (const p of paths) {
    expect(script, `the script names ${p}`).toContain(`"${p}"`);
    script = script.split(`"${p}"`).join(`"${root}${p}"`);
  }
  // Every absolute path the script uses is now under the root.
  expect(script).not.toMatch(/"\/(etc|var|run)\//);
  const host: Host = {
    root,
    script: at('bin/selfmail-resign'),
    signed: at(`dns/${ZONE}.zone.signed`),
    nsdConf: at('nsd/nsd.conf'),
    nsdLog: join(root, 'nsd-control.log'),
    tmp: join(root, 'tmp'),
  };
  await mkdir(dirname(host.script), { recursive: true });
  await writeFile(host.script, script, { mode: 0o755 });
  await mkdir(join(root, 'stub'));
  await writeFile(join(root, 'stub/nsd-control'), `#!/bin/sh\necho "$*" >> '${host.nsdLog}'\n`, { mode: 0o755 });
  await writeFile(host.nsdLog, '');
  await mkdir(host.tmp);
  return host;
}

interface JobRun {
  code: number | null;
  stdout: string;
  stderr: string;
  /** nsd-control's arguments, a line per call during this run. */
  nsdControl: string[];
}

/** The daily job at `now` (seconds since the epoch). */
async function runJob(host: Host, now: number): Promise<JobRun> {
  await writeFile(host.nsdLog, '');
  const r = await new Promise<Omit<JobRun, 'nsdControl'>>((resolve, reject) => {
    const child = spawn(host.script, [], {
      env: { ...process.env, PATH: `${join(host.root, 'stub')}:${process.env.PATH ?? ''}`, SELFMAIL_RESIGN_NOW: String(now), TMPDIR: host.tmp },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
  expect(await readdir(host.tmp), 'the job leaves no work directory behind').toEqual([]);
  const nsdControl = (await readFile(host.nsdLog, 'utf8')).split('\n').filter((l) => l !== '');
  return { ...r, nsdControl };
}

/** ldns-verify-zone's verdict on `file` at `now`: its exit code and output. */
function verifyAt(file: string, now: number): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('ldns-verify-zone', ['-t', dnsTime(new Date(now * 1000)), file], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, out }));
  });
}

/** A run at `now` that must leave the served zone byte for byte as it was and reload nothing. */
async function expectNoChange(host: Host, now: number): Promise<void> {
  const before = await readFile(host.signed);
  const r = await runJob(host, now);
  expect(r.code, r.stderr).toBe(0);
  expect(r.stdout).toBe('');
  expect(r.nsdControl).toEqual([]);
  expect(await readFile(host.signed)).toEqual(before);
}

/**
 * A run at `now` that must re-sign: a higher serial than `previous`, a zone ldns-verify-zone
 * accepts at `now`, signatures valid from `now`, and NSD told to reload the zone.
 */
async function expectResigned(host: Host, now: number, previous: Served | undefined, tagOf: Map<string, number>): Promise<Served> {
  const r = await runJob(host, now);
  expect(r.code, r.stderr).toBe(0);
  expect(r.stdout).toMatch(new RegExp(`${ZONE.replace('.', '\\.')} signed again with ZSK \\d+, serial \\d+`));
  expect(r.nsdControl).toEqual([`-c ${host.nsdConf} reload ${ZONE}`]);
  const z = served(await readFile(host.signed, 'utf8'), tagOf);
  if (previous) expect(z.serial).toBeGreaterThan(previous.serial);
  expect(z.earliestExpiry).toBeGreaterThan(now + 29 * DAY);
  const v = await verifyAt(host.signed, now);
  expect(v.code, v.out).toBe(0);
  return z;
}

describe("the host's daily job rolls the ZSK over by itself, following the bundle's schedule", () => {
  // One host walks the schedule, a test per step, in order (each starts from the zone the last left).
  let bundle: string;
  let host: Host;
  let tagOf: Map<string, number>;
  let ksk: ScheduledKey;
  let oldZsk: ScheduledKey;
  let nextZsk: ScheduledKey;
  let made: number;
  let zone: Served;

  beforeAll(async () => {
    bundle = join(work, 'demo');
    const r = await runCli(['init', '--demo', '--out', bundle]);
    if (r.code !== 0) throw new Error(`selfmail init failed:\n${r.stderr}`);
    made = Math.floor(Date.now() / 1000);
    const k = await bundleKeys(bundle);
    tagOf = k.tagOf;
    const zsks = k.keys.filter((x) => x.role === 'zsk').sort((a, b) => a.activate - b.activate);
    expect(k.keys.filter((x) => x.role === 'ksk')).toHaveLength(1);
    expect(zsks).toHaveLength(2);
    ksk = k.keys.find((x) => x.role === 'ksk')!;
    oldZsk = zsks[0]!;
    nextZsk = zsks[1]!;
    // The schedule init writes: the next ZSK in the zone at +87 days, signing at +90, the old one out 30 days later.
    expect(Math.round((nextZsk.publish - oldZsk.activate) / DAY)).toBe(87);
    expect(Math.round((nextZsk.activate - oldZsk.activate) / DAY)).toBe(90);
    expect(oldZsk.remove).toBe(nextZsk.activate + 30 * DAY);
    host = await install(bundle);
    zone = served(await readFile(host.signed, 'utf8'), tagOf);
    expect(zone.dnskeys).toEqual(sorted(ksk.tag, oldZsk.tag));
  }, 120_000);

  it('changes nothing on the day the bundle is made', async () => {
    await expectNoChange(host, made);
  });

  it("publishes the next ZSK at its publish time, still signing with the old one, and reloads NSD", async () => {
    const t = nextZsk.publish + 1;
    zone = await expectResigned(host, t, zone, tagOf);
    expect(zone.dnskeys).toEqual(sorted(ksk.tag, oldZsk.tag, nextZsk.tag));
    expect(zone.soaSigners).toEqual([oldZsk.tag]);
    expect(zone.dnskeySigners).toEqual([ksk.tag]);
  });

  it('changes nothing when run again at the same time', async () => {
    await expectNoChange(host, nextZsk.publish + 1);
  });

  it('signs with the next ZSK once it is due, the old one still published', async () => {
    zone = await expectResigned(host, nextZsk.activate + 1, zone, tagOf);
    expect(zone.soaSigners).toEqual([nextZsk.tag]);
    expect(zone.dnskeys).toEqual(sorted(ksk.tag, oldZsk.tag, nextZsk.tag));
  });

  it('re-signs a week before the signatures expire, without any key event', async () => {
    const due = zone.earliestExpiry - MARGIN_DAYS * DAY;
    expect(due).toBeLessThan(oldZsk.remove!);
    await expectNoChange(host, due - 1);
    zone = await expectResigned(host, due + 1, zone, tagOf);
    expect(zone.dnskeys).toEqual(sorted(ksk.tag, oldZsk.tag, nextZsk.tag));
    expect(zone.soaSigners).toEqual([nextZsk.tag]);
  });

  it("takes the old ZSK out at its remove time", async () => {
    const t = oldZsk.remove! + 1;
    // The signatures are fresh (the last step re-signed): the key event alone makes this run sign.
    expect(zone.earliestExpiry - t).toBeGreaterThan(MARGIN_DAYS * DAY);
    zone = await expectResigned(host, t, zone, tagOf);
    expect(zone.dnskeys).toEqual(sorted(ksk.tag, nextZsk.tag));
    expect(zone.soaSigners).toEqual([nextZsk.tag]);
    await expectNoChange(host, t);
  });

  it('a host that missed the publish time publishes the next ZSK first, and signs with it only once that zone was out a DNSKEY TTL', async () => {
    const late = await install(bundle);
    await expectNoChange(late, made);
    const t = nextZsk.activate + 1;
    const first = await expectResigned(late, t, served(await readFile(late.signed, 'utf8'), tagOf), tagOf);
    expect(first.dnskeys).toEqual(sorted(ksk.tag, oldZsk.tag, nextZsk.tag));
    // Validating resolvers may still hold the old DNSKEY set: the old ZSK keeps signing.
    expect(first.soaSigners).toEqual([oldZsk.tag]);
    // Within the hour a resolver may hold the DNSKEY set from before: nothing changes.
    await expectNoChange(late, t + 3600 - 60);
    const second = await expectResigned(late, t + 3600, first, tagOf);
    expect(second.dnskeys).toEqual(sorted(ksk.tag, oldZsk.tag, nextZsk.tag));
    expect(second.soaSigners).toEqual([nextZsk.tag]);
  });
});

describe("the host's daily job takes a replaced KSK out after its time", () => {
  let bundle: string;
  let tagOf: Map<string, number>;
  let oldKsk: ScheduledKey;
  let newKsk: ScheduledKey;
  let zsk: ScheduledKey;
  let confirmed: number;

  beforeAll(async () => {
    bundle = join(work, 'ksk');
    const init = await runCli(['init', '--demo', '--out', bundle]);
    if (init.code !== 0) throw new Error(`selfmail init failed:\n${init.stderr}`);
    for (const step of [['--ksk'], ['--ksk', '--parent-confirmed']]) {
      const r = await runCli(['keys', 'rotate', 'dnssec', '--bundle', bundle, ...step]);
      if (r.code !== 0) throw new Error(`selfmail keys rotate dnssec ${step.join(' ')} failed:\n${r.stderr}`);
    }
    confirmed = Math.floor(Date.now() / 1000);
    const k = await bundleKeys(bundle);
    tagOf = k.tagOf;
    const ksks = k.keys.filter((x) => x.role === 'ksk');
    expect(ksks).toHaveLength(2);
    oldKsk = ksks.find((x) => x.remove !== undefined)!;
    newKsk = ksks.find((x) => x.remove === undefined)!;
    expect(oldKsk).toBeDefined();
    expect(newKsk).toBeDefined();
    // The old KSK leaves two days (DS_WAIT_DAYS) after the parent was confirmed to serve the new DS.
    expect(Math.abs(oldKsk.remove! - (confirmed + 2 * DAY))).toBeLessThan(60);
    zsk = k.keys.filter((x) => x.role === 'zsk').sort((a, b) => a.activate - b.activate)[0]!;
  }, 120_000);

  it("keeps both KSKs signing the DNSKEY set until the old one's remove time", async () => {
    const host = await install(bundle);
    const z = served(await readFile(host.signed, 'utf8'), tagOf);
    expect(z.dnskeys).toEqual(sorted(oldKsk.tag, newKsk.tag, zsk.tag));
    expect(z.dnskeySigners).toEqual(sorted(oldKsk.tag, newKsk.tag));
    await expectNoChange(host, confirmed);
    await expectNoChange(host, oldKsk.remove! - 1);

    // Signing the zone itself (none installed yet), the job signs the DNSKEY set with both.
    const first = await install(bundle, { signedZone: false });
    const signed = await expectResigned(first, confirmed, undefined, tagOf);
    expect(signed.dnskeys).toEqual(sorted(oldKsk.tag, newKsk.tag, zsk.tag));
    expect(signed.dnskeySigners).toEqual(sorted(oldKsk.tag, newKsk.tag));
    expect(signed.soaSigners).toEqual([zsk.tag]);
  });

  it('takes the old KSK out at its remove time, the new one alone signing the DNSKEY set', async () => {
    const host = await install(bundle);
    const before = served(await readFile(host.signed, 'utf8'), tagOf);
    const z = await expectResigned(host, oldKsk.remove! + 1, before, tagOf);
    expect(z.dnskeys).toEqual(sorted(newKsk.tag, zsk.tag));
    expect(z.dnskeySigners).toEqual([newKsk.tag]);
    expect(z.soaSigners).toEqual([zsk.tag]);
    await expectNoChange(host, oldKsk.remove! + 1);
  });
});
