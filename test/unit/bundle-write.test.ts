import { mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { InterruptedError } from '../../src/errors.js';
import type { BundleFile } from '../../src/bundle/types.js';
import { MANIFEST, readBundle, writeBundle } from '../../src/bundle/write.js';

const file = (path: string, text: string, mode = 0o644): BundleFile => ({ path, data: Buffer.from(text), mode, role: 'test' });

let parent: string;
let dir: string;
beforeEach(async () => {
  parent = await mkdtemp(join(tmpdir(), 'selfmail-write-'));
  dir = join(parent, 'bundle');
});
afterEach(async () => {
  await rm(parent, { recursive: true, force: true });
});

async function snapshot(): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const e of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (!e.isFile()) continue;
    const p = join(e.parentPath, e.name);
    const st = await stat(p);
    out[p.slice(dir.length + 1)] = `${(st.mode & 0o777).toString(8)} ${st.mtimeMs} ${await readFile(p, 'utf8')}`;
  }
  return out;
}

const v1 = [file('a.conf', 'one\n'), file('keys/dkim/x.private', 'secret\n', 0o600), file('sub/b.conf', 'two\n')];

describe('writeBundle', () => {
  it('writes files with their modes, keys/ as 0700, and a manifest that sha256sum -c accepts', async () => {
    const r = await writeBundle(await readBundle(dir), v1);
    expect(r.changed).toEqual(['MANIFEST.sha256', 'a.conf', 'keys/dkim/x.private', 'sub/b.conf']);
    expect((await stat(join(dir, 'keys'))).mode & 0o777).toBe(0o700);
    expect((await stat(join(dir, 'keys/dkim'))).mode & 0o777).toBe(0o700);
    expect((await stat(join(dir, 'keys/dkim/x.private'))).mode & 0o777).toBe(0o600);
    expect(execFileSync('sha256sum', ['-c', MANIFEST], { cwd: dir, encoding: 'utf8' })).toMatch(/a\.conf: OK/);
    const manifest = await readFile(join(dir, MANIFEST), 'utf8');
    expect(manifest).not.toMatch(/MANIFEST/);
    expect(manifest.trim().split('\n')).toHaveLength(3);
  });

  it('changes nothing on disk when nothing changed (bytes and mtimes stay)', async () => {
    await writeBundle(await readBundle(dir), v1);
    const before = await snapshot();
    await new Promise((r) => setTimeout(r, 20));
    const r = await writeBundle(await readBundle(dir), v1);
    expect(r.changed).toEqual([]);
    expect(await snapshot()).toEqual(before);
  });

  it('keeps the mtime of unchanged files when another file changes', async () => {
    await writeBundle(await readBundle(dir), v1);
    const before = await snapshot();
    await new Promise((r) => setTimeout(r, 20));
    const r = await writeBundle(await readBundle(dir), [v1[0]!, v1[1]!, file('sub/b.conf', 'changed\n')]);
    expect(r.changed).toEqual(['MANIFEST.sha256', 'sub/b.conf']);
    const after = await snapshot();
    expect(after['a.conf']).toBe(before['a.conf']);
    expect(after['keys/dkim/x.private']).toBe(before['keys/dkim/x.private']);
    expect(after['sub/b.conf']).toMatch(/changed/);
  });

  it('leaves the old bundle intact and no temporary folder when a write fails midway', async () => {
    await writeBundle(await readBundle(dir), v1);
    const before = await snapshot();
    let n = 0;
    await expect(
      writeBundle(await readBundle(dir), [file('a.conf', 'new\n'), file('c.conf', 'c\n'), file('sub/b.conf', 'new\n')], {
        beforeWrite: () => {
          if (++n === 2) throw new Error('disk full (injected)');
        },
      }),
    ).rejects.toThrow(/injected/);
    expect(await snapshot()).toEqual(before);
    expect(await readdir(parent)).toEqual(['bundle']);
  });

  it('stops on Ctrl-C with InterruptedError and leaves the old bundle', async () => {
    await writeBundle(await readBundle(dir), v1);
    const before = await snapshot();
    let polls = 0;
    await expect(writeBundle(await readBundle(dir), [file('a.conf', 'new\n')], { interrupted: () => ++polls > 1 })).rejects.toBeInstanceOf(InterruptedError);
    expect(await snapshot()).toEqual(before);
    expect(await readdir(parent)).toEqual(['bundle']);
  });

  it('removes files it no longer produces but keeps files the user put there', async () => {
    await writeBundle(await readBundle(dir), v1);
    await writeFile(join(dir, 'NOTES.txt'), 'mine\n');
    const r = await writeBundle(await readBundle(dir), [v1[0]!, v1[1]!]);
    expect(r.removed).toEqual(['sub/b.conf']);
    expect(r.foreign).toEqual(['NOTES.txt']);
    expect(await readFile(join(dir, 'NOTES.txt'), 'utf8')).toBe('mine\n');
    await expect(stat(join(dir, 'sub/b.conf'))).rejects.toThrow();
  });
});
