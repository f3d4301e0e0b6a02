/**
 * Where a command's output goes. In `--json` mode stdout carries exactly one JSON document and
 * every human line goes to stderr; otherwise human text goes to stdout and problems to stderr.
 */
export interface Io {
  /** Human-readable progress and results. */
  say(line: string): void;
  /** Problems and warnings (always stderr). */
  warn(line: string): void;
  /** The machine-readable result (only in --json mode). */
  json(doc: unknown): void;
  readonly jsonMode: boolean;
  /** stdin and stdout are both terminals. */
  readonly interactive: boolean;
}

export function processIo(jsonMode: boolean): Io {
  // `selfmail keys list | head` closes the pipe early: that is not an error worth a stack trace.
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw err;
  });
  const out = (s: string) => process.stdout.write(`${s}\n`);
  const err = (s: string) => process.stderr.write(`${s}\n`);
  return {
    say: jsonMode ? err : out,
    warn: err,
    json: (doc) => out(JSON.stringify(doc, null, 2)),
    jsonMode,
    interactive: Boolean(process.stdin.isTTY && process.stdout.isTTY),
  };
}

/** A command module: `src/cli/commands/<name>.ts` exports `run`, returning the exit code. */
export type Command = (args: string[], io: Io) => Promise<number>;
