/**
 * Helpers for the rehearsal's end-to-end tests: the built CLI, the rehearsal's JSON report, and
 * a look at /proc for anything the rehearsal might have left running.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';

const REPO = fileURLToPath(new URL('../../', import.meta.url));

/** Build dist/ when the rehearse command is not there yet (`npm test` builds first anyway). */
export function ensureBuilt(): void {
  if (existsSync(`${REPO}dist/cli/commands/rehearse.js`)) return;
  try {
    execFileSync(process.execPath, [`${REPO}node_modules/typescript/bin/tsc`, '-p', `${REPO}tsconfig.json`], { stdio: 'pipe' });
  } catch {
    // tsc emits even with type errors elsewhere; the test fails below if the file is missing
  }
  if (!existsSync(`${REPO}dist/cli/commands/rehearse.js`)) throw new Error('could not build dist/ (npx tsc -p tsconfig.json)');
}

export interface ReportStep {
  id: string;
  ok: boolean;
  reason: string;
  ms: number;
  checks?: Array<{ name: string; ok: boolean; reason: string }>;
}
export interface Report {
  ok: boolean;
  steps: ReportStep[];
  mailboxes: { rehearsal: string[]; real: string[] };
  cleanup: { leftover: unknown[]; rootRemoved: boolean };
}

/** Processes whose command line mentions a rehearsal root (`selfmail-rehearse-…`). */
export async function rehearsalProcesses(): Promise<string[]> {
  const out: string[] = [];
  for (const pid of await readdir('/proc')) {
    if (!/^\d+$/.test(pid) || Number(pid) === process.pid) continue;
    const cmd = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
    const text = cmd.split('\0').join(' ');
    if (text.includes('selfmail-rehearse-') && !text.includes('vitest')) out.push(`${pid} ${text}`);
  }
  return out;
}

/** The rehearsal roots present in the temp folder. */
export async function rehearsalRoots(): Promise<string[]> {
  return (await readdir(tmpdir())).filter((n) => n.startsWith('selfmail-rehearse-')).sort();
}
