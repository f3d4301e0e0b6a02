/**
 * Every DNSSEC rollover stage validates for a resolver that still holds the trust state of before
 * it: no validation gap, on simulated dates.
 *
 * How: the key store and the DNS service (ensureKeys, buildDns, hence ldns-signzone) build a chain
 * of bundles at simulated dates, each from the one before as `selfmail init` does: a scheduled ZSK
 * rollover (next ZSK published, signing, the old one leaving), one started with `rotate dnssec
 * --zsk`, a KSK rollover (`--ksk`, `--parent-confirmed`, the old KSK leaving), and a host that was
 * off through the pre-publication days. Before each step the zone served so far is the previous
 * stage re-built an hour (the DNSKEY TTL) before it. At the moment of each step, NSD on loopback
 * serves in turn the zone before, the zone after, and the two mixes a cache can hold across the
 * step (the DNSKEY set before with the records after, and the DNSKEY set after with the records
 * before); a real unbound whose clock is that moment (val-override-date), trusting the DS a
 * resolver may hold then, must answer SOA, MX, DMARC, TLSA and DNSKEY with AD set. A table pins
 * which keys each stage publishes and signs with (so that a schedule change shows by name),
 * ldns-verify-zone checks every signed zone at its date, and the last test shows that the same
 * resolver check does fail for records signed by a key missing from the cached DNSKEY set, a DS of
 * a KSK that left, and signatures past their expiry.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BundleFile } from '../../src/bundle/types.js';
import type { DomainName } from '../../src/config/types.js';
import { DEFAULT_TTL } from '../../src/dns/records.js';
import { buildDns } from '../../src/dns/service.js';
import { dnskeysIn, dnssecTime } from '../../src/dns/sign.js';
import { DAY_MS, ZSK_RETIRE_DAYS, dnskeyText } from '../../src/keys/dnssec-plan.js';
import { ensureKeys } from '../../src/keys/store.js';
import type { DnssecKey, KeySet } from '../../src/keys/types.js';
import { makeConfig, makeContext, memoryPrevious } from '../helpers/dns-keyset.js';
import { freePort } from '../helpers/ports.js';

const exec = promisify(execFile);

const ZONE = 'example.org' as DomainName;
const config = makeConfig({ domains: [ZONE], users: [`alice@${ZONE}`], admin: `alice@${ZONE}` });
/** The first signing, in the future on purpose: only the simulated clocks of the tools decide. */
const T0 = new Date('2027-02-01T08:00:00Z');
/** How long a resolver may keep the parent's DS: a day at most TLDs (the figure DS_WAIT_DAYS allows for). */
const PARENT_DS_TTL_MS = DAY_MS;
const QUERIES = [
  [ZONE, 'SOA'],
  [ZONE, 'MX'],
  [`_dmarc.${ZONE}`, 'TXT'],
  [`_25._tcp.mail.${ZONE}`, 'TLSA'],
  [ZONE, 'DNSKEY'],
] as const;

type Step = 'zsk' | 'ksk' | 'parent-confirmed';

/** One bundle of the chain: its keys, its files (the next one's `previous`) and its signed zone. */
interface Built {
  at: Date;
  keys: KeySet;
  files: BundleFile[];
  signed: string;
}

interface StageSpec {
  name: string;
  /** The stage it follows: the one listed before it unless named. */
  after?: string;
  /** Its date, read from the key schedule of the stage it follows. */
  at: (prev: Built) => Date;
  step?: Step;
  /**
   * The DS a resolver may hold at this step, each checked alone: the first KSK's (`old`) unless
   * given; the new KSK's once the parent serves it, the old one until a DS TTL after that.
   */
  ds?: ('old' | 'new')[];
  /** When the zone served up to this step was last signed: one DNSKEY TTL before it unless given. */
  lastSigned?: (prev: Built) => Date;
  /** What the signed zone holds, keys named in the order they first appear (see `summary`). */
  expect: string;
}

