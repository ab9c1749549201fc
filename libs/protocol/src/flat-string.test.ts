import { describe, expect, it } from 'vitest';
import { asciiString } from './flat-string.js';

describe('asciiString', () => {
  it('takes the first `length` codes, or all of them', () => {
    expect(asciiString(new Uint8Array([72, 105, 33, 90]), 3)).toBe('Hi!');
    expect(asciiString(new Uint8Array([65, 66]))).toBe('AB');
    expect(asciiString(new Uint8Array([65, 66]), 0)).toBe('');
  });

  it('gives every ASCII character as itself, in long strings too', () => {
    const codes = Uint8Array.from({ length: 20_000 }, (_, i) => i % 128);
    const expected = Array.from(codes.subarray(0, 19_999), (c) => String.fromCharCode(c)).join('');
    expect(asciiString(codes, 19_999)).toBe(expected);
  });
});
