import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { canonicalEncode, MAX_EVENT_BYTES } from './canonical.js';
import type { JsonValue } from './envelope.js';
import type { EventId } from './ids.js';
import { parseVerdictData, verdictsIn } from './schemas.js';
import {
  boundDeadletter,
  boundDetails,
  boundText,
  forEachVerdictIn,
  MAX_VERDICT_DETAILS_BYTES,
  MAX_VERDICT_REASON_CHARS,
  readTarget,
  readVerdictData,
  RejectionCode,
  SystemEventType,
  type DeadletterVerdictData,
  type VerdictData,
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

describe('reading verdicts out of relay events', () => {
  const T2 = '01JB0000000000000000000002' as EventId;
  const dead = {
    target: TARGET,
    outcome: 'deadletter',
    code: 404,
    rule: 'RULE_DEPENDENCY_MISSING',
    reason: 'waited',
    details: { missing: [T2] },
    ruleSet: 'accord-rules/1',
  };
  const read = (type: string, data: unknown): VerdictData[] => {
    const out: VerdictData[] = [];
    const n = forEachVerdictIn({ type, data: data as JsonValue }, (v) => out.push(v));
    expect(n).toBe(out.length);
    return out;
  };

  it('reads a Verdict, and every target of an AcceptedVerdicts with consecutive seqs', () => {
    expect(read(SystemEventType.Verdict, dead)).toEqual([dead]);
    const accepted = { target: TARGET, outcome: 'accepted', seq: 7, ruleSet: 'r' };
    expect(read(SystemEventType.Verdict, accepted)).toEqual([accepted]);
    expect(
      read(SystemEventType.AcceptedVerdicts, { ruleSet: 'r', firstSeq: 4, targets: [TARGET, T2] }),
    ).toEqual([
      { target: TARGET, outcome: 'accepted', seq: 4, ruleSet: 'r' },
      { target: T2, outcome: 'accepted', seq: 5, ruleSet: 'r' },
    ]);
    // Any other event states no verdict, whatever its data looks like.
    expect(read('PatientRegistered', dead)).toEqual([]);
    expect(read(SystemEventType.RetryRequested, { target: TARGET })).toEqual([]);
  });

  it('is lenient where the log already checked, and ignores what is not shaped like a verdict', () => {
    // Filled in: a missing reason, ruleSet or details; not checked: the target's form, the code's value.
    expect(readVerdictData({ target: 'x', outcome: 'deadletter', code: 999, rule: 'R' })).toEqual({
      target: 'x',
      outcome: 'deadletter',
      code: 999,
      rule: 'R',
      reason: '',
      details: {},
      ruleSet: 'UNKNOWN',
    });
    expect(readVerdictData({ target: 'x', outcome: 'accepted', seq: 1 })).toMatchObject({
      ruleSet: 'UNKNOWN',
    });
    for (const bad of [
      null,
      [],
      'Verdict',
      { outcome: 'accepted', seq: 1 },
      { target: 5, outcome: 'accepted', seq: 1 },
      { target: 'x', outcome: 'accepted', seq: 0 },
      { target: 'x', outcome: 'accepted', seq: 1.5 },
      { target: 'x', outcome: 'accepted', seq: '1' },
      { target: 'x', outcome: 'maybe' },
      { target: 'x', outcome: 'deadletter', rule: 'R' }, // no code
      { target: 'x', outcome: 'deadletter', code: '404', rule: 'R' },
      { target: 'x', outcome: 'deadletter', code: 404 }, // no rule
    ]) {
      expect(readVerdictData(bad), JSON.stringify(bad)).toBeUndefined();
      expect(read(SystemEventType.Verdict, bad)).toEqual([]);
    }
    expect(read(SystemEventType.AcceptedVerdicts, { ruleSet: 'r', firstSeq: 0, targets: [TARGET] })).toEqual(
      [],
    );
    expect(read(SystemEventType.AcceptedVerdicts, { ruleSet: 'r', firstSeq: 1, targets: TARGET })).toEqual(
      [],
    );
    expect(read(SystemEventType.AcceptedVerdicts, { firstSeq: 1, targets: [TARGET] })).toEqual([]);
  });

  it('reads exactly what the strict verdictsIn states for every schema-valid verdict', () => {
    fc.assert(
      fc.property(hostileDeadletter, (d) => {
        const data = boundDeadletter({
          ...d,
          target: TARGET,
          outcome: 'deadletter',
        } as DeadletterVerdictData);
        const event = { type: SystemEventType.Verdict, data: data as unknown as JsonValue };
        expect(read(event.type, event.data)).toEqual(verdictsIn(event));
        expect(verdictsIn(event)).toEqual([data]);
      }),
      { numRuns: fc.readConfigureGlobal().numRuns ?? 50 },
    );
    // Lenient but not schema-valid: only the lenient reader sees a verdict.
    const loose = { type: SystemEventType.Verdict, data: { target: 'x', outcome: 'accepted', seq: 1 } };
    expect(read(loose.type, loose.data)).toHaveLength(1);
    expect(verdictsIn(loose)).toEqual([]);
  });

  it('reads the target of verdict, retry and discard data', () => {
    expect(readTarget({ target: TARGET })).toBe(TARGET);
    expect(readTarget({ target: TARGET, reason: 'keep theirs' })).toBe(TARGET);
    expect(readTarget({ target: 3 })).toBeUndefined();
    expect(readTarget(null)).toBeUndefined();
    expect(readTarget('x')).toBeUndefined();
  });
});
