/**
 * Helpers for the rehearsal's end-to-end tests: the built CLI, the rehearsal's JSON report, and
 * a look at /proc for anything the rehearsal might have left running.
 */
import { ensureCurrentBuild } from '../setup/build.js';
import { readFile, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';

/** The built CLI is the current sources' (test/setup/build.ts does it once per run; this for a direct call). */
export function ensureBuilt(): void {
  ensureCurrentBuild();
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
