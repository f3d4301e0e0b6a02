/** An Io that records what a command says, for the apply/verify command tests. */
import type { Io } from '../../src/cli/io.js';

export interface RecordingIo extends Io {
  lines: string[];
  warnings: string[];
  docs: unknown[];
}

export function recordingIo(jsonMode = false): RecordingIo {
  const lines: string[] = [];
  const warnings: string[] = [];
  const docs: unknown[] = [];
  return {
    lines,
    warnings,
    docs,
    say: (l) => lines.push(l),
    warn: (l) => warnings.push(l),
    json: (d) => docs.push(d),
    jsonMode,
    interactive: false,
  };
}
