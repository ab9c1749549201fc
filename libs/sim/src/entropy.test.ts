import nodeCrypto from 'node:crypto';
import { generateAutomergeUrl } from '@automerge/automerge-repo';
import { describe, expect, it } from 'vitest';
import { installSimEntropy } from './entropy.js';
import { Prng } from './prng.js';

function draw(): string {
  const b = crypto.getRandomValues(new Uint8Array(12));
  return `${Array.from(b).join('.')}|${crypto.randomUUID()}|${Math.random()}`;
}

describe('installSimEntropy', () => {
  it('makes the global random sources replay a seed, and puts the real ones back', () => {
    const realRandom = Math.random;
    const restore = installSimEntropy(new Prng(9));
    const first = draw();
    restore();
    const again = installSimEntropy(new Prng(9));
    expect(draw()).toBe(first);
    again();
    const other = installSimEntropy(new Prng(10));
    expect(draw()).not.toBe(first);
    other();
    expect(Math.random).toBe(realRandom);
    expect(draw()).not.toBe(first);
    expect(first.split('|')[1]).toMatch(
      /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/,
    );
  });

  it("seeds node:crypto and automerge-repo's document ids too, however many ids the process drew before", () => {
    const realFill = nodeCrypto.randomFillSync;
    const drawIds = (): string[] => {
      const part = nodeCrypto.randomFillSync(new Uint16Array(4), 1, 2);
      return [generateAutomergeUrl(), generateAutomergeUrl(), nodeCrypto.randomUUID(), part.join('.')];
    };
    // Ids drawn before an installation leave uuid's pool part used, as an earlier run would.
    generateAutomergeUrl();
    const restore = installSimEntropy(new Prng(9));
    const first = drawIds();
    restore();
    for (let i = 0; i < 5; i++) generateAutomergeUrl();
    const again = installSimEntropy(new Prng(9));
    expect(drawIds()).toEqual(first);
    again();
    expect(nodeCrypto.randomFillSync).toBe(realFill);
    expect(drawIds()).not.toEqual(first);
    // Offset and size count elements of a typed array: elements 1 and 2 filled, 0 and 3 untouched.
    const part = first[3]!.split('.');
    expect([part[0], part[3]]).toEqual(['0', '0']);
    expect(part[1] !== '0' || part[2] !== '0').toBe(true);
  });
});
