/**
 * What every wizard step shares: the draft request it fills, the prompter, what this machine's
 * interfaces show, the passwords typed so far, and the small rules of asking (a value given by a
 * flag or the file is not asked again unless the schema rejects it; earlier answers and the
 * previous bundle's values are the defaults, never a given one). One step per file beside this one.
 */
import type { Io } from '../../cli/io.js';
import { type RawInput, type RawKey, type SourcedInput, fieldName } from '../../config/raw.js';
import { parseEmail } from '../../config/values.js';
import type { LocalAddresses } from '../addresses.js';
import { checkFields, withAnswer } from '../check.js';
import type { Prompter } from '../prompter.js';

export interface WizardContext {
  /** The request as answered so far; each answer replaces it. */
  draft: SourcedInput;
  io: Io;
  p: Prompter;
  found: LocalAddresses;
  /** Passwords by address, from the file and typed here. */
  passwords: Map<string, string>;
  /** Mailboxes whose password was typed in this wizard. */
  typedHere: Set<string>;
  /** Mailboxes whose hash the previous bundle holds. */
  bundleUsers: ReadonlySet<string>;
}

export type Step = (c: WizardContext) => Promise<void>;

/** True when `key` came from a flag or the file. */
export const isGiven = (c: WizardContext, key: RawKey): boolean => c.draft.origins[key] === 'flag' || c.draft.origins[key] === 'file';

/** True when `key` came from a flag or the file and the schema accepts it: then it is not asked. */
export function settled(c: WizardContext, key: RawKey): boolean {
  if (!isGiven(c, key)) return false;
  const { problems } = checkFields(c.draft, [key]);
  if (problems.length === 0) return true;
  c.io.warn(`${fieldName(c.draft, key)}: ${problems.join('; ')}`);
  c.io.warn('  Asking for it instead.');
  return false;
}

/** A value to offer as the default: an earlier answer or the previous bundle's, never a given one. */
export const prior = <K extends RawKey>(c: WizardContext, key: K): RawInput[K] | undefined => (isGiven(c, key) ? undefined : c.draft.values[key]);

/** Accept an answer; print the schema's remarks about it (documentation address, host bits, …). */
export function answer<K extends RawKey>(c: WizardContext, key: K, value: RawInput[K] | undefined): void {
  c.draft = withAnswer(c.draft, key, value);
  for (const w of checkFields(c.draft, [key]).warnings) c.io.say(`  note: ${w}`);
}

/** Whether `value` would pass the schema as the answer for `key` (a stale default is not offered). */
export const acceptable = <K extends RawKey>(c: WizardContext, key: K, value: RawInput[K] | undefined): boolean =>
  value !== undefined && checkFields(withAnswer(c.draft, key, value), [key]).problems.length === 0;

/** One entry per whitespace- or comma-separated word; "none" or blank gives an empty list. */
export function words(answer: string): string[] {
  const list = answer.split(/[\s,]+/).filter(Boolean);
  return list.length === 1 && list[0]!.toLowerCase() === 'none' ? [] : list;
}

/** NS entries are separated by spaces only (NAME=ADDR,ADDR holds commas). */
export function spaced(answer: string): string[] {
  const list = answer.split(/\s+/).filter(Boolean);
  return list.length === 1 && list[0]!.toLowerCase() === 'none' ? [] : list;
}

/** An optional single value: blank or "none" is no value. */
export function optional(answer: string): string | undefined {
  const a = answer.trim();
  return a === '' || a.toLowerCase() === 'none' ? undefined : a;
}

export function canonicalEmail(raw: string): string {
  const parsed = parseEmail(raw);
  return parsed.ok ? parsed.value : raw;
}
