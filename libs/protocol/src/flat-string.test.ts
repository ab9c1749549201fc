import { describe, expect, it } from 'vitest';
import { stringFromCodes } from './flat-string.js';

describe('stringFromCodes', () => {
  it('takes the first `length` codes of a typed array, and of a plain array', () => {
    expect(stringFromCodes(new Uint16Array([72, 105, 33, 90]), 3)).toBe('Hi!');
    expect(stringFromCodes(new Uint8Array([65, 66]))).toBe('AB');
    expect(stringFromCodes([67, 68, 69], 2)).toBe('CD');
  });

  it('builds strings longer than one fromCharCode call takes, from a typed array and a plain array', () => {
    const codes = Uint16Array.from({ length: 20_000 }, (_, i) => 97 + (i % 26));
    const expected = Array.from(codes.subarray(0, 19_999), (c) => String.fromCharCode(c)).join('');
    expect(stringFromCodes(codes, 19_999)).toBe(expected);
    expect(stringFromCodes(Array.from(codes), 19_999)).toBe(expected);
  });
});