const FRESH = 'a fresh key set';
/** The end of the first ZSK rollover: the state both asked-for rollovers start from. */
const QUIET = 'the replaced ZSK leaves';
const PUBLISHED = 'the next ZSK is published';
const SIGNS = 'the next ZSK signs';
/** The new KSK signs the DNSKEY set beside the old one; CDS and CDNSKEY name it. */
const KSK_STEP = 'rotate dnssec --ksk';
const ROTATED_IN = 'the rotated-in ZSK signs';
const ROTATED_OUT = 'the rotated-out ZSK leaves';
const PARENT_CONFIRMED = 'rotate dnssec --ksk --parent-confirmed';
const KSK_GONE = 'the old KSK leaves, past the DS TTL';

const later = (d: Date, ms: number): Date => new Date(d.getTime() + ms);
const justAfter = (iso: string | undefined): Date => {
  if (iso === undefined) throw new Error('the schedule has no date for this step');
  return later(new Date(iso), 1000);
};
const zsks = (b: Built): DnssecKey[] => b.keys.dnssec.filter((k) => k.role === 'zsk');
/** The ZSK scheduled to sign next. */
const nextZsk = (b: Built): DnssecKey => {
  const k = zsks(b).find((z) => Date.parse(z.activate) > b.at.getTime());
  if (!k) throw new Error('no next ZSK scheduled');
  return k;
};
/** The earliest removal of a key of `role` still in the zone. */
const firstRemoval = (b: Built, role: 'ksk' | 'zsk'): string | undefined =>
  b.keys.dnssec
    .filter((k) => k.role === role && k.remove !== undefined)
    .map((k) => k.remove!)
    .sort()[0];

const STAGES: StageSpec[] = [
  // The ZSK rollover the schedule makes by itself.
  { name: PUBLISHED, at: (p) => justAfter(nextZsk(p).publish), expect: 'DNSKEY KSK1 ZSK1 ZSK2 signed by KSK1; the rest by ZSK1' },
  { name: SIGNS, at: (p) => justAfter(nextZsk(p).activate), expect: 'DNSKEY KSK1 ZSK1 ZSK2 signed by KSK1; the rest by ZSK2' },
  { name: QUIET, at: (p) => justAfter(firstRemoval(p, 'zsk')), expect: 'DNSKEY KSK1 ZSK2 signed by KSK1; the rest by ZSK2' },
  // A ZSK rollover asked for.
  { name: 'rotate dnssec --zsk', after: QUIET, at: (p) => later(p.at, DAY_MS), step: 'zsk', expect: 'DNSKEY KSK1 ZSK2 ZSK3 signed by KSK1; the rest by ZSK2' },
  { name: ROTATED_IN, at: (p) => justAfter(nextZsk(p).activate), expect: 'DNSKEY KSK1 ZSK2 ZSK3 signed by KSK1; the rest by ZSK3' },
  { name: ROTATED_OUT, at: (p) => justAfter(firstRemoval(p, 'zsk')), expect: 'DNSKEY KSK1 ZSK3 signed by KSK1; the rest by ZSK3' },
  // The KSK rollover, from the same quiet state (no ZSK rollover under way meanwhile).
  { name: KSK_STEP, after: QUIET, at: (p) => later(p.at, DAY_MS), step: 'ksk', expect: 'DNSKEY KSK1 KSK2 ZSK2 signed by KSK1 KSK2; the rest by ZSK2; CDS KSK2 signed by KSK1 KSK2' },
  {
    // The parent serves the new DS; caches may hold the old one for a DS TTL.
    name: PARENT_CONFIRMED,
    at: (p) => later(p.at, 2 * DAY_MS),
    step: 'parent-confirmed',
    ds: ['old', 'new'],
    expect: 'DNSKEY KSK1 KSK2 ZSK2 signed by KSK1 KSK2; the rest by ZSK2',
  },
  { name: KSK_GONE, at: (p) => justAfter(firstRemoval(p, 'ksk')), ds: ['new'], expect: 'DNSKEY KSK2 ZSK2 signed by KSK2; the rest by ZSK2' },
  // The rule that a due ZSK signs only once the zone served so far publishes it.
  {
    name: 'a host off through the pre-publication days publishes the next ZSK first',
    after: FRESH,
    at: (p) => justAfter(nextZsk(p).activate),
    lastSigned: (p) => later(new Date(nextZsk(p).publish), -DAY_MS),
    expect: 'DNSKEY KSK1 ZSK1 ZSK2 signed by KSK1; the rest by ZSK1',
  },
  { name: 'and signs with it the day after', at: (p) => later(p.at, DAY_MS), expect: 'DNSKEY KSK1 ZSK1 ZSK2 signed by KSK1; the rest by ZSK2' },
];

