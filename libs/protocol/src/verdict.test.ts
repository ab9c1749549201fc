import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { canonicalEncode, MAX_EVENT_BYTES } from './canonical.js';
import type { JsonValue } from './envelope.js';
import type { EventId } from './ids.js';
import { parseVerdictData } from './schemas.js';
import {
  boundDeadletter,
  boundDetails,
  boundText,
  MAX_VERDICT_DETAILS_BYTES,
  MAX_VERDICT_REASON_CHARS,
  RejectionCode,
  type DeadletterVerdictData,
} from './verdict.js';

const TARGET = '01JB0000000000000000000000' as EventId;
const size = (v: unknown): number => canonicalEncode(v as JsonValue).length;

// What a hostile device can make a rule echo: huge strings (lone surrogates included), long
// arrays, many keys, odd keys, and values that are not JSON at all.
const hostileValue = fc.oneof(
  fc.jsonValue({ maxDepth: 3 }),
  fc.string({ unit: 'binary', maxLength: 20_000 }),
  fc.array(fc.string({ unit: 'binary', maxLength: 400 }), { maxLength: 300 }),
  fc.array(fc.record({ path: fc.string(), message: fc.string({ maxLength: 2_000 }) }), { maxLength: 100 }),
  fc.anything(),
);
const hostileDetails = fc.oneof(
  fc.dictionary(fc.string({ unit: 'binary', maxLength: 120 }), hostileValue, { maxKeys: 60 }),
  fc.anything(),
);
const hostileDeadletter = fc.record({
  code: fc.constantFrom(...Object.values(RejectionCode)),
  rule: fc.string({ unit: 'binary', maxLength: 400 }),
  reason: fc.string({ unit: 'binary', maxLength: 30_000 }),
  details: hostileDetails,
  ruleSet: fc.string({ unit: 'binary', maxLength: 400 }),
});

describe('boundDeadletter', () => {
  it('makes any deadletter a valid verdict far below the event size limit', () => {
    fc.assert(
      fc.property(hostileDeadletter, (raw) => {
        const v = boundDeadletter({
          target: TARGET,
          outcome: 'deadletter',
          ...raw,
          details: raw.details as DeadletterVerdictData['details'],
        });
        expect(parseVerdictData(v).ok).toBe(true);
        expect(size(v.details)).toBeLessThanOrEqual(MAX_VERDICT_DETAILS_BYTES);
        expect(v.reason.length).toBeLessThanOrEqual(MAX_VERDICT_REASON_CHARS);
        // The whole data, escaped at worst, leaves room for the envelope around it.
        expect(size(v)).toBeLessThan(MAX_EVENT_BYTES / 2);
      }),
      { numRuns: 150 },
    );
  });

  it('keeps small details and reasons as they are', () => {
    fc.assert(
      fc.property(
        fc.dictionary(fc.string({ maxLength: 20 }), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 10 }),
        fc.string({ maxLength: 200 }),
        (details, reason) => {
          fc.pre(size(details) <= MAX_VERDICT_DETAILS_BYTES && !('__proto__' in details));
          const v = boundDeadletter({
            target: TARGET,
            outcome: 'deadletter',
            code: 422,
            rule: 'RULE_X',
            reason,
            details: details as DeadletterVerdictData['details'],
            ruleSet: 'r/1',
          });
          expect(v.details).toBe(details);
          expect(v.reason).toBe(reason);
        },
      ),
    );
  });

  it('summarizes a zod issue list that echoes 7,300 unknown keys, keeping what fits and saying what it left out', () => {
    const keys = Array.from({ length: 7300 }, (_, i) => `"${(i + 1296).toString(36).slice(-3)}"`);
    const issues = [
      { path: 'birthDate', message: 'Invalid input: expected string, received number' },
      { path: '', message: `Unrecognized keys: ${keys.join(', ')}` },
    ];
    const details = boundDetails({ type: 'PatientRegistered', issues, big: 'x'.repeat(40_000) });
    expect(size(details)).toBeLessThanOrEqual(MAX_VERDICT_DETAILS_BYTES);
    expect(details['type']).toBe('PatientRegistered');
    expect(details['truncated']).toMatchObject({ omitted: ['big'] });
    // The issue list is kept when it fits once the huge string is left out, shortened otherwise.
    const kept = details['issues'] as unknown[];
    expect(kept[0]).toEqual(issues[0]);
  });

  it('cuts text without splitting a surrogate pair and replaces lone surrogates', () => {
    expect(boundText('ab😀cd', 4)).toBe('ab…');
    expect(boundText('a\uD800b', 10)).toBe('a\uFFFDb');
    expect(boundText('abc', 3)).toBe('abc');
  });
});
