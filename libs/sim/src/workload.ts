import type { Draft, Projection } from '@accord/domain';
import { ANTIGEN_SCHEDULE, DomainEventType, dateOfDay, dayNumber } from '@accord/domain';
import type { Prng } from './prng.js';
import type { ActionKind, Scenario } from './scenario.js';
import { ACTION_KINDS, deviceNodes } from './scenario.js';

/** What a user sets out to do; `violation` and `duplicate` are the deliberate faults of the mix. */
export type IntentKind = ActionKind | 'violation' | 'duplicate';

/**
 * One user action, planned before the run: when, on which device, what kind, and three selectors
 * that the interpreter reduces modulo what the device shows at that moment.
 *
 * @remarks Planned independently of any system under test, so Accord and the baseline face the
 * very same users; what each action becomes depends on the device's own view when it happens.
 */
export interface Action {
  /** Unique in the run: `<node>#<n>`. */
  readonly id: string;
  readonly atMs: number;
  readonly node: string;
  readonly kind: IntentKind;
  readonly a: number;
  readonly b: number;
  readonly c: number;
}

/** An action turned into a domain draft on a device's view. */
export interface Intent {
  readonly action: string;
  /**
   * The real-world fact the draft records: one person (`person:<nationalId>`) for registrations,
   * the action otherwise. Two effective records of one fact are a duplicate.
   */
  readonly fact: string;
  readonly draft: Draft;
  /** True for the deliberate rule violations of the mix. */
  readonly violation: boolean;
}

/**
 * Plans every user action of a run: a Poisson process per device at `workload.ratePerHour` until
 * `workload.untilMs`, kinds drawn from the mix, with `violations` and `duplicates` probabilities.
 *
 * @remarks Each device draws from its own named stream, so a device's actions do not change when
 * devices are added. Sorted by time, then node.
 */
export function planWorkload(s: Scenario, prng: Prng): Action[] {
  const out: Action[] = [];
  const w = s.workload;
  if (w.ratePerHour <= 0) return out;
  const meanGap = 3_600_000 / w.ratePerHour;
  const weights = ACTION_KINDS.map((k) => w.mix[k]);
  const total = weights.reduce((x, y) => x + y, 0);
  for (const node of deviceNodes(s)) {
    const r = prng.stream(`${node}/workload`);
    let t = r.exponential(meanGap);
    let n = 0;
    while (t < w.untilMs) {
      let kind: IntentKind;
      const fault = r.float();
      if (fault < w.violations) kind = 'violation';
      else if (fault < w.violations + w.duplicates) kind = 'duplicate';
      else {
        let x = r.float() * total;
        kind = ACTION_KINDS[ACTION_KINDS.length - 1]!;
        for (let i = 0; i < ACTION_KINDS.length; i++) {
          if (x < weights[i]!) {
            kind = ACTION_KINDS[i]!;
            break;
          }
          x -= weights[i]!;
        }
      }
      n++;
      out.push({
        id: `${node}#${n}`,
        atMs: Math.round(t),
        node,
        kind,
        a: r.uint32(),
        b: r.uint32(),
        c: r.uint32(),
      });
      t += r.exponential(meanGap);
    }
  }
  return out.sort((x, y) => x.atMs - y.atMs || (x.node < y.node ? -1 : x.node > y.node ? 1 : 0));
}

const GIVEN = ['Amina', 'Chikondi', 'Grace', 'John', 'Kondwani', 'Mphatso', 'Tiyamike', 'Yamikani'];
const FAMILY = ['Banda', 'Phiri', 'Mwale', 'Tembo', 'Chirwa', 'Gondwe'];
const SEXES = ['female', 'male', 'other', 'unknown'] as const;
const ANTIGENS = Object.keys(ANTIGEN_SCHEDULE).sort();

const pick = <T>(list: readonly T[], k: number): T | undefined =>
  list.length === 0 ? undefined : list[k % list.length];