/** Each step: the zone served up to it and the zone after it. */
interface Transition {
  before: Built;
  after: Built;
}

let root: string;
let nsdPort: number;
let unboundPort: number;
const running = new Set<ChildProcess>();
const built = new Map<string, Built>();
const transitions = new Map<string, Transition>();
/** Every key set in the order it was made, to name the keys KSK1, ZSK1, … by first appearance. */
const keySets: KeySet[] = [];

/** Build the bundle at `at` from `previous` (the previous bundle's files), as init does. */
async function build(previous: readonly BundleFile[], at: Date, step?: Step): Promise<Built> {
  const keys = await ensureKeys(config, memoryPrevious(previous), at, step ? { rotateDnssec: { step, zones: [] } } : {});
  keySets.push(keys);
  const dns = await buildDns(makeContext(config, keys, { previous, now: at }));
  const signed = dns.find((f) => f.path === `dns/${ZONE}.zone.signed`);
  if (!signed) throw new Error(`no signed zone at ${at.toISOString()}`);
  return { at, keys, files: [...keys.files, ...dns], signed: signed.data.toString('utf8') };
}

function named(name: string): Built {
  const b = built.get(name);
  if (!b) throw new Error(`no stage ${name}`);
  return b;
}

function transition(name: string): Transition {
  const t = transitions.get(name);
  if (!t) throw new Error(`no step ${name}`);
  return t;
}

/** The DS records a resolver may hold at a step: the first KSK's (`old`) or the KSK rollover's new one. */
function dsHeld(spec: Pick<StageSpec, 'ds'>): { label: string; ds: string }[] {
  return (spec.ds ?? ['old']).map((which) => {
    const k = which === 'old' ? named(FRESH).keys.dnssec.find((x) => x.role === 'ksk') : named(KSK_STEP).keys.dnssec.find((x) => x.role === 'ksk' && x.cds);
    if (!k?.ds) throw new Error(`no ${which} KSK`);
    return { label: `the ${which} DS`, ds: k.ds };
  });
}

/** The lines of a signed zone split into the DNSKEY RRset with its RRSIGs and everything else. */
function splitDnskey(signed: string): { dnskey: string[]; rest: string[] } {
  const lines = signed.split('\n').filter((l) => /\S/.test(l) && !/^\s*[;$]/.test(l));
  const isDnskey = (l: string): boolean => {
    const f = l.trim().split(/\s+/);
    return f[3] === 'DNSKEY' || (f[3] === 'RRSIG' && f[4] === 'DNSKEY');
  };
  return { dnskey: lines.filter(isDnskey), rest: lines.filter((l) => !isDnskey(l)) };
}

/** What a cache holding the DNSKEY set of `keysFrom` and the other RRsets of `restFrom` sees. */
function mix(keysFrom: string, restFrom: string): string {
  return `${[...splitDnskey(restFrom).rest, ...splitDnskey(keysFrom).dnskey].join('\n')}\n`;
}

