import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { BundleFile } from '../../src/bundle/types.js';
import { STATE_PATH, recordStats, stateFile, unchangedOnDisk, unchangedState } from '../../src/bundle/state.js';
import { MANIFEST, STAT_CACHE, manifestOf, writeBundle } from '../../src/bundle/write.js';

const f = (path: string, text: string, mode = 0o644): BundleFile => ({ path, data: Buffer.from(text), mode, role: `role of ${path}` });

// A signed zone whose earliest RRSIG expires 2026-12-20 00:00:00 UTC.
const signed = [
  'example.org.\t3600\tIN\tSOA\tns1.example.org. a.example.org. 2026112701 7200 3600 1209600 3600',
  'example.org.\t3600\tIN\tRRSIG\tSOA 13 2 3600 20261220000000 20261120000000 12345 example.org. AAAA',
  'example.org.\t3600\tIN\tRRSIG\tMX 13 2 3600 20261225000000 20261120000000 12345 example.org. AAAA',
  '',
].join('\n');

function diskOf(files: BundleFile[]) {
  const all = [...files, manifestOf(files)];
  return { files: new Map(all.map((x) => [x.path, { data: x.data, mode: x.mode }])) };
}

function bundle(build = 'b1') {
  const files = [f('selfmail.yaml', 'domains: [example.org]\n'), f('dns/example.org.zone.signed', signed), f('keys/x.private', 'k', 0o600), f('keys/tls/key.pem', 'a secret only the bundle holds', 0o600)];
  files.push(stateFile(files, build, ['ipv4: a warning'], 'testing'));
  return files;
}

/** The bundle has no certificate: its mode is testing whatever the host has. */
const TESTING = () => 'testing' as const;

describe('the bundle state (quick re-run)', () => {
  const before = new Date('2026-12-01T00:00:00Z');

  it('records when the earliest signature must be renewed (7 days before it expires)', () => {
    const state = JSON.parse(bundle().find((x) => x.path === STATE_PATH)!.data.toString()) as { validUntil: string; input: string };
    expect(state.validUntil).toBe('2026-12-13T00:00:00.000Z');
    expect(state.input).toBe(createHash('sha256').update('domains: [example.org]\n').digest('hex'));
  });

  it('knows an untouched bundle of the same build', () => {
    const s = unchangedState(diskOf(bundle()), 'b1', before, TESTING);
    expect(s?.warnings).toEqual(['ipv4: a warning']);
  });

  it('wants a full run from another build, or from the sources', () => {
    expect(unchangedState(diskOf(bundle()), 'b2', before, TESTING)).toBeUndefined();
    expect(unchangedState(diskOf(bundle('dev')), 'dev', before, TESTING)).toBeUndefined();
  });

  it('wants a full run once a signature is due for renewal', () => {
    expect(unchangedState(diskOf(bundle()), 'b1', new Date('2026-12-13T00:00:01Z'), TESTING)).toBeUndefined();
  });

  it('wants a full run when a file was edited and MANIFEST.sha256 made to match it', () => {
    const files = bundle();
    const zone = files.find((x) => x.path === 'dns/example.org.zone.signed')!;
    zone.data = Buffer.from(`${signed}; edited, manifest updated\n`);
    // diskOf writes a fresh manifest over the edited bytes, as a careful hand would.
    expect(unchangedState(diskOf(files), 'b1', before, TESTING)).toBeUndefined();
  });

  it('wants a full run when the state file itself was edited or its key is gone', () => {
    const files = bundle();
    const st = files.find((x) => x.path === STATE_PATH)!;
    const doc = JSON.parse(st.data.toString()) as { files: string[][] };
    const zone = doc.files.find((e) => e[0] === 'dns/example.org.zone.signed')!;
    zone[3] = createHash('sha256').update('forged').digest('hex');
    st.data = Buffer.from(JSON.stringify(doc));
    expect(unchangedState(diskOf(files), 'b1', before, TESTING)).toBeUndefined();
    const keyless = bundle().filter((x) => x.path !== 'keys/tls/key.pem');
    expect(unchangedState(diskOf(keyless), 'b1', before, TESTING)).toBeUndefined();
  });

  it('wants a full run when a file, its mode, or selfmail.yaml changed', () => {
    const disk = diskOf(bundle());
    disk.files.get('dns/example.org.zone.signed')!.data = Buffer.from(`${signed}; edited\n`);
    expect(unchangedState(disk, 'b1', before, TESTING)).toBeUndefined();
    const disk2 = diskOf(bundle());
    disk2.files.get('keys/x.private')!.mode = 0o644;
    expect(unchangedState(disk2, 'b1', before, TESTING)).toBeUndefined();
    const disk3 = diskOf(bundle());
    disk3.files.delete('keys/x.private');
    expect(unchangedState(disk3, 'b1', before, TESTING)).toBeUndefined();
  });
});

