import { describe, expect, it } from 'vitest';
import { inOneBuffer } from './ingest.js';

describe('inOneBuffer (a sealed segment taken whole)', () => {
  it('copies every byte entry, in order, into one buffer and passes anything else through', () => {
    const a = new Uint8Array([1, 2, 3]);
    const b = new Uint8Array([4]);
    const c = new Uint8Array(0);
    const odd = { not: 'bytes' };
    const out = inOneBuffer([a, odd, b, c]);
    expect(out).toEqual([new Uint8Array([1, 2, 3]), odd, new Uint8Array([4]), new Uint8Array(0)]);
    const [x, , y, z] = out as Uint8Array[];
    // One ArrayBuffer for the segment, not one per entry as Automerge gives them.
    expect(x!.buffer).toBe(y!.buffer);
    expect(x!.buffer).toBe(z!.buffer);
    expect(x!.buffer).not.toBe(a.buffer);
    expect(x!.buffer.byteLength).toBe(4);
    // Copies: the document's values may be freed.
    a[0] = 9;
    expect(x![0]).toBe(1);
  });
});
