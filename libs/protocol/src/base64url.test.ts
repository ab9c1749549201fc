import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ErrorCode, fromBase64Url, isAccordError, toBase64Url } from './index.js';

const nodeBase64Url = (b: Uint8Array): string => Buffer.from(b).toString('base64url');

function expectBad(text: string): void {
  let caught: unknown;
  try {
    fromBase64Url(text);
  } catch (e) {
    caught = e;
  }
  expect(isAccordError(caught, ErrorCode.PROTOCOL_BAD_ENCODING), `accepted ${JSON.stringify(text)}`).toBe(
    true,
  );
}

describe('base64url', () => {
  it('encodes like the RFC 4648 §5 reference (unpadded) and round-trips', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 100 }), (bytes) => {
        const s = toBase64Url(bytes);
        expect(s).toBe(nodeBase64Url(bytes));
        expect(fromBase64Url(s)).toEqual(bytes);
      }),
    );
    expect(toBase64Url(new Uint8Array([0xfb, 0xff]))).toBe('-_8');
    expect(toBase64Url(new Uint8Array())).toBe('');
  });

  it('rejects padding, foreign characters, impossible lengths and non-zero trailing bits', () => {
    for (const s of ['AA==', 'AA=', 'A', 'AAAAA', 'AA AA', 'AA+A', 'AA/A', 'AAé', '-_9', 'AB', 'AAB'])
      expectBad(s);
  });

  it('gives every byte string exactly one accepted text', () => {
    // Any accepted text re-encodes to itself, so a flipped character can never decode to the same bytes.
    const chars = fc.constantFrom(
      ...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_='.split(''),
    );
    fc.assert(
      fc.property(fc.array(chars, { maxLength: 20 }), (cs) => {
        const s = cs.join('');
        let bytes: Uint8Array | undefined;
        try {
          bytes = fromBase64Url(s);
        } catch (e) {
          expect(isAccordError(e, ErrorCode.PROTOCOL_BAD_ENCODING)).toBe(true);
        }
        if (bytes !== undefined) expect(toBase64Url(bytes)).toBe(s);
      }),
      { numRuns: 1000 },
    );
  });
});
