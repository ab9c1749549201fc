import fc from 'fast-check';

/** What a slow property test runs with: its run count and a time limit that grows with it. */
export interface PropertyBudget {
  /** The test's time limit (pass it to `it`): `baseMs + perRunMs × numRuns`. */
  readonly timeoutMs: number;
  /** For `fc.assert`. */
  readonly parameters: {
    /** `FC_NUM_RUNS` when set (read by the shared Vitest set-up), otherwise the test's default. */
    readonly numRuns: number;
    /**
     * fast-check's own limit, a little under {@link PropertyBudget.timeoutMs} and counted as a
     * failure: a run that overruns (a slow seed, a long shrink) ends with fast-check's report
     * (seed, path, smallest counterexample so far) instead of a bare test timeout.
     */
    readonly interruptAfterTimeLimit: number;
    readonly markInterruptAsFailure: true;
  };
}

/**
 * The budget of a property whose runs take real time (seconds, not microseconds): pass its
 * `parameters` to `fc.assert` and its `timeoutMs` to `it`, so that `FC_NUM_RUNS=500` gets an
 * answer instead of hitting a fixed timeout.
 *
 * @remarks `perRunMs` should be a few times a run's measured mean on a loaded machine: seeds
 * differ, and fast-check shrinks a counterexample within the same limit.
 */
export function propertyBudget(
  defaultRuns: number,
  time: { readonly baseMs: number; readonly perRunMs: number },
): PropertyBudget {
  const numRuns = fc.readConfigureGlobal().numRuns ?? defaultRuns;
  const timeoutMs = time.baseMs + time.perRunMs * numRuns;
  return {
    timeoutMs,
    parameters: {
      numRuns,
      interruptAfterTimeLimit: timeoutMs - Math.min(10_000, Math.round(timeoutMs / 10)),
      markInterruptAsFailure: true,
    },
  };
}
