import * as A from '@automerge/automerge';
import {
  Repo,
  type Chunk,
  type DocHandle,
  type Message,
  type PeerId,
  type StorageAdapterInterface,
  type StorageKey,
} from '@automerge/automerge-repo';
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
 * A {@link Prng} whose coin for a fault (any probability above 0) is the test's `fault()`: the
 * test decides which frames are lost or cut; every other draw is the seeded one.
 */
class ScriptedPrng extends Prng {
  fault = (): boolean => false;
  override chance(p: number): boolean {
    return p > 0 ? this.fault() : false;
  }
}

/**
 * Two adapters (`f1-d1`, `f1-d2`) connected over a link with `model`'s faults, which only the
 * `prng` script turns on; every message `f1-d2` receives is logged with its simulated time.
 */
function pair(model: Partial<typeof DEFAULT_LINK>, opts: { rtoMs?: number; giveUpMs?: number } = {}) {
  const scheduler = new Scheduler();
  const prng = new ScriptedPrng(1);
  const faults: FaultPlan = { offline: [], crashes: [], skews: {}, lastFaultMs: 0 };
  const network = new SimNetwork(scheduler, prng, faults, {
    default: { ...DEFAULT_LINK, latency: { dist: 'fixed', ms: 40 }, loss: 0, ...model },
    links: [],
  });
  const sim = new SimRepoNetwork(scheduler, network, { keepaliveMs: 3_600_000, ...opts });
  const nodes = ['f1-d1', 'f1-d2'];
  const adapters = nodes.map((n) => sim.adapter(n, nodes));
  const disconnected: string[] = [];
  const received: { at: number; n: number }[] = [];
  adapters.forEach((a, i) => {
    a.on('peer-disconnected', () => disconnected.push(nodes[i]!));
    a.connect(nodes[i] as PeerId);
  });
  adapters[1]!.on('message', (m) => received.push({ at: scheduler.now, n: (m.data as Uint8Array)[0]! }));
  scheduler.run(1_000);
  /** A repo message from `f1-d1` to `f1-d2` whose data is the byte `n` (100 bytes). */
  const send = (n: number): void =>
    adapters[0]!.send({
      type: 'sync',
      senderId: 'f1-d1' as PeerId,
      targetId: 'f1-d2' as PeerId,
      documentId: 'doc',
      data: new Uint8Array(100).fill(n),
    } as unknown as Message);
  return { scheduler, prng, network, sim, send, disconnected, received };
}

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

