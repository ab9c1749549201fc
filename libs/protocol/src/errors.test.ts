import { describe, expect, it } from 'vitest';
import { AccordError, ErrorCode, isAccordError } from './index.js';

describe('AccordError', () => {
  it('carries a stable code, details and cause, and serializes without the stack', () => {
    const cause = new Error('disk');
    const err = new AccordError(ErrorCode.STORAGE_IO, 'write failed', { cause, details: { key: 'k' } });
    expect(err.code).toBe('STORAGE_IO');
    expect(err.cause).toBe(cause);
    expect(isAccordError(err, ErrorCode.STORAGE_IO)).toBe(true);
    expect(isAccordError(err, ErrorCode.STORAGE_CORRUPT)).toBe(false);
    expect(isAccordError(new Error('x'))).toBe(false);
    expect(JSON.parse(JSON.stringify(err))).toEqual({
      code: 'STORAGE_IO',
      message: 'write failed',
      details: { key: 'k' },
    });
  });
});
