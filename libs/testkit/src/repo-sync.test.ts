// Real automerge-repo Repos (no storage) syncing over the FakeNetwork. The Repos'
// throttle timers are faked and their entropy seeded, so a seed replays exactly.
import { Repo, type DocHandle, type PeerId } from '@automerge/automerge-repo';
import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  FakeNetwork,
  REPO_SYNC_THROTTLE_MS,
  compareReplicas,
  seedEntropy,
  type FakeNetworkStats,
  type FaultRates,
  type ReplicaSnapshot,
} from './index.js';

interface Doc {
  items: Record<string, number>;
}

const CLOCK_START = Date.UTC(2026, 0, 1);
const NO_FAULTS: FaultRates = { dropRate: 0, duplicateRate: 0, reorderRate: 0, truncateRate: 0 };

beforeEach(() => {
  vi.useFakeTimers({ now: CLOCK_START, toFake: ['setTimeout', 'clearTimeout', 'Date'] });
});
afterEach(() => {
  vi.useRealTimers();
});

/** Lets the Repos' sync throttle fire: the only way their change-driven messages leave. */
const settle = (): Promise<unknown> => vi.advanceTimersByTimeAsync(REPO_SYNC_THROTTLE_MS);

/** n Repos on one FakeNetwork sharing one document, plus what every replica must end up with. */
class Cluster {
  readonly net: FakeNetwork;
  readonly names: string[];
  readonly repos = new Map<string, Repo>();
  readonly handles = new Map<string, DocHandle<Doc>>();
  /** Every item ever written: the reference every replica must equal after healing. */
  readonly written = new Map<string, number>();

  private constructor(net: FakeNetwork, names: string[]) {
    this.net = net;
    this.names = names;
  }

  /** Starts n Repos; n0 creates the document and the others find it over a fault-free network. */
  static async start(seed: number, n: number): Promise<Cluster> {
    const cluster = new Cluster(
      new FakeNetwork({ seed, settle }),
      Array.from({ length: n }, (_, i) => `n${i}`),
    );
    for (const name of cluster.names) cluster.repos.set(name, cluster.#newRepo(name));
    const first = cluster.#repo('n0').create<Doc>({ items: {} });
    cluster.handles.set('n0', first);
    const found = cluster.names.slice(1).map(async (name) => {
      cluster.handles.set(name, await cluster.#repo(name).find<Doc>(first.url));
    });
    await cluster.net.quiet();
    await Promise.all(found);
    return cluster;
  }

  /** Node `name` writes one item. */
  write(name: string, key: string, value: number): void {
    this.#handle(name).change((d) => {
      d.items[key] = value;
    });
    this.written.set(key, value);
  }

  /** Restarts node `name` as a fresh Repo with no storage (same peer id): it must re-fetch everything. */
  async restart(name: string): Promise<void> {
    await this.#repo(name).shutdown();
    const repo = this.#newRepo(name);
    this.repos.set(name, repo);
    const url = this.#handle('n0').url;
    const found = repo.find<Doc>(url);
    await this.net.quiet();
    this.handles.set(name, await found);
  }

  snapshots(): ReplicaSnapshot[] {
    return this.names.map((name) => {
      const handle = this.#handle(name);
      const items = handle.doc().items;
      const events = Object.keys(items).sort();
      return {
        name,
        heads: handle.heads(),
        events,
        projection: JSON.stringify(Object.fromEntries(events.map((k) => [k, items[k]]))),
      };
    });
  }

  /** Asserts every replica has the same heads and exactly the items ever written. */
  expectConverged(): void {
    const events = [...this.written.keys()].sort();
    const projection = JSON.stringify(Object.fromEntries(events.map((k) => [k, this.written.get(k)])));
    const result = compareReplicas(this.snapshots(), { events, projection });
    if (!result.ok) expect.fail(`seed=${this.net.seed}: replicas diverged\n${result.report}`);
  }

  async shutdown(): Promise<void> {
    for (const repo of this.repos.values()) await repo.shutdown();
  }

