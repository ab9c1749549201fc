import { Automerge as A } from '@automerge/automerge-repo/slim';
import { describe, expect, it } from 'vitest';
import { seedEntropy } from './index.js';

describe('seedEntropy', () => {
  it('makes crypto.getRandomValues and Math.random replayable, and restores them', () => {
    const originalGetRandomValues = globalThis.crypto.getRandomValues;
    const originalMathRandom = Math.random;
    const draw = (): [number[], number] => [
      Array.from(globalThis.crypto.getRandomValues(new Uint8Array(8))),
      Math.random(),
    ];

    const first = seedEntropy(5);
    const a = draw();
    first.restore();
    const second = seedEntropy(5);
    const b = draw();
    second.restore();
    second.restore(); // idempotent
    expect(b).toEqual(a);

    expect(globalThis.crypto.getRandomValues).toBe(originalGetRandomValues);
    expect(Math.random).toBe(originalMathRandom);
    expect(draw()).not.toEqual(a);
  });

  it('fixes the actor ids Automerge draws', () => {
    const actor = (): string => {
      const entropy = seedEntropy(77);
      try {
        return A.getActorId(A.init());
      } finally {
        entropy.restore();
      }
    };
    expect(actor()).toBe(actor());
    expect(A.getActorId(A.init())).not.toBe(actor());
  });
});
