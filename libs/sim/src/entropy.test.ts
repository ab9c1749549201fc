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
});