/** The keys a signed zone publishes and signs with, by their names of first appearance. */
function summary(signed: string): string {
  const nameOf = new Map<number, string>();
  const tagOf = new Map<string, number>();
  const count = { ksk: 0, zsk: 0 };
  for (const k of keySets.flatMap((ks) => ks.dnssec)) {
    if (!nameOf.has(k.tag)) nameOf.set(k.tag, `${k.role.toUpperCase()}${++count[k.role]}`);
    tagOf.set(dnskeyText(k), k.tag);
  }
  const recs = signed.split('\n').filter((l) => /\S/.test(l) && !/^\s*[;$]/.test(l)).map((l) => l.trim().split(/\s+/));
  const names = (tags: string[]) => [...new Set(tags.map((t) => nameOf.get(Number(t)) ?? `unknown key ${t}`))].sort().join(' ');
  const dnskeyTags = dnskeysIn(signed).map((rdata) => String(tagOf.get(rdata) ?? `? ${rdata}`));
  const signers = (types: string[], covered: boolean) => names(recs.filter((f) => f[3] === 'RRSIG' && types.includes(f[4]!) === covered).map((f) => f[10]!));
  const cds = recs.filter((f) => f[3] === 'CDS').map((f) => f[4]!);
  return (
    `DNSKEY ${names(dnskeyTags)} signed by ${signers(['DNSKEY'], true)}; ` +
    `the rest by ${signers(['DNSKEY', 'CDS', 'CDNSKEY'], false)}` +
    (cds.length > 0 ? `; CDS ${names(cds)} signed by ${signers(['CDS'], true)}` : '')
  );
}


/** Start a daemon in the foreground; resolves once `ready` says so, rejects with its log if it exits first. */
async function startDaemon(cmd: string, args: string[], ready: (log: string) => Promise<boolean>): Promise<{ child: ChildProcess; log: () => string }> {
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  running.add(child);
  let log = '';
  child.stdout!.on('data', (b: Buffer) => (log += b.toString()));
  child.stderr!.on('data', (b: Buffer) => (log += b.toString()));
  child.once('exit', () => running.delete(child));
  for (let i = 0; ; i++) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`${cmd} exited (${child.exitCode ?? child.signalCode}):\n${log}`);
    if (await ready(log)) return { child, log: () => log };
    if (i > 200) {
      await stop(child);
      throw new Error(`${cmd} did not get ready:\n${log}`);
    }
    await new Promise((r) => setTimeout(r, 25));
  }
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
  if (child.exitCode === null && child.signalCode === null) {
    child.kill('SIGKILL');
    await exited;
  }
}

