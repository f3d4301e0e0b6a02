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
  /**
   * A progress line on a terminal (stderr), rewritten in place: `[3/12] checking postfix`.
   * Nothing when stderr is not a terminal: logs get the plain lines of `say` only.
   */
  progress?(line: string): void;
}

/** A warning printed as often as it was raised reads as noise: once, with a count. Pure. */
export function countedOnce(lines: readonly string[]): string[] {
  const counts = new Map<string, number>();
  for (const l of lines) counts.set(l, (counts.get(l) ?? 0) + 1);
  return [...counts].map(([l, n]) => (n > 1 ? `${l} (${n} times)` : l));
}

export function processIo(jsonMode: boolean): Io {
  let shown = false;
  const tty = Boolean(process.stderr.isTTY);
  // Whatever is printed next starts on a clean line.
  const clear = () => {
    if (shown) process.stderr.write('\r\x1b[K');
    shown = false;
  };
  const out = (s: string) => {
    clear();
    process.stdout.write(`${s}\n`);
  };
  const err = (s: string) => {
    clear();
    process.stderr.write(`${s}\n`);
  };
  return {
    say: jsonMode ? err : out,
    warn: err,
    progress: (line: string) => {
      if (!tty) return;
      const width = process.stderr.columns || 80;
      process.stderr.write(`\r\x1b[K${line.length >= width ? `${line.slice(0, width - 2)}…` : line}`);
      shown = true;
    },
    json: (doc) => out(JSON.stringify(doc, null, 2)),
    jsonMode,
    interactive: Boolean(process.stdin.isTTY && process.stdout.isTTY),
  };
}

/** A command module: `src/cli/commands/<name>.ts` exports `run`, returning the exit code. */
export type Command = (args: string[], io: Io) => Promise<number>;
