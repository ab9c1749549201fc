import { describe, expect, it } from 'vitest';
import { withSeed } from '@accord/testkit';
import {
  Projection,
  checkEventData,
  dateOfDay,
  dateStartMs,
  dayNumber,
  isDomainEventType,
} from '@accord/domain';
import { EventFactory, testDeviceId } from '@accord/domain/testing';
import { validate } from '@accord/rules';
import { Prng } from './prng.js';
import { defineScenario } from './scenario.js';
import { interpretAction, planWorkload } from './workload.js';

describe('planWorkload', () => {
  it('plans the same actions for the same seed, at the configured rate, sorted by time', () =>
    withSeed('workload plan', (seed) => {
      const s = defineScenario({
        seed,
        devicesPerFacility: 3,
        duration: '2d',
        workload: { ratePerHour: 5, until: '2d' },
      });
      const a = planWorkload(s, new Prng(seed));
      expect(a).toEqual(planWorkload(s, new Prng(seed)));
      expect(a).not.toEqual(planWorkload(s, new Prng(seed + 1)));
      const expected = 3 * 48 * 5;
      expect(Math.abs(a.length - expected) / expected).toBeLessThan(0.15);
      for (let i = 1; i < a.length; i++) expect(a[i]!.atMs).toBeGreaterThanOrEqual(a[i - 1]!.atMs);
      expect(new Set(a.map((x) => x.id)).size).toBe(a.length);
    }));

  it("keeps a device's actions when devices are added (each device draws from its own stream)", () => {
    const small = planWorkload(defineScenario({ devicesPerFacility: 2 }), new Prng(5));
    const big = planWorkload(defineScenario({ devicesPerFacility: 5 }), new Prng(5));
    const of = (list: typeof small) => list.filter((x) => x.node === 'f1-d2');
    expect(of(big)).toEqual(of(small));
  });
});

describe('interpretAction', () => {
  it('makes real domain drafts: ordinary ones pass the rules on the view they were made on, violations get 422, duplicates 409', () =>
    withSeed('workload drafts', (seed) => {
      const s = defineScenario({
        seed,
        devicesPerFacility: 1,
        duration: '20d',
        workload: { ratePerHour: 3, violations: 0.08, duplicates: 0.05 },
      });
      const actions = planWorkload(s, new Prng(seed));
      const factory = new EventFactory();
      const device = testDeviceId(1);
      const view = Projection.empty();
      const outcomes = { accepted: 0, violations: 0, duplicates: 0 };
      const kinds = new Set<string>();
      for (const action of actions) {
        const today = dateOfDay(dayNumber('2024-06-03') + Math.floor(action.atMs / 86_400_000));
        const intent = interpretAction(action, view, today);
        if (intent === undefined) continue;
        expect(isDomainEventType(intent.draft.type)).toBe(true);
        expect(checkEventData(intent.draft.type, 1, intent.draft.data).ok).toBe(true);
        const event = factory.record(view, device, intent.draft.type, intent.draft.data);
        const verdict = validate(view, event, { nowMs: dateStartMs(today) + 12 * 3_600_000 });
        kinds.add(event.type);
        if (intent.violation) {
          expect(verdict).toMatchObject({ outcome: 'deadletter', code: 422 });
          outcomes.violations++;
        } else if (action.kind === 'duplicate' && intent.fact !== `person:N-${action.id.replace('#', '-')}`) {
          expect(verdict).toMatchObject({
            outcome: 'deadletter',
            code: 409,
            rule: 'RULE_DUPLICATE_NATIONAL_ID',
          });
          outcomes.duplicates++;
        } else {
          expect(verdict, `${action.kind} → ${event.type} ${JSON.stringify(event.data)}`).toMatchObject({
            outcome: 'accepted',
          });
          view.apply(event);
          outcomes.accepted++;
        }
      }
      expect(outcomes.accepted).toBeGreaterThan(500);
      expect(outcomes.violations).toBeGreaterThan(10);
      expect(outcomes.duplicates).toBeGreaterThan(5);
      // Every kind of fact the clinic records shows up.
      for (const t of [
        'PatientRegistered',
        'PatientDemographicsUpdated',
        'PatientCheckedIn',
        'EncounterStarted',
        'EncounterCompleted',
        'VaccinationAdministered',
        'StockReceived',
        'AppointmentScheduled',
      ]) {
        expect(kinds).toContain(t);
      }
    }));
});