/**
 * Turns a planned action into a domain draft on the device's current view (`today` is the date on
 * the device's own clock), or undefined when nothing fits (no patient yet to check in).
 *
 * @remarks Ordinary actions are valid on the view they were made on (they may still be rejected
 * against the authority's state, which the device has not fully seen); `violation` breaks one
 * business rule on purpose (dose out of sequence, negative stock, vaccination before birth);
 * `duplicate` registers a person the view already shows under a new patient id, with the same
 * national id (the natural key). Record ids are made from the action id, so they are unique.
 */
export function interpretAction(action: Action, view: Projection, today: string): Intent | undefined {
  const mk = (draft: Draft, fact = action.id, violation = false): Intent => ({
    action: action.id,
    fact,
    draft,
    violation,
  });
  const { a, b, c } = action;
  const tag = action.id.replace('#', '-');
  const patients = view.patients();
  const todayN = dayNumber(today);
  switch (action.kind) {
    case 'register':
      return register(action, today, mk);
    case 'duplicate': {
      const p = pick(patients, a);
      if (p === undefined) return register(action, today, mk);
      return mk(
        {
          type: DomainEventType.PatientRegistered,
          data: {
            patientId: `P-${tag}`,
            nationalId: p.nationalId,
            givenName: p.givenName,
            familyName: p.familyName,
            birthDate: p.birthDate,
            sex: p.sex,
          },
        },
        `person:${p.nationalId}`,
      );
    }
    case 'checkIn': {
      const free = patients.filter((p) => view.openEncountersOf(p.id).length === 0);
      const p = pick(free, a);
      if (p === undefined) return undefined;
      return mk({
        type: DomainEventType.PatientCheckedIn,
        data: { patientId: p.id, encounterId: `E-${tag}` },
      });
    }
    case 'advance': {
      const q = view.queue(today);
      const open = [...q.waiting, ...q.inProgress];
      const e = pick(open, a);
      if (e === undefined) return undefined;
      if (b % 6 === 0)
        return mk({ type: DomainEventType.EncounterCancelled, data: { encounterId: e.encounterId } });
      return mk({
        type: e.state === 'waiting' ? DomainEventType.EncounterStarted : DomainEventType.EncounterCompleted,
        data: { encounterId: e.encounterId },
      });
    }
    case 'vaccinate': {
      const p = pick(patients, a);
      if (p === undefined) return undefined;
      const birth = dayNumber(p.birthDate);
      for (let k = 0; k < ANTIGENS.length; k++) {
        const antigen = ANTIGENS[(b + k) % ANTIGENS.length]!;
        const schedule = ANTIGEN_SCHEDULE[antigen]!;
        const mine = p.immunizations.filter((i) => i.antigen === antigen);
        const highest = mine.reduce((m, i) => Math.max(m, i.dose), 0);
        if (highest >= schedule.doses) continue;
        const previous = mine.reduce((m, i) => Math.max(m, dayNumber(i.date)), -Infinity);
        const due = highest === 0 ? birth + schedule.minAgeDays : previous + schedule.minIntervalDays;
        if (due > todayN) continue;
        const lot = view
          .stock()
          .lots.find((l) => l.antigen === antigen && l.balance >= 1 && l.expiry >= today);
        if (lot === undefined) return receive(action, antigen, todayN, mk);
        return mk({
          type: DomainEventType.VaccinationAdministered,
          data: { patientId: p.id, antigen, dose: highest + 1, lot: lot.lot, date: today },
        });
      }
      return undefined;
    }
    case 'stock': {
      const lots = view.stock().lots.filter((l) => l.balance > 0);
      const lot = pick(lots, a);
      if (lot === undefined || b % 3 !== 0)
        return receive(action, ANTIGENS[c % ANTIGENS.length]!, todayN, mk);
      return c % 2 === 0
        ? mk({
            type: DomainEventType.StockConsumed,
            data: { lot: lot.lot, quantity: 1 + (c % lot.balance), reason: 'wastage' },
          })
        : mk({
            type: DomainEventType.StockAdjusted,
            data: { lot: lot.lot, delta: -1 - (c % lot.balance), reason: 'physical count' },
          });
    }
    case 'demographics': {
      const p = pick(patients, a);
      if (p === undefined) return undefined;
      const changes =
        b % 3 === 0
          ? { givenName: GIVEN[c % GIVEN.length]! }
          : b % 3 === 1
            ? { familyName: FAMILY[c % FAMILY.length]! }
            : { sex: SEXES[c % SEXES.length]! };
      return mk({ type: DomainEventType.PatientDemographicsUpdated, data: { patientId: p.id, changes } });
    }
    case 'appointment': {
      const upcoming = view.appointments(today).upcoming;
      const booked = pick(upcoming, a);
      if (booked !== undefined && b % 4 === 0) {
        return mk({
          type: DomainEventType.AppointmentCancelled,
          data: { appointmentId: booked.appointmentId },
        });
      }
      const p = pick(patients, a);
      if (p === undefined) return undefined;
      const antigen = ANTIGENS[b % ANTIGENS.length]!;
      const highest = p.immunizations
        .filter((i) => i.antigen === antigen)
        .reduce((m, i) => Math.max(m, i.dose), 0);
      if (highest >= ANTIGEN_SCHEDULE[antigen]!.doses) return undefined;
      return mk({
        type: DomainEventType.AppointmentScheduled,
        data: {
          appointmentId: `A-${tag}`,
          patientId: p.id,
          antigen,
          dose: highest + 1,
          date: dateOfDay(todayN + 1 + (c % 60)),
        },
      });
    }
    case 'violation':
      return violation(action, view, patients, today, mk);
  }
}

