import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { decodeSignedEvent, encodeSignedEvent } from '@accord/protocol';
import { arbEnvelope, makeTestDevice, type TestDevice } from '@accord/protocol/testing';
import {
  eventCountOf,
  eventCountOfList,
  eventsOfEntry,
  eventsOfList,
  joinRun,
  RUN_SEPARATOR,
} from './documents.js';

let alice: TestDevice;
beforeAll(async () => {
  alice = await makeTestDevice();
});

const bytesOf = (text: string): Uint8Array => new TextEncoder().encode(text);

describe('segment runs', () => {
  it('splits a joined run of canonical events back into the same events, as views', async () => {
    // Seeded by the shared set-up; FC_NUM_RUNS scales it.
    await fc.assert(
      fc.asyncProperty(
        fc.array(arbEnvelope({ device: alice.deviceId }), { minLength: 1, maxLength: 12 }),
        async (envelopes) => {
          const events = await Promise.all(
            envelopes.map(async (e) => encodeSignedEvent(await alice.sign(e))),
          );
          const run = joinRun(events);
          const pieces = eventsOfEntry(run);
          expect(pieces).toEqual(events);
          expect(eventCountOf(run)).toBe(events.length);
          for (const piece of pieces) {
            expect(piece.buffer).toBe(run.buffer); // no copy
            expect(decodeSignedEvent(piece).ok).toBe(true);
          }
          // Two runs in a list read as their events in order; a lone event is a run of one.
          const list = [run, events[0]!, 'not bytes'];
          expect(eventsOfList(list)).toEqual([...events, events[0], 'not bytes']);
          expect(eventCountOfList(list)).toBe(events.length + 2);
        },
      ),
    );
  });

  it('reports empty pieces from leading, trailing and doubled separators as pieces of their own', () => {
    const a = bytesOf('{"a":1}');
    const b = bytesOf('{"b":2}');
    const sep = Uint8Array.of(RUN_SEPARATOR);
    const join = (...parts: Uint8Array[]): Uint8Array => {
      const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
      let at = 0;
      for (const p of parts) {
        out.set(p, at);
        at += p.length;
      }
      return out;
    };
    const lengths = (entry: Uint8Array): number[] => eventsOfEntry(entry).map((p) => p.length);
    expect(lengths(join(sep, a, sep, b))).toEqual([0, 7, 7]);
    expect(lengths(join(a, sep, b, sep))).toEqual([7, 7, 0]);
    expect(lengths(join(a, sep, sep, b))).toEqual([7, 0, 7]);
    expect(lengths(sep)).toEqual([0, 0]);
    expect(lengths(new Uint8Array(0))).toEqual([0]);
    expect(eventCountOf(join(a, sep, sep, b))).toBe(3);
    // An empty piece is judged as any entry that does not decode.
    expect(decodeSignedEvent(new Uint8Array(0)).ok).toBe(false);
    // A run of one is the event's own bytes: what every entry was before runs.
    expect(joinRun([a])).toBe(a);
    expect(eventsOfEntry(a)).toEqual([a]);
  });
});
