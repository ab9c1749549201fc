import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { propertyBudget } from './index.js';

const saved = fc.readConfigureGlobal();
afterEach(() => {
  fc.configureGlobal(saved);
});

describe('propertyBudget', () => {
  it("takes the test's default run count when FC_NUM_RUNS is not set, and a limit for that many", () => {
    const { numRuns: _ignored, ...rest } = saved;
    fc.configureGlobal(rest);
    expect(propertyBudget(8, { baseMs: 60_000, perRunMs: 15_000 })).toEqual({
      timeoutMs: 180_000,
      parameters: { numRuns: 8, interruptAfterTimeLimit: 170_000, markInterruptAsFailure: true },
    });
  });

  it('grows the limit with FC_NUM_RUNS (the run count the shared set-up configures)', () => {
    fc.configureGlobal({ ...saved, numRuns: 500 });
    const b = propertyBudget(8, { baseMs: 60_000, perRunMs: 15_000 });
    expect(b.parameters.numRuns).toBe(500);
    expect(b.timeoutMs).toBe(7_560_000);
    // fast-check answers before the test's limit does.
    expect(b.parameters.interruptAfterTimeLimit).toBe(7_550_000);
    expect(propertyBudget(1, { baseMs: 1_000, perRunMs: 0 }).parameters.interruptAfterTimeLimit).toBe(900);
  });

  it('ends an overrunning property with a failure that names its seed, not with a pass', async () => {
    fc.configureGlobal({ ...saved, numRuns: 1_000 });
    const b = propertyBudget(8, { baseMs: 50, perRunMs: 0 });
    const error: unknown = await fc
      .assert(
        fc.asyncProperty(fc.nat(), () => new Promise<void>((resolve) => setTimeout(resolve, 5))),
        b.parameters,
      )
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(Error);
    expect((error as Error).message).toMatch(/seed/);
  });
});
