import * as A from '@automerge/automerge';
import { describe, expect, it } from 'vitest';
import { documentChunkHeads } from './automerge-chunks.js';

describe('documentChunkHeads', () => {
  it('reads the heads of A.save, for one head and for concurrent ones', () => {
    let a = A.change(A.init<{ events: Uint8Array[] }>({ actor: 'aa'.repeat(16) }), (d) => {
      d.events = [new Uint8Array([1, 2, 3])];
    });
    expect(documentChunkHeads(A.save(a))).toEqual(A.getHeads(a));
    let b = A.clone(a, { actor: 'bb'.repeat(16) });
    a = A.change(a, (d) => void d.events.push(new Uint8Array([4])));
    b = A.change(b, (d) => void d.events.push(new Uint8Array([5])));
    const merged = A.merge(a, b);
    expect(A.getHeads(merged)).toHaveLength(2);
    expect(documentChunkHeads(A.save(merged))).toEqual([...A.getHeads(merged)].sort());
  });

  it('refuses change chunks, truncated or extended chunks and other bytes', () => {
    const doc = A.change(A.init<{ n: number }>(), (d) => void (d.n = 1));
    const saved = A.save(doc);
    expect(documentChunkHeads(A.getLastLocalChange(doc)!)).toBeUndefined();
    expect(documentChunkHeads(saved.subarray(0, saved.length - 1))).toBeUndefined();
    expect(documentChunkHeads(new Uint8Array([...saved, 0]))).toBeUndefined();
    expect(documentChunkHeads(new Uint8Array(64))).toBeUndefined();
  });
});
