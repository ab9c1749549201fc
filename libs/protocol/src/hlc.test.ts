import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  compareHlc,
  DEFAULT_MAX_DRIFT_MS,
  ErrorCode,
  formatHlc,
  HLC_WALL_CAP_MS,
  HybridClock,
  isHlc,
  MAX_HLC_COUNTER,
  MAX_HLC_WALL_MS,
  parseHlc,
  type Hlc,
} from './index.js';

const T0 = Date.UTC(2026, 0, 1);
const arbWall = fc.integer({ min: 0, max: MAX_HLC_WALL_MS });
const arbCounter = fc.integer({ min: 0, max: MAX_HLC_COUNTER });
const cmpPair = (a: [number, number], b: [number, number]): number => Math.sign(a[0] - b[0] || a[1] - b[1]);

describe('HLC format', () => {
  it('formats fixed-width and parses back', () => {
    expect(formatHlc(T0, 42)).toBe('2026-01-01T00:00:00.000Z/000042');
    expect(formatHlc(0, 0)).toBe('1970-01-01T00:00:00.000Z/000000');
    expect(formatHlc(MAX_HLC_WALL_MS, MAX_HLC_COUNTER)).toBe('9999-12-31T23:59:59.999Z/999999');
    fc.assert(
      fc.property(arbWall, arbCounter, (w, c) => {
        const h = formatHlc(w, c);
        expect(h).toHaveLength(31);
        expect(parseHlc(h)).toEqual({ wallMs: w, counter: c });
        expect(isHlc(h)).toBe(true);
      }),
    );
  });

  it('string order equals (wallMs, counter) order', () => {
    fc.assert(
      fc.property(arbWall, arbCounter, arbWall, arbCounter, (w1, c1, w2, c2) => {
        const a = formatHlc(w1, c1);
        const b = formatHlc(w2, c2);
        expect(compareHlc(a, b)).toBe(cmpPair([w1, c1], [w2, c2]));
        expect(a < b).toBe(cmpPair([w1, c1], [w2, c2]) < 0);
      }),
    );
  });

  it('rejects malformed timestamps and out-of-range parts with PROTOCOL_CLOCK', () => {
    const bad = [
      '',
      '2026-01-01T00:00:00.000Z',
      '2026-01-01T00:00:00.000Z/42',
      '2026-01-01T00:00:00.000Z/0000042',
      '2026-01-01T00:00:00Z/000000',
      '2026-02-30T00:00:00.000Z/000000',
      '2026-01-01T24:00:00.000Z/000000',
      '2026-01-01 00:00:00.000Z/000000',
      '0050-01-01T00:00:00.000Z/000000',
      '2026-01-01T00:00:00.000+00:00/000000',
    ];
    for (const s of bad) {
      expect(isHlc(s)).toBe(false);
      expect(() => parseHlc(s)).toThrow(expect.objectContaining({ code: ErrorCode.PROTOCOL_CLOCK }) as Error);
    }
    for (const [w, c] of [
      [-1, 0],
      [MAX_HLC_WALL_MS + 1, 0],
      [0.5, 0],
      [0, -1],
      [0, MAX_HLC_COUNTER + 1],
      [0, 1.5],
      [Number.NaN, 0],
    ] as const) {
      expect(() => formatHlc(w, c)).toThrow(
        expect.objectContaining({ code: ErrorCode.PROTOCOL_CLOCK }) as Error,
      );
    }
  });
});

type Step = { kind: 'now'; wall: number } | { kind: 'observe'; wall: number; remote: [number, number] };

