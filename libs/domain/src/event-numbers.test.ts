import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { EventId } from '@accord/protocol';
import { eventIdFor, newEventId } from '@accord/protocol';
import { testDeviceId } from './testing.js';
import { EventNumbers, Int32Column, NumberedIdSet } from './event-numbers.js';

const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
/** Any canonical event id: a first character 0–7, then 25 Crockford characters. */
const arbCanonicalId = fc
  .tuple(
    fc.integer({ min: 0, max: 7 }),
    fc.array(fc.integer({ min: 0, max: 31 }), { minLength: 25, maxLength: 25 }),
  )
  .map(([first, rest]) => (String(first) + rest.map((v) => CROCKFORD[v]).join('')) as EventId);
/** Strings that are not canonical ids: short, long, lowercase, a first character above 7, other letters. */
const arbOddId = fc.oneof(
  fc.string({ maxLength: 30 }),
  arbCanonicalId.map((id) => id.toLowerCase()),
  arbCanonicalId.map((id) => `8${id.slice(1)}`),
  arbCanonicalId.map((id) => `${id.slice(0, 25)}U`),
) as fc.Arbitrary<EventId>;

describe('EventNumbers', () => {
  it('numbers ids in order, finds them again and makes each id string again from its number', () => {
    fc.assert(
      fc.property(fc.array(fc.oneof(arbCanonicalId, arbOddId), { maxLength: 300 }), (ids) => {
        const numbers = new EventNumbers();
        const model = new Map<string, number>();
        for (const id of ids) {
          const n = numbers.number(id);
          if (!model.has(id)) model.set(id, model.size);
          expect(n).toBe(model.get(id));
        }
        expect(numbers.size).toBe(model.size);
        for (const [id, n] of model) {
          expect(numbers.find(id)).toBe(n);
          expect(numbers.id(n)).toBe(id);
        }
        for (const probe of [...ids.map((id) => `${id}x`), 'Z'.repeat(26), '0'.repeat(26)])
          expect(numbers.find(probe)).toBe(model.get(probe));
      }),
    );
  });

  it('holds 40k ids bound to their authors (the index grows past its first tables, the ids past one chunk)', () => {
    const numbers = new EventNumbers();
    const devices = [testDeviceId(1), testDeviceId(2)];
    const ids: EventId[] = [];
    for (let seq = 1; seq <= 20_000; seq++)
      for (const device of devices) ids.push(eventIdFor(1_700_000_000_000 + seq, device, seq));
    const given = ids.map((id) => numbers.number(id));
    expect(given.every((n, i) => n === i)).toBe(true);
    for (let i = 0; i < ids.length; i += 997) {
      expect(numbers.id(i)).toBe(ids[i]);
      expect(numbers.find(ids[i]!)).toBe(i);
    }
    expect(numbers.find(newEventId(1_700_000_000_000))).toBeUndefined();
    expect(() => numbers.id(ids.length)).toThrow(RangeError);
  });
});

describe('Int32Column', () => {
  it('reads 0 where nothing was set, and what was set elsewhere, across chunks', () => {
    const column = new Int32Column();
    column.set(5, -7);
    column.set(100_000, 2 ** 31 - 1);
    expect(column.get(5)).toBe(-7);
    expect(column.get(100_000)).toBe(2 ** 31 - 1);
    expect(column.get(6)).toBe(0);
    expect(column.get(50_000)).toBe(0);
    expect(column.get(10_000_000)).toBe(0);
  });
});

describe('NumberedIdSet', () => {
  const IDS = Array.from({ length: 201 }, (_, k) =>
    newEventId(1_700_000_000_000 + k, new Uint8Array(10).fill(k)),
  );
  it('behaves like independent Sets through adds and forks', () => {
    fc.assert(
      fc.property(
        fc.array(fc.oneof(fc.constant('fork' as const), fc.nat(200)), { maxLength: 100 }),
        fc.nat(),
        (ops, seed) => {
          const numbers = new EventNumbers();
          const id = (k: number): EventId => IDS[k]!;
          const sets = [new NumberedIdSet(numbers)];
          const models = [new Set<EventId>()];
          let pick = seed;
          for (const op of ops) {
            pick = (pick * 1103515245 + 12345) >>> 0;
            const i = pick % sets.length;
            if (op === 'fork') {
              sets.push(sets[i]!.fork());
              models.push(new Set(models[i]));
            } else {
              sets[i]!.add(id(op));
              models[i]!.add(id(op));
            }
          }
          sets.forEach((set, i) => {
            expect(set.size).toBe(models[i]!.size);
            const has = IDS.filter((k) => set.has(k));
            expect(has).toEqual(IDS.filter((k) => models[i]!.has(k)));
          });
        },
      ),
    );
  });
});
