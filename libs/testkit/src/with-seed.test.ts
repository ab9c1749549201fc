import { afterEach, describe, expect, it, vi } from 'vitest';
import { testSeed, withSeed } from './index.js';

afterEach(() => {
  vi.restoreAllMocks();
});

describe('testSeed', () => {
  it('derives a stable seed from the name unless FC_SEED is set', () => {
    expect(testSeed('a test', {})).toBe(testSeed('a test', {}));
    expect(testSeed('a test', {})).not.toBe(testSeed('another test', {}));
    expect(testSeed('a test', { FC_SEED: '123' })).toBe(123);
    expect(testSeed('a test', { FC_SEED: '' })).toBe(testSeed('a test', {}));
    const random = testSeed('a test', { FC_SEED: 'random' });
    expect(Number.isSafeInteger(random) && random >= 0).toBe(true);
    expect(() => testSeed('a test', { FC_SEED: 'abc' })).toThrow(/FC_SEED/);
  });
});

describe('withSeed', () => {
  it('passes the seed and a stream seeded with it, and returns the result', async () => {
    const expected = testSeed('passing');
    const result = await withSeed('passing', (seed, random) => {
      expect(seed).toBe(expected);
      expect(random.seed).toBe(seed);
      return 'done';
    });
    expect(result).toBe('done');
  });

  it('prints the seed and adds it to the error on failure', async () => {
    const printed = vi.spyOn(console, 'error').mockImplementation(() => undefined);
    const seed = testSeed('failing');
    const error: unknown = await withSeed('failing', () => Promise.reject(new Error('boom'))).catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(Error);
    expect((error as Error).message).toContain('boom');
    expect((error as Error).message).toContain(`seed=${seed}`);
    expect(printed).toHaveBeenCalledWith(expect.stringContaining(`FC_SEED=${seed}`));
  });
});
