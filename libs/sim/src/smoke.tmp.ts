import { defineScenario, runBaseline } from './index.js';
const t0 = performance.now();
const s = defineScenario({
  seed: Number(process.argv[2] ?? 1),
  devicesPerFacility: 4,
  duration: '3d',
  workload: { ratePerHour: 6 },
  network: { default: { truncate: 0.01 } },
});
const r = runBaseline(s);
console.log(JSON.stringify(r));
console.error('wall ms', performance.now() - t0);
