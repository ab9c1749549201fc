import type { Prng } from './prng.js';
import type { Crash, OfflineWindow, Scenario } from './scenario.js';
import { RELAY_NODE, deviceNodes } from './scenario.js';

/**
 * The faults of one run, drawn once from the seed: offline windows (scripted and random
 * partitions), crashes (scripted and random) and each node's clock skew.
 */
export interface FaultPlan {
  readonly offline: readonly OfflineWindow[];
  readonly crashes: readonly Crash[];
  /** Clock skew per node (ms ahead of true time; negative: behind). */
  readonly skews: Readonly<Record<string, number>>;
  /** When the last fault ends (a partition heals, a crashed node is back, the relay is restored); 0 with no faults. */
  readonly lastFaultMs: number;
}

/**
 * Draws the faults of a scenario from `prng` (use a stream of its own, e.g. `prng.stream('faults')`).
 *
 * @remarks Random partitions take a device offline at a uniform instant before the workload
 * ends, for an exponentially distributed length (mean `partitions.random.meanMs`), clipped to
 * the run. Random crashes pick among the devices and the relay. Random skew is uniform in
 * ±`clockSkew.randomMs`; a node named in `clockSkew.nodes` takes that value instead.
 */
export function planFaults(s: Scenario, prng: Prng): FaultPlan {
  const devices = deviceNodes(s);
  const offline: OfflineWindow[] = [...s.partitions.scripted];
  for (let i = 0; i < s.partitions.random.count; i++) {
    const node = prng.pick(devices);
    const fromMs = Math.round(prng.uniform(0, s.workload.untilMs));
    const toMs = Math.min(
      s.durationMs,
      fromMs + Math.max(1, Math.round(prng.exponential(s.partitions.random.meanMs))),
    );
    offline.push({ node, fromMs, toMs });
  }
  const crashes: Crash[] = [...s.crashes.scripted];
  const crashable = s.relay ? [...devices, RELAY_NODE] : devices;
  for (let i = 0; i < s.crashes.random.count; i++) {
    crashes.push({
      node: prng.pick(crashable),
      atMs: Math.round(prng.uniform(0, s.workload.untilMs)),
      downMs: s.crashes.random.downMs,
    });
  }
  const skews: Record<string, number> = {};
  for (const node of [...devices, RELAY_NODE]) {
    const drawn = s.clockSkew.randomMs > 0 ? Math.round(prng.uniform(-1, 1) * s.clockSkew.randomMs) : 0;
    skews[node] = s.clockSkew.nodes[node] ?? drawn;
  }
  const lastFaultMs = Math.max(
    0,
    ...offline.map((w) => Math.min(w.toMs, s.durationMs)),
    ...crashes.map((c) => Math.min(c.atMs + c.downMs, s.durationMs)),
    s.relayRestore?.atMs ?? 0,
  );
  return {
    offline: offline.sort((a, b) => a.fromMs - b.fromMs || cmp(a.node, b.node)),
    crashes: crashes.sort((a, b) => a.atMs - b.atMs || cmp(a.node, b.node)),
    skews,
    lastFaultMs,
  };
}

const cmp = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/** True when `node` is partitioned away or crashed at simulated time `t`. */
export function isDown(plan: FaultPlan, node: string, t: number): boolean {
  for (const w of plan.offline) if (w.node === node && t >= w.fromMs && t < w.toMs) return true;
  for (const c of plan.crashes) if (c.node === node && t >= c.atMs && t < c.atMs + c.downMs) return true;
  return false;
}
