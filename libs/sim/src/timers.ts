import type { Scheduler } from './scheduler.js';

/** What `setTimeout` returns under simulated timers: a handle with Node's `Timeout` methods, as no-ops. */
export interface SimTimeout {
  readonly id: number;
  ref(): SimTimeout;
  unref(): SimTimeout;
  hasRef(): boolean;
  refresh(): SimTimeout;
  [Symbol.toPrimitive](): number;
}

/** `setTimeout` and its kin, and `Date.now`, on a {@link Scheduler}'s simulated time. */
export interface SimTimers {
  readonly setTimeout: (fn: (...args: unknown[]) => void, ms?: number, ...args: unknown[]) => SimTimeout;
  readonly clearTimeout: (handle: SimTimeout | number | undefined) => void;
  readonly setInterval: (fn: (...args: unknown[]) => void, ms?: number, ...args: unknown[]) => SimTimeout;
  readonly clearInterval: (handle: SimTimeout | number | undefined) => void;
  /** Unix ms: the epoch plus simulated time. */
  readonly now: () => number;
}

/**
 * A {@link SimTimeout}: its methods live on the prototype. automerge-repo sets a timer for nearly
 * every sync message (throttle, request timeout); a handle of six closures each was ≈ 3% of a
 * simulator run's CPU profile.
 */
class Handle implements SimTimeout {
  constructor(readonly id: number) {}
  ref(): SimTimeout {
    return this;
  }
  unref(): SimTimeout {
    return this;
  }
  hasRef(): boolean {
    return true;
  }
  refresh(): SimTimeout {
    return this;
  }
  [Symbol.toPrimitive](): number {
    return this.id;
  }
}

/**
 * Timers on simulated time: a callback set for `ms` runs when the scheduler reaches now + `ms`.
 *
 * @remarks For code that takes its timers from outside (a port), and for {@link installSimTimers},
 * which puts them in place of the global ones for code that does not. Intervals reschedule
 * themselves after each run; a delay below 1 ms counts as 1 ms for intervals (as in Node), so an
 * interval never spins at one instant.
 */
export function simTimers(scheduler: Scheduler, epochMs: number): SimTimers {
  let nextId = 1;
  const live = new Map<number, ReturnType<Scheduler['at']>>();
  const handle = (id: number): SimTimeout => new Handle(id);
  const clear = (h: SimTimeout | number | undefined): void => {
    if (h === undefined) return;
    const id = typeof h === 'number' ? h : h.id;
    const t = live.get(id);
    if (t !== undefined) scheduler.cancel(t);
    live.delete(id);
  };
  const delay = (ms: number | undefined): number => (typeof ms === 'number' && ms > 0 ? ms : 0);
  return {
    setTimeout: (fn, ms, ...args) => {
      const id = nextId++;
      live.set(
        id,
        scheduler.after(delay(ms), () => {
          live.delete(id);
          fn(...args);
        }),
      );
      return handle(id);
    },
    clearTimeout: clear,
    setInterval: (fn, ms, ...args) => {
      const id = nextId++;
      const every = Math.max(1, delay(ms));
      const tick = (): void => {
        live.set(id, scheduler.after(every, tick));
        fn(...args);
      };
      live.set(id, scheduler.after(every, tick));
      return handle(id);
    },
    clearInterval: clear,
    now: () => Math.round(epochMs + scheduler.now),
  };
}

/**
 * Puts {@link simTimers} in place of the global `setTimeout`, `clearTimeout`, `setInterval`,
 * `clearInterval` and `Date.now` (and `performance.now`, as simulated ms since the start), for
 * libraries that call them directly (automerge-repo's sync throttle); returns the function that
 * puts the originals back.
 *
 * @remarks `setImmediate` and `queueMicrotask` stay real: they take no time, and
 * {@link Scheduler.runAsync} relies on `setImmediate` to let awaited work settle. `new Date()`
 * without arguments still reads the real clock. One installation at a time.
 */
export function installSimTimers(scheduler: Scheduler, epochMs: number): () => void {
  const t = simTimers(scheduler, epochMs);
  const g = globalThis as unknown as Record<string, unknown>;
  const saved = {
    setTimeout: g['setTimeout'],
    clearTimeout: g['clearTimeout'],
    setInterval: g['setInterval'],
    clearInterval: g['clearInterval'],
  };
  const dateNow = Date.now;
  const perfNow = performance.now.bind(performance);
  Object.assign(g, {
    setTimeout: t.setTimeout,
    clearTimeout: t.clearTimeout,
    setInterval: t.setInterval,
    clearInterval: t.clearInterval,
  });
  Date.now = t.now;
  performance.now = () => scheduler.now;
  let restored = false;
  return () => {
    if (restored) return;
    restored = true;
    Object.assign(g, saved);
    Date.now = dateNow;
    performance.now = perfNow;
  };
}