describe('HybridClock', () => {
  it('is strictly monotonic under arbitrary wall clock readings (incl. backward jumps) and observes', () => {
    const step: fc.Arbitrary<Step> = fc.oneof(
      fc.record({
        kind: fc.constant('now' as const),
        wall: fc.integer({ min: T0 - 10_000, max: T0 + 10_000 }),
      }),
      fc.record({
        kind: fc.constant('observe' as const),
        wall: fc.integer({ min: T0 - 10_000, max: T0 + 10_000 }),
        remote: fc.tuple(
          fc.integer({ min: T0 - 20_000, max: T0 + 3 * DEFAULT_MAX_DRIFT_MS }),
          fc.constantFrom(0, 1, 5, MAX_HLC_COUNTER),
        ),
      }),
    );
    fc.assert(
      fc.property(fc.array(step, { maxLength: 60 }), (steps) => {
        let wall = T0;
        const clock = new HybridClock({ wallClock: () => wall });
        let prev: Hlc = clock.last();
        let greatestAdopted: Hlc | undefined;
        for (const s of steps) {
          wall = s.wall;
          if (s.kind === 'now') {
            const h = clock.now();
            expect(compareHlc(h, prev)).toBe(1);
            if (greatestAdopted !== undefined) expect(compareHlc(h, greatestAdopted)).toBe(1);
            expect(clock.last()).toBe(h);
            prev = h;
          } else {
            const remote = formatHlc(...s.remote);
            const before = clock.last();
            const adopted = clock.observe(remote);
            expect(adopted).toBe(s.remote[0] - wall <= DEFAULT_MAX_DRIFT_MS);
            if (adopted) {
              if (greatestAdopted === undefined || compareHlc(remote, greatestAdopted) > 0)
                greatestAdopted = remote;
              expect(clock.last()).toBe(compareHlc(remote, before) > 0 ? remote : before);
            } else {
              expect(clock.last()).toBe(before);
            }
            prev = clock.last();
          }
        }
      }),
      { numRuns: 300 },
    );
  });

  it('sorts the next local timestamp after an adopted remote one', () => {
    let wall = T0;
    const clock = new HybridClock({ wallClock: () => wall });
    const remote = formatHlc(T0 + 5_000, 7);
    expect(clock.observe(remote)).toBe(true);
    expect(clock.now()).toBe(formatHlc(T0 + 5_000, 8));
    wall = T0 + 6_000;
    expect(clock.now()).toBe(formatHlc(T0 + 6_000, 0));
    // An older remote is accepted but does not move the clock.
    expect(clock.observe(formatHlc(T0, 0))).toBe(true);
    expect(clock.now()).toBe(formatHlc(T0 + 6_000, 1));
  });

  it('does not adopt a remote timestamp too far in the future', () => {
    const clock = new HybridClock({ wallClock: () => T0, maxDriftMs: 60_000 });
    expect(clock.observe(formatHlc(T0 + 60_001, 0))).toBe(false);
    expect(clock.now()).toBe(formatHlc(T0, 0));
    expect(clock.observe(formatHlc(T0 + 60_000, 0))).toBe(true);
    expect(clock.now()).toBe(formatHlc(T0 + 60_000, 1));
    expect(clock.observe('garbage' as Hlc)).toBe(false);
    const daily = new HybridClock({ wallClock: () => T0 });
    expect(daily.observe(formatHlc(T0 + DEFAULT_MAX_DRIFT_MS + 1, 0))).toBe(false);
    expect(daily.observe(formatHlc(T0 + DEFAULT_MAX_DRIFT_MS, 0))).toBe(true);
  });

  it('overflows the counter into the next millisecond', () => {
    const clock = new HybridClock({ wallClock: () => T0, last: formatHlc(T0, MAX_HLC_COUNTER - 1) });
    expect(clock.now()).toBe(formatHlc(T0, MAX_HLC_COUNTER));
    expect(clock.now()).toBe(formatHlc(T0 + 1, 0));
    expect(clock.now()).toBe(formatHlc(T0 + 1, 1));
    const observed = new HybridClock({ wallClock: () => T0 });
    expect(observed.observe(formatHlc(T0, MAX_HLC_COUNTER))).toBe(true);
    expect(observed.now()).toBe(formatHlc(T0 + 1, 0));
  });

  it('resumes after its persisted last timestamp even if the wall clock went back', () => {
    const first = new HybridClock({ wallClock: () => T0 + 1_000 });
    first.now();
    const saved = first.now();
    const restarted = new HybridClock({ wallClock: () => T0, last: saved });
    expect(compareHlc(restarted.now(), saved)).toBe(1);
    expect(() => new HybridClock({ wallClock: () => T0, last: 'nope' as Hlc })).toThrow(
      expect.objectContaining({ code: ErrorCode.PROTOCOL_CLOCK }) as Error,
    );
  });

  it('treats NaN or negative wall readings as no progress', () => {
    let wall = Number.NaN;
    const clock = new HybridClock({ wallClock: () => wall });
    expect(clock.now()).toBe(formatHlc(0, 1));
    wall = -5;
    expect(clock.now()).toBe(formatHlc(0, 2));
    wall = T0 + 0.7;
    expect(clock.now()).toBe(formatHlc(T0, 0));
  });

  // Issue #13: no remote input, and no wall-clock reading, can make a local append fail or pull the
  // clock past its bound. Remote stamps range over the whole format, up to the very last stamp.
  it('never throws, stays strictly increasing and within max(last, wall + maxDrift) whatever it observes', () => {
    const nearTop = fc.integer({ min: MAX_HLC_WALL_MS - 3 * DEFAULT_MAX_DRIFT_MS, max: MAX_HLC_WALL_MS });
    const anyWall = fc.oneof(arbWall, nearTop, fc.integer({ min: T0 - 5_000, max: T0 + 5_000 }));
    const reading = fc.oneof(
      anyWall,
      fc.constantFrom(Number.NaN, -1, Number.POSITIVE_INFINITY, MAX_HLC_WALL_MS + 10),
    );
    const remote = fc.tuple(
      fc.oneof(anyWall, fc.constant(MAX_HLC_WALL_MS)),
      fc.oneof(arbCounter, fc.constant(MAX_HLC_COUNTER)),
    );
    const step = fc.oneof(
      fc.record({ kind: fc.constant('now' as const), wall: reading }),
      fc.record({ kind: fc.constant('observe' as const), wall: reading, remote }),
    );
    const lastStamp = fc.option(
      fc.tuple(fc.oneof(anyWall, fc.integer({ min: T0 - 5_000, max: T0 })), arbCounter),
      {
        nil: undefined,
      },
    );
    const drift = fc.constantFrom(0, 60_000, DEFAULT_MAX_DRIFT_MS);
    fc.assert(
      fc.property(lastStamp, drift, fc.array(step, { maxLength: 80 }), (last, maxDriftMs, steps) => {
        // The saturated last stamp is the one state a clock may repeat (see the unit test below).
        fc.pre(last === undefined || last[0] < MAX_HLC_WALL_MS);
        let wall = T0;
        const clock = new HybridClock({
          wallClock: () => wall,
          maxDriftMs,
          ...(last === undefined ? {} : { last: formatHlc(...last) }),
        });
        let prev = clock.last();
        let topReading = -1;
        let calls = 0;
        for (const s of steps) {
          wall = s.wall;
          const read = Number.isNaN(s.wall)
            ? -1
            : Math.min(Math.max(Math.floor(s.wall), -1), HLC_WALL_CAP_MS);
          topReading = Math.max(topReading, read);
          if (s.kind === 'observe') {
            const adopted = clock.observe(formatHlc(...s.remote));
            if (s.remote[0] - read > maxDriftMs) expect(adopted).toBe(false);
            continue;
          }
          const h = clock.now();
          calls++;
          expect(compareHlc(h, prev)).toBe(1);
          prev = h;
          const bound = Math.max(last?.[0] ?? 0, topReading + maxDriftMs) + 1 + Math.floor(calls / 1_000_000);
          expect(parseHlc(h).wallMs).toBeLessThanOrEqual(bound);
        }
      }),
      { numRuns: 500 },
    );
  });

  it('refuses to adopt a stamp that leaves no room (above the cap) even when the wall clock is there', () => {
    const clock = new HybridClock({ wallClock: () => MAX_HLC_WALL_MS });
    expect(clock.observe(formatHlc(MAX_HLC_WALL_MS, MAX_HLC_COUNTER))).toBe(false);
    expect(clock.observe(formatHlc(HLC_WALL_CAP_MS, MAX_HLC_COUNTER))).toBe(true);
    expect(clock.now()).toBe(formatHlc(HLC_WALL_CAP_MS + 1, 0));
  });

  it('repeats its very last stamp rather than throw once exhausted', () => {
    const top = formatHlc(MAX_HLC_WALL_MS, MAX_HLC_COUNTER);
    const clock = new HybridClock({ wallClock: () => T0, last: top });
    expect(clock.now()).toBe(top);
    expect(clock.now()).toBe(top);
  });

  it('names, as its ceiling, the greatest stamp observe adopts at a wall time', () => {
    const ceiling = HybridClock.ceiling(T0, 60_000);
    expect(ceiling).toBe(formatHlc(T0 + 60_000, MAX_HLC_COUNTER));
    const clock = new HybridClock({ wallClock: () => T0, maxDriftMs: 60_000 });
    expect(clock.observe(ceiling)).toBe(true);
    expect(clock.observe(formatHlc(T0 + 60_001, 0))).toBe(false);
    expect(HybridClock.ceiling(MAX_HLC_WALL_MS)).toBe(formatHlc(HLC_WALL_CAP_MS, MAX_HLC_COUNTER));
    expect(HybridClock.ceiling(Number.NaN, 0)).toBe(formatHlc(0, 0));
  });
});
