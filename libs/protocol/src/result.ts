import type { AccordError } from './errors.js';

/**
 * The outcome of an operation that can fail in an expected way: a value or an error, never a throw.
 *
 * @remarks Used at every boundary that reads untrusted bytes (decoders, schema parsers) so callers
 * must handle the failure branch explicitly.
 */
export type Result<T, E = AccordError> =
  { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: E };

/** A successful {@link Result}. */
export const ok = <T>(value: T): Result<T, never> => ({ ok: true, value });

/** A failed {@link Result}. */
export const err = <E>(error: E): Result<never, E> => ({ ok: false, error });

/**
 * The value of a successful result, or throws its error.
 *
 * @remarks For tests and call sites where failure is a programmer error.
 */
export function unwrap<T>(result: Result<T, Error>): T {
  if (result.ok) return result.value;
  throw result.error;
}
