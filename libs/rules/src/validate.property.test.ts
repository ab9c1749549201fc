import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  canonicalEncode,
  MAX_VERDICT_DETAILS_BYTES,
  MAX_VERDICT_REASON_CHARS,
  type SignedEvent,
} from '@accord/protocol';
import { DomainEventType, Projection, checkEventData } from '@accord/domain';
import { EventFactory, FACILITY_NOW_MS, arbFacility, testDeviceId } from '@accord/domain/testing';
import { RULES } from './rule-ids.js';
import { validate } from './validate.js';

const ctx = { nowMs: FACILITY_NOW_MS };
const dev = testDeviceId(1);
const bytes = (p: Projection): string => JSON.stringify(p.toJSON());

function fold(events: readonly SignedEvent[]): Projection {
  const p = Projection.empty();
  for (const e of events) p.apply(e);
  return p;
}

describe('validate: properties', () => {
  it('a generated facility is accepted event by event (the generator and the rules agree)', () => {
    fc.assert(
      fc.property(arbFacility({ maxOps: 60 }), ({ events }) => {
        const state = Projection.empty();
        for (const e of events) {
          const v = validate(state, e, ctx);
          expect(v.outcome === 'accepted' ? 'accepted' : `${e.type}: ${v.reason}`).toBe('accepted');
          state.apply(e);
        }
      }),
      { numRuns: 60 },
    );
  });

  it('is pure: the same input gives the same verdict and the state is not mutated', () => {
    fc.assert(
      fc.property(
        arbFacility({ maxOps: 40 }),
        fc.nat(),
        fc.array(fc.nat(), { maxLength: 40 }),
        ({ events }, cut, picks) => {
          // A state of some prefix, judged against arbitrary events of the history (many get rejected).
          const state = fold(events.slice(0, events.length === 0 ? 0 : cut % events.length));
          const before = bytes(state);
          for (const k of picks) {
            const e = events[k % Math.max(1, events.length)];
            if (e === undefined) continue;
            const v1 = validate(state, e, ctx);
            const v2 = validate(state, e, ctx);
            expect(JSON.stringify(v2)).toBe(JSON.stringify(v1));
            if (v1.outcome === 'deadletter') {
              expect(RULES[v1.rule]).toBe(v1.code);
              expect(v1.reason.length).toBeGreaterThan(10);
              expect(() => JSON.stringify(v1.details)).not.toThrow();
            }
          }
          expect(bytes(state)).toBe(before);
        },
      ),
      { numRuns: 60 },
    );
  });

  it('malformed data never throws: arbitrary JSON data is a 500 verdict', () => {
    const f = new EventFactory();
    const state = Projection.empty();
    fc.assert(
      fc.property(fc.constantFrom(...Object.values(DomainEventType)), fc.jsonValue(), (type, data) => {
        fc.pre(!checkEventData(type, 1, data).ok);
        const v = validate(state, f.event(dev, type, data), ctx);
        expect(v.outcome === 'deadletter' && v.code).toBe(500);
      }),
      { numRuns: 300 },
    );
  });

  it('arbitrary envelopes never throw and always carry a known rule', () => {
    const f = new EventFactory();
    fc.assert(
      fc.property(
        arbFacility({ maxOps: 10 }),
        fc.record({
          type: fc.oneof(
            fc.constantFrom(...Object.values(DomainEventType), 'Verdict', 'RetryRequested'),
            fc.anything(),
          ),
          schema: fc.oneof(fc.constant(1), fc.anything()),
          subject: fc.anything(),
          deps: fc.oneof(fc.constant([]), fc.anything()),
          basis: fc.anything(),
          data: fc.anything(),
        }),
        ({ events }, junk) => {
          const state = fold(events);
          const e = {
            ...f.event(dev, 'StockConsumed', { lot: 'L', quantity: 1 }),
            ...junk,
          } as unknown as SignedEvent;
          const v = validate(state, e, ctx);
          if (v.outcome === 'deadletter') expect(RULES[v.rule]).toBe(v.code);
        },
      ),
      { numRuns: 200 },
    );
  });

  it('bounds every rejection whatever the data echoes: many unknown keys, huge strings, wrong types', () => {
    const f = new EventFactory();
    const state = Projection.empty();
    const key = fc.string({ unit: 'binary', minLength: 1, maxLength: 6 });
    fc.assert(
      fc.property(
        fc.constantFrom(...Object.values(DomainEventType)),
        fc.dictionary(key, fc.oneof(fc.constant(0), fc.string({ unit: 'binary', maxLength: 3000 })), {
          minKeys: 0,
          maxKeys: 400,
        }),
        fc.nat({ max: 7000 }),
        fc.anything(),
        (type, junk, extra, odd) => {
          const data: Record<string, unknown> = { patientId: odd, lot: odd, ...junk };
          for (let i = 0; i < extra; i++) data[`k${i}`] = i;
          const v = validate(state, f.event(dev, type, data), ctx);
          expect(v.outcome).toBe('deadletter');
          if (v.outcome !== 'deadletter') return;
          expect(v.reason.length).toBeLessThanOrEqual(MAX_VERDICT_REASON_CHARS);
          expect(canonicalEncode(v.details).length).toBeLessThanOrEqual(MAX_VERDICT_DETAILS_BYTES);
        },
      ),
      { numRuns: 60 },
    );
  });
});
