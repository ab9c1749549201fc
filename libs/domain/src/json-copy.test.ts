import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { toJson } from './json-copy.js';

const viaText = (v: unknown): unknown => JSON.parse(JSON.stringify(v)) as unknown;

describe('toJson', () => {
  it('gives what the JSON text round trip gives, for anything a schema could output', () => {
    const value = fc.anything({
      withNullPrototype: true,
      withObjectString: true,
      withBoxedValues: true,
      withDate: true,
      withSparseArray: true,
      key: fc.oneof(fc.string(), fc.constantFrom('__proto__', 'toJSON', '10', '9')),
    });
    fc.assert(
      fc.property(value, (v) => {
        fc.pre(v !== undefined && typeof v !== 'bigint');
        let expected: unknown;
        try {
          expected = viaText({ v });
        } catch {
          return; // bigint inside, cycles: JSON itself refuses
        }
        expect(toJson({ v })).toStrictEqual(expected);
      }),
    );
  });

  it('copies plain data (it never hands back the object it was given)', () => {
    const data = { patientId: 'p1', tags: ['a', 'b'], nested: { n: 1, gone: undefined } };
    const copy = toJson(data);
    expect(copy).toStrictEqual({ patientId: 'p1', tags: ['a', 'b'], nested: { n: 1 } });
    expect(copy).not.toBe(data);
    expect((copy as { tags: unknown }).tags).not.toBe(data.tags);
  });
});