/** Serve `zoneText` with NSD on loopback while `use` runs. */
async function withNsd<T>(zoneText: string, use: () => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(root, 'nsd-'));
  await writeFile(join(dir, `${ZONE}.zone`), zoneText);
  const conf = join(dir, 'nsd.conf');
  await writeFile(
    conf,
    [
      'server:',
      `  ip-address: 127.0.0.1@${nsdPort}`,
      '  username: ""',
      '  chroot: ""',
      `  zonesdir: "${dir}"`,
      '  database: ""',
      `  zonelistfile: "${dir}/zone.list"`,
      `  xfrdfile: "${dir}/xfrd.state"`,
      `  xfrdir: "${dir}"`,
      `  pidfile: "${dir}/nsd.pid"`,
      '  server-count: 1',
      '  verbosity: 1',
      'remote-control:',
      '  control-enable: no',
      'zone:',
      `  name: "${ZONE}"`,
      `  zonefile: "${ZONE}.zone"`,
      '',
    ].join('\n'),
  );
  const answers = async (): Promise<boolean> => {
    const r = await exec('dig', ['@127.0.0.1', '-p', String(nsdPort), '+short', '+norecurse', '+tries=1', '+time=1', ZONE, 'SOA']).catch(() => ({ stdout: '' }));
    return r.stdout.trim() !== '';
  };
  const nsd = await startDaemon('nsd', ['-d', '-c', conf], answers);
  try {
    return await use();
  } finally {
    await stop(nsd.child);
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * Ask a validating unbound whose clock is `at` and whose only trust anchor for the zone is `ds`
 * (NSD as its stub) every name of QUERIES: `NAME TYPE STATUS ad|no-ad` each.
 */
async function resolveAll(at: Date, ds: string): Promise<{ answers: string[]; log: string }> {
  const dir = await mkdtemp(join(root, 'unbound-'));
  const conf = join(dir, 'unbound.conf');
  await writeFile(
    conf,
    [
      'server:',
      '  interface: 127.0.0.1',
      `  port: ${unboundPort}`,
      '  do-ip6: no',
      '  do-not-query-localhost: no',
      '  username: ""',
      '  chroot: ""',
      `  directory: "${dir}"`,
      `  pidfile: "${dir}/unbound.pid"`,
      '  use-syslog: no',
      '  logfile: ""',
      '  verbosity: 1',
      '  num-threads: 1',
      '  module-config: "validator iterator"',
      '  trust-anchor-signaling: no',
      '  root-key-sentinel: no',
      '  val-log-level: 2',
      `  val-override-date: "${dnssecTime(at)}"`,
      `  trust-anchor: "${ZONE}. DS ${ds}"`,
      'remote-control:',
      '  control-enable: no',
      'stub-zone:',
      `  name: "${ZONE}"`,
      `  stub-addr: 127.0.0.1@${nsdPort}`,
      '',
    ].join('\n'),
  );
  await exec('unbound-checkconf', [conf]);
  const unbound = await startDaemon('unbound', ['-d', '-c', conf], async (log) => log.includes('start of service'));
  try {
    const answers: string[] = [];
    for (const [name, type] of QUERIES) {
      const { stdout } = await exec('dig', ['@127.0.0.1', '-p', String(unboundPort), '+dnssec', '+tries=1', '+time=10', name, type]);
      const status = /status: (\w+)/.exec(stdout)?.[1] ?? 'no answer';
      const flags = /;; flags: ([a-z ]*);/.exec(stdout)?.[1]?.split(' ') ?? [];
      const count = Number(/ANSWER: (\d+)/.exec(stdout)?.[1] ?? 0);
      answers.push(`${name} ${type} ${status}${count > 0 ? '' : ' (empty)'} ${flags.includes('ad') ? 'ad' : 'no-ad'}`);
    }
    return { answers, log: unbound.log() };
  } finally {
    await stop(unbound.child);
    await rm(dir, { recursive: true, force: true });
  }
}

interface Answer {
  /** `WHAT, DS: NAME TYPE STATUS ad|no-ad`. */
  line: string;
  /** unbound's reasons for its validation failures (val-log-level 2), to make a red run readable. */
  why: string;
}

/** Every answer a resolver holding each DS in `held` gets for `zoneText` at `at`, labelled `what`. */
async function validate(what: string, zoneText: string, at: Date, held: { label: string; ds: string }[]): Promise<Answer[]> {
  return withNsd(zoneText, async () => {
    const out: Answer[] = [];
    for (const { label, ds } of held) {
      const { answers, log } = await resolveAll(at, ds);
      const why = log.split('\n').filter((l) => /validation failure/.test(l)).slice(0, 2).join(' | ');
      out.push(...answers.map((a) => ({ line: `${what}, ${label}: ${a}`, why })));
    }
    return out;
  });
}

/** The answers that are not validated (NOERROR with AD), with unbound's reasons. */
const notValidated = (answers: Answer[]): string[] => answers.filter((a) => !/ NOERROR ad$/.test(a.line)).map((a) => `${a.line} (${a.why})`);
/** The answers that are not SERVFAIL. */
const notServfail = (answers: Answer[]): string[] => answers.filter((a) => !/ SERVFAIL \(empty\) no-ad$/.test(a.line)).map((a) => a.line);

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'selfmail-rollover-'));
  nsdPort = await freePort();
  do unboundPort = await freePort();
  while (unboundPort === nsdPort);

  built.set(FRESH, await build([], T0));
  let prev = named(FRESH);
  for (const spec of STAGES) {
    if (spec.after !== undefined) prev = named(spec.after);
    const at = spec.at(prev);
    const before = await build(prev.files, spec.lastSigned?.(prev) ?? later(at, -DEFAULT_TTL * 1000));
    const after = await build(before.files, at, spec.step);
    built.set(spec.name, after);
    transitions.set(spec.name, { before, after });
    prev = after;
  }
}, 120_000);

afterAll(async () => {
  await Promise.all([...running].map(stop));
  if (root) await rm(root, { recursive: true, force: true });
});

