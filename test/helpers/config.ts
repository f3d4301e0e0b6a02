/** Resolving requests in the schema tests: a small valid base, one layer over it, every problem as a line. */
import { type RawInput, overlay, sourced } from '../../src/config/raw.js';
import { type Resolved, resolveConfig } from '../../src/config/schema.js';
import { InputError, RefusalError } from '../../src/errors.js';

/** The least a valid request needs. */
export const BASE_REQUEST: RawInput = {
  domains: ['example.org'],
  ipv4: '192.0.2.25',
  users: ['alice@example.org'],
  target: 'debian-12',
};

/** `extra` laid over BASE_REQUEST, as flags or as a file `my.yaml`. */
export function resolveOver(extra: RawInput = {}, origin: 'flag' | 'file' = 'flag'): Resolved {
  return resolveConfig(overlay(sourced(BASE_REQUEST, 'flag'), sourced(extra, origin, 'my.yaml')));
}

/** The problems `fn` throws, one line each (`field: message`, refusals as `REFUSED field`). */
export function issuesOf(fn: () => unknown): string[] {
  try {
    fn();
  } catch (err) {
    if (err instanceof InputError) return err.issues.map((i) => `${i.field}: ${i.message}`);
    if (err instanceof RefusalError) return [...err.refusals.map((r) => `REFUSED ${r.field}`), ...err.issues.map((i) => `${i.field}: ${i.message}`)];
    throw err;
  }
  throw new Error('expected an error');
}
