// Issue #13, scenario 1: a system event too large to sign once took a sequence number before the
// signer refused it; the hole stopped the log (LOG_CLOSED) and with it every later verdict.
import { describe, expect, it } from 'vitest';
import { MAX_EVENT_BYTES, SystemEventType, type EventId, type FacilityId } from '@accord/protocol';
import { makeFacility, openMemoryLog } from './testing.js';

const FACILITY = 'own-append-size' as FacilityId;
const TARGET = '01JB0000000000000000000000' as EventId;

const verdict = (detailBytes: number) => ({
  type: SystemEventType.Verdict,
  subject: { kind: 'event', id: TARGET },
  deps: [TARGET],
  data: {
    target: TARGET,
    outcome: 'deadletter',
    code: 500,
    rule: 'RULE_SCHEMA',
    reason: 'bad',
    details: { echo: 'x'.repeat(detailBytes) },
    ruleSet: 'accord-rules/1',
  },
});

describe('own appends that cannot be written', () => {
  it('take no sequence number: a too-large system event among concurrent appends leaves no hole and the log goes on', async () => {
    const facility = await makeFacility(FACILITY, 1, 3);
    const log = await openMemoryLog(facility, 0);
    // Appended together, as the relay appends a round of verdicts.
    const results = await Promise.allSettled([
      log.appendSystem(verdict(10)),
      log.appendSystem(verdict(MAX_EVENT_BYTES)),
      log.appendSystem(verdict(20)),
    ]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect(results[1]).toMatchObject({ reason: { code: 'PROTOCOL_TOO_LARGE' } });
    const after = await log.appendSystem(verdict(30));
    expect(after.seq).toBe(3);
    const seqs = [...log.visibleEvents()].map((e) => e.seq).sort((a, b) => a - b);
    expect(seqs).toEqual([1, 2, 3]);
    expect(log.integrity().holes).toEqual([]);
    await log.close();
  });
});
