import { describe, expect, it } from 'vitest';
import {
  expandAcceptedVerdicts,
  readAcceptedVerdicts,
  SystemEventType,
  type AcceptedVerdictData,
  type VerdictData,
} from '@accord/protocol';
import { TEST_FACILITY, testEventId } from '@accord/domain/testing';
import { verdictDrafts } from './verdict-events.js';

const ok = (n: number, seq: number, ruleSet = 'r1'): AcceptedVerdictData => ({
  target: testEventId(n),
  outcome: 'accepted',
  seq,
  ruleSet,
});
const dead = (n: number): VerdictData => ({
  target: testEventId(n),
  outcome: 'deadletter',
  code: 422,
  rule: 'RULE_NEGATIVE_STOCK',
  reason: 'Lot L1 would go negative.',
  details: { lot: 'L1' },
  ruleSet: 'r1',
});

/** Every verdict the drafts state, in order (what a device reads back). */
function stated(facility = TEST_FACILITY, verdicts: readonly VerdictData[], max?: number): VerdictData[] {
  return verdictDrafts(facility, verdicts, max).flatMap((d) => {
    if (d.type === SystemEventType.Verdict) return [d.data as unknown as VerdictData];
    const batch = readAcceptedVerdicts(d.data);
    if (batch === undefined) throw new Error('unreadable batch');
    return expandAcceptedVerdicts(batch);
  });
}

describe('verdictDrafts', () => {
  it('states every verdict exactly once, in the order decided', () => {
    const verdicts = [ok(1, 1), ok(2, 2), dead(3), ok(4, 3), ok(5, 4), ok(6, 5), dead(7), dead(8), ok(9, 6)];
    expect(stated(TEST_FACILITY, verdicts)).toEqual(verdicts);
    expect(stated(TEST_FACILITY, verdicts, 2)).toEqual(verdicts);
  });

  it('shares one relay event per run of accepted verdicts; each deadletter is its own Verdict', () => {
    const drafts = verdictDrafts(TEST_FACILITY, [ok(1, 1), ok(2, 2), dead(3), ok(4, 3)]);
    expect(drafts.map((d) => d.type)).toEqual([
      SystemEventType.AcceptedVerdicts,
      SystemEventType.Verdict,
      SystemEventType.AcceptedVerdicts,
    ]);
    expect(drafts[0]).toEqual({
      type: SystemEventType.AcceptedVerdicts,
      subject: { kind: 'verdicts', id: TEST_FACILITY },
      data: { ruleSet: 'r1', firstSeq: 1, targets: [testEventId(1), testEventId(2)] },
    });
    expect(drafts[1]).toMatchObject({
      subject: { kind: 'event', id: testEventId(3) },
      deps: [testEventId(3)],
    });
  });

  it('starts a new event at the size cap, a seq gap, another rule set or a repeated target', () => {
    const count = (verdicts: VerdictData[], max?: number) =>
      verdictDrafts(TEST_FACILITY, verdicts, max).length;
    expect(count([ok(1, 1), ok(2, 2), ok(3, 3)], 2)).toBe(2);
    expect(count([ok(1, 1), ok(2, 3)])).toBe(2);
    expect(count([ok(1, 1), ok(2, 2, 'r2')])).toBe(2);
    expect(count([ok(1, 1), ok(1, 2)])).toBe(2);
    expect(count([])).toBe(0);
  });
});