describe('the quick path on disk (stat record)', () => {
  const SECOND = new Date('2026-11-01T00:00:00Z');
  const before = new Date('2026-12-01T00:00:00Z');
  let dir: string;

  beforeEach(async () => {
    dir = join(await mkdtemp(join(tmpdir(), 'selfmail-stat-')), 'bundle');
    await writeBundle({ dir, exists: false, files: new Map() }, bundle());
    // A whole-second mtime, so that a test can put back exactly the same one.
    await utimes(join(dir, 'keys/x.private'), SECOND, SECOND);
    await recordStats(dir);
  });
  afterEach(async () => {
    await rm(dirname(dir), { recursive: true, force: true });
  });

  it('knows an untouched bundle from its stats, and the stat record is none of its files', async () => {
    expect((await unchangedOnDisk(dir, 'b1', before, TESTING))?.state.warnings).toEqual(['ipv4: a warning']);
    expect((await readFile(join(dir, MANIFEST), 'utf8')).includes(STAT_CACHE)).toBe(false);
    expect((await stat(join(dir, STAT_CACHE))).mode & 0o777).toBe(0o600);
  });

  it('sees an edit that kept the size and the mtime (the ctime moved)', async () => {
    const path = join(dir, 'keys/x.private');
    const was = await stat(path);
    await writeFile(path, 'K');
    await utimes(path, SECOND, SECOND);
    const now = await stat(path);
    expect([now.size, now.mtimeMs, now.ino]).toEqual([was.size, was.mtimeMs, was.ino]);
    expect(now.ctimeMs).not.toBe(was.ctimeMs);
    expect(await unchangedOnDisk(dir, 'b1', before, TESTING)).toBeUndefined();
  });

  it('hashes a file whose stat changed but whose bytes did not (a touch), and trusts it', async () => {
    await utimes(join(dir, 'selfmail.yaml'), new Date(), new Date('2020-01-01'));
    expect(await unchangedOnDisk(dir, 'b1', before, TESTING)).toBeDefined();
  });

  it('wants a full run when a file selfmail did not write appears, even deep in a folder', async () => {
    await mkdir(join(dir, 'keys/more'), { recursive: true });
    await writeFile(join(dir, 'keys/more/notes.txt'), 'mine');
    expect(await unchangedOnDisk(dir, 'b1', before, TESTING)).toBeUndefined();
  });

  it('falls back to the bytes when the stat record is forged or missing', async () => {
    const doc = JSON.parse(await readFile(join(dir, STAT_CACHE), 'utf8')) as { files: Record<string, string> };
    const path = join(dir, 'keys/x.private');
    await writeFile(path, 'K');
    const st = await stat(path);
    // The entry made to match the edited file: without the MAC it is worth nothing.
    doc.files['keys/x.private'] = `${st.dev}:${st.ino}:${st.size}:${st.mtimeMs}:${st.ctimeMs}:600`;
    await writeFile(join(dir, STAT_CACHE), JSON.stringify(doc));
    expect(await unchangedOnDisk(dir, 'b1', before, TESTING)).toBeUndefined();
    await writeFile(path, 'k');
    await rm(join(dir, STAT_CACHE));
    expect(await unchangedOnDisk(dir, 'b1', before, TESTING)).toBeDefined();
  });
});
