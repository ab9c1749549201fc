import { describe, expect, it } from 'vitest';
import { ErrorCode, isAccordError } from '@accord/protocol';
import { SimError } from './errors.js';
import { Scheduler, skewedClock } from './scheduler.js';

describe('Scheduler', () => {
  it('runs callbacks in time order, and in scheduling order at equal times', () => {
    const s = new Scheduler();
    const seen: string[] = [];
    s.at(30, () => seen.push('c'));
    s.at(10, () => seen.push('a1'));
    s.at(10, () => seen.push('a2'));
    s.at(20, () => {
      seen.push('b');
      s.after(0, () => seen.push('b-now'));
      s.after(5, () => seen.push('b+5'));
    });
    expect(s.run(100)).toBe(6);
    expect(seen).toEqual(['a1', 'a2', 'b', 'b-now', 'b+5', 'c']);
    expect(s.now).toBe(100);
  });

  it('jumps simulated time without waiting: a year passes at once', () => {
    const s = new Scheduler();
    let at = -1;
    s.after(365 * 86_400_000, () => (at = s.now));
    s.run(400 * 86_400_000);
    expect(at).toBe(365 * 86_400_000);
  });

  it('stops at the horizon, leaving later callbacks for the next run, and skips cancelled ones', () => {
    const s = new Scheduler();
    const seen: number[] = [];
    s.at(5, () => seen.push(5));
    const t = s.at(6, () => seen.push(6));
    s.at(50, () => seen.push(50));
    s.cancel(t);
    s.run(10);
    expect(seen).toEqual([5]);
    expect(s.now).toBe(10);
    s.run(60);
    expect(seen).toEqual([5, 50]);
  });

  it('refuses to schedule in the past with SIM_BAD_TIME', () => {
    const s = new Scheduler();
    s.run(100);
    expect(() => s.at(50, () => undefined)).toThrow(SimError);
    try {
      s.at(Number.NaN, () => undefined);
    } catch (e) {
      expect((e as SimError).code).toBe('SIM_BAD_TIME');
      // Accord's one error class: whatever handles AccordError (the CLI) handles the simulator's.
      expect(isAccordError(e, ErrorCode.SIM_BAD_TIME)).toBe(true);
    }
  });

  it('runAsync lets awaited work finish at the simulated instant that started it', async () => {
    const s = new Scheduler();
    const log: string[] = [];
    s.at(10, () => {
      void (async () => {
        await Promise.resolve();
        await Promise.resolve();
        log.push(`saved@${s.now}`);
      })();
    });
    s.at(20, () => log.push(`next@${s.now}`));
    await s.runAsync(30);
    expect(log).toEqual(['saved@10', 'next@20']);
  });

  it('gives each node a skewed clock on the run epoch', () => {
    const s = new Scheduler();
    const epoch = Date.UTC(2024, 5, 3);
    const ahead = skewedClock(s, epoch, 90_000);
    s.run(1_000);
    expect(ahead.now()).toBe(epoch + 1_000 + 90_000);
    expect(skewedClock(s, epoch, -500).now()).toBe(epoch + 500);
  });
});
