/**
 * The one seam between the wizard and the terminal. The wizard only ever talks to a `Prompter`;
 * the default one wraps @inquirer/prompts, and tests pass a scripted one. Every question carries
 * `why`, the one line that tells a newcomer why it is asked.
 */
import type { Io } from '../cli/io.js';
import { InterruptedError } from '../errors.js';

/** Returns true when the answer is acceptable, or the sentence that says what is wrong. */
export type Validate = (answer: string) => true | string;

export interface InputQuestion {
  message: string;
  why: string;
  /** Shown as the answer Enter accepts; Backspace on an empty line clears it. */
  default?: string;
  validate?: Validate;
}

export interface Choice<T extends string> {
  value: T;
  name: string;
  description?: string;
  /** A reason string makes the choice visible but not selectable. */
  disabled?: string;
}

export interface SelectQuestion<T extends string> {
  message: string;
  why: string;
  choices: Array<Choice<T>>;
  default?: T;
}

export interface ConfirmQuestion {
  message: string;
  why: string;
  default: boolean;
}

export interface PasswordQuestion {
  message: string;
  why: string;
  validate?: Validate;
}

/** What the wizard needs from a terminal. Implementations throw ExitPromptError (by name) on Ctrl-C. */
export interface Prompter {
  input(q: InputQuestion): Promise<string>;
  select<T extends string>(q: SelectQuestion<T>): Promise<T>;
  confirm(q: ConfirmQuestion): Promise<boolean>;
  /** A hidden answer: nothing is echoed, not even its length. */
  password(q: PasswordQuestion): Promise<string>;
}

/** inquirer throws these when the user presses Ctrl-C or the prompt is aborted. */
const INTERRUPTIONS = new Set(['ExitPromptError', 'AbortPromptError']);

/** True for the error a prompt throws when the user pressed Ctrl-C. */
export function isInterruption(err: unknown): boolean {
  return err instanceof Error && INTERRUPTIONS.has(err.name);
}

/** Wrap a prompter so that Ctrl-C at any prompt becomes InterruptedError (exit 130). */
export function guarded(p: Prompter): Prompter {
  const wrap = async <T>(ask: () => Promise<T>): Promise<T> => {
    try {
      return await ask();
    } catch (err) {
      if (isInterruption(err)) throw new InterruptedError();
      throw err;
    }
  };
  return {
    input: (q) => wrap(() => p.input(q)),
    select: (q) => wrap(() => p.select(q)),
    confirm: (q) => wrap(() => p.confirm(q)),
    password: (q) => wrap(() => p.password(q)),
  };
}

/**
 * The terminal prompter over @inquirer/prompts (imported lazily: `--non-interactive` never loads
 * it). In `--json` mode the prompts go to stderr so that stdout carries only the JSON document.
 */
export async function inquirerPrompter(io: Io): Promise<Prompter> {
  const p = await import('@inquirer/prompts');
  const output = io.jsonMode ? process.stderr : process.stdout;
  const context = { output };
  const dim = (s: string) => (output.isTTY ? `\x1b[2m${s}\x1b[22m` : s);
  // The reason is printed above the prompt rather than inside it, so the answered line stays short.
  const why = (line: string) => output.write(`\n${dim(`  ${line}`)}\n`);
  const validator = (v?: Validate) => (v ? (answer: string) => v(answer) : undefined);
  return {
    input: (q) => {
      why(q.why);
      return p.input({ message: q.message, default: q.default, validate: validator(q.validate) }, context);
    },
    select: <T extends string>(q: SelectQuestion<T>) => {
      why(q.why);
      const choices = q.choices.map((c) => ({
        value: c.value,
        name: c.name,
        ...(c.description ? { description: c.description } : {}),
        ...(c.disabled ? { disabled: c.disabled } : {}),
      }));
      return p.select<T>({ message: q.message, choices, default: q.default }, context);
    },
    confirm: (q) => {
      why(q.why);
      return p.confirm({ message: q.message, default: q.default }, context);
    },
    password: (q) => {
      why(q.why);
      return p.password({ message: q.message, validate: validator(q.validate) }, context);
    },
  };
}
