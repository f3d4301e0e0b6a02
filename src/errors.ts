/**
 * Typed errors. Every failure a user can cause or meet is one of these; the CLI entry maps them
 * to a message and an exit code. Anything else is a bug (exit 1).
 */

export const EXIT = {
  ok: 0,
  internal: 1,
  input: 2,
  refused: 3,
  tool: 4,
  /** `selfmail doctor`: a check failed. */
  checkFailed: 5,
  interrupted: 130,
} as const;

/** One problem with one input value: which field (flag or config key) and which rule it broke. */
export interface InputIssue {
  /** The flag as the user typed it (`--ipv4`), or `config file: ipv4`. */
  field: string;
  message: string;
}

/** One request that selfmail refuses on principle. */
export interface Refusal {
  /** The flag or config key that asked for it. */
  field: string;
  /** Which of MISSION.md's principles it breaks, e.g. "Principle 3 (no UPnP)". */
  principle: string;
  why: string;
  instead: string;
}

export abstract class SelfmailError extends Error {
  abstract readonly exitCode: number;
}

/** Invalid or missing input (exit 2). Carries every issue found, not just the first. */
export class InputError extends SelfmailError {
  readonly exitCode = EXIT.input;
  constructor(readonly issues: InputIssue[]) {
    super(issues.map((i) => `${i.field}: ${i.message}`).join('\n'));
    this.name = 'InputError';
  }
}

/** Refused by policy (exit 3). Lists the input issues found as well, so one run says everything. */
export class RefusalError extends SelfmailError {
  readonly exitCode = EXIT.refused;
  constructor(
    readonly refusals: Refusal[],
    readonly issues: InputIssue[] = [],
  ) {
    super(refusals.map((r) => `${r.field}: refused (${r.principle}): ${r.why}`).join('\n'));
    this.name = 'RefusalError';
  }
}

/** An external program is missing, failed, or rejected what we generated (exit 4). */
export class ToolError extends SelfmailError {
  readonly exitCode = EXIT.tool;
  constructor(
    message: string,
    readonly tool: string,
    readonly output = '',
  ) {
    super(message);
    this.name = 'ToolError';
  }
}

/** The user pressed Ctrl-C; nothing was written (exit 130). */
export class InterruptedError extends SelfmailError {
  readonly exitCode = EXIT.interrupted;
  constructor(message = 'interrupted: nothing was written') {
    super(message);
    this.name = 'InterruptedError';
  }
}
