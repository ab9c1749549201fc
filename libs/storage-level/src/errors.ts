import { AccordError, ErrorCode } from '@accord/protocol';

/**
 * Error code for a write that contradicts what is already stored (an event id or a
 * `(device, seq)` slot already holding different bytes). Same as `ErrorCode.STORAGE_CONFLICT`.
 */
export const STORAGE_CONFLICT = ErrorCode.STORAGE_CONFLICT;

/** Error codes thrown by this package. */
export type StorageErrorCode =
  | typeof ErrorCode.STORAGE_CORRUPT
  | typeof ErrorCode.STORAGE_IO
  | typeof ErrorCode.STORAGE_CLOSED
  | typeof STORAGE_CONFLICT;

/** Builds an {@link AccordError} with one of this package's codes. */
export function storageError(
  code: StorageErrorCode,
  message: string,
  options: { cause?: unknown; details?: Record<string, unknown> } = {},
): AccordError {
  return new AccordError(code, message, options);
}

/** STORAGE_CLOSED for use after `close()`. */
export function closedError(what: string): AccordError {
  return storageError(ErrorCode.STORAGE_CLOSED, `${what} is closed`);
}

/** Wraps an unexpected error from the underlying database as STORAGE_IO (AccordErrors pass through). */
export function ioError(err: unknown, operation: string): AccordError {
  if (err instanceof AccordError) return err;
  const message = err instanceof Error ? err.message : String(err);
  const code = typeof err === 'object' && err !== null && 'code' in err ? String(err.code) : undefined;
  return storageError(ErrorCode.STORAGE_IO, `storage ${operation} failed: ${message}`, {
    cause: err,
    details: { operation, ...(code === undefined ? {} : { levelCode: code }) },
  });
}