  #newRepo(name: string): Repo {
    return new Repo({ network: [this.net.adapter(name)], peerId: name as PeerId });
  }

  #repo(name: string): Repo {
    const repo = this.repos.get(name);
    if (repo === undefined) throw new Error(`no repo ${name}`);
    return repo;
  }

  #handle(name: string): DocHandle<Doc> {
    const handle = this.handles.get(name);
    if (handle === undefined) throw new Error(`no handle ${name}`);
    return handle;
  }
}

/** A seeded run: entropy (actor ids) and the clock are fixed for its duration. */
async function seeded<T>(seed: number, body: () => Promise<T>): Promise<T> {
  vi.setSystemTime(CLOCK_START);
  const entropy = seedEntropy(seed);
  try {
    return await body();
  } finally {
    entropy.restore();
  }
}

describe('Repos on a FakeNetwork', () => {
  it.each([2, 3, 4, 5])('%i repos sync a document to convergence', async (n) => {
    const cluster = await Cluster.start(n, n);
    for (const name of cluster.names) cluster.write(name, `${name}-a`, 1);
    cluster.write('n0', 'n0-b', 2);
    await cluster.net.quiet();
    cluster.expectConverged();
    expect(cluster.snapshots()[0]?.events).toHaveLength(n + 1);
    const stats = cluster.net.stats();
    expect(stats.delivered).toBe(stats.sent);
    await cluster.shutdown();
  });

  it('converges after drops, duplicates, reordering, truncation and partitions, once healed', async () => {
    const rate = fc.integer({ min: 0, max: 30 }).map((percent) => percent / 100);
    const totals = { dropped: 0, duplicated: 0, reordered: 0, truncated: 0 };
    const nodeCount = fc.integer({ min: 2, max: 5 });
    // Per round: a group (0–2) for each of up to 5 nodes, or null for "no partition this round".
    const plan = fc.array(
      fc.option(fc.array(fc.integer({ min: 0, max: 2 }), { minLength: 5, maxLength: 5 })),
      {
        minLength: 1,
        maxLength: 4,
      },
    );
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: 0x7fffffff }),
        nodeCount,
        fc.record({ dropRate: rate, duplicateRate: rate, reorderRate: rate, truncateRate: rate }),
        plan,
        (seed, n, rates, rounds) =>
          seeded(seed, async () => {
            const cluster = await Cluster.start(seed, n);
            cluster.net.setFaults(rates);
            for (const [round, groupOf] of rounds.entries()) {
              if (groupOf === null) cluster.net.heal();
              else
                cluster.net.partition([0, 1, 2].map((g) => cluster.names.filter((_, i) => groupOf[i] === g)));
              for (const name of cluster.names) {
                cluster.write(name, `${name}-${round}-x`, round);
                cluster.write(name, `${name}-${round}-y`, round);
              }
              // Some sync under faults, not necessarily to the end: the next round may cut it short.
              await cluster.net.deliverAll();
              await settle();
              await cluster.net.deliverAll();
            }
            cluster.net.setFaults(NO_FAULTS);
            cluster.net.heal();
            await cluster.net.quiet();
            cluster.expectConverged();
            const s = cluster.net.stats();
            totals.dropped += s.dropped;
            totals.duplicated += s.duplicated;
            totals.reordered += s.reordered;
            totals.truncated += s.truncated;
            await cluster.shutdown();
          }),
      ),
      {
        numRuns: fc.readConfigureGlobal().numRuns ?? 8,
        // Always also run 20 % of every fault across three partition rounds, whatever FC_SEED draws.
        examples: [
          [
            1234,
            4,
            { dropRate: 0.2, duplicateRate: 0.2, reorderRate: 0.2, truncateRate: 0.2 },
            [[0, 0, 1, 1, 0], [0, 1, 2, 0, 0], null],
          ],
        ],
      },
    );
    // The property is only worth something if the faults really happened.
    expect(totals.dropped).toBeGreaterThan(0);
    expect(totals.duplicated).toBeGreaterThan(0);
    expect(totals.reordered).toBeGreaterThan(0);
    expect(totals.truncated).toBeGreaterThan(0);
  });

  it('interleaves writes with partitions round by round and still converges', async () => {
    await seeded(31, async () => {
      const cluster = await Cluster.start(31, 4);
      cluster.net.setFaults({ dropRate: 0.2, duplicateRate: 0.2, reorderRate: 0.2, truncateRate: 0.2 });
      const partitions = [
        [
          ['n0', 'n1'],
          ['n2', 'n3'],
        ],
        [['n0', 'n2'], ['n1'], ['n3']],
        [['n0', 'n1', 'n2', 'n3']],
      ];
      for (const [round, groups] of partitions.entries()) {
        cluster.net.partition(groups);
        for (const name of cluster.names) cluster.write(name, `${name}-${round}`, round);
        await cluster.net.deliverAll();
        await settle();
        await cluster.net.deliverAll();
      }
      cluster.net.setFaults(NO_FAULTS);
      cluster.net.heal();
      await cluster.net.quiet();
      cluster.expectConverged();
      await cluster.shutdown();
    });
  });

  it('a node that was off line, and a node restarted with no storage, catch up', async () => {
    await seeded(32, async () => {
      const cluster = await Cluster.start(32, 3);
      cluster.net.disconnectNode('n2');
      cluster.write('n2', 'offline-edit', 1);
      cluster.write('n0', 'while-n2-away', 2);
      await cluster.net.quiet();
      expect(cluster.snapshots()[2]?.events).toEqual(['offline-edit']);
      cluster.net.reconnectNode('n2');
      await cluster.net.quiet();
      cluster.expectConverged();

      await cluster.restart('n1');
      cluster.expectConverged();
      cluster.write('n1', 'after-restart', 3);
      await cluster.net.quiet();
      cluster.expectConverged();
      await cluster.shutdown();
    });
  });

  it('the same seed gives the same stats', async () => {
    const run = (seed: number): Promise<FakeNetworkStats> =>
      seeded(seed, async () => {
        const cluster = await Cluster.start(seed, 4);
        cluster.net.setFaults({ dropRate: 0.1, duplicateRate: 0.1, reorderRate: 0.2, truncateRate: 0.1 });
        for (let round = 0; round < 3; round++) {
          for (const name of cluster.names) cluster.write(name, `${name}-${round}`, round);
          await cluster.net.deliverAll();
          await settle();
          await cluster.net.deliverAll();
        }
        cluster.net.setFaults(NO_FAULTS);
        cluster.net.heal();
        await cluster.net.quiet();
        cluster.expectConverged();
        await cluster.shutdown();
        return cluster.net.stats();
      });
    const first = await run(7);
    expect(first.dropped + first.truncated).toBeGreaterThan(0);
    expect(await run(7)).toEqual(first);
    expect(await run(8)).not.toEqual(first);
  });

  it('quiet() means quiet: nothing is sent afterwards, while deliverAll() alone is not enough', async () => {
    const cluster = await Cluster.start(40, 3);
    for (const name of cluster.names) cluster.write(name, `${name}-1`, 1);
    // deliverAll() does not run the Repos' throttle timers, so their sync is still to come.
    await cluster.net.deliverAll();
    const beforeTimers = cluster.net.stats().sent;
    await settle();
    expect(cluster.net.stats().sent).toBeGreaterThan(beforeTimers);

    await cluster.net.quiet();
    cluster.expectConverged();
    const atQuiet = cluster.net.stats();
    for (let i = 0; i < 5; i++) {
      await cluster.net.deliverAll();
      await settle();
    }
    expect(cluster.net.stats()).toEqual(atQuiet);
    expect(cluster.net.inFlight).toBe(0);
    await cluster.shutdown();
  });
});

describe('Repos on a FakeNetwork with real timers and the default settle', () => {
  it('quiet() waits out the Repos\u2019 throttle and they converge', async () => {
    vi.useRealTimers();
    const net = new FakeNetwork({ seed: 50 });
    const a = new Repo({ network: [net.adapter('a')], peerId: 'a' as PeerId });
    const b = new Repo({ network: [net.adapter('b')], peerId: 'b' as PeerId });
    const handleA = a.create<Doc>({ items: {} });
    const found = b.find<Doc>(handleA.url);
    await net.quiet();
    const handleB = await found;
    handleB.change((d) => {
      d.items['from-b'] = 1;
    });
    await net.quiet();
    expect(handleA.doc().items).toEqual({ 'from-b': 1 });
    expect(handleA.heads()).toEqual(handleB.heads());
    await a.shutdown();
    await b.shutdown();
  });
});
