import { describe, expect, it } from 'vitest';
import { ReleasePacing } from './release-pacing.js';

describe('ReleasePacing', () => {
  it('releases after every round that left nothing more ready', () => {
    const pacing = new ReleasePacing(5000);
    expect(pacing.afterRound(false, 0)).toBe(true);
    expect(pacing.afterRound(false, 10)).toBe(true);
  });

  it('holds releases while rounds come back full, until the backlog is worked off', () => {
    const pacing = new ReleasePacing(5000);
    expect(pacing.afterRound(true, 1000)).toBe(false);
    expect(pacing.afterRound(true, 2000)).toBe(false);
    expect(pacing.afterRound(true, 5999)).toBe(false);
    expect(pacing.afterRound(false, 6500)).toBe(true);
    // A new backlog waits afresh.
    expect(pacing.afterRound(true, 7000)).toBe(false);
  });

  it('releases at most maxDeferMs after the first full round, then waits again', () => {
    const pacing = new ReleasePacing(5000);
    expect(pacing.afterRound(true, 1000)).toBe(false);
    expect(pacing.afterRound(true, 6000)).toBe(true);
    expect(pacing.afterRound(true, 6100)).toBe(false);
    expect(pacing.afterRound(true, 11_099)).toBe(false);
    expect(pacing.afterRound(true, 11_100)).toBe(true);
  });
});
