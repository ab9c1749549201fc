import * as A from '@automerge/automerge';
import { Repo, type DocHandle, type PeerId } from '@automerge/automerge-repo';
import { describe, expect, it } from 'vitest';
import { withSeed } from '@accord/testkit';
import { installSimEntropy } from './entropy.js';
import type { FaultPlan } from './faults.js';
import { SimNetwork } from './network.js';
import { Prng } from './prng.js';
import { SimRepoNetwork } from './repo-network.js';
import { Scheduler } from './scheduler.js';
import { DEFAULT_LINK } from './scenario.js';
import { installSimTimers } from './timers.js';

interface Doc {
  items: Record<string, number>;
}

const HOUR = 3_600_000;
const NODES = ['relay', 'f1-d1', 'f1-d2'];
/** Replays of one seed in the byte-for-byte test; `SIM_REPLAYS` scales it (as `FC_NUM_RUNS` does property tests). */
const REPLAYS = Number(process.env['SIM_REPLAYS'] ?? 30);

/**
 * Three real Repos (a relay and two tablets, p2p on) writing every 10 simulated minutes over a
 * faulty network, tablet 2 partitioned away from the first to the third tenth of the run; the
 * run lasts `hours` (6 by default, writes stopping an hour before the end).
 */
async function run(seed: number, hours = 6) {
  const scheduler = new Scheduler();
  const restore = installSimTimers(scheduler, Date.UTC(2024, 5, 3));
  const restoreEntropy = installSimEntropy(new Prng(seed));
  try {
    const faults: FaultPlan = {
      offline: [{ node: 'f1-d2', fromMs: (hours * HOUR) / 6, toMs: (hours * HOUR) / 2 }],
      crashes: [],
      skews: {},
      lastFaultMs: (hours * HOUR) / 2,
    };
    const network = new SimNetwork(scheduler, new Prng(seed), faults, {
      default: { ...DEFAULT_LINK, loss: 0.02, truncate: 0.01 },
      links: [],
    });
    const sim = new SimRepoNetwork(scheduler, network);
    const repos = NODES.map(
      (node) =>
        new Repo({
          network: [sim.adapter(node, NODES)],
          peerId: node as PeerId,
          sharePolicy: () => Promise.resolve(true),
        }),
    );
    const handles: DocHandle<Doc>[] = [repos[0]!.create<Doc>({ items: {} })];
    await scheduler.runAsync(60_000);
    for (const repo of repos.slice(1)) {
      const found = repo.find<Doc>(handles[0]!.url);
      await scheduler.runAsync(scheduler.now + 60_000);
      handles.push(await found);
    }
    let n = 0;
    for (let t = 10 * 60_000; t < (hours - 1) * HOUR; t += 10 * 60_000) {
      const k = n++;
      scheduler.at(t, () =>
        handles[1 + (k % 2)]!.change((d) => {
          d.items[`i${k}`] = k;
        }),
      );
    }
    await scheduler.runAsync(hours * HOUR);
    const docs = handles.map((h) => h.doc());
    const heads = docs.map((d) => A.getHeads(d));
    for (const r of repos) await r.shutdown();
    return {
      url: handles[0]!.url,
      items: docs.map((d) => d.items),
      heads,
      written: n,
      resets: sim.resets,
      counters: { ...network.counters },
    };
  } finally {
    restoreEntropy();
    restore();
  }
}

describe('SimRepoNetwork', () => {
  it(
    'carries real automerge-repo sync over the simulated network: through loss, cut frames and a partition every replica converges, and a seed replays exactly',
    () =>
      withSeed('sim repo network', async (seed) => {
        const first = await run(seed);
        expect(first.items[0]).toEqual(first.items[1]);
        expect(first.items[0]).toEqual(first.items[2]);
        expect(Object.keys(first.items[0]!)).toHaveLength(first.written);
        expect(first.heads[1]).toEqual(first.heads[0]);
        // The partition and the faults broke connections, and sync recovered from each.
        expect(first.resets).toBeGreaterThan(0);
        expect(first.counters.droppedOffline).toBeGreaterThan(0);
        // The replay is exact: documents, heads and every network counter.
        expect(await run(seed)).toEqual(first);
      }),
    120_000,
  );

  it(
    `replays a seed byte for byte: ${REPLAYS} replays of a small run give the same document, heads and network counters`,
    () =>
      withSeed('sim repo network replay', async (seed) => {
        const first = await run(seed, 2);
        // The run did exercise the faults whose timing a stray random byte would shift.
        expect(first.resets).toBeGreaterThan(0);
        expect(first.counters.droppedOffline).toBeGreaterThan(0);
        for (let i = 1; i < REPLAYS; i++) {
          const again = await run(seed, 2);
          expect({ replay: i, ...again }).toEqual({ replay: i, ...first });
        }
      }),
    30_000 + REPLAYS * 5_000,
  );

  it('keeps an idle connection alive with two-byte pings (a WebSocket ping), which still notice a partition', () => {
    const scheduler = new Scheduler();
    const faults: FaultPlan = {
      offline: [{ node: 'f1-d2', fromMs: HOUR, toMs: 2 * HOUR }],
      crashes: [],
      skews: {},
      lastFaultMs: 2 * HOUR,
    };
    // No loss: on this link only the partition breaks the connection.
    const network = new SimNetwork(scheduler, new Prng(1), faults, {
      default: { ...DEFAULT_LINK, loss: 0 },
      links: [],
    });
    const sim = new SimRepoNetwork(scheduler, network, { keepaliveMs: 30_000 });
    const nodes = ['f1-d1', 'f1-d2'];
    const adapters = nodes.map((n) => sim.adapter(n, nodes));
    const disconnected: string[] = [];
    adapters.forEach((a, i) => {
      a.on('peer-disconnected', () => disconnected.push(nodes[i]!));
      a.connect(nodes[i] as PeerId);
    });
    scheduler.run(60_000);
    const afterHandshake = { ...network.counters };
    scheduler.run(HOUR - 1);
    // An hour of idle link: each side pings every 30 s, two bytes a ping.
    const pings = network.counters.framesSent - afterHandshake.framesSent;
    expect(pings).toBeGreaterThanOrEqual(2 * 115);
    expect(network.counters.bytesSent - afterHandshake.bytesSent).toBe(2 * pings);
    expect(disconnected).toEqual([]);
    // A ping sent into the partition is dropped, and both ends see the connection break.
    scheduler.run(HOUR + 31_000);
    expect(disconnected.sort()).toEqual(['f1-d1', 'f1-d2']);
    expect(sim.resets).toBeGreaterThan(0);
  });
});
