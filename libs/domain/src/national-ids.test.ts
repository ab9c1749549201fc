import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { NationalIdIndex, nationalIdHash } from './national-ids.js';

/** The patients' current keys, as a projection's records hold them (what `keyOf` reads). */
class Records {
  readonly keys = new Map<string, string>();
  readonly keyOf = (patient: string): string | undefined => this.keys.get(patient);
}

/** Keys `prefix0`, `prefix1`, … whose hash passes `pick`, `count` of them. */
function keysWhere(count: number, pick: (hash: number) => boolean, prefix = 'K'): string[] {
  const out: string[] = [];
  for (let i = 0; out.length < count; i++)
    if (pick(nationalIdHash(`${prefix}${i}`))) out.push(`${prefix}${i}`);
  return out;
}

/** Two different keys with the same 32-bit hash (found by search: ≈ 80k keys on average). */
function collidingPair(): [string, string] {
  const seen = new Map<number, string>();
  for (let i = 0; ; i++) {
    const key = `N${i}`;
    const h = nationalIdHash(key);
    const other = seen.get(h);
    if (other !== undefined) return [other, key];
    seen.set(h, key);
  }
}

describe('NationalIdIndex', () => {
  it('keeps the first claimer, ignores releases by others, and frees the key for the next claim', () => {
    const r = new Records();
    const index = new NationalIdIndex();
    r.keys.set('p1', 'GH1');
    r.keys.set('p2', 'GH1');
    index.claim('GH1', 'p1', r.keyOf);
    index.claim('GH1', 'p2', r.keyOf);
    expect(index.owner('GH1', r.keyOf)).toBe('p1');
    index.release('GH1', 'p2', r.keyOf);
    expect(index.owner('GH1', r.keyOf)).toBe('p1');
    index.release('GH1', 'p1', r.keyOf);
    r.keys.set('p1', 'GH9');
    expect(index.owner('GH1', r.keyOf)).toBeUndefined();
    expect(index.size).toBe(0);
    index.claim('GH1', 'p2', r.keyOf);
    expect(index.owner('GH1', r.keyOf)).toBe('p2');
    expect(index.owner('GH2', r.keyOf)).toBeUndefined();
  });

  it('tells apart two keys with the same hash, and releases either', () => {
    const [a, b] = collidingPair();
    expect(nationalIdHash(a)).toBe(nationalIdHash(b));
    const r = new Records();
    const index = new NationalIdIndex();
    r.keys.set('pa', a);
    r.keys.set('pb', b);
    index.claim(a, 'pa', r.keyOf);
    index.claim(b, 'pb', r.keyOf);
    expect(index.size).toBe(1); // one slot, two owners
    expect(index.owner(a, r.keyOf)).toBe('pa');
    expect(index.owner(b, r.keyOf)).toBe('pb');
    index.release(a, 'pa', r.keyOf);
    r.keys.delete('pa');
    expect(index.owner(a, r.keyOf)).toBeUndefined();
    expect(index.owner(b, r.keyOf)).toBe('pb');
    index.release(b, 'pb', r.keyOf);
    expect(index.size).toBe(0);
  });

  it('finds every key after a release in a probe run that wraps past the end of the table', () => {
    // In a new (16-slot) table: three keys at home in the last slot, one at home in slot 0 and
    // one in slot 1, claimed in this order, fill slots 15, 0, 1, 2, 3 (the run wraps).
    const [a, b, c] = keysWhere(3, (h) => (h & 15) === 15);
    const [atZero] = keysWhere(1, (h) => (h & 15) === 0, 'J');
    const [atOne] = keysWhere(1, (h) => (h & 15) === 1, 'L');
    const r = new Records();
    const index = new NationalIdIndex();
    for (const [i, key] of [a!, atZero!, b!, c!, atOne!].entries()) {
      r.keys.set(`p${i}`, key);
      index.claim(key, `p${i}`, r.keyOf);
    }
    // Freeing slot 15 must leave the key at home in 0 where it is, and move b back over the end.
    for (const gone of [a!, atZero!, c!]) {
      const patient = [...r.keys].find(([, k]) => k === gone)![0];
      index.release(gone, patient, r.keyOf);
      r.keys.delete(patient);
      for (const [p, key] of r.keys) expect(index.owner(key, r.keyOf)).toBe(p);
      expect(index.owner(gone, r.keyOf)).toBeUndefined();
    }
    expect(index.size).toBe(2);
  });

  it("a fork and its origin do not see each other's claims and releases", () => {
    const base = new Records();
    const index = new NationalIdIndex();
    base.keys.set('p1', 'GH1');
    index.claim('GH1', 'p1', base.keyOf);
    const copy = new Records();
    copy.keys.set('p1', 'GH1');
    const forked = index.fork();
    forked.release('GH1', 'p1', copy.keyOf);
    copy.keys.set('p1', 'GH2');
    forked.claim('GH2', 'p1', copy.keyOf);
    base.keys.set('p2', 'GH3');
    index.claim('GH3', 'p2', base.keyOf);
    expect(index.owner('GH1', base.keyOf)).toBe('p1');
    expect(index.owner('GH3', base.keyOf)).toBe('p2');
    expect(index.size).toBe(2);
    expect(forked.owner('GH1', copy.keyOf)).toBeUndefined();
    expect(forked.owner('GH2', copy.keyOf)).toBe('p1');
    expect(forked.size).toBe(1);
  });

  it('behaves like a map by key through claims, changes and forks (model-based, seeded)', () => {
    type Op =
      | { kind: 'claim'; handle: number; patient: number; key: number }
      | { kind: 'change'; handle: number; patient: number; key: number }
      | { kind: 'fork'; handle: number };
    const arbOp: fc.Arbitrary<Op> = fc.oneof(
      fc.record({
        kind: fc.constant('claim' as const),
        handle: fc.nat(3),
        patient: fc.nat(80),
        key: fc.nat(60),
      }),
      fc.record({
        kind: fc.constant('change' as const),
        handle: fc.nat(3),
        patient: fc.nat(80),
        key: fc.nat(60),
      }),
      fc.record({ kind: fc.constant('fork' as const), handle: fc.nat(3) }),
    );
    fc.assert(
      fc.property(fc.array(arbOp, { maxLength: 400 }), (ops) => {
        // One projection per handle: its records, its index, and the model (key → holder).
        const states = [{ r: new Records(), index: new NationalIdIndex(), model: new Map<string, string>() }];
        for (const op of ops) {
          const s = states[op.handle % states.length]!;
          if (op.kind === 'fork') {
            const r = new Records();
            for (const [p, k] of s.r.keys) r.keys.set(p, k);
            states.push({ r, index: s.index.fork(), model: new Map(s.model) });
            continue;
          }
          const patient = `p${op.patient}`;
          const key = `GH-${op.key}`;
          const old = s.r.keys.get(patient);
          if (op.kind === 'claim') {
            if (old !== undefined) continue; // registered already
          } else {
            if (old === undefined || old === key) continue; // unknown patient, or no change
            s.index.release(old, patient, s.r.keyOf);
            if (s.model.get(old) === patient) s.model.delete(old);
          }
          s.r.keys.set(patient, key);
          s.index.claim(key, patient, s.r.keyOf);
          if (!s.model.has(key)) s.model.set(key, patient);
        }
        for (const s of states) {
          for (let k = 0; k <= 60; k++)
            expect(s.index.owner(`GH-${k}`, s.r.keyOf)).toBe(s.model.get(`GH-${k}`));
          expect(s.index.size).toBe(new Set([...s.model.keys()].map(nationalIdHash)).size);
        }
      }),
    );
  });
});