type Make = (draft: Draft, fact?: string, violation?: boolean) => Intent;

function register(action: Action, today: string, mk: Make): Intent {
  const tag = action.id.replace('#', '-');
  const nationalId = `N-${tag}`;
  return mk(
    {
      type: DomainEventType.PatientRegistered,
      data: {
        patientId: `P-${tag}`,
        nationalId,
        givenName: GIVEN[action.b % GIVEN.length]!,
        familyName: FAMILY[action.c % FAMILY.length]!,
        // Under five, as most patients of an immunization clinic are.
        birthDate: dateOfDay(dayNumber(today) - (action.a % 1800)),
        sex: SEXES[(action.a + action.b) % SEXES.length]!,
      },
    },
    `person:${nationalId}`,
  );
}

function receive(action: Action, antigen: string, todayN: number, mk: Make): Intent {
  return mk({
    type: DomainEventType.StockReceived,
    data: {
      lot: `L-${action.id.replace('#', '-')}`,
      antigen,
      quantity: 10 + (action.c % 40),
      expiry: dateOfDay(todayN + 60 + (action.a % 300)),
    },
  });
}

function violation(
  action: Action,
  view: Projection,
  patients: ReturnType<Projection['patients']>,
  today: string,
  mk: Make,
): Intent | undefined {
  const { a, b } = action;
  const p = pick(patients, a);
  const lots = view.stock().lots;
  const lot = pick(lots, b);
  const which = b % 3;
  if (which === 0 && lot !== undefined) {
    // Negative stock: consume more than the lot holds.
    return mk(
      { type: DomainEventType.StockConsumed, data: { lot: lot.lot, quantity: lot.balance + 5 } },
      action.id,
      true,
    );
  }
  if (p === undefined) return undefined;
  const antigen = ANTIGENS[a % ANTIGENS.length]!;
  const highest = p.immunizations
    .filter((i) => i.antigen === antigen)
    .reduce((m, i) => Math.max(m, i.dose), 0);
  if (which === 1) {
    // Dose out of sequence: skip a dose.
    return mk(
      {
        type: DomainEventType.VaccinationAdministered,
        data: {
          patientId: p.id,
          antigen,
          dose: Math.min(10, highest + 2),
          lot: lot?.lot ?? 'L-none',
          date: today,
        },
      },
      action.id,
      true,
    );
  }
  // Vaccination dated before the patient's birth.
  return mk(
    {
      type: DomainEventType.VaccinationAdministered,
      data: {
        patientId: p.id,
        antigen,
        dose: highest + 1,
        lot: lot?.lot ?? 'L-none',
        date: dateOfDay(dayNumber(p.birthDate) - 1 - (a % 30)),
      },
    },
    action.id,
    true,
  );
}
