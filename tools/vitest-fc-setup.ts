// Vitest set-up shared by every project: fast-check reads its seed and run count
// from the environment so any failure can be replayed exactly.
//   FC_SEED=<int>      replay a seed (default: a fixed seed, so CI is deterministic)
//   FC_SEED=random     explore with a fresh seed each run
//   FC_NUM_RUNS=<int>  scale every property's run count
// fast-check prints the seed and the shrink path of any counterexample itself.
import fc from 'fast-check';

const DEFAULT_SEED = 20261126;
const rawSeed = process.env['FC_SEED'];
const seed =
  rawSeed === 'random'
    ? Math.floor(Math.random() * 0x7fffffff)
    : rawSeed !== undefined && rawSeed !== ''
      ? Number.parseInt(rawSeed, 10)
      : DEFAULT_SEED;
const rawRuns = process.env['FC_NUM_RUNS'];
const numRuns = rawRuns !== undefined && rawRuns !== '' ? Number.parseInt(rawRuns, 10) : undefined;

if (!Number.isSafeInteger(seed)) throw new Error(`FC_SEED must be an integer or "random", got ${rawSeed}`);

fc.configureGlobal({
  seed,
  ...(numRuns !== undefined ? { numRuns } : {}),
  // Every failure report names the seed and path to replay it.
  verbose: 1,
});

// Printed once per test file so a failing run's log always carries the seed.
if (rawSeed === 'random') console.log(`[fast-check] FC_SEED=${seed}`);