describe('DNSSEC rollover stages validate from the trust state of before each step', () => {
  it('each stage publishes and signs with the keys the schedule names', () => {
    const table = Object.fromEntries([[FRESH, summary(named(FRESH).signed)], ...STAGES.map((s) => [s.name, summary(named(s.name).signed)])]);
    expect(table).toEqual(Object.fromEntries([[FRESH, 'DNSKEY KSK1 ZSK1 signed by KSK1; the rest by ZSK1'], ...STAGES.map((s) => [s.name, s.expect])]));
  });

  it('after rotate dnssec --zsk the old ZSK leaves ZSK_RETIRE_DAYS after the new one signs, not at its earlier schedule', () => {
    expect(named(ROTATED_OUT).at.getTime() - named(ROTATED_IN).at.getTime()).toBe(ZSK_RETIRE_DAYS * DAY_MS);
  });

  it('the old KSK stays in the zone longer than the parent\'s DS TTL after --parent-confirmed (no resolver is left holding only its DS)', () => {
    const kept = named(KSK_GONE).at.getTime() - named(PARENT_CONFIRMED).at.getTime();
    expect(kept).toBeGreaterThan(PARENT_DS_TTL_MS);
  });

  it('ldns-verify-zone accepts every stage at its date, and the zone served before each step at the moment of the step', async () => {
    const zones: [string, string, Date][] = [[FRESH, named(FRESH).signed, T0]];
    for (const s of STAGES) {
      const t = transition(s.name);
      zones.push([`before: ${s.name}`, t.before.signed, t.after.at], [s.name, t.after.signed, t.after.at]);
    }
    const failed: string[] = [];
    for (const [what, signed, at] of zones) {
      const file = join(root, 'verify.zone');
      await writeFile(file, signed);
      await exec('ldns-verify-zone', ['-t', dnssecTime(at), file]).catch((e: { stderr?: string }) => failed.push(`${what}: ${e.stderr ?? String(e)}`));
    }
    expect(failed).toEqual([]);
  });

  it(`${FRESH}: a resolver holding its DS validates it`, async () => {
    const fresh = named(FRESH);
    expect(notValidated(await validate(FRESH, fresh.signed, T0, dsHeld({})))).toEqual([]);
  });

  it.each(STAGES.map((s) => [s.name, s] as const))('%s: the zone before, the zone after and both mixes a cache can hold validate with every DS a resolver may hold', async (name, spec) => {
    const { before, after } = transition(name);
    const at = after.at;
    const held = dsHeld(spec);
    const answers = [
      ...(await validate('the zone before', before.signed, at, held)),
      ...(await validate('the zone after', after.signed, at, held)),
      ...(await validate('the DNSKEY set before, the records after', mix(before.signed, after.signed), at, held)),
      ...(await validate('the DNSKEY set after, the records before', mix(after.signed, before.signed), at, held)),
    ];
    expect(notValidated(answers)).toEqual([]);
    expect(answers).toHaveLength(4 * held.length * QUERIES.length);
  });

  it('fails where it must (the check can go red): records signed by a ZSK absent from the cached DNSKEY set, the DS of a KSK that left, expired signatures', async () => {
    // Without pre-publication: the DNSKEY set of before the next ZSK was published, the records it signs.
    const unpublished = transition(PUBLISHED).before;
    const signing = named(SIGNS);
    const gap = await validate('no pre-publication', mix(unpublished.signed, signing.signed), signing.at, dsHeld({}));
    expect(notServfail(gap)).toEqual([`no pre-publication, the old DS: ${ZONE} DNSKEY NOERROR ad`]);
    // A resolver still trusting the old KSK once it left.
    const gone = named(KSK_GONE);
    expect(notServfail(await validate('the old DS once the old KSK left', gone.signed, gone.at, dsHeld({})))).toEqual([]);
    // The fresh zone at the date the next ZSK signs: its signatures expired long before.
    expect(notServfail(await validate('expired', named(FRESH).signed, signing.at, dsHeld({})))).toEqual([]);
  });
});
