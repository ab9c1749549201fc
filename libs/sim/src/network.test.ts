import { describe, expect, it } from 'vitest';
import { withSeed } from '@accord/testkit';
import type { FaultPlan } from './faults.js';
import { SimNetwork } from './network.js';
import { Prng } from './prng.js';
import { Scheduler } from './scheduler.js';
import type { LinkModel } from './scenario.js';

const NO_FAULTS: FaultPlan = { offline: [], crashes: [], skews: {}, lastFaultMs: 0 };
const LINK: LinkModel = {
  latency: { dist: 'fixed', ms: 10 },
  loss: 0,
  duplicate: 0,
  reorder: 0,
  reorderMaxMs: 1000,
  truncate: 0,
  bandwidth: 1_000_000,
};

function setup(seed: number, link: Partial<LinkModel> = {}, faults: FaultPlan = NO_FAULTS) {
  const scheduler = new Scheduler();
  const net = new SimNetwork(scheduler, new Prng(seed), faults, { default: { ...LINK, ...link }, links: [] });
  const got: { at: number; bytes: Uint8Array; truncated: boolean }[] = [];
  net.attach('b', (bytes, info) => got.push({ at: scheduler.now, bytes, truncated: info.truncated }));
  return { scheduler, net, got };
}

const frame = (n: number, size = 100): Uint8Array => new Uint8Array(size).fill(n);

describe('SimNetwork', () => {
  it('delivers after latency plus the time the bytes take at the link bandwidth, in order', () => {
    const { scheduler, net, got } = setup(1, { bandwidth: 10_000 });
    net.send('a', 'b', frame(1, 1000)); // 100 ms on the wire
    net.send('a', 'b', frame(2, 1000)); // queued behind the first
    expect(got).toHaveLength(0); // never synchronously
    scheduler.run(1000);
    expect(got.map((g) => [g.at, g.bytes[0]])).toEqual([
      [110, 1],
      [210, 2],
    ]);
    expect(net.counters).toMatchObject({ framesSent: 2, bytesSent: 2000, framesDelivered: 2 });
  });

  it('loses, duplicates and truncates frames at the configured rates', () =>
    withSeed('network fault rates', (seed) => {
      const { scheduler, net, got } = setup(seed, { loss: 0.2, duplicate: 0.1, truncate: 0.1 });
      for (let i = 0; i < 5000; i++) net.send('a', 'b', frame(i & 0xff));
      scheduler.run(10_000_000);
      const c = net.counters;
      expect(Math.abs(c.droppedLoss / 5000 - 0.2)).toBeLessThan(0.03);
      expect(Math.abs(c.duplicated / 5000 - 0.1)).toBeLessThan(0.03);
      expect(c.framesDelivered).toBe(5000 - c.droppedLoss + c.duplicated);
      const cut = got.filter((g) => g.truncated);
      expect(cut.length).toBeGreaterThan(0);
      for (const g of cut) expect(g.bytes.length).toBeLessThan(100);
      for (const g of got.filter((x) => !x.truncated)) expect(g.bytes.length).toBe(100);
    }));

  it('lets reordered frames be overtaken and keeps the others in order', () =>
    withSeed('network reorder', (seed) => {
      const { scheduler, net, got } = setup(seed, { reorder: 0.3, reorderMaxMs: 500 });
      for (let i = 0; i < 200; i++) {
        scheduler.run(scheduler.now + 5);
        net.send('a', 'b', frame(i));
      }
      scheduler.run(1_000_000);
      const order = got.map((g) => g.bytes[0]!);
      expect(order).toHaveLength(200);
      expect(order).not.toEqual([...order].sort((x, y) => x - y));
      expect(net.counters.reordered).toBeGreaterThan(0);
    }));

  it('drops frames while either end is offline, and delivers again once it is back', () => {
    const faults: FaultPlan = {
      offline: [{ node: 'b', fromMs: 100, toMs: 200 }],
      crashes: [],
      skews: {},
      lastFaultMs: 200,
    };
    const { scheduler, net, got } = setup(1, {}, faults);
    scheduler.at(95, () => net.send('a', 'b', frame(1))); // would arrive at 105: b is down by then
    scheduler.at(150, () => net.send('a', 'b', frame(2)));
    scheduler.at(250, () => net.send('a', 'b', frame(3)));
    scheduler.run(1000);
    expect(got.map((g) => g.bytes[0])).toEqual([3]);
    expect(net.counters.droppedOffline).toBe(2);
  });

  it('is reproducible: the same seed delivers the same frames at the same times', () =>
    withSeed('network reproducible', (seed) => {
      const run = () => {
        const { scheduler, net, got } = setup(seed, {
          latency: { dist: 'lognormal', medianMs: 50, sigma: 1 },
          loss: 0.1,
          duplicate: 0.05,
          reorder: 0.1,
          truncate: 0.05,
        });
        for (let i = 0; i < 300; i++) net.send('a', 'b', frame(i, 50 + (i % 7)));
        scheduler.run(1e9);
        return JSON.stringify(got.map((g) => [g.at, Array.from(g.bytes)]));
      };
      expect(run()).toBe(run());
    }));

  it('carries a stream (TCP): through loss, duplication and reordering every frame arrives once and in order, the resent and duplicate copies counted on the wire', () =>
    withSeed('network stream', (seed) => {
      const { scheduler, net, got } = setup(seed, {
        loss: 0.1,
        duplicate: 0.1,
        reorder: 0.2,
        reorderMaxMs: 500,
      });
      const stream = { rtoMs: 200, rtoMaxMs: 120_000, giveUpMs: 45_000 };
      for (let i = 0; i < 500; i++) {
        scheduler.run(scheduler.now + 5);
        net.send('a', 'b', frame(i & 0xff), stream);
      }
      scheduler.run(1e9);
      const c = net.counters;
      expect(got.map((g) => g.bytes[0])).toEqual(Array.from({ length: 500 }, (_, i) => i & 0xff));
      for (let i = 1; i < got.length; i++) expect(got[i]!.at).toBeGreaterThanOrEqual(got[i - 1]!.at);
      expect(c.droppedLoss).toBeGreaterThan(0);
      expect(c.retransmitted).toBe(c.droppedLoss);
      expect(c.duplicated).toBeGreaterThan(0);
      expect(c.reordered).toBeGreaterThan(0);
      expect(c.framesDelivered).toBe(500);
      expect(c.bytesSent).toBe(100 * (500 + c.retransmitted + c.duplicated));
    }));
});
