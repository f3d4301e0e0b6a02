/**
 * In-place validation with the schema's own rules. The wizard never has rules of its own: to
 * check one answer it puts the answer into the draft request, runs `resolveConfig` over it, and
 * keeps only what the schema (and the policy) says about that field. Cross-field rules (the host
 * name inside a mail domain, mailboxes inside the domains, a name server that is this host) come
 * for free, against the answers given so far.
 */
import { InputError, RefusalError } from '../errors.js';
import { type RawInput, type RawKey, type SourcedInput, fieldName } from '../config/raw.js';
import { resolveConfig } from '../config/schema.js';

/** The draft with `key` set to `value` as a wizard answer (undefined removes it). */
export function withAnswer<K extends RawKey>(draft: SourcedInput, key: K, value: RawInput[K] | undefined): SourcedInput {
  const values: RawInput = { ...draft.values };
  const origins = { ...draft.origins };
  if (value === undefined) {
    delete values[key];
    delete origins[key];
  } else {
    values[key] = value;
    origins[key] = 'wizard';
  }
  return { ...draft, values, origins };
}

export interface FieldCheck {
  /** What is wrong with the field, in the schema's words (empty: nothing). */
  problems: string[];
  /** The schema's warnings about the field (documentation address, host bits cleared, …). */
  warnings: string[];
}

/** What the schema says about `keys` in `draft`, ignoring the fields that are still unanswered. */
export function checkFields(draft: SourcedInput, keys: RawKey[]): FieldCheck {
  const names = keys.map((k) => fieldName(draft, k));
  // Refusal fields may carry the value after the name ("--domain x.duckdns.org").
  const about = (field: string) => names.some((n) => field === n || field.startsWith(`${n} `) || field.startsWith(`${n}:`));
  try {
    const { warnings } = resolveConfig(draft);
    // Warnings name the setting by its key (`ipv4: …`), whatever the origin of the value.
    const mine = warnings.filter((w) => keys.some((k) => w.startsWith(`${k}: `)));
    return { problems: [], warnings: mine.map((w) => w.slice(w.indexOf(': ') + 2)) };
  } catch (err) {
    if (err instanceof RefusalError) {
      const problems = err.refusals
        .filter((r) => about(r.field))
        .map((r) => `refused (${r.principle}): ${r.why}. Instead: ${r.instead}`);
      problems.push(...err.issues.filter((i) => about(i.field)).map((i) => i.message));
      return { problems, warnings: [] };
    }
    if (err instanceof InputError) return { problems: err.issues.filter((i) => about(i.field)).map((i) => i.message), warnings: [] };
    throw err;
  }
}

/** A validate callback for a prompt: the first problem the schema finds with this answer, or true. */
export function validatorFor<K extends RawKey>(draft: SourcedInput, key: K, toValue: (answer: string) => RawInput[K] | undefined, extraKeys: RawKey[] = []): (answer: string) => true | string {
  return (answer) => {
    const { problems } = checkFields(withAnswer(draft, key, toValue(answer)), [key, ...extraKeys]);
    return problems.length === 0 ? true : problems.join('; ');
  };
}
