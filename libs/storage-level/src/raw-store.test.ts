import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compareBytes } from './keys.js';
import { MemoryKeyValue, type RawOp } from './raw-store.js';

const keyArb = fc.uint8Array({ maxLength: 3, max: 3 });

describe('MemoryKeyValue', () => {
  it('ranges (gte, lt, reverse, limit) match a sorted model after any writes', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.record({ put: fc.boolean(), key: keyArb }), { maxLength: 40 }),
        fc.option(keyArb, { nil: undefined }),
        fc.option(keyArb, { nil: undefined }),
        fc.boolean(),
        fc.option(fc.nat({ max: 10 }), { nil: undefined }),
        async (writes, gte, lt, reverse, limit) => {
          const kv = new MemoryKeyValue();
          const model = new Map<string, Uint8Array>();
          const ops: RawOp[] = writes.map(({ put, key }) =>
            put ? { type: 'put', key, value: Uint8Array.of(key.length) } : { type: 'del', key },
          );
          await kv.write(ops);
          for (const op of ops) {
            if (op.type === 'put') model.set(op.key.join(','), op.key);
            else model.delete(op.key.join(','));
          }
          let want = [...model.values()]
            .filter(
              (k) =>
                (gte === undefined || compareBytes(k, gte) >= 0) &&
                (lt === undefined || compareBytes(k, lt) < 0),
            )
            .sort(compareBytes);
          if (reverse) want.reverse();
          if (limit !== undefined) want = want.slice(0, limit);
          const got: Uint8Array[] = [];
          for await (const k of kv.keys({
            ...(gte ? { gte } : {}),
            ...(lt ? { lt } : {}),
            reverse,
            ...(limit !== undefined ? { limit } : {}),
          }))
            got.push(k);
          expect(got.map((k) => Array.from(k))).toStrictEqual(want.map((k) => Array.from(k)));
          expect(kv.size).toBe(model.size);
        },
      ),
      { numRuns: 300 },
    );
  });
});
