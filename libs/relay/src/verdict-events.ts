import {
  MAX_ACCEPTED_PER_EVENT,
  SystemEventType,
  type AcceptedVerdictsData,
  type EventId,
  type FacilityId,
  type JsonValue,
  type VerdictData,
} from '@accord/protocol';
import type { SystemDraft } from '@accord/log';

/**
 * The relay events that record `verdicts`, in the order they must be appended.
 *
 * @remarks Each deadletter is its own `Verdict` event (an explicit, individually addressable
 * rejection). Consecutive accepted verdicts share one `AcceptedVerdicts` event, one relay
 * signature for up to `maxPerEvent` of them: a run ends at a deadletter, at a `seq` that does not
 * follow the previous one, at another rule set, or at a target already in the run. Appending the
 * drafts in order keeps every target's verdicts in the order they were decided.
 */
export function verdictDrafts(
  facility: FacilityId,
  verdicts: readonly VerdictData[],
  maxPerEvent = MAX_ACCEPTED_PER_EVENT,
): SystemDraft[] {
  const drafts: SystemDraft[] = [];
  let run: { ruleSet: string; firstSeq: number; targets: EventId[]; seen: Set<EventId> } | undefined;
  const flush = (): void => {
    if (run === undefined) return;
    const data: AcceptedVerdictsData = { ruleSet: run.ruleSet, firstSeq: run.firstSeq, targets: run.targets };
    drafts.push({
      type: SystemEventType.AcceptedVerdicts,
      subject: { kind: 'verdicts', id: facility },
      data: data as unknown as JsonValue,
    });
    run = undefined;
  };
  for (const v of verdicts) {
    if (v.outcome === 'deadletter') {
      flush();
      drafts.push({
        type: SystemEventType.Verdict,
        subject: { kind: 'event', id: v.target },
        data: v as unknown as JsonValue,
        deps: [v.target],
      });
      continue;
    }
    const follows =
      run !== undefined &&
      run.targets.length < maxPerEvent &&
      run.ruleSet === v.ruleSet &&
      run.firstSeq + run.targets.length === v.seq &&
      !run.seen.has(v.target);
    if (!follows) {
      flush();
      run = { ruleSet: v.ruleSet, firstSeq: v.seq, targets: [], seen: new Set() };
    }
    run!.targets.push(v.target);
    run!.seen.add(v.target);
  }
  flush();
  return drafts;
}