/** An in-memory storage adapter that keeps every key ever saved (the test reads what a Repo stored). */
class RecordingStorage implements StorageAdapterInterface {
  readonly #data = new Map<string, { key: StorageKey; data: Uint8Array }>();
  readonly saved: StorageKey[] = [];
  load(key: StorageKey): Promise<Uint8Array | undefined> {
    return Promise.resolve(this.#data.get(key.join('/'))?.data);
  }
  save(key: StorageKey, data: Uint8Array): Promise<void> {
    this.saved.push(key);
    this.#data.set(key.join('/'), { key, data });
    return Promise.resolve();
  }
  remove(key: StorageKey): Promise<void> {
    this.#data.delete(key.join('/'));
    return Promise.resolve();
  }
  loadRange(prefix: StorageKey): Promise<Chunk[]> {
    return Promise.resolve([...this.#data.values()].filter((c) => prefix.every((p, i) => c.key[i] === p)));
  }
  async removeRange(prefix: StorageKey): Promise<void> {
    for (const c of await this.loadRange(prefix)) this.#data.delete(c.key.join('/'));
  }
}

describe('SimRepoNetwork', () => {
  it('tells each Repo its peers are ephemeral, as network-ws does: no sync state is stored or resumed, and a broken connection syncs afresh', async () => {
    const scheduler = new Scheduler();
    const restore = installSimTimers(scheduler, Date.UTC(2024, 5, 3));
    const restoreEntropy = installSimEntropy(new Prng(5));
    try {
      const faults: FaultPlan = {
        offline: [{ node: 'f1-d2', fromMs: HOUR, toMs: 2 * HOUR }],
        crashes: [],
        skews: {},
        lastFaultMs: 2 * HOUR,
      };
      const network = new SimNetwork(scheduler, new Prng(5), faults, {
        default: { ...DEFAULT_LINK, loss: 0 },
        links: [],
      });
      const sim = new SimRepoNetwork(scheduler, network);
      const nodes = ['f1-d1', 'f1-d2'];
      const storages = nodes.map(() => new RecordingStorage());
      const metadata: unknown[] = [];
      const repos = nodes.map((node, i) => {
        const adapter = sim.adapter(node, nodes);
        adapter.on('peer-candidate', ({ peerMetadata }) => metadata.push(peerMetadata));
        return new Repo({
          network: [adapter],
          storage: storages[i]!,
          peerId: node as PeerId,
          sharePolicy: () => Promise.resolve(true),
        });
      });
      const mine = repos[0]!.create<Doc>({ items: {} });
      await scheduler.runAsync(60_000);
      const theirs = await (async () => {
        const found = repos[1]!.find<Doc>(mine.url);
        await scheduler.runAsync(scheduler.now + 60_000);
        return found;
      })();
      // Written on both sides of the partition: the second after it broke the connection.
      mine.change((d) => (d.items['a'] = 1));
      await scheduler.runAsync(30 * 60_000);
      mine.change((d) => (d.items['b'] = 2));
      await scheduler.runAsync(3 * HOUR);
      expect(theirs.doc().items).toEqual({ a: 1, b: 2 });
      expect(sim.resets).toBeGreaterThan(0);
      // Both connections (the first and the one after the partition), at both ends.
      expect(metadata).toHaveLength(4);
      for (const m of metadata) expect(m).toEqual({ isEphemeral: true });
      // The documents were stored, and no sync state ever was.
      for (const s of storages) {
        expect(s.saved.some((k) => k[0] === mine.documentId && k[1] !== 'sync-state')).toBe(true);
        expect(s.saved.filter((k) => k[1] === 'sync-state')).toEqual([]);
      }
      for (const r of repos) await r.shutdown();
    } finally {
      restoreEntropy();
      restore();
    }
  });

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

  it('resends a frame lost on a connected link after the retransmission timeout, the frames behind it waiting, with no reset', () => {
    const { scheduler, prng, network, sim, send, disconnected, received } = pair(
      { loss: 0.5 },
      { rtoMs: 200 },
    );
    const before = { ...network.counters };
    // The first frame and its first copy are lost; the second copy and every later frame get through.
    const script = [true, true];
    prng.fault = () => script.shift() ?? false;
    const sentAt = scheduler.now;
    send(1);
    send(2);
    scheduler.run(sentAt + 10_000);
    // Two timeouts in a row (200 ms, then 400 ms), then 40 ms of latency; frame 2 waits behind it.
    expect(received.map((r) => r.n)).toEqual([1, 2]);
    expect(received[0]!.at).toBeGreaterThanOrEqual(sentAt + 600 + 40);
    expect(received[0]!.at).toBeLessThan(sentAt + 600 + 50);
    expect(received[1]!.at).toBeGreaterThanOrEqual(received[0]!.at);
    expect(disconnected).toEqual([]);
    expect(sim.resets).toBe(0);
    const c = network.counters;
    expect(c.droppedLoss - before.droppedLoss).toBe(2);
    expect(c.retransmitted - before.retransmitted).toBe(2);
    expect(c.framesSent - before.framesSent).toBe(2);
    // The two copies crossed the wire too: four frames' bytes for two frames sent.
    const frameBytes = (c.bytesDelivered - before.bytesDelivered) / 2;
    expect(c.bytesSent - before.bytesSent).toBe(4 * frameBytes);
  });

  it('breaks the connection when a frame is still lost after the give-up window, and abandons the frames behind it', () => {
    const { scheduler, prng, network, sim, send, disconnected, received } = pair(
      { loss: 0.5 },
      { rtoMs: 200 },
    );
    prng.fault = () => true;
    const sentAt = scheduler.now;
    send(1);
    send(2);
    scheduler.run(sentAt + 44_999);
    expect(disconnected).toEqual([]);
    // Copies at 0.2, 0.6, 1.4, 3, 6.2, 12.6 and 25.4 s; the next would leave after 45 s.
    expect(network.counters.retransmitted).toBe(7);
    expect(network.counters.droppedLoss).toBe(8);
    scheduler.run(sentAt + 45_000);
    expect(disconnected.sort()).toEqual(['f1-d1', 'f1-d2']);
    expect(sim.resets).toBe(1);
    expect(received).toEqual([]);
    expect(network.counters.abandoned).toBe(1);
    // The link comes back: the adapters dial again and a new frame gets through.
    prng.fault = () => false;
    scheduler.run(sentAt + 60_000);
    send(3);
    scheduler.run(sentAt + 61_000);
    expect(received.map((r) => r.n)).toEqual([3]);
  });

  it('still breaks the connection on a cut frame', () => {
    const { scheduler, prng, sim, send, disconnected, received } = pair({ truncate: 0.5 });
    prng.fault = () => true;
    send(1);
    prng.fault = () => false;
    scheduler.run(scheduler.now + 1_000);
    expect(received).toEqual([]);
    expect(disconnected.sort()).toEqual(['f1-d1', 'f1-d2']);
    expect(sim.resets).toBe(1);
  });
});
