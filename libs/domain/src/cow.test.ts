import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Cow, IdSet } from './cow.js';

type Op = { kind: 'add' | 'fork' | 'delete'; handle: number; value: number };

const arbOps = fc.array(
  fc.record({
    kind: fc.constantFrom<Op['kind']>('add', 'add', 'add', 'fork', 'delete'),
    handle: fc.nat(7),
    value: fc.nat(40),
  }),
  { maxLength: 200 },
);

describe('IdSet', () => {
  it('behaves like independent Sets across any sequence of adds and forks', () => {
    fc.assert(
      fc.property(arbOps, (ops) => {
        const sets: IdSet<number>[] = [new IdSet()];
        const models: Set<number>[] = [new Set()];
        for (const op of ops) {
          const i = op.handle % sets.length;
          if (op.kind === 'fork') {
            sets.push(sets[i]!.fork());
            models.push(new Set(models[i]));
          } else if (op.kind === 'add') {
            sets[i]!.add(op.value);
            models[i]!.add(op.value);
          }
        }
        sets.forEach((s, i) => {
          expect(s.size).toBe(models[i]!.size);
          for (let v = 0; v <= 40; v++) expect(s.has(v)).toBe(models[i]!.has(v));
        });
      }),
    );
  });
});

describe('IdSet of strings', () => {
  it('finds every id added, through forks that merge sorted levels (prefixes, case, non-ASCII)', () => {
    const arbId = fc.string({ unit: fc.constantFrom('a', 'b', 'B', '-', 'é', '\u{1F600}'), maxLength: 4 });
    fc.assert(
      fc.property(
        fc.array(fc.tuple(arbId, fc.boolean()), { maxLength: 300 }),
        fc.array(arbId),
        (adds, probes) => {
          let set = new IdSet<string>();
          const model = new Set<string>();
          for (const [id, fork] of adds) {
            set.add(id);
            model.add(id);
            if (fork) set = set.fork();
          }
          expect(set.size).toBe(model.size);
          for (const id of [...model, ...probes]) expect(set.has(id)).toBe(model.has(id));
        },
      ),
    );
  });
});

describe('Cow', () => {
  it('behaves like independent Maps across any sequence of writes and forks', () => {
    fc.assert(
      fc.property(arbOps, (ops) => {
        const cows: Cow<number, number>[] = [new Cow()];
        const models: Map<number, number>[] = [new Map<number, number>()];
        ops.forEach((op, step) => {
          const i = op.handle % cows.length;
          if (op.kind === 'fork') {
            cows.push(cows[i]!.fork());
            models.push(new Map<number, number>(models[i]));
          } else if (op.kind === 'add') {
            cows[i]!.w.set(op.value, step);
            models[i]!.set(op.value, step);
          } else {
            cows[i]!.w.delete(op.value);
            models[i]!.delete(op.value);
          }
        });
        cows.forEach((c, i) => expect([...c.r.entries()].sort()).toEqual([...models[i]!.entries()].sort()));
      }),
    );
  });
});
