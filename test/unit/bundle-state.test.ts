import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { BundleFile } from '../../src/bundle/types.js';
import { STATE_PATH, stateFile, unchangedState } from '../../src/bundle/state.js';
import { manifestOf } from '../../src/bundle/write.js';

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
