import * as A from '@automerge/automerge';
import { Repo, type PeerId } from '@automerge/automerge-repo';
import { describe, expect, it } from 'vitest';
import { FakeNetwork, REPO_SYNC_THROTTLE_MS, seedEntropy, withSeed } from '@accord/testkit';
import { Scheduler } from './scheduler.js';
import { installSimTimers, simTimers } from './timers.js';

const EPOCH = Date.UTC(2024, 5, 3);

describe('simTimers', () => {
  it('runs timeouts and intervals on simulated time, with their arguments, until cleared', () => {
    const s = new Scheduler();
    const t = simTimers(s, EPOCH);
    const seen: string[] = [];
    t.setTimeout((x) => seen.push(`once ${String(x)}@${s.now}`), 250, 'a');
    const gone = t.setTimeout(() => seen.push('cancelled'), 100);
    t.clearTimeout(gone);
    const every = t.setInterval(() => seen.push(`tick@${s.now}`), 100);
    s.run(350);
    t.clearInterval(+every); // by its numeric id, as code that stores the number does
    s.run(1000);
    expect(seen).toEqual(['tick@100', 'tick@200', 'once a@250', 'tick@300']);
    expect(t.now()).toBe(EPOCH + 1000);
    expect(every.unref().hasRef()).toBe(true);
  });
});

describe('installSimTimers', () => {
  it('puts the global timers and Date.now on simulated time, and puts the real ones back', () => {
    const s = new Scheduler();
    const realSetTimeout = globalThis.setTimeout;
    const realNow = Date.now;
    const restore = installSimTimers(s, EPOCH);
    let fired = -1;
    try {
      setTimeout(() => (fired = Date.now()), 3_600_000);
      expect(Date.now()).toBe(EPOCH);
      s.run(7_200_000);
      expect(fired).toBe(EPOCH + 3_600_000);
      expect(performance.now()).toBe(7_200_000);
    } finally {
      restore();
    }
    expect(globalThis.setTimeout).toBe(realSetTimeout);
    expect(Date.now).toBe(realNow);
    expect(Math.abs(Date.now() - realNow())).toBeLessThan(1000);
  });

  it('runs real automerge-repo Repos on simulated time: their sync throttle fires from the scheduler, and a seed replays exactly', () =>
    withSeed('sim timers repo', async (seed) => {
      const run = async (): Promise<{ heads: string[]; simulatedMs: number }> => {
        const s = new Scheduler();
        const restore = installSimTimers(s, EPOCH);
        const entropy = seedEntropy(seed);
        try {
          const net = new FakeNetwork({ seed, settle: () => s.runAsync(s.now + REPO_SYNC_THROTTLE_MS) });
          const a = new Repo({ network: [net.adapter('a')], peerId: 'a' as PeerId });
          const b = new Repo({ network: [net.adapter('b')], peerId: 'b' as PeerId });
          const doc = a.create<{ items: Record<string, number> }>({ items: {} });
          const found = b.find<{ items: Record<string, number> }>(doc.url);
          await net.quiet();
          const there = await found;
          for (let i = 0; i < 20; i++) {
            (i % 2 === 0 ? doc : there).change((d) => {
              d.items[`k${i}`] = i;
            });
          }
          await net.quiet();
          expect(there.doc().items).toEqual(doc.doc().items);
          expect(Object.keys(doc.doc().items)).toHaveLength(20);
          const heads = A.getHeads(doc.doc());
          await a.shutdown();
          await b.shutdown();
          return { heads, simulatedMs: s.now };
        } finally {
          entropy.restore();
          restore();
        }
      };
      const first = await run();
      // The throttle waited on the scheduler: simulated time passed, in whole throttle periods.
      expect(first.simulatedMs).toBeGreaterThan(0);
      expect(first.simulatedMs % REPO_SYNC_THROTTLE_MS).toBe(0);
      expect(await run()).toEqual(first);
    }));
});
