/**
 * `selfmail restore`: a snapshot opened with the user's identity (brought from their device for
 * the occasion), every file fetched, decrypted and checked against the hash the snapshot holds.
 * `--drill` restores into a temporary folder and proves the backup: every file byte-identical to
 * what was backed up, the restored keys the ones the restored zones publish (DKIM TXT, DS, TLSA),
 * the bundle's MANIFEST.sha256 verifying; then removes the folder. Without it, the files land
 * under `--to` at their original paths, the first step of rebuilding a host (then apply).
 */
import { createHash, createPrivateKey } from 'node:crypto';
import { chmod, lchown, lstat, mkdir, mkdtemp, readFile, readdir, rm, symlink, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { decryptWith } from './index.js';
import { SNAPSHOTS_DIR, type Snapshot, type SnapshotEntry, objectPath, parseSnapshot } from './format.js';
import type { TargetStore } from './target.js';

/** Objects are fetched this many at a time (one SFTP connection each). */
const FETCH_BATCH = 200;

export class WrongIdentityError extends Error {}

export interface DrillCheck {
  id: string;
  ok: boolean;
  detail: string;
}

export interface RestoreResult {
  snapshot: string;
  files: number;
  bytes: number;
  /** Where it was restored (removed again after a drill). */
  to: string;
  checks: DrillCheck[];
}

/** The newest snapshot's name, or the one asked for. */
async function pickSnapshot(target: TargetStore, wanted?: string): Promise<string> {
  const names = (await target.snapshots()).map((s) => s.name);
  if (wanted) {
    if (!names.includes(wanted)) throw new Error(`no snapshot ${wanted} in ${target.label} (it holds ${names.join(', ') || 'none'})`);
    return wanted;
  }
  const last = names.at(-1);
  if (!last) throw new Error(`${target.label} holds no snapshot`);
  return last;
}

export async function openSnapshot(target: TargetStore, identities: readonly string[], wanted?: string): Promise<{ name: string; snapshot: Snapshot }> {
  const name = await pickSnapshot(target, wanted);
  const path = `${SNAPSHOTS_DIR}/${name}.age`;
  const sealed = (await target.fetch([path])).get(path);
  if (!sealed) throw new Error(`snapshot ${name} could not be read from ${target.label}`);
  let plain: Uint8Array;
  try {
    plain = await decryptWith(identities, sealed);
  } catch (err) {
    const msg = (err as Error).message;
    if (/no identity matched/i.test(msg)) throw new WrongIdentityError('does not open this backup: it was made for other recipients (another key, or the identity of another device)');
    throw new Error(`snapshot ${name} could not be opened: ${msg}`);
  }
  return { name, snapshot: parseSnapshot(new TextDecoder().decode(plain)) };
}

/** The absolute path an entry had on its host. */
function originalPath(snapshot: Snapshot, e: SnapshotEntry): string {
  const src = snapshot.sources.find((s) => s.name === e.source)!;
  return e.rel ? join(src.path, e.rel) : src.path;
}

export async function restore(opts: { target: TargetStore; identities: string[]; snapshot?: string; to?: string; drill: boolean; progress?: (l: string) => void }): Promise<RestoreResult> {
  const { name, snapshot } = await openSnapshot(opts.target, opts.identities, opts.snapshot);
  // A drill's folder is made 0700 by mkdtemp; `--to` (`/` on a new host) is never chmod-ed.
  const to = opts.drill ? await mkdtemp(join(tmpdir(), 'selfmail-drill-')) : opts.to!;
  const checks: DrillCheck[] = [];
  try {
    // Nothing is overwritten: a restore onto a host that already holds any of these files stops first.
    if (!opts.drill) {
      const clashes: string[] = [];
      for (const e of snapshot.entries) {
        if (e.type === 'dir') continue;
        if (await lstat(join(to, originalPath(snapshot, e))).catch(() => undefined)) clashes.push(originalPath(snapshot, e));
      }
      if (clashes.length > 0) throw new ClashError(`${to} already holds ${clashes.length} of the files (${clashes.slice(0, 3).join(', ')}${clashes.length > 3 ? ', …' : ''}): nothing was restored; restore onto a new host, or into an empty folder`);
    }
    let files = 0;
    let bytes = 0;
    const bad: string[] = [];
    const dirs = snapshot.entries.filter((e) => e.type === 'dir');
    for (const e of dirs) await mkdir(join(to, originalPath(snapshot, e)), { recursive: true, mode: 0o700 });
    const fileEntries = snapshot.entries.filter((e) => e.type === 'file');
    let fetched = new Map<string, Uint8Array>();
    for (const [k, e] of fileEntries.entries()) {
      const dest = join(to, originalPath(snapshot, e));
      // The next batch of objects (one connection for an SFTP target), each read once.
      if (k % FETCH_BATCH === 0) fetched = await opts.target.fetch([...new Set(fileEntries.slice(k, k + FETCH_BATCH).map((x) => objectPath(x.object!)))]);
      const sealed = fetched.get(objectPath(e.object!));
      if (!sealed) {
        bad.push(`${originalPath(snapshot, e)}: its object is missing from the target`);
        continue;
      }
      const data = await decryptWith(opts.identities, sealed).catch((err: Error) => {
        bad.push(`${originalPath(snapshot, e)}: ${err.message}`);
        return undefined;
      });
      if (!data) continue;
      if (createHash('sha256').update(data).digest('hex') !== e.sha256 || data.length !== e.size) bad.push(`${originalPath(snapshot, e)}: restored bytes differ from what was backed up`);
      await mkdir(dirname(dest), { recursive: true });
      await writeFile(dest, data, { mode: 0o600 });
      await chmod(dest, e.mode);
      await utimes(dest, new Date(e.mtimeMs), new Date(e.mtimeMs));
      if (!opts.drill) await lchown(dest, e.uid, e.gid).catch(() => undefined);
      files++;
      bytes += data.length;
      if (files % 200 === 0) opts.progress?.(`[${files}] files restored`);
    }
    // Symlinks last: no file is ever written through one (a snapshot's link over a folder of
    // files fails here instead of redirecting them).
    for (const e of snapshot.entries.filter((x) => x.type === 'symlink')) {
      const dest = join(to, originalPath(snapshot, e));
      await mkdir(dirname(dest), { recursive: true });
      await symlink(e.target!, dest).catch((err: NodeJS.ErrnoException) => bad.push(`${originalPath(snapshot, e)}: a link not restored (${err.code ?? err.message})`));
    }
    for (const e of dirs.reverse()) {
      const dest = join(to, originalPath(snapshot, e));
      await chmod(dest, e.mode);
      if (!opts.drill) await lchown(dest, e.uid, e.gid).catch(() => undefined);
    }
    const all = snapshot.entries.filter((e) => e.type === 'file').length;
    checks.push({ id: 'files', ok: bad.length === 0, detail: bad.length === 0 ? `${files} of ${all} files restored, each byte-identical to what was backed up (sha256)` : bad.slice(0, 5).join('; ') });
    if (opts.drill) {
      const bundleSrc = snapshot.sources.find((s) => s.name === 'bundle');
      if (bundleSrc) {
        const b = join(to, bundleSrc.path);
        checks.push(await manifestCheck(b));
        checks.push(...(await keyChecks(b)));
      } else checks.push({ id: 'bundle', ok: false, detail: 'the snapshot holds no bundle' });
    }
    return { snapshot: name, files, bytes, to, checks };
  } finally {
    if (opts.drill) await rm(to, { recursive: true, force: true });
  }
}

export class ClashError extends Error {}

/** Every file MANIFEST.sha256 lists is there with that hash. */
async function manifestCheck(bundle: string): Promise<DrillCheck> {
  const text = await readFile(join(bundle, 'MANIFEST.sha256'), 'utf8').catch(() => undefined);
  if (!text) return { id: 'manifest', ok: false, detail: 'the restored bundle has no MANIFEST.sha256' };
  const bad: string[] = [];
  let n = 0;
  for (const line of text.split('\n')) {
    const m = /^([0-9a-f]{64}) [ *](.+)$/.exec(line);
    if (!m) continue;
    n++;
    const data = await readFile(join(bundle, m[2]!)).catch(() => undefined);
    if (!data || createHash('sha256').update(data).digest('hex') !== m[1]) bad.push(m[2]!);
  }
  return { id: 'manifest', ok: bad.length === 0 && n > 0, detail: bad.length === 0 ? `the restored bundle's MANIFEST.sha256 verifies (${n} files)` : `${bad.length} files differ from MANIFEST.sha256: ${bad.slice(0, 3).join(', ')}` };
}

/** The restored private keys are the ones the restored zones publish: DKIM TXT, DNSSEC DS, TLSA 3 1 1. */
async function keyChecks(bundle: string): Promise<DrillCheck[]> {
  const { parseZone, tlsaPins } = await import('../verify/dns.js');
  const { dkimTxt, loadDkimKey } = await import('../keys/dkim.js');
  const { dnskeyRdata, dsRecord, p256FromScalar, parsePrivateFile } = await import('../keys/dnssec.js');
  const { spkiSha256 } = await import('../keys/tls.js');
  const dnsDir = join(bundle, 'dns');
  const zoneFiles = (await readdir(dnsDir).catch(() => [] as string[])).filter((f) => f.endsWith('.zone'));
  const zones = new Map<string, string>();
  for (const f of zoneFiles) zones.set(f.slice(0, -'.zone'.length), await readFile(join(dnsDir, f), 'utf8'));
  const records = [...zones].flatMap(([zone, text]) => parseZone(text, `${zone}.`));
  const out: DrillCheck[] = [];

  // DKIM: each private key's public half is the p= of its selector's TXT.
  const dkimBad: string[] = [];
  let dkimN = 0;
  for (const domain of await readdir(join(bundle, 'keys/dkim')).catch(() => [] as string[])) {
    for (const f of await readdir(join(bundle, 'keys/dkim', domain)).catch(() => [] as string[])) {
      const m = /^(.+)\.private$/.exec(f);
      if (!m) continue;
      const selector = m[1]!;
      const pem = await readFile(join(bundle, 'keys/dkim', domain, f));
      const algorithm = createPrivateKey(pem).asymmetricKeyType === 'ed25519' ? 'ed25519' : 'rsa';
      const want = dkimTxt(loadDkimKey(pem, algorithm)).replace(/\s+/g, '');
      const owner = `${selector}._domainkey.${domain}.`;
      const txt = records.filter((r) => r.owner === owner && r.type === 'TXT').map((r) => r.rdata.map((x) => x.replace(/^"|"$/g, '')).join('').replace(/\s+/g, ''));
      dkimN++;
      if (!txt.includes(want)) dkimBad.push(`${selector}._domainkey.${domain}`);
    }
  }
  out.push({ id: 'dkim', ok: dkimN > 0 && dkimBad.length === 0, detail: dkimBad.length ? `the zone does not publish the key of ${dkimBad.join(', ')}` : `${dkimN} DKIM keys, each published by its selector's TXT` });

  // DNSSEC: each KSK's DS is in dns/<zone>.ds, and its DNSKEY in the zone; a KSK leaving after a
  // rollover (a removal date in keys.json) has no DS there any more.
  const dsBad: string[] = [];
  let kskN = 0;
  const leaving = new Set<string>();
  try {
    const meta = JSON.parse(await readFile(join(bundle, 'keys/keys.json'), 'utf8')) as { dnssec?: Record<string, { keys?: { tag: number; role: string; remove?: string }[] }> };
    for (const [zone, z] of Object.entries(meta.dnssec ?? {})) {
      for (const k of z.keys ?? []) if (k.role === 'ksk' && k.remove !== undefined) leaving.add(`${zone} ${k.tag}`);
    }
  } catch {
    // No readable keys.json: every KSK must have its DS (the manifest check names the file).
  }
  for (const zone of await readdir(join(bundle, 'keys/dnssec')).catch(() => [] as string[])) {
    const dsText = await readFile(join(dnsDir, `${zone}.ds`), 'utf8').catch(() => '');
    for (const f of await readdir(join(bundle, 'keys/dnssec', zone)).catch(() => [] as string[])) {
      if (!f.endsWith('.private')) continue;
      const keyText = await readFile(join(bundle, 'keys/dnssec', zone, f.replace(/\.private$/, '.key')), 'utf8').catch(() => '');
      if (!/\bDNSKEY\s+257\b/.test(keyText)) continue;
      const material = p256FromScalar(parsePrivateFile(await readFile(join(bundle, 'keys/dnssec', zone, f), 'utf8')));
      const ds = dsRecord(zone, dnskeyRdata(257, material.publicXY));
      if (leaving.has(`${zone} ${ds.split(' ')[0]}`)) continue;
      kskN++;
      const digest = ds.trim().split(/\s+/).slice(-1)[0]!.toUpperCase();
      if (!dsText.toUpperCase().replace(/\s+/g, '').includes(digest)) dsBad.push(`${zone} (${f})`);
    }
  }
  out.push({ id: 'dnssec', ok: kskN > 0 && dsBad.length === 0, detail: dsBad.length ? `the DS given to the registrar is not that of the KSK ${dsBad.join(', ')}` : `${kskN} KSK(s), each the key of the DS given to the registrar` });

  // TLS: the key's SPKI is pinned by the TLSA records.
  const tlsKey = await readFile(join(bundle, 'keys/tls/key.pem')).catch(() => undefined);
  const pins = tlsaPins(records).map((p) => p.sha256.toLowerCase());
  const spki = tlsKey ? spkiSha256(tlsKey) : '';
  out.push({ id: 'tlsa', ok: !!tlsKey && (pins.length === 0 || pins.includes(spki)), detail: !tlsKey ? 'no TLS key restored' : pins.length === 0 ? 'no TLSA published (DNSSEC off); the TLS key is restored' : pins.includes(spki) ? 'the TLS key is the one the TLSA records pin' : 'the TLSA records pin another key than the restored one' });
  return out;
}
